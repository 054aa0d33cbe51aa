"""The bundled restaurant environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the state
untouched, deposits are forfeited or refunded as the rules say, and bad input must come
back as an error result. What every environment must do (tables, docs, procedural steps,
scenarios) is tested for all of them in test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode

BASE = "book-and-preorder"  # any scenario on states/base.json with the shared clock 2026-07-14T15:00


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("restaurant")


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); base state, clock 2026-07-14T15:00 (a Tuesday).
REFUSALS: list[Refusal] = [
    (
        "table-capacity",
        "create_reservation",
        {"guest_id": 1, "table_id": 7, "date": "2026-07-17", "time": "19:30", "party_size": 4},
        ["T7", "seats 2"],
    ),
    (
        "no-overlap",
        "create_reservation",
        {"guest_id": 1, "table_id": 10, "date": "2026-07-15", "time": "19:00", "party_size": 2},
        ["B1", "R-1029"],
    ),
    (
        "large-party-deposit",
        "create_reservation",
        {"guest_id": 1, "table_id": 6, "date": "2026-07-17", "time": "19:00", "party_size": 8},
        ["$160.00", "deposit"],
    ),
    ("large-party-deposit", "change_reservation", {"reservation_id": 18, "party_size": 8, "table_id": 6}, ["$160.00"]),
    (
        "opening-hours",
        "create_reservation",
        {"guest_id": 1, "table_id": 3, "date": "2026-07-20", "time": "19:00", "party_size": 2},
        ["closed on Mondays"],
    ),
    (
        "opening-hours",
        "create_reservation",
        {"guest_id": 1, "table_id": 3, "date": "2026-07-17", "time": "21:30", "party_size": 2},
        ["does not fit"],
    ),
    (
        "opening-hours",
        "create_reservation",
        {"guest_id": 1, "table_id": 3, "date": "2026-07-14", "time": "13:00", "party_size": 2},
        ["not in the future"],
    ),
    (
        "guest-reservation-limit",
        "create_reservation",
        {"guest_id": 3, "table_id": 3, "date": "2026-07-22", "time": "19:00", "party_size": 2},
        ["Tom Reilly", "R-1013", "R-1014"],
    ),
    (
        "private-room-vip",
        "create_reservation",
        {"guest_id": 1, "table_id": 12, "date": "2026-07-17", "time": "19:00", "party_size": 4},
        ["P1", "Sofia Marino", "VIP"],
    ),
    ("private-room-vip", "change_reservation", {"reservation_id": 16, "table_id": 12}, ["Daniel Okoro"]),
    ("waitlist-order", "seat_from_waitlist", {"waitlist_id": 3, "table_id": 4}, ["Alex Kim", "Noah Fischer"]),
]


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    if tool == "seat_from_waitlist":  # free T4 tonight first, so only the queue order stands in the way
        assert episode.call("cancel_reservation", {"reservation_id": 1}).ok
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_every_refusing_rule_is_exercised() -> None:
    assert {r for r, *_ in REFUSALS} == {
        "table-capacity",
        "no-overlap",
        "large-party-deposit",
        "opening-hours",
        "guest-reservation-limit",
        "private-room-vip",
        "waitlist-order",
    }


def test_late_cancellation_forfeits_and_early_refunds(episode: Episode) -> None:
    late = episode.call("cancel_reservation", {"reservation_id": 17})  # tomorrow 12:30: 21.5 hours away
    assert late.ok and late.value["late_cancellation"] and late.value["deposit_status"] == "forfeited"
    early = episode.call("cancel_reservation", {"reservation_id": 20})  # 25 July
    assert early.ok and not early.value["late_cancellation"] and early.value["deposit_status"] == "refunded"
    view = episode.view()
    assert row(view, "reservations", 17)["deposit_status"] == "forfeited"
    assert row(view, "reservations", 20)["deposit_status"] == "refunded"


BAD_CALLS: list[BadCall] = [
    ("get_guest", {"guest_id": 999}, "no guest with id 999"),
    ("cancel_reservation", {"reservation_id": 22}, "completed"),
    (
        "create_reservation",
        {"guest_id": 1, "table_id": 99, "date": "2026-07-17", "time": "19:00", "party_size": 2},
        "no table",
    ),
    ("add_preorder", {"reservation_id": 13, "menu_item_id": 10, "quantity": 1}, "not available"),
    ("create_guest", {"name": "X", "phone": "555-0000", "email": "sofia.marino@example.com"}, "already belongs"),
    ("check_availability", {"date": "2026-02-30", "time": "19:00", "party_size": 2}, "date"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)
