"""The bundled bank environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the state
untouched, transfers move money as the rules say, and bad input must come back as an error
result. What every environment must do (tables, docs, procedural steps, scenarios) is
tested for all of them in test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode

BASE = "james-close-holiday-fund"  # any scenario on states/base.json at 2026-06-02


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("bank")


# --- the package -----------------------------------------------------------------------------------


def test_dates_choices_and_bounds_are_typed_in_the_schema(env: Environment) -> None:
    when = env.tools["transfer_funds"].input_schema["properties"]["scheduled_for"]
    assert {"type": "string", "format": "date"} in when["anyOf"]
    reason = env.tools["file_dispute"].input_schema["properties"]["reason"]
    assert reason["enum"] == ["unauthorized", "duplicate", "incorrect_amount", "not_received"]
    amount = env.tools["deposit"].input_schema["properties"]["amount_cents"]
    assert amount["minimum"] == 1 and amount["maximum"] <= 2**63 - 1
    ident = env.tools["get_customer"].input_schema["properties"]["customer_id"]
    assert ident["maximum"] == 2**63 - 1


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); all on the base state at 2026-06-02.
REFUSALS: list[Refusal] = [
    # Sofia Rossi's checking CHK-20007 is frozen; Oliver's SAV-30010 is closed.
    ("account-active", "deposit", {"account_number": "CHK-20007", "amount_cents": 1000}, ["CHK-20007", "frozen"]),
    (
        "account-active",
        "transfer_funds",
        {"from_account": "SAV-30007", "amount_cents": 1000, "to_account": "CHK-20007"},
        ["CHK-20007", "frozen"],
    ),
    ("account-active", "set_account_status", {"account_number": "SAV-30010", "status": "active"}, ["closed"]),
    # Liam Walsh: $98.00 balance + $200.00 overdraft; savings have no overdraft.
    ("sufficient-funds", "withdraw", {"account_number": "CHK-20006", "amount_cents": 29801}, ["Liam Walsh", "$298.00"]),
    (
        "sufficient-funds",
        "transfer_funds",
        {"from_account": "SAV-30002", "amount_cents": 85001, "to_account": "CHK-20002"},
        ["Holiday fund", "$850.00"],
    ),
    # Kenji already sent $3,000.00 today.
    (
        "daily-transfer-limit",
        "transfer_funds",
        {"from_account": "CHK-20008", "amount_cents": 250000, "payee_id": 7},
        ["$3,000.00", "$5,000.00"],
    ),
    # Kenji's card 4460 was reported lost.
    ("lost-card-permanent", "set_card_status", {"card_last4": "4460", "status": "active"}, ["4460", "lost"]),
    ("lost-card-permanent", "set_card_daily_limit", {"card_last4": "4460", "daily_limit_cents": 50000}, ["4460"]),
    ("close-zero-balance", "close_account", {"account_number": "SAV-30002"}, ["Holiday fund", "$850.00"]),
    (
        "kyc-verified",
        "add_payee",
        {"customer_id": 4, "name": "Ewa", "bank_name": "Metro Bank", "account_number": "X-1"},
        ["Tomasz Nowak", "pending"],
    ),
    ("kyc-verified", "open_account", {"customer_id": 9, "account_type": "savings"}, ["Grace Mensah", "rejected"]),
    # ELECTROMART was posted 2026-03-15; Kenji's Tokyo Garden charge is already disputed.
    ("dispute-window", "file_dispute", {"transaction_id": 1, "reason": "unauthorized"}, ["ELECTROMART", "60 days"]),
    ("dispute-window", "file_dispute", {"transaction_id": 4, "reason": "duplicate"}, ["already disputed", "dispute 1"]),
    ("card-limit-range", "set_card_daily_limit", {"card_last4": "4821", "daily_limit_cents": 9999}, ["$99.99", "4821"]),
    ("card-limit-range", "set_card_daily_limit", {"card_last4": "4821", "daily_limit_cents": 500001}, ["$5,000.00"]),
]


def test_every_rule_is_tested(env: Environment) -> None:
    assert {r for r, *_ in REFUSALS} == set(env.rules)


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_close_refuses_with_a_scheduled_transfer(episode: Episode) -> None:
    assert (
        episode.call("transfer_funds", {"from_account": "SAV-30006", "amount_cents": 1, "to_account": "CHK-20005"}).ok
        is False
    )
    episode.call("deposit", {"account_number": "SAV-30006", "amount_cents": 500})
    ok = episode.call(
        "transfer_funds",
        {"from_account": "SAV-30006", "amount_cents": 500, "to_account": "CHK-20005", "scheduled_for": "2026-06-09"},
    )
    assert ok.ok, ok.error
    episode.call("withdraw", {"account_number": "SAV-30006", "amount_cents": 500})
    before = episode.state_hash()
    result = episode.call("close_account", {"account_number": "SAV-30006"})
    assert result.rule == "close-zero-balance" and "scheduled" in (result.error or "")
    assert episode.state_hash() == before


def test_immediate_internal_transfer_moves_money_both_ways(episode: Episode) -> None:
    result = episode.call(
        "transfer_funds", {"from_account": "SAV-30001", "amount_cents": 20000, "to_account": "CHK-20001"}
    )
    assert result.ok, result.error
    view = episode.view()
    assert row(view, "accounts", 2)["balance_cents"] == 1180000
    assert row(view, "accounts", 1)["balance_cents"] == 274075
    ledger = [x for x in view["transactions"] if x["transfer_id"] == result.value["transfer_id"]]
    assert sorted(x["amount_cents"] for x in ledger) == [-20000, 20000]


def test_scheduled_transfer_moves_no_money_and_counts_towards_that_day(episode: Episode) -> None:
    args = {"from_account": "CHK-20003", "amount_cents": 380000, "payee_id": 4, "scheduled_for": "2026-06-10"}
    result = episode.call("transfer_funds", args)  # June 10 already has $1,200.00 of daycare
    assert result.ok and result.value["status"] == "scheduled"
    assert row(episode.view(), "accounts", 5)["balance_cents"] == 1530000
    again = episode.call("transfer_funds", {**args, "amount_cents": 1})
    assert again.rule == "daily-transfer-limit"


def test_lookups(episode: Episode) -> None:
    assert [c["name"] for c in episode.call("find_customer", {"query": "gonz"}).value] == ["Maria Gonzalez"]
    assert episode.call("find_customer", {"query": "555-201-0008"}).value[0]["name"] == "Kenji Watanabe"
    accounts = episode.call("list_accounts", {"customer_id": 10, "include_closed": True}).value
    assert [a["account_number"] for a in accounts] == ["CHK-20010", "SAV-30010"]
    got = episode.call("get_account", {"account_number": "chk-20001"}).value
    assert got["owner"] == "Maria Gonzalez" and got["available_cents"] == 304075
    assert got["scheduled_transfers"][0]["to_payee"]["name"] == "Sunrise Property Management"
    fees = episode.call("list_transactions", {"account_number": "CHK-20006", "kind": "fee"}).value
    assert [f["description"] for f in fees] == ["OVERDRAFT FEE"]
    assert len(episode.call("list_cards", {"customer_id": 6}).value) == 2
    assert episode.call("list_payees", {"customer_id": 1}).value[0]["name"] == "Carlos Gonzalez"
    assert len(episode.call("list_transfers", {"customer_id": 3, "status": "scheduled"}).value) == 1
    assert episode.call("list_disputes", {"customer_id": 8}).value[0]["description"] == "TOKYO GARDEN RESTAURANT"
    assert episode.call("get_customer", {"customer_id": 4}).value["kyc_status"] == "pending"


BAD_CALLS: list[BadCall] = [
    ("get_customer", {"customer_id": 999}, "find_customer"),
    ("get_account", {"account_number": "CHK-1"}, "no account"),
    ("set_card_status", {"card_last4": "0000", "status": "frozen"}, "no card"),
    ("cancel_transfer", {"transfer_id": 2}, "completed"),
    ("file_dispute", {"transaction_id": 8, "reason": "duplicate"}, "deposit"),
    ("transfer_funds", {"from_account": "CHK-20001", "amount_cents": 100}, "exactly one"),
    ("transfer_funds", {"from_account": "CHK-20001", "amount_cents": 100, "payee_id": 3}, "not a payee"),
    (
        "transfer_funds",
        {"from_account": "CHK-20001", "amount_cents": 100, "payee_id": 1, "scheduled_for": "2026-06-01"},
        "past",
    ),
    ("deposit", {"account_number": "CHK-20001", "amount_cents": 0}, "amount_cents"),
    ("find_customer", {"query": " "}, "empty"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)
