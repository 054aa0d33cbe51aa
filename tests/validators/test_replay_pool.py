"""Replays in worker processes give what replays in the service process give, on every core."""

from __future__ import annotations

import os
import signal

import pytest

from envfarm.core.environments import load_environment
from envfarm.core.scenarios import Call
from envfarm.validators.gate import _mutants
from envfarm.validators.replay import Replay, replay
from envfarm.validators.replay_pool import ReplayPool


def same(a: Replay, b: Replay) -> None:
    assert [(r.tool, r.ok, r.value, r.error, r.rule, r.crashed, r.arguments) for r in a.results] == [
        (r.tool, r.ok, r.value, r.error, r.rule, r.crashed, r.arguments) for r in b.results
    ]
    assert a.final == b.final
    assert list(a.final) == list(b.final)
    assert a.final_state_hash == b.final_state_hash
    assert a.changes == b.changes
    assert a.initial is b.initial


@pytest.fixture
async def pool():  # type: ignore[no-untyped-def]
    replayer = ReplayPool(2)
    yield replayer
    await replayer.close()


@pytest.mark.parametrize("env_id", ["library", "bank", "tau2_retail"])
async def test_replays_in_workers_match_replays_here(pool: ReplayPool, env_id: str) -> None:
    """Oracles and their mutants (failed calls, other arguments, dropped calls), small states read
    whole and tau2's large one tracked and sent back as splices."""
    env = load_environment(env_id)
    before = pool.in_process
    for scenario in list(env.scenarios.values())[:3]:
        runs = [
            list(scenario.oracle),
            *(calls for _, calls in _mutants(env.tools, scenario, env.initial_view(scenario.id))[:6]),
        ]
        for calls in runs:
            same(await pool.replay(env, scenario, calls), replay(env, scenario, calls))
    assert pool.in_process == before  # every one ran in a worker


async def test_a_scenario_made_at_run_time_is_sent_to_the_workers(pool: ReplayPool) -> None:
    env = load_environment("notes")
    base = env.scenarios["file-two"]
    made = base.model_copy(update={"id": "made-at-run-time"})
    env.add_scenario(made)
    changed = base.model_copy(update={"seed": (base.seed or 0) + 1})  # same id as a bundled one, other content
    before = pool.in_process
    for scenario in (made, changed, base, made):
        same(await pool.replay(env, scenario, list(base.oracle)), replay(env, scenario, list(base.oracle)))
    assert pool.in_process == before


async def test_an_environment_the_workers_cannot_load_is_replayed_here(pool: ReplayPool) -> None:
    env = load_environment("notes")
    env.version = "not-the-one-on-disk"
    scenario = env.scenarios["file-two"]
    same(await pool.replay(env, scenario, list(scenario.oracle)), replay(env, scenario, list(scenario.oracle)))
    assert pool.in_process == 1


async def test_a_lost_worker_is_replaced_and_the_replay_done_here() -> None:
    env = load_environment("library")
    scenario = env.scenarios["return-and-pay"]
    calls = [Call(tool=c.tool, arguments=c.arguments) for c in scenario.oracle]
    replayer = ReplayPool(1)
    try:
        same(await replayer.replay(env, scenario, calls), replay(env, scenario, calls))
        assert replayer._executor is not None
        for process in list(replayer._executor._processes.values()):  # type: ignore[union-attr]
            os.kill(process.pid, signal.SIGKILL)
        same(await replayer.replay(env, scenario, calls), replay(env, scenario, calls))  # done here
        same(await replayer.replay(env, scenario, calls), replay(env, scenario, calls))  # a new worker
        assert replayer.in_process == 1
    finally:
        await replayer.close()
