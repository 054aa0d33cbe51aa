"""Replay in worker processes, so scoring uses every core for replay as well as for checks.

Replay runs the environment's tools, which is most of a trajectory's scoring time; in the
service process it leaves the other cores to the check sandbox alone. :class:`ReplayPool`
runs :func:`envfarm.validators.replay.replay` in a pool of processes instead (``spawn``ed,
each loading the environments it is asked for once, by id). Environment code is trusted
(bundled or published packages, the same the service loads); check code never runs here.

A worker sends back the call results, the final state hash and diff, and of the final view
only the tables that differ from the scenario's initial view, as the rows that differ where
it shares most rows with it (:func:`envfarm.validators.sandbox.protocol.splices`): the
service rebuilds the view on its own initial view, so unchanged tables are the initial's own
lists, as in-process replay leaves them. A scenario a worker does not have in the same form
(made at run time, as the generator's are) is sent to it once. An environment the workers
cannot load in the service's version (one given to the service by other means), or a worker
that dies, is replayed in the service process: the result is the same either way.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from envfarm.core.cache import ByIdentity
from envfarm.core.environments import Environment, load_environment
from envfarm.core.scenarios import Call, Scenario
from envfarm.core.state import StateView
from envfarm.validators.replay import Replay, replay
from envfarm.validators.sandbox.pool import usable_cpus
from envfarm.validators.sandbox.protocol import apply_splices, splices

Tables = dict[str, tuple[str, Any]]  # table -> ("rows", rows) | ("splices", splices)


class ReplayPool:
    """``workers`` replay processes; :meth:`replay` is :func:`replay`, run in one of them."""

    def __init__(self, workers: int | None = None) -> None:
        if workers is None:
            workers = usable_cpus()
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.size = workers
        self._executor: ProcessPoolExecutor | None = None
        self.in_process = 0  # replays done here instead (environment not in the workers, or a worker lost)
        self._prints: ByIdentity[str] = ByIdentity(10_000)

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.size, mp_context=multiprocessing.get_context("spawn"))
        return self._executor

    async def replay(
        self, env: Environment, scenario: Scenario, calls: Sequence[Call], seed: int | None = None
    ) -> Replay:
        loop = asyncio.get_running_loop()
        ask = functools.partial(
            _replay_here, env.id, env.version, self._prints.get(scenario, lambda: fingerprint(scenario))
        )
        executor = self._pool()
        try:
            answer = await loop.run_in_executor(executor, ask, scenario.id, list(calls), seed)
            if answer == NEEDS_SCENARIO:  # a scenario the worker does not have (yet) in this form
                answer = await loop.run_in_executor(executor, ask, scenario, list(calls), seed)
        except BrokenProcessPool:  # a worker died (a tool that crashed its process): start afresh
            if self._executor is executor:  # not one that another request started since
                self._executor = None
                executor.shutdown(wait=False, cancel_futures=True)
            answer = None
        if not isinstance(answer, tuple):
            self.in_process += 1
            return replay(env, scenario, calls, seed)
        results, tables, final_hash, changes = answer
        initial = env.initial_view(scenario.id)
        return Replay(results, initial, rebuild(initial, tables), final_hash, changes, env.keys())

    async def close(self) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, True, cancel_futures=True)


def fingerprint(scenario: Scenario) -> str:
    """What a worker's scenario of the same id must match (a run-time scenario may reuse an id)."""
    return hashlib.sha256(scenario.model_dump_json().encode()).hexdigest()


def rebuild(initial: StateView, tables: Tables) -> StateView:
    """The final view from the scenario's initial view and what a worker sent of it."""
    final = dict(initial)
    for table, (kind, data) in tables.items():
        final[table] = data if kind == "rows" else apply_splices(initial[table], data)
    return final


# --- in the worker process ------------------------------------------------------------------------

_envs: dict[str, Environment] = {}
_fingerprints: dict[tuple[str, str], str] = {}


NEEDS_SCENARIO = "needs the scenario"


def _replay_here(
    env_id: str, version: str, scenario_print: str, wanted: str | Scenario, calls: list[Call], seed: int | None
) -> tuple[list[Any], Tables, str, dict[str, Any]] | str | None:
    """Replay in this worker: ``wanted`` is a scenario id, or the scenario itself when this worker's
    environment has none of that id in this form (:data:`NEEDS_SCENARIO`, the service then sends
    it). None when this worker cannot load the service's version of the environment."""
    env = _envs.get(env_id)
    if env is None:
        try:
            env = _envs[env_id] = load_environment(env_id)
        except Exception:  # noqa: BLE001 - not loadable here: the service replays it itself
            return None
    if env.version != version:
        return None
    if isinstance(wanted, Scenario):
        if _fingerprints.get((env_id, wanted.id)) != scenario_print or wanted.id not in env.scenarios:
            env.add_scenario(wanted)  # its state is built on first use, then kept
            _fingerprints[(env_id, wanted.id)] = scenario_print
        wanted = wanted.id  # (sent again by requests that asked before it came: nothing to redo)
    scenario = env.scenarios.get(wanted)
    if scenario is None:
        return NEEDS_SCENARIO
    known = _fingerprints.get((env_id, wanted))
    if known is None:
        known = _fingerprints[(env_id, wanted)] = fingerprint(scenario)
    if known != scenario_print:
        return NEEDS_SCENARIO
    done = replay(env, scenario, calls, seed)
    tables: Tables = {}
    for table, rows in done.final.items():
        if table not in done.changes:  # equal to the initial table (the diff says so)
            continue
        before = done.initial.get(table)
        found = splices(before, rows) if isinstance(before, list) else None
        tables[table] = ("rows", rows) if found is None else ("splices", found)
    return done.results, tables, done.final_state_hash, done.changes
