"""The quality gate accepts a well-verified scenario and rejects each kind of wrong reward, saying why."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from envfarm.core.environments import Environment, load_environment
from envfarm.core.scenarios import Call, Check, Scenario
from envfarm.validators.gate import alternatives, gate_scenario
from envfarm.validators.sandbox import SandboxPool


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(1) as running:
        yield running


def variant(env: Environment, **changes: Any) -> Scenario:
    """The notes fixture's scenario with some fields changed, registered in ``env``."""
    base = env.scenarios["file-two"]
    scenario = base.model_copy(update={"id": f"variant-{len(env.scenarios)}", **changes})
    env.scenarios[scenario.id] = scenario
    return scenario


def check(check_id: str, body: str, preserve: bool = False) -> Check:
    return Check(
        id=check_id, description=check_id, code=f"def check(initial, final):\n    return {body}\n", preserve=preserve
    )


STANDUP = "any(n['title'] == 'standup' and n['folder_id'] == 1 for n in final['notes'])"
RETRO = "any(n['title'] == 'retro' and n['folder_id'] == 1 for n in final['notes'])"


async def test_a_well_verified_scenario_passes_with_its_numbers(pool: SandboxPool) -> None:
    env = load_environment("notes")
    report = await gate_scenario(env, env.scenarios["file-two"], pool)
    assert report.passed, report.reasons
    assert report.numbers == {
        "checks": 2,
        "preservation_checks": 0,
        "false_at_start": 2,
        "oracle_steps": 3,
        "oracle_errors": 0,
        "changed_rows": 2,
        "verified_rows": 2,
        "mutants": 4,
        "mutants_caught": 4,
    }


async def test_a_check_already_true_at_the_start_is_refused(pool: SandboxPool) -> None:
    env = load_environment("notes")
    always = check("home-exists", "any(f['name'] == 'home' for f in final['folders'])")
    scenario = variant(env, checks=[*env.scenarios["file-two"].checks, always])
    report = await gate_scenario(env, scenario, pool)
    assert report.reasons == ["check 'home-exists' is already true on the initial state"]
    kept = check("home-kept", "any(f['name'] == 'home' for f in final['folders'])", preserve=True)
    preserved = variant(env, checks=[*env.scenarios["file-two"].checks, kept])
    assert (await gate_scenario(env, preserved, pool)).passed


async def test_an_oracle_that_errors_is_refused(pool: SandboxPool) -> None:
    env = load_environment("notes")
    oracle = [*env.scenarios["file-two"].oracle, Call(tool="add_note", arguments={"folder": "attic", "title": "x"})]
    report = await gate_scenario(env, variant(env, oracle=oracle), pool)
    assert "oracle step 3 (add_note) returns an error: add_note: no folder named 'attic'" in report.reasons


async def test_an_oracle_that_changes_an_unrelated_row_is_refused(pool: SandboxPool) -> None:
    env = load_environment("notes")
    oracle = [*env.scenarios["file-two"].oracle, Call(tool="add_note", arguments={"folder": "home", "title": "x"})]
    report = await gate_scenario(env, variant(env, oracle=oracle), pool)
    unverified = "the oracle's change to the notes row it adds (4) is verified by no check (undoing it passes them all)"
    assert unverified in report.reasons
    assert "the oracle without step 3 (add_note) still passes every check" in report.reasons


async def test_a_check_blind_to_a_dropped_step_is_refused(pool: SandboxPool) -> None:
    env = load_environment("notes")
    either = check("some-note", "any(n['folder_id'] == 1 for n in final['notes'])")
    report = await gate_scenario(env, variant(env, checks=[either]), pool)
    assert "the oracle without step 1 (add_note) still passes every check" in report.reasons
    assert "the oracle without step 2 (add_note) still passes every check" in report.reasons


async def test_a_check_blind_to_a_changed_argument_is_refused(pool: SandboxPool) -> None:
    env = load_environment("library")
    base = env.scenarios["expired-card-borrow"]
    loose = "any(l['member_id'] == 4 and l['status'] == 'active' for l in final['loans'])"
    checks = [c for c in base.checks if c.id not in ("borrowed-riverside-copy", "copy-statuses")]
    report = await gate_scenario(env, variant_of(env, base, checks=[*checks, check("borrowed", loose)]), pool)
    assert any(
        r.startswith("changing oracle step 5 (checkout_copy) argument 'barcode' from 'B-0026' to")
        for r in report.reasons
    ), report.reasons


def variant_of(env: Environment, base: Scenario, **changes: Any) -> Scenario:
    scenario = base.model_copy(update={"id": f"variant-{len(env.scenarios)}", **changes})
    env.scenarios[scenario.id] = scenario
    return scenario


def test_alternatives_are_other_valid_values() -> None:
    state = {
        "members": [{"id": 3, "name": "A"}, {"id": 4, "name": "B"}, {"id": 9, "name": "C"}],
        "copies": [{"id": 1, "barcode": "B-1"}, {"id": 2, "barcode": "B-2"}],
    }
    assert alternatives("member_id", 4, {}, state) == [9, 3]
    assert alternatives("barcode", "B-1", {}, state) == ["B-2"]
    assert alternatives("method", "cash", {"enum": ["cash", "card"]}, state) == ["card"]
    assert alternatives("day", "2026-03-16", {"format": "date"}, state) == ["2026-03-17"]
    assert alternatives("amount_cents", 500, {}, state) == [501]
    assert alternatives("reason", "the drop box was closed", {}, state) == []
