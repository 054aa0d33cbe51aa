"""The bundled HR leave environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the state
untouched, balances and working days are counted as the rules say, and bad or odd input
must come back as an error result, never an exception. What every environment must do
(tables, docs, procedural steps, scenarios) is tested for all of them in test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row, sweep_odd_values

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode

BASE = "approve-and-reject-team"  # any scenario on states/base.json at 2026-03-02T09:00


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("hr_leave")


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); base state, today 2026-03-02.
REFUSALS: list[Refusal] = [
    # Omar Haddad: 20 entitled, 10 used, 4 pending -> 6 left; 20-29 April is 8 working days.
    (
        "sufficient-balance",
        "submit_leave_request",
        {"employee_id": 10, "leave_type": "annual", "start_date": "2026-04-20", "end_date": "2026-04-29"},
        ["Omar Haddad", "8 working days", "only 6"],
    ),
    # Tom Becker has no parental entitlement at all.
    (
        "sufficient-balance",
        "submit_leave_request",
        {"employee_id": 2, "leave_type": "parental", "start_date": "2026-06-01", "end_date": "2026-06-05"},
        ["Tom Becker", "no parental leave entitlement"],
    ),
    # Laura Fischer has 5 used days: the entitlement cannot drop below that.
    (
        "sufficient-balance",
        "set_leave_entitlement",
        {"employee_id": 12, "leave_type": "annual", "year": 2026, "entitled_days": 4},
        ["Laura Fischer", "used 5"],
    ),
    # Annual leave needs 7 days' notice: the earliest start is 2026-03-09.
    (
        "advance-notice",
        "submit_leave_request",
        {"employee_id": 15, "leave_type": "annual", "start_date": "2026-03-06", "end_date": "2026-03-06"},
        ["Ethan Clarke", "7 days' notice", "2026-03-09"],
    ),
    # Aisha Bello already has 16-20 March pending.
    (
        "no-overlap",
        "submit_leave_request",
        {"employee_id": 5, "leave_type": "sick", "start_date": "2026-03-20", "end_date": "2026-03-23"},
        ["Aisha Bello", "request 3"],
    ),
    # Finance blackout 25 March - 10 April.
    (
        "blackout-period",
        "submit_leave_request",
        {"employee_id": 13, "leave_type": "annual", "start_date": "2026-04-08", "end_date": "2026-04-14"},
        ["Marco Bianchi", "Finance", "Quarter-end close"],
    ),
    # Maria Lopez is not Aisha Bello's manager (Tom Becker is).
    (
        "manager-approval",
        "approve_leave_request",
        {"request_id": 3, "approver_id": 1},
        ["Maria Lopez", "Tom Becker"],
    ),
    (
        "manager-approval",
        "reject_leave_request",
        {"request_id": 5, "approver_id": 8, "reason": "no"},
        ["Daniel Kim", "Sofia Rossi"],
    ),
    # Hannah Weiss' sick leave of 9-10 February has already started.
    ("cancel-before-start", "cancel_leave_request", {"request_id": 6}, ["Hannah Weiss", "2026-02-09"]),
    # Easter weekend: 3-6 April are a Friday holiday, a weekend and a Monday holiday.
    (
        "working-days",
        "submit_leave_request",
        {"employee_id": 2, "leave_type": "annual", "start_date": "2026-04-03", "end_date": "2026-04-06"},
        ["no working days", "Tom Becker"],
    ),
    # Lucas Moreau was hired on 2025-11-03: 119 days of service.
    (
        "parental-eligibility",
        "submit_leave_request",
        {"employee_id": 4, "leave_type": "parental", "start_date": "2026-06-01", "end_date": "2026-06-05"},
        ["Lucas Moreau", "119 days", "182"],
    ),
]


def test_every_rule_is_tested(env: Environment) -> None:
    assert {r for r, *_ in REFUSALS} == set(env.rules)


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_blackout_added_later_blocks_approval(episode: Episode) -> None:
    added = episode.call(
        "add_blackout_period",
        {"department_id": 2, "start_date": "2026-04-13", "end_date": "2026-04-14", "reason": "Sales kickoff"},
    )
    assert added.ok and added.value["pending_requests_now_blocked"] == [5]
    refused = episode.call("approve_leave_request", {"request_id": 5, "approver_id": 7})
    assert refused.rule == "blackout-period"


def test_cancelling_approved_leave_restores_the_balance(episode: Episode) -> None:
    result = episode.call("cancel_leave_request", {"request_id": 14})  # Daniel Kim, 3-14 August
    assert result.ok and result.value["days_restored"] == 10
    view = episode.view()
    assert row(view, "leave_balances", 15)["used_days"] == 0
    assert row(view, "leave_requests", 14)["status"] == "cancelled"


def test_working_days_skip_weekends_and_holidays(episode: Episode) -> None:
    easter = episode.call("count_working_days", {"start_date": "2026-04-01", "end_date": "2026-04-10"}).value
    assert easter["working_days"] == 6 and len(easter["public_holidays"]) == 2


def test_balances_show_pending_and_remaining(episode: Episode) -> None:
    omar = episode.call("get_leave_balances", {"employee_id": 10}).value
    annual = next(b for b in omar if b["leave_type"] == "annual")
    assert (annual["entitled_days"], annual["used_days"], annual["pending_days"], annual["remaining_days"]) == (
        20,
        10,
        4,
        6,
    )


BAD_CALLS: list[BadCall] = [
    ("get_employee", {"employee_id": 999}, "no employee with id 999"),
    ("get_leave_request", {"request_id": 999}, "no leave request with id 999"),
    ("approve_leave_request", {"request_id": 1, "approver_id": 1}, "already approved"),
    ("cancel_leave_request", {"request_id": 8}, "rejected"),
    ("add_public_holiday", {"holiday_date": "2026-04-03", "name": "x"}, "already a public holiday"),
    ("change_manager", {"employee_id": 1, "manager_id": 2}, "cycle"),
    (
        "submit_leave_request",
        {"employee_id": 2, "leave_type": "annual", "start_date": "2026-05-02", "end_date": "2026-05-01"},
        "before start_date",
    ),
    ("find_employee", {"query": " "}, "query is empty"),
    ("list_blackout_periods", {"department_id": 99}, "no department with id 99"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)


def test_no_tool_crashes_on_odd_values(env: Environment, episode: Episode) -> None:
    """Every tool, every parameter, a spread of valid-typed odd values: never an internal error."""
    odd: dict[str, list[Any]] = {
        "integer": [1, 2, 3, 16, 999, 2000, 2100, 2**63 - 1],
        "string": ["", " ", "%_\\", "'; DROP TABLE employees; --", "x" * 500, "é✓", "2026-03-16", "2026-02-30"],
    }
    valid: dict[str, Any] = {"employee_id": 2, "request_id": 3, "approver_id": 2, "manager_id": 7}
    valid |= {"department_id": 1, "query": "a", "reason": "ok", "leave_type": "annual", "year": 2026}
    valid |= {"start_date": "2026-06-01", "end_date": "2026-06-03", "holiday_date": "2026-06-02", "name": "X"}
    valid |= {"entitled_days": 30}
    assert sweep_odd_values(env, episode, odd, valid) > 100
