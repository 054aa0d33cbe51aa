"""Scenarios (EnvScaler's ScenGenerator): the LLM writes them, execution and the quality gate judge them.

For each scenario the LLM proposes an initial state, a task, a checklist, check
functions and an oracle. The state is built through the models (types, required
columns, foreign keys) and must keep every rule invariant; the oracle is
executed; the checks run in the sandbox; and the scenario must pass the same
quality gate as authored ones (``envfarm check``). Whatever fails goes back to
the LLM with the reason; after the repairs it is rejected, never written.

Building the state, running the oracle and the gate's replays all happen in the
environment's contained worker (:class:`~envfarm.generator.contained.ContainedEnv`,
the gate's ``Replayer``); checks and invariants run in the check sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from envfarm.core.scenarios import Scenario
from envfarm.validators.gate import gate_scenario
from envfarm.validators.scoring import CheckRunner

from . import prompts, schemas
from .asking import Asker, Problem, Rejected, Tally
from .contained import ContainedEnv, ContainedError, RunnerUnavailable, StateError
from .probe import broken_invariants
from .skeletons import Skeleton, parse_clock


@dataclass
class ScenarioOutcome:
    """One scenario asked for: accepted (with what it cost) or rejected with the reasons."""

    index: int
    scenario: Scenario | None = None
    reasons: list[str] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    rejected: dict[str, Any] = field(default_factory=dict)  # what was asked and each answer, when rejected


async def write_scenarios_for(
    asker: Asker, skeleton: Skeleton, env: ContainedEnv, count: int, runner: CheckRunner
) -> list[ScenarioOutcome]:
    """Ask for ``count`` scenarios one after the other (each prompt lists the tasks already written)."""
    models_py = (env.path / "models.py").read_text(encoding="utf-8")
    manifest = env.manifest()
    outcomes: list[ScenarioOutcome] = []
    done: list[str] = []
    taken: set[str] = set()
    for index in range(1, count + 1):
        outcome = ScenarioOutcome(index)

        async def accept(data: dict[str, Any]) -> Scenario:
            return await check_scenario(data, env, skeleton.invariants, runner, taken)

        try:
            scenario: Scenario = await asker.ask(
                outcome.tally,
                stage="scenario",
                system=prompts.SCENARIO_SYSTEM,
                prompt=prompts.scenario_prompt(env.id, manifest, models_py, skeleton.sample, index, count, done),
                schema=schemas.SCENARIO,
                schema_name="submit_scenario",
                accept=accept,
            )
        except Rejected as e:
            outcome.reasons = e.problems
            outcome.rejected = e.as_dict()
        else:
            outcome.scenario = scenario
            done.append(scenario.task)
            taken.add(scenario.id)
        outcomes.append(outcome)
    return outcomes


async def check_scenario(
    data: dict[str, Any],
    env: ContainedEnv,
    invariants: dict[str, str],
    runner: CheckRunner,
    taken: set[str] | None = None,
) -> Scenario:
    """Build, execute and gate one proposed scenario (``taken``: ids of the scenarios accepted so far)."""
    sid = _free_id(data["id"], taken or set())
    try:
        scenario = Scenario.model_validate(
            {
                "id": sid,
                "task": data["task"],
                "state": data["state"],
                "clock": parse_clock(data["clock"]),
                "checks": data["checks"],
                "oracle": data["oracle"],
            }
        )
    except ValidationError as e:
        raise Problem(str(e)) from None
    problems: list[str] = []
    for i, check in enumerate(scenario.checks):
        try:
            compile(check.code or "", check.id, "exec")  # compiled only, never run here
        except SyntaxError as e:
            problems.append(f"checks[{i}] ({check.id}): does not compile: line {e.lineno}: {e.msg}")
    try:
        argument_errors = await env.check_calls(scenario.oracle)
        episode = await env.episode(data["state"], scenario.clock.isoformat(), scenario.seed)
    except StateError as e:
        problems.append(str(e))
        episode = None
    except RunnerUnavailable:
        raise
    except ContainedError as e:
        raise Problem(f"- running the environment failed: {e}") from None
    for i, (call, error) in enumerate(zip(scenario.oracle, argument_errors, strict=True)):
        if call.tool not in env.tools:
            problems.append(f"oracle[{i}]: unknown tool {call.tool!r}; tools are {sorted(env.tools)}")
        elif error is not None:
            problems.append(f"oracle[{i}] ({call.tool}): invalid arguments: {error}")
    if problems or episode is None:
        if episode is not None:
            await episode.close()
        raise Problem("\n".join(f"- {p}" for p in problems))
    try:
        initial = episode.initial
        for i, call in enumerate(scenario.oracle):  # each call under the runner's time limit
            result = (await episode.call(call.tool, call.arguments)).result
            if result.crashed:
                raise Problem(f"- oracle step {i} ({call.tool}) crashes the tool: {result.error}")
        await episode.close()
        broken = [rule for rule, error in await broken_invariants(runner, invariants, initial) if not error]
        if broken:
            raise Problem(f"- the state breaks rule(s) {broken}: their invariants are false on it")
        report = await gate_scenario(env, scenario, runner)
    except (ContainedError, StateError) as e:
        if isinstance(e, RunnerUnavailable):
            raise
        raise Problem(f"- running the environment failed: {e}") from None
    finally:
        await episode.close()
    if not report.passed:
        raise Problem("The quality gate refused it:\n" + "\n".join(f"- {r}" for r in report.reasons))
    scenario.gate = report.numbers
    return scenario


def _free_id(wanted: str, taken: set[str]) -> str:
    """``wanted``, or ``wanted-2``, ``-3`` ... when a scenario of the environment already has that id."""
    sid, n = wanted, 1
    while sid in taken:
        n += 1
        sid = f"{wanted[:60]}-{n}"
    return sid
