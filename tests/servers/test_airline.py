"""The bundled airline environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the state
untouched (the charging rules are checked by their amounts), and bad input must come back
as an error result, never an exception. What every environment must do (tables, docs,
procedural steps, scenarios) is tested for all of them in test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row, sweep_odd_values

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode

BASE = "seat-and-check-in"  # any scenario on states/base.json with the shared clock (2026-05-10T09:00Z)


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("airline")


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); all on the base state at 2026-05-10T09:00Z.
REFUSALS: list[Refusal] = [
    # QX212 tonight has 2 business seats, both taken; QX412 on 05-18 has 2 economy seats, both taken.
    (
        "cabin-capacity",
        "create_booking",
        {"passenger_id": 1, "flight_id": 7, "cabin": "business", "fare_class": "flex", "method": "card"},
        ["business", "full"],
    ),
    (
        "cabin-capacity",
        "change_flight",
        {"locator": "GR2L8X", "new_flight_id": 13, "method": "card"},
        ["economy", "full"],
    ),
    # Amelia Hart already holds QX7K2P on QX305 05-15.
    (
        "one-seat-per-flight",
        "create_booking",
        {"passenger_id": 1, "flight_id": 9, "cabin": "economy", "fare_class": "basic", "method": "card"},
        ["Amelia Hart", "QX7K2P"],
    ),
    # Bruno's HB4M9T and Kenji's KW3M8A are basic fares.
    (
        "basic-fare-locked",
        "change_flight",
        {"locator": "HB4M9T", "new_flight_id": 3, "method": "card"},
        ["HB4M9T", "basic"],
    ),
    ("basic-fare-locked", "upgrade_cabin", {"locator": "KW3M8A", "method": "card"}, ["KW3M8A", "basic"]),
    # QX7K2P is LAX-ORD; flight 11 is ORD-LAX.
    ("same-route", "change_flight", {"locator": "QX7K2P", "new_flight_id": 11, "method": "card"}, ["LAX-ORD"]),
    # Fatima Zahra (FZ9T4K) is checked in.
    ("no-changes-after-check-in", "cancel_booking", {"locator": "FZ9T4K"}, ["FZ9T4K", "checked in"]),
    ("no-changes-after-check-in", "assign_seat", {"locator": "FZ9T4K", "seat": "15A"}, ["FZ9T4K", "checked in"]),
    ("no-changes-after-check-in", "change_flight", {"locator": "FZ9T4K", "new_flight_id": 3}, ["FZ9T4K"]),
    # Flight 1 (QX101 this morning) departed; flight 6 (QX210 today) was cancelled.
    (
        "flight-open",
        "create_booking",
        {"passenger_id": 2, "flight_id": 1, "cabin": "economy", "fare_class": "flex", "method": "card"},
        ["departed"],
    ),
    (
        "flight-open",
        "create_booking",
        {"passenger_id": 2, "flight_id": 6, "cabin": "economy", "fare_class": "flex", "method": "card"},
        ["cancelled"],
    ),
    ("flight-open", "add_checked_bag", {"locator": "MB7D4Y", "weight_kg": 10, "method": "card"}, ["departed"]),
    ("flight-open", "assign_seat", {"locator": "DW3N6Q", "seat": "20A"}, ["cancelled"]),
    # Bruno's flight leaves 2026-05-11T18:00Z: check-in opens 2026-05-10T18:00Z.
    ("check-in-window", "check_in", {"locator": "HB4M9T"}, ["opens", "2026-05-10T18:00"]),
    ("bag-weight-limit", "add_checked_bag", {"locator": "QX7K2P", "weight_kg": 33}, ["33 kg", "32 kg"]),
    # Kenji holds 12A on flight 3; business seats are rows 1-4.
    ("seat-assignment", "assign_seat", {"locator": "EN5V2J", "seat": "12A"}, ["12A", "taken"]),
    ("seat-assignment", "assign_seat", {"locator": "EN5V2J", "seat": "2A"}, ["2A", "economy"]),
    ("seat-assignment", "assign_seat", {"locator": "IM1Q7W", "seat": "1E"}, ["1E", "business"]),
    (
        "unique-email",
        "update_passenger_contact",
        {"passenger_id": 1, "email": "chen.wei@example.com"},
        ["already belongs to passenger 3 (Chen Wei)"],
    ),
]


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_bag_allowance_caps_bags_and_charges_beyond_the_tier(episode: Episode) -> None:
    # Fatima (gold: 2 free) already has 2 bags: the next ones cost $35.00, and a sixth is refused.
    for _ in range(3):
        added = episode.call("add_checked_bag", {"locator": "FZ9T4K", "weight_kg": 10, "method": "card"})
        assert added.ok and added.value["fee_cents"] == 3500, added.error
    before = episode.state_hash()
    sixth = episode.call("add_checked_bag", {"locator": "FZ9T4K", "weight_kg": 10, "method": "card"})
    assert sixth.rule == "bag-allowance" and "5 checked bags" in (sixth.error or "")
    assert episode.state_hash() == before
    # Chen (platinum: 3 free) has 1 bag on CW6F3G: the next bag is free and needs no method.
    free = episode.call("add_checked_bag", {"locator": "CW6F3G", "weight_kg": 12})
    assert free.ok and free.value["fee_cents"] == 0
    unpaid = episode.call("add_checked_bag", {"locator": "EN5V2J", "weight_kg": 12})  # member: needs a method
    assert not unpaid.ok and "payment method" in (unpaid.error or "")


def test_change_fee_by_fare_class_and_waiver(episode: Episode) -> None:
    standard = episode.call("quote_change", {"locator": "KW8J2N", "new_flight_id": 9}).value
    assert (standard["change_fee_cents"], standard["fare_difference_cents"]) == (7500, 1500)
    flex = episode.call("quote_change", {"locator": "CW6F3G", "new_flight_id": 17}).value
    assert (flex["change_fee_cents"], flex["fare_difference_cents"]) == (0, 2000)
    waived = episode.call("quote_change", {"locator": "DW3N6Q", "new_flight_id": 8}).value
    assert waived["total_cents"] == 0 and waived["waived"]
    before = episode.state_hash()
    no_method = episode.call("change_flight", {"locator": "KW8J2N", "new_flight_id": 9})
    assert not no_method.ok and "$90.00" in (no_method.error or "")
    assert episode.state_hash() == before


def test_cancellation_refund_by_fare_class_and_time(episode: Episode) -> None:
    def refund(locator: str) -> int:
        result = episode.call("quote_cancellation", {"locator": locator})
        assert result.ok, result.error
        return result.value["refund_cents"]

    assert refund("HL6P3D") == 39900  # flex, weeks ahead: full
    assert refund("QX7K2P") == 21900 - 10000  # standard: less the $100.00 fee
    assert refund("BC9S2E") == 0  # basic
    assert refund("GR2L8X") == 0  # departs in 90 minutes
    assert refund("DW3N6Q") == 10900  # the airline cancelled the flight
    done = episode.call("cancel_booking", {"locator": "QX7K2P"})
    assert done.ok and done.value["refund_cents"] == 11900
    refund_row = episode.view()["payments"][-1]
    assert (refund_row["kind"], refund_row["amount_cents"], refund_row["method"]) == ("refund", 11900, "card")


def test_check_in_needs_a_seat_and_stamps_the_clock(episode: Episode) -> None:
    no_seat = episode.call("check_in", {"locator": "EN5V2J"})
    assert not no_seat.ok and "assign_seat" in (no_seat.error or "")
    assert episode.call("assign_seat", {"locator": "EN5V2J", "seat": "14a"}).ok
    done = episode.call("check_in", {"locator": "EN5V2J"})
    assert done.ok and done.value["checked_in_at"] == "2026-05-10T09:00:00+00:00"
    assert row(episode.view(), "bookings", 5)["seat"] == "14A"


BAD_CALLS: list[BadCall] = [
    ("get_passenger", {"passenger_id": 999}, "no passenger with id 999"),
    ("get_flight", {"flight_id": 999}, "no flight with id 999"),
    ("get_booking", {"locator": "ZZZZZZ"}, "no booking with record locator"),
    ("find_passenger", {"query": " "}, "query is empty"),
    ("search_flights", {}, "at least one"),
    ("search_flights", {"date": "2026-02-30"}, "date"),
    ("assign_seat", {"locator": "EN5V2J", "seat": "window"}, "not a seat"),
    ("cancel_booking", {"locator": "DW7Y4K"}, "was cancelled"),
    ("upgrade_cabin", {"locator": "IM1Q7W", "method": "card"}, "already in business"),
    ("update_passenger_contact", {"passenger_id": 1}, "nothing to change"),
    (
        "create_booking",
        {"passenger_id": 1, "flight_id": 2, "cabin": "first", "fare_class": "flex", "method": "card"},
        "cabin",
    ),
    ("get_passenger", {"passenger_id": 2**70}, "passenger_id"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)


def test_no_tool_crashes_on_odd_values(env: Environment, episode: Episode) -> None:
    """Every tool, every parameter, a spread of valid-typed odd values: never an internal error."""
    odd: dict[str, list[Any]] = {
        "integer": [1, 2, 7, 13, 33, 100, 999, 2**63 - 1],
        "string": ["", " ", "QX7K2P", "fz9t4k", "%_\\", "'; DROP TABLE bookings; --", "x" * 2000, "é✓", "99Z"],
        "boolean": [True, False],
    }
    valid: dict[str, Any] = {"passenger_id": 1, "flight_id": 9, "new_flight_id": 10, "locator": "QX7K2P"}
    valid |= {"query": "a", "cabin": "economy", "fare_class": "flex", "method": "card", "seat": "20A"}
    valid |= {"weight_kg": 10}
    assert sweep_odd_values(env, episode, odd, valid) > 150
