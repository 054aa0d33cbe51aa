"""Scenarios (EnvScaler's ScenGenerator): the LLM writes them, execution and the quality gate judge them.

For each scenario the LLM proposes an initial state, a task, a checklist, check
functions and an oracle. The state is built through the models (types, required
columns, foreign keys) and must keep every rule invariant; the oracle is
executed; the checks run in the sandbox; and the scenario must pass the same
quality gate as authored ones (``envfarm check``). Whatever fails goes back to
the LLM with the reason; after the repairs it is rejected, never written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from envfarm.core.environments import Environment
from envfarm.core.episodes import Episode
from envfarm.core.scenarios import Scenario, build_database
from envfarm.validators.gate import gate_scenario
from envfarm.validators.scoring import CheckRunner

from . import prompts, schemas
from .asking import Asker, Problem, Rejected, Tally
from .probe import broken_invariants, timed_call
from .skeletons import Skeleton, parse_clock


@dataclass
class ScenarioOutcome:
    """One scenario asked for: accepted (with what it cost) or rejected with the reasons."""

    index: int
    scenario: Scenario | None = None
    reasons: list[str] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)


async def write_scenarios_for(
    asker: Asker, skeleton: Skeleton, env: Environment, count: int, runner: CheckRunner
) -> list[ScenarioOutcome]:
    """Ask for ``count`` scenarios one after the other (each prompt lists the tasks already written)."""
    models_py = (env.path / "models.py").read_text(encoding="utf-8")
    manifest = env.manifest()
    outcomes: list[ScenarioOutcome] = []
    done: list[str] = []
    for index in range(1, count + 1):
        outcome = ScenarioOutcome(index)

        async def accept(data: dict[str, Any]) -> Scenario:
            return await check_scenario(data, env, skeleton.invariants, runner)

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
        else:
            outcome.scenario = scenario
            done.append(scenario.task)
        outcomes.append(outcome)
    return outcomes


async def check_scenario(
    data: dict[str, Any], env: Environment, invariants: dict[str, str], runner: CheckRunner
) -> Scenario:
    """Build, execute and gate one proposed scenario; it is registered on ``env`` only if it passes."""
    sid = _free_id(data["id"], env)
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
        if check.code is None:
            problems.append(f"checks[{i}] ({check.id}): a generated check is code: give 'code'")
            continue
        try:
            compile(check.code, check.id, "exec")
        except SyntaxError as e:
            problems.append(f"checks[{i}] ({check.id}): does not compile: line {e.lineno}: {e.msg}")
    for i, call in enumerate(scenario.oracle):
        spec = env.tools.get(call.tool)
        if spec is None:
            problems.append(f"oracle[{i}]: unknown tool {call.tool!r}; tools are {sorted(env.tools)}")
        elif (error := next(iter(spec.validator.iter_errors(call.arguments)), None)) is not None:
            problems.append(f"oracle[{i}] ({call.tool}): invalid arguments: {error.message}")
    try:
        build_database(env.metadata, env.models, data["state"], "state")
    except ValueError as e:
        problems.append(str(e))
    if problems:
        raise Problem("\n".join(f"- {p}" for p in problems))
    env.add_scenario(scenario)
    try:
        _run_oracle_with_time_limits(env, scenario)
        broken = [
            rule for rule, error in await broken_invariants(runner, invariants, env.initial_view(sid)) if not error
        ]
        if broken:
            raise Problem(f"- the state breaks rule(s) {broken}: their invariants are false on it")
        report = await gate_scenario(env, scenario, runner)
        if not report.passed:
            raise Problem("The quality gate refused it:\n" + "\n".join(f"- {r}" for r in report.reasons))
    except BaseException:
        env.remove_scenario(sid)
        raise
    scenario.gate = report.numbers
    return scenario


def _run_oracle_with_time_limits(env: Environment, scenario: Scenario) -> None:
    """Run the oracle once with per-call time limits, so a generated tool that never returns on this
    path is a problem sent back, not a hung gate (the gate itself replays without them)."""
    episode = Episode(env, scenario, "oracle-check", scenario.seed)
    try:
        for i, call in enumerate(scenario.oracle):
            result = timed_call(episode, call.tool, call.arguments)
            if result.crashed:
                raise Problem(f"- oracle step {i} ({call.tool}) crashes the tool: {result.error}")
    finally:
        episode.close()


def _free_id(wanted: str, env: Environment) -> str:
    """``wanted``, or ``wanted-2``, ``-3`` ... when the environment already has a scenario by that id."""
    sid, n = wanted, 1
    while sid in env.scenarios:
        n += 1
        sid = f"{wanted[:60]}-{n}"
    return sid
