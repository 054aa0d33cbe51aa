"""No secret of a service leaves through the sandbox: not in a score, a log line or a gate message.

The farm, the validator and the gate run with a token and an API key in their environment.
A scenario whose checks try every route a check has to them (the environment, /proc, the
parent's /proc, every string the process holds) is scored, gated and logged, and the
secret appears nowhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from conftest import FIXTURE_ENVS, REPO, start_farm, stop_farm

from envfarm.validators.sandbox import SandboxLimits, SandboxPool

SECRET = "sk-envfarm-test-secret-0c5e7f3a9"
SECRETS = {"ENVFARM_TOKEN": SECRET, "ANTHROPIC_API_KEY": SECRET, "OPENAI_API_KEY": SECRET, "MY_DB_PASSWORD": SECRET}

# A check that looks everywhere it can for anything secret-looking and raises with what it found.
LEAKER = r"""
import gc, os, sys
def check(initial, final):
    found = {"environ": dict(os.environ), "argv": sys.argv}
    for path in ("/proc/self/environ", f"/proc/{os.getppid()}/environ", "/proc/1/environ"):
        try:
            with open(path, "rb") as f:
                found[path] = f.read().decode(errors="replace")
        except BaseException as e:
            found[path] = repr(e)
    strings = set()
    for obj in gc.get_objects():
        values = obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple, set)) else ()
        for value in values:
            if isinstance(value, str) and ("sk-" in value or "SECRET" in value or "secret" in value):
                strings.add(value[:200])
    found["strings"] = sorted(strings)
    raise ValueError(repr(found))
"""


def test_the_worker_environment_is_explicit_and_holds_nothing_of_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    from envfarm.validators.sandbox.pool import worker_environment

    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    env = worker_environment()
    assert set(env) <= {"PATH", "LC_ALL", "PYTHONDONTWRITEBYTECODE", "PYTHONPATH"}
    assert SECRET not in json.dumps(env)


async def test_a_check_finds_no_secret_by_any_route(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    async with SandboxPool(1, SandboxLimits(wall_seconds=10)) as pool:
        (outcome,) = await pool.run_checks([("leak", LEAKER)], {"t": []}, {"t": []})
    assert outcome.passed is False and outcome.error and outcome.error.startswith("raised ValueError")
    assert "environ" in outcome.error  # the check ran and reported what it saw
    assert SECRET not in outcome.error and "0c5e7f3a9" not in outcome.error


@pytest.fixture
def leaky_env(tmp_path: Path) -> Path:
    """A copy of the notes fixture with a scenario whose checks try to leak secrets."""
    root = tmp_path / "envs"
    shutil.copytree(FIXTURE_ENVS / "notes", root / "notes", ignore=shutil.ignore_patterns("__pycache__"))
    scenario = json.loads((root / "notes" / "scenarios" / "file-two.json").read_text())
    scenario["id"] = "leak"
    scenario["checks"].append({"id": "leak", "description": "tries to leak secrets", "code": LEAKER})
    (root / "notes" / "scenarios" / "leak.json").write_text(json.dumps(scenario))
    subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "manifest", "notes", "--write"],
        env={**os.environ, "ENVFARM_ENV_PATH": str(root)},
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return root


def test_no_score_answer_or_log_line_of_the_farm_holds_a_secret(leaky_env: Path) -> None:
    env = {**SECRETS, "ENVFARM_ENV_PATH": str(leaky_env)}
    farm = start_farm("notes", "--log-level", "debug", "--token", SECRET, env=env)
    try:
        headers = {"authorization": f"Bearer {SECRET}"}
        scenario = httpx.get(f"{farm.url}/v1/envs/notes/scenarios/leak", headers=headers).json()
        body = {"env": "notes", "scenario": "leak", "trajectory": scenario["oracle"]}
        answers = [httpx.post(f"{farm.url}/v1/score", json=body, headers=headers, timeout=60)]
        episode = httpx.post(f"{farm.url}/v1/episodes", json={"env": "notes", "scenario": "leak"}, headers=headers)
        answers.append(httpx.post(f"{farm.url}/v1/episodes/{episode.json()['episode_id']}/score", headers=headers))
        for answer in answers:
            assert answer.status_code == 200, answer.text
            leak = next(c for c in answer.json()["checks"] if c["id"] == "leak")
            assert leak["passed"] is False and "environ" in leak["error"]
            assert SECRET not in answer.text
    finally:
        stop_farm(farm)
    log = farm.process.stdout.read().decode() if farm.process.stdout else ""
    assert SECRET not in log


def test_no_gate_message_holds_a_secret(leaky_env: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "check", "notes"],
        env={**os.environ, **SECRETS, "ENVFARM_ENV_PATH": str(leaky_env)},
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
    )
    assert proc.returncode == 1  # the leaking check fails the gate ...
    assert "leak" in proc.stderr and "environ" in proc.stderr  # ... saying what it raised
    assert SECRET not in proc.stdout + proc.stderr
