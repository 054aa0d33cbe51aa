"""The bundled library environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the
state untouched, fines, holds and renewals work as the rules say, and bad or odd
input must come back as an error result, never an exception. What every environment
must do (tables, docs, procedural steps, scenarios) is tested for all of them in
test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row, sweep_odd_values

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode

BASE = "return-and-pay"  # any scenario on states/base.json with the shared clock (2026-03-16)


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("library")


# --- the package -----------------------------------------------------------------------------------


def test_dates_and_choices_are_typed_in_the_schema(env: Environment) -> None:
    as_of = env.tools["list_overdue_loans"].input_schema["properties"]["as_of"]
    assert {"type": "string", "format": "date"} in as_of["anyOf"]
    method = env.tools["pay_fine"].input_schema["properties"]["method"]
    assert method["enum"] == ["cash", "card"]
    member_type = env.tools["register_member"].input_schema["properties"]["member_type"]
    assert member_type["enum"] == ["adult", "child"]


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); all on the base state at 2026-03-16.
REFUSALS: list[Refusal] = [
    # Daniel Reyes' membership expired on 2026-02-28; Emma Schultz is suspended.
    ("membership-active", "checkout_copy", {"member_id": 4, "barcode": "B-0001"}, ["Daniel Reyes", "expired"]),
    ("membership-active", "place_hold", {"member_id": 5, "book_id": 13}, ["Emma Schultz", "suspended"]),
    ("membership-active", "renew_loan", {"loan_id": 20}, ["Emma Schultz", "suspended"]),
    ("membership-active", "renew_membership", {"member_id": 5}, ["Emma Schultz", "suspended"]),
    # Chloe Nguyen (adult) has 5 loans; Noah Okafor (child) has 3.
    ("loan-limit", "checkout_copy", {"member_id": 3, "barcode": "B-0001"}, ["Chloe Nguyen", "5 items"]),
    ("loan-limit", "checkout_copy", {"member_id": 13, "barcode": "B-0009"}, ["Noah Okafor", "3 items", "child"]),
    # Ben Carter owes $12.50.
    ("fine-block", "checkout_copy", {"member_id": 2, "barcode": "B-0035"}, ["Ben Carter", "$12.50", "$10.00"]),
    ("fine-block", "renew_loan", {"loan_id": 21}, ["Ben Carter", "$12.50"]),
    ("fine-block", "place_hold", {"member_id": 2, "book_id": 13}, ["Ben Carter", "$12.50"]),
    # Chloe's loans: The Hobbit renewed twice, Beloved overdue, Lessons in Chemistry held by others.
    ("renewal-limit", "renew_loan", {"loan_id": 4}, ["The Hobbit", "2 times"]),
    ("renewal-overdue", "renew_loan", {"loan_id": 3}, ["Beloved", "overdue", "2026-03-10"]),
    ("renewal-hold-conflict", "renew_loan", {"loan_id": 5}, ["Lessons in Chemistry", "3 other member"]),
    ("renewal-hold-conflict", "renew_loan", {"loan_id": 14}, ["Project Hail Mary", "2 other member"]),
    # B-0022 waits on the hold shelf for Julia Santos; Maya Levi is next in the queue.
    ("hold-queue", "checkout_copy", {"member_id": 14, "barcode": "B-0022"}, ["B-0022", "hold shelf", "hold 3"]),
    # Pride and Prejudice has copies on the shelves.
    ("hold-when-unavailable", "place_hold", {"member_id": 6, "book_id": 3}, ["Pride and Prejudice", "B-0004"]),
    # Farah already holds Project Hail Mary; Chloe has Lessons in Chemistry on loan.
    ("hold-duplicate", "place_hold", {"member_id": 6, "book_id": 13}, ["Farah Haddad", "hold 1"]),
    ("hold-duplicate", "place_hold", {"member_id": 3, "book_id": 15}, ["Chloe Nguyen", "on loan", "B-0023"]),
    # Emma's fine 4 is a replacement fee; fine 2 is overdue but needs a reason.
    ("waive-overdue-only", "waive_fine", {"fine_id": 4, "reason": "manager approved"}, ["fine 4", "lost item"]),
    ("waive-overdue-only", "waive_fine", {"fine_id": 2, "reason": "   "}, ["reason", "fine 2"]),
    # guardians: missing, a child (Noah), an expired member (Daniel)
    ("child-guardian", "register_member", {"name": "Zoe Carter", "member_type": "child"}, ["guardian"]),
    (
        "child-guardian",
        "register_member",
        {"name": "Zoe Okafor", "member_type": "child", "guardian_member_id": 13},
        ["Noah Okafor", "child"],
    ),
    (
        "child-guardian",
        "register_member",
        {"name": "Zoe Reyes", "member_type": "child", "guardian_member_id": 4},
        ["Daniel Reyes", "expired"],
    ),
    (
        "unique-email",
        "register_member",
        {"name": "A. Okafor", "member_type": "adult", "email": "ADA.OKAFOR@example.org"},
        ["Ada Okafor", "member 1"],
    ),
    (
        "unique-email",
        "update_member_contact",
        {"member_id": 3, "email": "hana.kim@example.org"},
        ["Hana Kim", "member 8"],
    ),
]

# Rules that charge rather than refuse; each has its own test below.
CHARGING_RULES = {"overdue-fine", "lost-item-fee"}


def test_every_rule_is_tested(env: Environment) -> None:
    assert {r for r, *_ in REFUSALS} | CHARGING_RULES == set(env.rules)


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_refusals_leave_no_partial_write_after_earlier_writes(episode: Episode) -> None:
    """A refusal after a successful mutation keeps that earlier write and adds nothing of its own."""
    before = episode.state_hash()
    ok = episode.call("checkout_copy", {"member_id": 9, "barcode": "B-0001"})  # Ivan: 2 loans now
    assert ok.ok, ok.error
    middle = episode.state_hash()
    assert middle != before
    refused = episode.call("place_hold", {"member_id": 9, "book_id": 1})  # he has Dune on loan now
    assert refused.rule == "hold-duplicate"
    assert episode.state_hash() == middle


def test_the_hold_shelf_copy_goes_to_its_member(episode: Episode) -> None:
    julia = episode.call("checkout_copy", {"member_id": 10, "barcode": "B-0022"})
    assert julia.ok, julia.error
    view = episode.view()
    assert row(view, "holds", 3)["status"] == "fulfilled"
    assert row(view, "copies", 22)["status"] == "on_loan"


def test_returned_copy_goes_to_the_first_queued_hold(episode: Episode) -> None:
    result = episode.call("return_copy", {"barcode": "B-0021"})  # George's Project Hail Mary
    assert result.ok, result.error
    assert result.value["waiting_for_hold"]["member_name"] == "Farah Haddad"  # placed 02-20, before Hana
    view = episode.view()
    assert row(view, "holds", 1)["status"] == "ready" and row(view, "holds", 1)["copy_id"] == 21
    assert row(view, "holds", 1)["pickup_by"] == "2026-03-23"
    assert row(view, "holds", 2)["status"] == "queued"
    hana = episode.call("checkout_copy", {"member_id": 8, "barcode": "B-0021"})
    assert hana.rule == "hold-queue"


def test_overdue_fine_is_charged_per_day_on_return(episode: Episode) -> None:
    julia = episode.call("return_copy", {"barcode": "B-0031"})  # due 2026-03-13: 3 days late
    assert julia.ok, julia.error
    assert julia.value["days_overdue"] == 3 and julia.value["fine_cents"] == 75
    fine = row(episode.view(), "fines", julia.value["fine_id"])
    assert (fine["member_id"], fine["reason"], fine["amount_cents"], fine["status"]) == (10, "overdue", 75, "unpaid")


def test_overdue_fine_is_capped(episode: Episode) -> None:
    emma = episode.call("return_copy", {"barcode": "B-0040"})  # due 2025-12-22: 84 days late
    assert emma.ok, emma.error
    assert emma.value["days_overdue"] == 84 and emma.value["fine_cents"] == 1000


def test_no_fine_for_a_return_on_the_due_date(episode: Episode) -> None:
    fines = len(episode.view()["fines"])
    chloe = episode.call("return_copy", {"barcode": "B-0033"})  # due today
    assert chloe.ok and chloe.value["fine_cents"] == 0 and chloe.value["fine_id"] is None
    assert len(episode.view()["fines"]) == fines


def test_lost_item_fee_and_its_cancellation_when_found(episode: Episode) -> None:
    lost = episode.call("mark_copy_lost", {"barcode": "B-0034"})
    assert lost.ok, lost.error
    assert lost.value["charged"]["amount_cents"] == 1899  # The Name of the Wind's replacement cost
    fee_id = lost.value["charged"]["fine_id"]
    view = episode.view()
    assert row(view, "loans", 17)["status"] == "lost" and row(view, "copies", 34)["status"] == "lost"
    assert row(view, "fines", fee_id)["reason"] == "lost_item"
    waive = episode.call("waive_fine", {"fine_id": fee_id, "reason": "goodwill"})
    assert waive.rule == "waive-overdue-only"
    found = episode.call("return_copy", {"barcode": "B-0034"})
    assert found.ok, found.error
    assert found.value["replacement_fee_cancelled"] == fee_id and found.value["fine_cents"] == 0
    view = episode.view()
    assert row(view, "fines", fee_id)["status"] == "waived"
    assert row(view, "loans", 17)["status"] == "returned"
    assert row(view, "copies", 34)["status"] == "available"


def test_found_copy_with_a_queue_goes_to_the_hold_shelf(episode: Episode) -> None:
    """Emma's lost Lessons in Chemistry turns up: fee cancelled, capped late fine, Farah's hold ready."""
    found = episode.call("return_copy", {"barcode": "B-0025"})
    assert found.ok, found.error
    assert found.value["replacement_fee_cancelled"] == 4 and found.value["fine_cents"] == 1000
    assert found.value["waiting_for_hold"]["hold_id"] == 6


def test_partly_paid_lost_fee_is_not_cancelled(episode: Episode) -> None:
    lost = episode.call("mark_copy_lost", {"barcode": "B-0034"})
    fee_id = lost.value["charged"]["fine_id"]
    assert episode.call("pay_fine", {"fine_id": fee_id, "amount_cents": 500, "method": "cash"}).ok
    found = episode.call("return_copy", {"barcode": "B-0034"})
    assert found.ok and found.value["replacement_fee_cancelled"] is None
    assert row(episode.view(), "fines", fee_id)["status"] == "unpaid"


def test_partial_then_full_payment(episode: Episode) -> None:
    part = episode.call("pay_fine", {"fine_id": 2, "amount_cents": 100, "method": "cash"})
    assert part.ok and part.value["balance_cents"] == 150 and part.value["status"] == "unpaid"
    rest = episode.call("pay_fine", {"fine_id": 2, "amount_cents": 150, "method": "card"})
    assert rest.ok and rest.value["balance_cents"] == 0 and rest.value["status"] == "paid"
    assert rest.value["member_fines_due_cents"] == 1000
    again = episode.call("pay_fine", {"fine_id": 2, "amount_cents": 1, "method": "card"})
    assert not again.ok and "already paid" in (again.error or "")


def test_paying_down_unblocks_a_member(episode: Episode) -> None:
    assert episode.call("checkout_copy", {"member_id": 2, "barcode": "B-0035"}).rule == "fine-block"
    assert episode.call("pay_fine", {"fine_id": 2, "amount_cents": 250, "method": "cash"}).ok
    assert episode.call("checkout_copy", {"member_id": 2, "barcode": "B-0035"}).ok  # owes exactly $10.00


def test_renewal_extends_by_21_days_until_the_limit(episode: Episode) -> None:
    first = episode.call("renew_loan", {"loan_id": 7})  # Chloe's Atomic Habits, due 2026-03-23
    assert first.ok and first.value["due"] == "2026-04-13" and first.value["renewals_left"] == 1
    second = episode.call("renew_loan", {"loan_id": 7})
    assert second.ok and second.value["due"] == "2026-05-04"
    third = episode.call("renew_loan", {"loan_id": 7})
    assert third.rule == "renewal-limit"


def test_place_hold_reports_the_queue_position(episode: Episode) -> None:
    hold = episode.call("place_hold", {"member_id": 9, "book_id": 15})  # Ivan; three ahead of him
    assert hold.ok and hold.value["position"] == 4


def test_cancelling_the_last_ready_hold_frees_the_copy(episode: Episode) -> None:
    for hold_id in (4, 5):  # empty the queue behind Julia
        assert episode.call("cancel_hold", {"hold_id": hold_id}).ok
    result = episode.call("cancel_hold", {"hold_id": 3})
    assert result.ok and result.value["copy_now_waiting_for"] is None
    assert row(episode.view(), "copies", 22)["status"] == "available"


def test_register_adult_issues_the_next_card(episode: Episode) -> None:
    result = episode.call(
        "register_member", {"name": "Omar Farouk", "member_type": "adult", "email": "omar@example.org"}
    )
    assert result.ok, result.error
    assert result.value["card_number"] == "LIB-100015" and result.value["expires"] == "2027-03-16"


def test_renew_membership_counts_from_today_when_expired(episode: Episode) -> None:
    daniel = episode.call("renew_membership", {"member_id": 4})
    assert daniel.ok and daniel.value["expires"] == "2027-03-16"
    ada = episode.call("renew_membership", {"member_id": 1})  # not yet expired: from 2027-04-02
    assert ada.ok and ada.value["expires"] == "2028-04-02"


def test_account_summary_lists_the_blocks(episode: Episode) -> None:
    ben = episode.call("get_member_account", {"member_id": 2}).value
    assert not ben["can_borrow"] and ben["fines_due_cents"] == 1250
    chloe = episode.call("get_member_account", {"member_id": 3}).value
    assert chloe["blocks"] == ["at the loan limit (5 items)"] and chloe["loans_overdue"] == 1
    ada = episode.call("get_member_account", {"member_id": 1}).value
    assert ada["can_borrow"] and ada["blocks"] == []


def test_lookups(episode: Episode) -> None:
    assert [m["name"] for m in episode.call("find_member", {"query": "okafor"}).value] == [
        "Ada Okafor",
        "Noah Okafor",
    ]
    assert episode.call("find_member", {"query": "lib-100004"}).value[0]["name"] == "Daniel Reyes"
    assert episode.call("find_member", {"query": "%"}).value == []  # LIKE wildcards are literal
    books = episode.call("search_books", {"query": "tolkien", "field": "author"}).value
    assert [b["title"] for b in books] == ["The Hobbit"]
    isbn = books[0]["isbn"]
    hyphenated = f"{isbn[:3]}-{isbn[3]}-{isbn[4:]}"
    assert episode.call("search_books", {"query": hyphenated, "field": "isbn"}).value[0]["book_id"] == 5
    copies = episode.call("list_copies", {"book_id": 13}).value
    assert copies["copies_available"] == 0 and copies["holds_queued"] == 2
    assert {c["status"] for c in copies["copies"]} == {"on_loan"}
    overdue = episode.call("list_overdue_loans", {"branch": "central"}).value
    assert {o["barcode"] for o in overdue} == {"B-0006", "B-0031", "B-0040"}
    later = episode.call("list_overdue_loans", {"as_of": "2026-03-19"}).value
    assert "B-0020" in {o["barcode"] for o in later}
    queue = episode.call("list_hold_queue", {"book_id": 14}).value
    assert [(h["member_name"], h["status"]) for h in queue] == [
        ("Julia Santos", "ready"),
        ("Maya Levi", "queued"),
        ("Kofi Mensah", "queued"),
    ]


# --- bad input: always an error result, never an exception or an internal error ------------------

BAD_CALLS: list[BadCall] = [
    ("get_member_account", {"member_id": 999}, "no member with id 999"),
    ("list_member_loans", {"member_id": 999}, "no member with id 999"),
    ("list_member_holds", {"member_id": 999}, "no member with id 999"),
    ("list_member_fines", {"member_id": 999}, "no member with id 999"),
    ("list_copies", {"book_id": 999}, "no book with id 999"),
    ("list_hold_queue", {"book_id": 999}, "no book with id 999"),
    ("get_copy", {"barcode": "B-9999"}, "no copy with barcode 'B-9999'"),
    ("checkout_copy", {"member_id": 999, "barcode": "B-0001"}, "no member with id 999"),
    ("checkout_copy", {"member_id": 1, "barcode": "nope"}, "no copy with barcode"),
    ("checkout_copy", {"member_id": 1, "barcode": "B-0002"}, "already on loan"),
    ("checkout_copy", {"member_id": 1, "barcode": "B-0025"}, "marked lost"),
    ("return_copy", {"barcode": "B-0001"}, "not on loan"),
    ("renew_loan", {"loan_id": 999}, "no loan with id 999"),
    ("renew_loan", {"loan_id": 22}, "not out any more"),
    ("place_hold", {"member_id": 1, "book_id": 999}, "no book with id 999"),
    ("cancel_hold", {"hold_id": 999}, "no hold with id 999"),
    ("cancel_hold", {"hold_id": 9}, "already fulfilled"),
    ("pay_fine", {"fine_id": 999, "amount_cents": 100, "method": "cash"}, "no fine with id 999"),
    ("pay_fine", {"fine_id": 2, "amount_cents": 251, "method": "cash"}, "more than the 250 cents"),
    ("pay_fine", {"fine_id": 5, "amount_cents": 1, "method": "cash"}, "already paid"),
    ("pay_fine", {"fine_id": 2, "amount_cents": 0, "method": "cash"}, "amount_cents"),
    ("pay_fine", {"fine_id": 2, "amount_cents": -5, "method": "cash"}, "amount_cents"),
    ("pay_fine", {"fine_id": 2, "amount_cents": 100, "method": "bitcoin"}, "method"),
    ("pay_fine", {"fine_id": 2, "amount_cents": 100}, "missing required argument"),
    ("waive_fine", {"fine_id": 5, "reason": "x"}, "already paid"),
    ("register_member", {"name": " ", "member_type": "adult", "phone": "1"}, "name is empty"),
    ("register_member", {"name": "Al", "member_type": "adult"}, "email or a phone"),
    ("register_member", {"name": "Al", "member_type": "adult", "email": "not-an-email"}, "is not a 'email'"),
    ("register_member", {"name": "Al", "member_type": "robot", "phone": "1"}, "member_type"),
    (
        "register_member",
        {"name": "Al", "member_type": "adult", "phone": "1", "guardian_member_id": 1},
        "only child members",
    ),
    ("register_member", {"name": "Al", "member_type": "child", "guardian_member_id": 999}, "no member with id"),
    ("update_member_contact", {"member_id": 1}, "nothing to change"),
    ("update_member_contact", {"member_id": 1, "phone": ""}, "phone is empty"),
    ("renew_membership", {"member_id": 0}, "member_id"),
    ("mark_copy_lost", {"barcode": "B-0025"}, "already marked lost"),
    ("mark_copy_lost", {"barcode": "B-0022"}, "hold shelf"),
    ("find_member", {"query": "  "}, "query is empty"),
    ("search_books", {"query": "dune", "field": "colour"}, "field"),
    ("list_overdue_loans", {"branch": "Mars"}, "no branch named 'Mars'"),
    ("list_overdue_loans", {"as_of": "2026-02-30"}, "as_of"),
    ("get_member_account", {"member_id": "one"}, "member_id"),
    ("get_member_account", {"member_id": 2**70}, "member_id"),
    ("get_member_account", {"member_id": 1, "extra": True}, "unexpected argument"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)


def test_no_tool_crashes_on_odd_values(env: Environment, episode: Episode) -> None:
    """Every tool, every parameter, a spread of valid-typed odd values: never an internal error."""
    odd: dict[str, list[Any]] = {
        "integer": [1, 2, 3, 5, 13, 22, 999, 2**63 - 1],
        "string": ["", " ", "B-0001", "b-0022", "%_\\", "'; DROP TABLE members; --", "x" * 2000, "é✓", "2026-03-16"],
        "boolean": [True, False],
    }
    valid: dict[str, Any] = {"member_id": 1, "book_id": 1, "barcode": "B-0001", "loan_id": 1, "hold_id": 1}
    valid |= {"fine_id": 2, "query": "a", "name": "Test Person", "member_type": "adult", "reason": "ok"}
    valid |= {"amount_cents": 1, "method": "cash", "email": "t@example.org"}
    assert sweep_odd_values(env, episode, odd, valid) > 150
