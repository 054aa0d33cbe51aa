"""The command line, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import REPO


def envfarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envfarm.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def test_list_json_has_counts() -> None:
    run = envfarm("list", "--json")
    assert run.returncode == 0, run.stderr
    rows = {r["id"]: r for r in json.loads(run.stdout)}
    assert rows["notes"] == {
        "id": "notes",
        "title": "Notes",
        "tools": 2,
        "queries": 1,
        "mutations": 1,
        "rules": 1,
        "scenarios": 1,
    }


def test_list_table() -> None:
    run = envfarm("list")
    assert run.returncode == 0 and "notes" in run.stdout and "scenarios" in run.stdout


@pytest.mark.parametrize(
    ("command", "says"),
    [
        ((), "synthesized tool-use environments"),
        (("list",), "tool and scenario counts"),
        (("serve",), "/episodes/{id}/mcp"),
        (("stdio",), "over stdio"),
        (("manifest",), "manifest.json"),
    ],
)
def test_help_says_what_each_command_does(command: tuple[str, ...], says: str) -> None:
    run = envfarm(*command, "--help")
    assert run.returncode == 0
    assert says in " ".join(run.stdout.split())


def test_manifest_check_passes_on_bundled_envs() -> None:
    run = envfarm("manifest")
    assert run.returncode == 0, run.stderr
    assert "notes: manifest matches the code" in run.stderr


def test_unknown_env_is_a_clear_error_not_a_traceback() -> None:
    run = envfarm("stdio", "zoo")
    assert run.returncode == 2
    assert "no package envfarm.servers.zoo" in run.stderr and "Traceback" not in run.stderr


def test_unknown_scenario_for_stdio() -> None:
    run = envfarm("stdio", "notes", "--scenario", "nope")
    assert run.returncode == 2 and "no scenario 'nope' in 'notes'" in run.stderr
