"""Scoring: the checks of a scenario over a replayed (or live) episode, as a reward.

``reward`` is the fraction of checks passed (EnvScaler's definition);
``success`` needs every check passed and no collateral change (a row changed
that the scenario's oracle never changes). Code checks run in the sandbox, never
in the calling process; ``oracle_state`` and ``said`` checks need no code
(:mod:`envfarm.core.scenarios` describes the kinds).
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

from envfarm.core.environments import Environment
from envfarm.core.scenarios import Scenario
from envfarm.core.state import StateView, state_hash
from envfarm.serve import metrics
from envfarm.serve.inputs import tidy
from envfarm.validators.checks import CheckOutcome
from envfarm.validators.replay import Replay, collateral, oracle_footprint

Messages = list[dict[str, Any]]
"""What was said in a conversation, oldest first: ``{"role": "assistant" | "user" ..., "content": text}``."""


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


def said(text: str, messages: Messages) -> bool:
    """Whether the agent told the user ``text``: within one of its messages, ignoring case and commas
    (tau2-bench's rule for ``communicate_info``, so rewards match tau2's)."""
    wanted = text.lower()
    return any(
        m.get("role") == "assistant"
        and isinstance(m.get("content"), str)
        and wanted in m["content"].lower().replace(",", "")
        for m in messages
    )


async def judge(
    env: Environment | None,
    scenario: Scenario,
    initial: StateView,
    final: StateView,
    runner: CheckRunner,
    messages: Messages | None = None,
    final_hash: str | None = None,
    oracle_hash: str | None = None,
) -> list[CheckOutcome]:
    """Every check of the scenario on these states (and messages), in the scenario's order.

    Code checks run as one sandbox job; ``oracle_state`` compares the final state with the
    oracle's (``final_hash`` saves hashing ``final`` again; ``oracle_hash``, when the caller has
    replayed the oracle already, saves replaying it here: the gate passes it, and then ``env`` may
    be None, as for the generator's candidates, whose code never runs in this process); ``said``
    reads the messages.
    """
    code = [(c.id, c.code) for c in scenario.checks if c.kind == "state" and c.code is not None]
    ran = {o.id: o for o in await runner.run_checks(code, initial, final)} if code else {}
    outcomes = []
    for check in scenario.checks:
        if check.kind == "oracle_state":
            if oracle_hash is None and env is None:
                raise ValueError("judging an oracle_state check needs the environment or the oracle's final state hash")
            expected = oracle_hash if oracle_hash is not None else oracle_footprint(env, scenario).final_state_hash
            outcomes.append(CheckOutcome(check.id, (final_hash or state_hash(final)) == expected))
        elif check.kind == "said":
            outcomes.append(CheckOutcome(check.id, said(check.text or "", messages or [])))
        else:
            outcomes.append(ran[check.id])
    return outcomes


async def score(
    env: Environment,
    scenario: Scenario,
    done: Replay,
    runner: CheckRunner,
    kind: str = "replay",
    messages: Messages | None = None,
) -> ScoreResponse:
    """Judge a replayed (``kind="replay"``) or live (``"live"``) episode against the scenario's checks."""
    outcomes = await judge(env, scenario, done.initial, done.final, runner, messages, done.final_state_hash)
    checks = [
        # A check's error is text from untrusted check code: escaped (a lone surrogate cannot be encoded) and bounded.
        CheckResult(
            id=c.id, description=c.description, passed=o.passed, error=o.error and tidy(o.error), preserve=c.preserve
        )
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
