"""Checks that need no code: the oracle's final state, and what the agent said."""

from __future__ import annotations

import pytest

from envfarm.core.environments import load_environment
from envfarm.core.scenarios import Check
from envfarm.validators.replay import replay
from envfarm.validators.sandbox import SandboxPool
from envfarm.validators.scoring import said, score


def test_said_matches_as_tau2_does() -> None:
    messages = [
        {"role": "user", "content": "I'll pay 1,234"},
        {"role": "assistant", "content": "Your refund is $1,234.50, Mr. Rossi."},
        {"role": "assistant", "content": None},
    ]
    assert said("$1234.50", messages)  # commas in the message are ignored
    assert said("MR. ROSSI", messages)  # case is ignored
    assert not said("1,234", [{"role": "user", "content": "1,234"}])  # only the agent's words count
    assert not said("refund", [])


@pytest.fixture(scope="module")
def notes_with_kinds():  # type: ignore[no-untyped-def]
    notes = load_environment("notes")
    base = notes.scenarios["file-two"]
    scenario = base.model_copy(
        update={
            "id": "kinds",
            "checks": [
                *base.checks,
                Check(id="same-as-oracle", description="ends where the oracle ends", kind="oracle_state"),
                Check(id="told", description="says both are filed", kind="said", text="both notes are filed"),
            ],
        }
    )
    notes.add_scenario(scenario)
    yield notes, scenario
    notes.remove_scenario(scenario.id)


async def test_oracle_state_and_said_checks_are_scored(notes_with_kinds) -> None:  # type: ignore[no-untyped-def]
    env, scenario = notes_with_kinds
    async with SandboxPool(1) as pool:
        solved = await score(
            env,
            scenario,
            replay(env, scenario, scenario.oracle),
            pool,
            messages=[{"role": "assistant", "content": "Done: both notes are filed in work."}],
        )
        assert solved.reward == 1.0 and solved.success
        half = await score(env, scenario, replay(env, scenario, scenario.oracle[:2]), pool)
    verdicts = {c.id: c.passed for c in half.checks}
    assert verdicts == {"standup": True, "retro": False, "same-as-oracle": False, "told": False}
    assert not half.success
