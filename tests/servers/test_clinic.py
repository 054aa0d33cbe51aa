"""The bundled clinic environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the state
untouched (the charging rules are checked by their amounts), and bad input must come back as
an error result. What every environment must do (tables, docs, procedural steps, scenarios)
is tested for all of them in test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode
from envfarm.core.state import StateView

BASE = "late-cancel-and-pay"  # any scenario on states/base.json with the shared clock (2026-04-20T08:30Z)


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("clinic")


def new_rows(before: StateView, after: StateView, table: str) -> list[dict[str, Any]]:
    old = {r["id"] for r in before[table]}
    return [r for r in after[table] if r["id"] not in old]


# --- the package -----------------------------------------------------------------------------------


def test_enums_and_formats_are_in_the_schema(env: Environment) -> None:
    props = env.tools["register_patient"].input_schema["properties"]
    assert props["date_of_birth"]["format"] == "date"
    assert props["email"]["format"] == "email"
    assert props["plan_code"]["enum"] == ["BASIC", "STANDARD", "PREMIUM"]
    assert env.tools["cancel_appointment"].input_schema["properties"]["cancelled_by"]["enum"] == ["patient", "clinic"]
    assert env.tools["pay_invoice"].input_schema["properties"]["method"]["enum"] == ["card", "cash"]
    slot_id = env.tools["book_appointment"].input_schema["properties"]["slot_id"]
    assert slot_id["minimum"] == 1 and slot_id["maximum"] == 2**63 - 1


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); all on the base state at 2026-04-20T08:30Z.
REFUSALS: list[Refusal] = [
    # slot 4 (Dr. Hart, 10:00 today) is Zara Ahmed's appointment 11
    ("slot-double-booking", "book_appointment", {"patient_id": 5, "slot_id": 4}, ["slot 4", "appointment 11"]),
    # Lucas Moreau is with Dr. Hart at 2026-04-21 09:00; slot 19 (Dr. Lindqvist) is at the same time
    ("patient-double-booking", "book_appointment", {"patient_id": 10, "slot_id": 19}, ["Lucas Moreau", "same time"]),
    ("appointment-timing", "book_appointment", {"patient_id": 5, "slot_id": 1}, ["slot 1", "already started"]),
    ("appointment-timing", "complete_appointment", {"appointment_id": 11}, ["Zara Ahmed", "not started"]),
    ("appointment-timing", "mark_no_show", {"appointment_id": 11}, ["Zara Ahmed", "not started"]),
    ("appointment-timing", "cancel_appointment", {"appointment_id": 7, "cancelled_by": "patient"}, ["started"]),
    # Lucas holds 3 future appointments
    ("future-appointment-limit", "book_appointment", {"patient_id": 10, "slot_id": 12}, ["Lucas Moreau", "3 future"]),
    # Grace Kim is on Basic Care, which does not cover dermatology
    ("plan-coverage", "book_appointment", {"patient_id": 5, "slot_id": 25}, ["Grace Kim", "dermatology"]),
    # Zara's neurology referral expired on 2026-04-05; Sophie has none for orthopedics
    ("referral-required", "book_appointment", {"patient_id": 11, "slot_id": 34}, ["Zara Ahmed", "neurology"]),
    ("referral-required", "book_appointment", {"patient_id": 13, "slot_id": 29}, ["Sophie Turner", "orthopedics"]),
    # Dr. Hart has not completed a visit with Priya; Dr. Lindqvist is a specialist
    (
        "referral-from-gp",
        "create_referral",
        {"patient_id": 3, "referring_doctor_id": 1, "specialty": "dermatology"},
        ["Dr. Amelia Hart", "Priya Sharma"],
    ),
    (
        "referral-from-gp",
        "create_referral",
        {"patient_id": 4, "referring_doctor_id": 3, "specialty": "neurology"},
        ["Dr. Sofia Lindqvist", "specialist"],
    ),
    (
        "prescriber-has-seen-patient",
        "issue_prescription",
        {"patient_id": 3, "doctor_id": 1, "medication": "Cetirizine 10 mg", "dosage": "daily"},
        ["Dr. Amelia Hart", "Priya Sharma"],
    ),
    # Aisha Bello's no-show fee (invoice 6) is unpaid
    ("unpaid-no-show-block", "book_appointment", {"patient_id": 9, "slot_id": 12}, ["Aisha Bello", "invoice 6"]),
    (
        "unique-email",
        "register_patient",
        {
            "name": "O. Bennett",
            "date_of_birth": "1985-03-12",
            "plan_code": "BASIC",
            "email": "OLIVIA.bennett@example.com",
        },
        ["Olivia Bennett", "patient 1"],
    ),
]

# Rules that charge rather than refuse; each has its own test below.
CHARGING_RULES = {"late-cancellation-fee", "no-show-fee"}


def test_every_rule_is_tested(env: Environment) -> None:
    assert {r for r, *_ in REFUSALS} | CHARGING_RULES == set(env.rules)


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_late_cancellation_fee_is_charged_within_24_hours(episode: Episode) -> None:
    before = episode.view()
    result = episode.call("cancel_appointment", {"appointment_id": 10, "cancelled_by": "patient"})
    assert result.ok, result.error
    fees = new_rows(before, episode.view(), "invoices")
    assert [(f["patient_id"], f["kind"], f["amount_cents"], f["status"]) for f in fees] == [
        (1, "late_cancellation", 4000, "unpaid")
    ]
    assert row(episode.view(), "referrals", 1)["status"] == "active"


def test_no_fee_when_the_clinic_cancels_or_more_than_24_hours_ahead(episode: Episode) -> None:
    before = episode.view()
    assert episode.call("cancel_appointment", {"appointment_id": 10, "cancelled_by": "clinic"}).ok
    assert episode.call("cancel_appointment", {"appointment_id": 13, "cancelled_by": "patient"}).ok  # 24.5 h ahead
    assert new_rows(before, episode.view(), "invoices") == []


def test_no_show_fee_is_charged(episode: Episode) -> None:
    before = episode.view()
    result = episode.call("mark_no_show", {"appointment_id": 8})
    assert result.ok, result.error
    fees = new_rows(before, episode.view(), "invoices")
    assert [(f["patient_id"], f["kind"], f["amount_cents"]) for f in fees] == [(12, "no_show", 5000)]
    # and the unpaid fee now blocks Daniel from booking
    blocked = episode.call("book_appointment", {"patient_id": 12, "slot_id": 13})
    assert blocked.rule == "unpaid-no-show-block"


def test_completing_bills_the_plan_copay(episode: Episode) -> None:
    before = episode.view()
    assert episode.call("complete_appointment", {"appointment_id": 9}).ok  # Ethan, Premium, orthopedics
    fees = new_rows(before, episode.view(), "invoices")
    assert [(f["patient_id"], f["kind"], f["amount_cents"]) for f in fees] == [(8, "visit", 2000)]


def test_cancelling_frees_the_slot_for_someone_else(episode: Episode) -> None:
    assert episode.call("cancel_appointment", {"appointment_id": 16, "cancelled_by": "patient"}).ok
    result = episode.call("book_appointment", {"patient_id": 5, "slot_id": 15})
    assert result.ok, result.error


def test_reschedule_stays_with_the_same_doctor(episode: Episode) -> None:
    before = episode.state_hash()
    result = episode.call("reschedule_appointment", {"appointment_id": 18, "new_slot_id": 13})
    assert not result.ok and "Dr. Rahul Mehta" in (result.error or "")
    assert episode.state_hash() == before
    moved = episode.call("reschedule_appointment", {"appointment_id": 18, "new_slot_id": 9})
    assert moved.ok and moved.value["starts_at"] == "2026-04-23T14:00:00+00:00"


BAD_CALLS: list[BadCall] = [
    ("get_patient", {"patient_id": 999}, "no patient with id 999"),
    ("book_appointment", {"patient_id": 1, "slot_id": 999}, "no slot with id 999"),
    ("cancel_appointment", {"appointment_id": 999, "cancelled_by": "clinic"}, "no appointment with id 999"),
    ("pay_invoice", {"invoice_id": 999, "method": "card"}, "no invoice with id 999"),
    ("pay_invoice", {"invoice_id": 1, "method": "card"}, "already paid"),
    ("find_patient", {"query": "  "}, "query is empty"),
    ("list_open_slots", {"on_date": "2026-13-40"}, "on_date"),
    (
        "register_patient",
        {"name": "X", "date_of_birth": "2030-01-01", "plan_code": "BASIC", "email": "x@y.z"},
        "future",
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)
