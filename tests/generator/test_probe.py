"""The programmatic probes find what a generated environment must never do, and a tool that never returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from envfarm.core.environments import Environment
from envfarm.core.episodes import Episode
from envfarm.generator.packages import load, write_skeleton
from envfarm.generator.probe import probe, scratch_scenario, timed_call
from envfarm.validators.sandbox import SandboxPool
from tests.generator.recording import CLOCK, DESIGN, MODELS_PY, STATE_ROWS, TOOLS_PY

INVARIANTS = {r["id"]: r["invariant"] for r in DESIGN["rules"] if r.get("invariant")}


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(workers=1) as sandbox:
        yield sandbox


def build(tmp_path: Path, tools_py: str, name: str) -> Environment:
    assert tools_py != TOOLS_PY, "the variant must differ from the recorded code"
    path = write_skeleton(tmp_path, name, "Fitness", "Probe test.", {"r": "r"}, MODELS_PY, tools_py)
    return load(path, with_scenarios=False)


async def test_the_recorded_environment_has_nothing_to_report(tmp_path: Path, pool: SandboxPool) -> None:
    path = write_skeleton(tmp_path, "probe_ok", "Fitness", "Probe test.", {"r": "r"}, MODELS_PY, TOOLS_PY)
    report = await probe(load(path, with_scenarios=False), STATE_ROWS, CLOCK, INVARIANTS, pool, seed=1)
    assert report.problems == []
    assert report.calls == 72 and report.succeeded > 0 and report.refused > 0 and report.mutations_checked > 0


async def test_a_crash_on_odd_input_is_found(tmp_path: Path, pool: SandboxPool) -> None:
    crashing = TOOLS_PY.replace(
        "    return _member(ctx, name)\n",
        '    return dict(ctx.one("SELECT id, name, credits FROM members WHERE name = ?", (name,)))\n',
    )
    report = await probe(build(tmp_path, crashing, "probe_crash"), STATE_ROWS, CLOCK, INVARIANTS, pool, seed=1)
    assert any(p.startswith("find_member(") and "crashed" in p and "TypeError" in p for p in report.problems)


async def test_a_query_that_writes_is_found(tmp_path: Path, pool: SandboxPool) -> None:
    writing = TOOLS_PY.replace(
        "    return _member(ctx, name)\n",
        '    ctx.execute("UPDATE members SET credits = credits + 1")\n    return _member(ctx, name)\n',
    )
    report = await probe(build(tmp_path, writing, "probe_write"), STATE_ROWS, CLOCK, INVARIANTS, pool, seed=1)
    assert any("find_member(" in p and "is a query but changed the state" in p for p in report.query_changes)


async def test_a_mutation_that_breaks_a_rule_is_found(tmp_path: Path, pool: SandboxPool) -> None:
    no_capacity_check = TOOLS_PY.replace('    if taken >= found["capacity"]:\n', "    if False:\n")
    env = build(tmp_path, no_capacity_check, "probe_rule")
    tiny = {**STATE_ROWS, "classes": [{**c, "capacity": 1} for c in STATE_ROWS["classes"]]}
    tiny["members"] = [{**m, "credits": 50} for m in STATE_ROWS["members"]]
    tiny["bookings"] = []
    report = await probe(env, tiny, CLOCK, INVARIANTS, pool, seed=1, calls_per_tool=20)
    assert any("rule 'capacity' no longer holds" in p and "book_class(" in p for p in report.invariant_breaks)


def test_a_generated_tool_that_never_returns_is_a_crash_not_a_hang(tmp_path: Path) -> None:
    looping = TOOLS_PY.replace("    return _member(ctx, name)\n", "    while True:\n        pass\n")
    env = build(tmp_path, looping, "probe_loop")
    episode = Episode(env, scratch_scenario(env, STATE_ROWS, CLOCK, "loop"), "loop")
    result = timed_call(episode, "find_member", {"name": "Maya Chen"}, seconds=0.2)
    assert result.crashed and "ToolTimeout" in (result.error or "") and "endless loop" in (result.error or "")
    assert timed_call(episode, "find_classes", {"city": "New York"}).ok  # the episode goes on


async def test_an_oracle_through_a_tool_that_never_returns_is_sent_back(
    tmp_path: Path, pool: SandboxPool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from envfarm.generator import probe as probe_module
    from envfarm.generator.asking import Problem
    from envfarm.generator.scenarios import check_scenario
    from tests.generator.recording import SCENARIO_1

    monkeypatch.setattr(probe_module, "CALL_SECONDS", 0.2)
    mine = "    mine = \"SELECT 1 FROM bookings WHERE class_id = ? AND member_id = ? AND status = 'booked'\"\n"
    looping = TOOLS_PY.replace(mine, "    while True:\n        pass\n")  # in book_class only
    env = build(tmp_path, looping, "probe_oracle_loop")
    with pytest.raises(Problem, match=r"oracle step 1 \(book_class\) crashes the tool: .*ToolTimeout"):
        await check_scenario(SCENARIO_1, env, INVARIANTS, pool)
    assert "morning-yoga-brooklyn" not in env.scenarios  # a refused scenario is not kept
