"""Procedural scenarios: deterministic per seed, gated, and scored 1.0 by their oracle only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from conftest import FIXTURE_ENVS

import envfarm.servers
from envfarm.core.environments import load_environment
from envfarm.generator.procedural import Knobs, checks_from_changes, load_steps, synthesize
from envfarm.validators.replay import replay
from envfarm.validators.sandbox import SandboxPool
from envfarm.validators.scoring import score


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(1) as running:
        yield running


async def make(seed: int, pool: SandboxPool, count: int = 4) -> list[dict]:
    env = load_environment("notes")
    made, stats = await synthesize(env, env.scenarios["file-two"], count, seed, Knobs(mutations=(2, 3)), pool)
    assert len(made) == count, stats
    return [s.model_dump(mode="json") for s in made]


async def test_same_seed_same_scenarios(pool: SandboxPool) -> None:
    first, again, other = await make(7, pool), await make(7, pool), await make(8, pool)
    assert first == again
    assert first != other


async def test_every_scenario_scores_one_with_its_oracle_and_less_when_empty(pool: SandboxPool) -> None:
    env = load_environment("notes")
    made, _ = await synthesize(env, env.scenarios["file-two"], 5, 3, Knobs(mutations=(1, 3)), pool)
    for scenario in made:
        assert scenario.gate is not None and scenario.gate["mutants_caught"] == scenario.gate["mutants"]
        assert not any(str(i) in scenario.task for i in ("folder_id", "id ="))  # names, not internal ids
        solved = await score(env, scenario, replay(env, scenario, scenario.oracle), pool)
        empty = await score(env, scenario, replay(env, scenario, []), pool)
        assert (solved.reward, solved.success) == (1.0, True)
        assert empty.reward < 1.0


async def test_knobs_bound_the_number_of_mutations(pool: SandboxPool) -> None:
    env = load_environment("notes")
    made, _ = await synthesize(env, env.scenarios["file-two"], 3, 1, Knobs(mutations=(3, 3)), pool)
    assert all(sum(c.tool == "add_note" for c in s.oracle) == 3 for s in made)


def test_checks_pin_changed_added_and_removed_rows() -> None:
    changes = {
        "loans": {
            "added": [],
            "removed": [],
            "changed": [{"key": "7", "before": {"status": "active"}, "after": {"status": "returned"}}],
        },
        "holds": {
            "added": [{"id": 9, "member_id": 2, "status": "queued"}],
            "removed": [{"id": 3, "member_id": 1}],
            "changed": [],
        },
    }
    checks = {c.id: c for c in checks_from_changes(changes, {"loans": ["id"], "holds": ["id"]})}
    assert set(checks) == {"loans-7", "holds-new", "holds-3-gone"}
    namespace: dict = {}
    exec(checks["loans-7"].code, namespace)
    assert namespace["check"]({}, {"loans": [{"id": 7, "status": "returned"}]}) is True
    assert namespace["check"]({}, {"loans": [{"id": 7, "status": "active"}]}) is False


def test_an_env_without_synth_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shutil.copytree(
        FIXTURE_ENVS / "notes", tmp_path / "plain", ignore=shutil.ignore_patterns("__pycache__", "synth.py")
    )
    monkeypatch.setattr(envfarm.servers, "__path__", [*envfarm.servers.__path__, str(tmp_path)])
    env = load_environment("plain", check_manifest=False)
    with pytest.raises(ValueError, match="'plain' has no synth.py, so it cannot make procedural scenarios"):
        load_steps(env)


def test_cli_writes_gated_scenarios_into_the_package(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE_ENVS / "notes", tmp_path / "jotter", ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "ENVFARM_ENV_PATH": str(tmp_path)}
    manifest = json.loads((tmp_path / "jotter" / "manifest.json").read_text())
    (tmp_path / "jotter" / "manifest.json").write_text(json.dumps({**manifest, "id": "jotter"}))
    subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "manifest", "jotter", "--write"], env=env, check=True, capture_output=True
    )
    run = subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "scenarios", "synth", "jotter", "--count", "3", "--seed", "4"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    written = sorted(p.name for p in (tmp_path / "jotter" / "scenarios").glob("synth-*.json"))
    assert written == ["synth-4-001.json", "synth-4-002.json", "synth-4-003.json"]
    check = subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "check", "jotter"], env=env, capture_output=True, text=True, timeout=300
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "jotter" in check.stdout and "4 " in check.stdout
