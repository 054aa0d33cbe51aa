"""Bad input never gives a 500: schemathesis fuzzes the farm's and the validator's OpenAPI schemas, and the router."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FarmProcess, start_farm, stop_farm

CONFIG = """
[parameters]
"path.env_id" = "library"
"path.scenario_id" = "return-and-pay"
"""


def fuzz(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    st = Path(sys.executable).parent / "schemathesis"
    command = [
        str(st),
        "--config-file",
        str(config),
        "run",
        f"{url}/openapi.json",
        "--checks",
        "not_a_server_error",
        "--max-examples",
        "40",
        "--seed",
        "7",
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)


def test_farm_api_has_no_server_errors(farm: FarmProcess, tmp_path: Path) -> None:
    run = fuzz(farm.url, tmp_path)
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.split("SUMMARY")[-1]


@pytest.mark.parametrize("with_farm", [True, False])
def test_validator_api_has_no_server_errors(farm: FarmProcess, tmp_path: Path, with_farm: bool) -> None:
    validator = start_farm(*(["--farm", farm.url] if with_farm else []), command="validator")
    try:
        run = fuzz(validator.url, tmp_path)
    finally:
        stop_farm(validator)
    assert run.returncode == 0, run.stdout[-4000:]


def test_router_has_no_server_errors(farm: FarmProcess, tmp_path: Path) -> None:
    """The workers' API fuzzed through `envfarm router` (its /openapi.json is a worker's): still never a 500."""
    second = start_farm()
    try:
        router = start_farm("--worker", farm.url, "--worker", second.url, command="router")
        try:
            run = fuzz(router.url, tmp_path)
        finally:
            stop_farm(router)
    finally:
        stop_farm(second)
    assert run.returncode == 0, run.stdout[-4000:]
    assert " passed" in run.stdout and "failed" not in run.stdout.split("SUMMARY")[-1]
