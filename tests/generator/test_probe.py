"""The programmatic probes find what a generated environment must never do, and a tool that never returns.

The environments run in contained workers (real processes), as in a generator run.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from envfarm.generator.contained import ContainedEnv, RunnerLimits
from envfarm.generator.packages import write_skeleton
from envfarm.generator.probe import probe
from envfarm.validators.sandbox import SandboxPool
from tests.generator.recording import CLOCK, DESIGN, MODELS_PY, STATE_ROWS, TOOLS_PY

INVARIANTS = {r["id"]: r["invariant"] for r in DESIGN["rules"] if r.get("invariant")}
QUICK = RunnerLimits(call_seconds=0.5, grace_seconds=2.0)


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(workers=1) as sandbox:
        yield sandbox


async def build(tmp_path: Path, tools_py: str, name: str, limits: RunnerLimits | None = None) -> ContainedEnv:
    assert tools_py != TOOLS_PY, "the variant must differ from the recorded code"
    path = write_skeleton(tmp_path, name, "Fitness", "Probe test.", {"r": "r"}, MODELS_PY, tools_py)
    return await ContainedEnv.start(path, limits=limits)


async def test_the_recorded_environment_has_nothing_to_report(tmp_path: Path, pool: SandboxPool) -> None:
    path = write_skeleton(tmp_path, "probe_ok", "Fitness", "Probe test.", {"r": "r"}, MODELS_PY, TOOLS_PY)
    async with await ContainedEnv.start(path) as env:
        report = await probe(env, STATE_ROWS, CLOCK, INVARIANTS, pool, seed=1)
    assert report.problems == []
    assert report.calls == 72 and report.succeeded > 0 and report.refused > 0 and report.mutations_checked > 0
    assert "envfarm.servers.probe_ok" not in sys.modules  # imported by the worker only, never here


async def test_a_crash_on_odd_input_is_found(tmp_path: Path, pool: SandboxPool) -> None:
    crashing = TOOLS_PY.replace(
        "    return _member(ctx, name)\n",
        '    return dict(ctx.one("SELECT id, name, credits FROM members WHERE name = ?", (name,)))\n',
    )
    async with await build(tmp_path, crashing, "probe_crash") as env:
        report = await probe(env, STATE_ROWS, CLOCK, INVARIANTS, pool, seed=1)
    assert any(p.startswith("find_member(") and "crashed" in p and "TypeError" in p for p in report.problems)


async def test_a_query_that_writes_is_found(tmp_path: Path, pool: SandboxPool) -> None:
    writing = TOOLS_PY.replace(
        "    return _member(ctx, name)\n",
        '    ctx.execute("UPDATE members SET credits = credits + 1")\n    return _member(ctx, name)\n',
    )
    async with await build(tmp_path, writing, "probe_write") as env:
        report = await probe(env, STATE_ROWS, CLOCK, INVARIANTS, pool, seed=1)
    assert any("find_member(" in p and "is a query but changed the state" in p for p in report.query_changes)


async def test_a_mutation_that_breaks_a_rule_is_found(tmp_path: Path, pool: SandboxPool) -> None:
    no_capacity_check = TOOLS_PY.replace('    if taken >= found["capacity"]:\n', "    if False:\n")
    tiny = {**STATE_ROWS, "classes": [{**c, "capacity": 1} for c in STATE_ROWS["classes"]]}
    tiny["members"] = [{**m, "credits": 50} for m in STATE_ROWS["members"]]
    tiny["bookings"] = []
    async with await build(tmp_path, no_capacity_check, "probe_rule") as env:
        report = await probe(env, tiny, CLOCK, INVARIANTS, pool, seed=1, calls_per_tool=20)
    assert any("rule 'capacity' no longer holds" in p and "book_class(" in p for p in report.invariant_breaks)


async def test_a_generated_tool_that_never_returns_is_a_crash_not_a_hang(tmp_path: Path) -> None:
    looping = TOOLS_PY.replace("    return _member(ctx, name)\n", "    while True:\n        pass\n")
    async with await build(tmp_path, looping, "probe_loop", QUICK) as env:
        episode = await env.episode(STATE_ROWS, CLOCK)
        result = (await episode.call("find_member", {"name": "Maya Chen"})).result
        assert result.crashed and "ToolTimeout" in (result.error or "") and "endless loop" in (result.error or "")
        assert (await episode.call("find_classes", {"city": "New York"})).result.ok  # the episode goes on


async def test_an_oracle_through_a_tool_that_never_returns_is_sent_back(tmp_path: Path, pool: SandboxPool) -> None:
    from envfarm.generator.asking import Problem
    from envfarm.generator.scenarios import check_scenario
    from tests.generator.recording import SCENARIO_1

    mine = "    mine = \"SELECT 1 FROM bookings WHERE class_id = ? AND member_id = ? AND status = 'booked'\"\n"
    looping = TOOLS_PY.replace(mine, "    while True:\n        pass\n")  # in book_class only
    async with await build(tmp_path, looping, "probe_oracle_loop", QUICK) as env:
        with pytest.raises(Problem, match=r"oracle step 1 \(book_class\) crashes the tool: .*ToolTimeout"):
            await check_scenario(SCENARIO_1, env, INVARIANTS, pool)
