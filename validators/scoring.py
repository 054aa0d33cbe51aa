"""Scoring: the checks of a scenario over a replayed (or live) episode, as a reward.

``reward`` is the fraction of checks passed (EnvScaler's definition);
``success`` needs every check passed and no collateral change (a row changed
that the scenario's oracle never changes). Checks run in the sandbox, never in
the calling process.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from envfarm.core.environments import Environment
from envfarm.core.scenarios import Scenario
from envfarm.core.state import StateView
from envfarm.serve import metrics
from envfarm.validators.checks import CheckOutcome
from envfarm.validators.replay import Replay, collateral


class CheckRunner(Protocol):
    """Runs all checks of one trajectory as one job (the sandbox pool is one)."""

    async def run_checks(
        self, checks: list[tuple[str, str]], initial: StateView, final: StateView
    ) -> list[CheckOutcome]: ...


class CheckResult(BaseModel):
    id: str
    description: str
    passed: bool
    error: str | None = Field(None, description="why the check could not run (raised, timed out, not a bool ...)")
    preserve: bool = Field(False, description="a check that held at the start and had to keep holding")


class ScoreResponse(BaseModel):
    env: str
    scenario: str
    reward: float = Field(description="fraction of checks passed")
    success: bool = Field(description="every check passed and no collateral change")
    checks: list[CheckResult]
    collateral: list[dict[str, Any]] = Field(description="rows changed that the scenario's oracle never changes")
    calls: list[dict[str, Any]] = Field(description="the replayed calls with their results")
    final_state_hash: str


async def score(
    env: Environment, scenario: Scenario, done: Replay, runner: CheckRunner, kind: str = "replay"
) -> ScoreResponse:
    """Judge a replayed (``kind="replay"``) or live (``"live"``) episode against the scenario's checks."""
    outcomes = await runner.run_checks([(c.id, c.code) for c in scenario.checks], done.initial, done.final)
    checks = [
        CheckResult(id=c.id, description=c.description, passed=o.passed, error=o.error, preserve=c.preserve)
        for c, o in zip(scenario.checks, outcomes, strict=True)
    ]
    passed = sum(c.passed for c in checks)
    metrics.SCORES.labels(env.id, kind).inc()
    side_effects = collateral(env, scenario, done)
    return ScoreResponse(
        env=env.id,
        scenario=scenario.id,
        reward=round(passed / len(checks), 6),
        success=passed == len(checks) and not side_effects,
        checks=checks,
        collateral=side_effects,
        calls=[r.as_dict() for r in done.results],
        final_state_hash=done.final_state_hash,
    )
