"""Procedural steps for the bank: valid mutations picked from the current state, said the way a
customer would say them (names, amounts and dates; card numbers by their last four digits).

Each maker checks the rules the tool enforces (active accounts, funds and overdraft, the daily
transfer limit, card status, the dispute window), so the step it returns succeeds.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, StepMaker, by_id, unique_names
from envfarm.core.toolkit import money

from .tools import CARD_LIMIT_MAX_CENTS, CARD_LIMIT_MIN_CENTS, DAILY_TRANSFER_LIMIT_CENTS, DISPUTABLE

REASON_WORDS = {
    "unauthorized": "unauthorized",
    "duplicate": "a duplicate charge",
    "incorrect_amount": "charged at the wrong amount",
    "not_received": "paid for but never received",
}


def _day(iso: str) -> str:
    d = date.fromisoformat(iso)
    return f"{d.strftime('%B')} {d.day}"


def _today(state: StateView) -> str:
    """The scenario date, read from the state: the newest date any row was created on or posted."""
    dates = [t["created"] for t in state["transfers"]] + [x["posted"] for x in state["transactions"]]
    return max(dates)


def _phrase(state: StateView, account: dict[str, Any]) -> str:
    """How the owner names an account, unambiguously among their own accounts."""
    mine = [a for a in state["accounts"] if a["customer_id"] == account["customer_id"] and a["status"] != "closed"]
    nick = account["nickname"]
    if nick and sum(a["nickname"] == nick for a in mine) == 1:
        return f"{nick} {account['account_type']} account"
    if sum(a["account_type"] == account["account_type"] for a in mine) == 1:
        return f"{account['account_type']} account"
    return f"{account['account_type']} account {account['number']}"


def _owner(state: StateView, account: dict[str, Any]) -> dict[str, Any]:
    return by_id(state, "customers")[account["customer_id"]]


def _looked_up(customer: dict[str, Any], *more: Call) -> list[Call]:
    return [
        Call(tool="find_customer", arguments={"query": customer["name"]}),
        Call(tool="list_accounts", arguments={"customer_id": customer["id"]}),
        *more,
    ]


def _active_accounts(state: StateView) -> list[dict[str, Any]]:
    names = unique_names(state, "customers")
    return [a for a in state["accounts"] if a["status"] == "active" and a["customer_id"] in names]


def _sent_on(state: StateView, account_id: int, day: str) -> int:
    return sum(
        t["amount_cents"]
        for t in state["transfers"]
        if t["from_account_id"] == account_id and t["scheduled_for"] == day and t["status"] != "cancelled"
    )


def deposit(state: StateView, rng: random.Random) -> Step | None:
    accounts = _active_accounts(state)
    if not accounts:
        return None
    account = rng.choice(accounts)
    owner = _owner(state, account)
    amount = rng.choice([2000, 5000, 12500, 25000, 40000, 100000])
    return Step(
        arguments={"account_number": account["number"], "amount_cents": amount},
        request=(
            f"deposit {money(amount, thousands=True, whole=True)} in cash into "
            f"{owner['name']}'s {_phrase(state, account)}"
        ),
        lookups=_looked_up(owner),
    )


def withdraw(state: StateView, rng: random.Random) -> Step | None:
    amounts = [2000, 5000, 10000, 20000, 50000]
    options = [
        (a, x) for a in _active_accounts(state) for x in amounts if x <= a["balance_cents"] + a["overdraft_limit_cents"]
    ]
    if not options:
        return None
    account, amount = rng.choice(options)
    owner = _owner(state, account)
    return Step(
        arguments={"account_number": account["number"], "amount_cents": amount},
        request=(
            f"withdraw {money(amount, thousands=True, whole=True)} in cash from "
            f"{owner['name']}'s {_phrase(state, account)}"
        ),
        lookups=_looked_up(owner),
    )


def transfer_funds(state: StateView, rng: random.Random) -> Step | None:
    today = _today(state)
    options: list[tuple[dict[str, Any], str, dict[str, Any], int]] = []  # (source, "account" or "payee", to, room)
    for source in _active_accounts(state):
        room = min(
            source["balance_cents"] + source["overdraft_limit_cents"],
            DAILY_TRANSFER_LIMIT_CENTS - _sent_on(state, source["id"], today),
        )
        if room < 1000:
            continue
        for target in state["accounts"]:
            mine = target["customer_id"] == source["customer_id"] and target["id"] != source["id"]
            if mine and target["status"] == "active":
                options.append((source, "account", target, room))
        for payee in state["payees"]:
            if payee["customer_id"] == source["customer_id"]:
                options.append((source, "payee", payee, room))
    if not options:
        return None
    source, kind, to, room = rng.choice(options)
    amount = rng.choice([x for x in (1000, 5000, 10000, 25000, 50000, 100000) if x <= room])
    owner = _owner(state, source)
    args: dict[str, object] = {"from_account": source["number"], "amount_cents": amount}
    if kind == "account":
        args["to_account"] = to["number"]
        where = f"their {_phrase(state, to)}"  # the same owner's other account
        lookups = _looked_up(owner)
    else:
        args["payee_id"] = to["id"]
        where = f"their payee {to['name']}"
        lookups = _looked_up(owner, Call(tool="list_payees", arguments={"customer_id": owner["id"]}))
        if sum(p["name"] == to["name"] for p in state["payees"] if p["customer_id"] == owner["id"]) > 1:
            where += f" (account {to['account_number']} at {to['bank_name']})"
    return Step(
        arguments=args,
        request=(
            f"transfer {money(amount, thousands=True, whole=True)} now from "
            f"{owner['name']}'s {_phrase(state, source)} to {where}"
        ),
        lookups=lookups,
    )


def cancel_transfer(state: StateView, rng: random.Random) -> Step | None:
    accounts, payees, names = by_id(state, "accounts"), by_id(state, "payees"), unique_names(state, "customers")
    options = []
    for t in state["transfers"]:
        if t["status"] != "scheduled":
            continue
        owner = _owner(state, accounts[t["from_account_id"]])
        if owner["id"] not in names:
            continue
        if t["payee_id"] is not None:
            dest = payees[t["payee_id"]]["name"]
        else:
            dest = _phrase(state, accounts[t["to_account_id"]])
        same = [
            u
            for u in state["transfers"]
            if u["status"] == "scheduled"
            and u["from_account_id"] == t["from_account_id"]
            and u["amount_cents"] == t["amount_cents"]
            and u["scheduled_for"] == t["scheduled_for"]
            and u["payee_id"] == t["payee_id"]
            and u["to_account_id"] == t["to_account_id"]
        ]
        if len(same) == 1:
            options.append((t, owner, dest))
    if not options:
        return None
    t, owner, dest = rng.choice(options)
    return Step(
        arguments={"transfer_id": t["id"]},
        request=(
            f"cancel {owner['name']}'s {money(t['amount_cents'], thousands=True, whole=True)} transfer to {dest} "
            f"scheduled for {_day(t['scheduled_for'])}"
        ),
        lookups=[
            Call(tool="find_customer", arguments={"query": owner["name"]}),
            Call(tool="list_transfers", arguments={"customer_id": owner["id"], "status": "scheduled"}),
        ],
    )


def _usable_cards(state: StateView) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    accounts, names = by_id(state, "accounts"), unique_names(state, "customers")
    out = []
    for card in state["cards"]:
        if card["status"] not in ("active", "frozen"):
            continue
        owner = _owner(state, accounts[card["account_id"]])
        if owner["id"] in names:
            out.append((card, owner))
    return out


def _card_lookups(owner: dict[str, Any]) -> list[Call]:
    return [
        Call(tool="find_customer", arguments={"query": owner["name"]}),
        Call(tool="list_cards", arguments={"customer_id": owner["id"]}),
    ]


def set_card_daily_limit(state: StateView, rng: random.Random) -> Step | None:
    cards = _usable_cards(state)
    if not cards:
        return None
    card, owner = rng.choice(cards)
    limits = [x for x in range(CARD_LIMIT_MIN_CENTS, CARD_LIMIT_MAX_CENTS + 1, 50000) if x != card["daily_limit_cents"]]
    limit = rng.choice(limits)
    return Step(
        arguments={"card_last4": card["last4"], "daily_limit_cents": limit},
        request=(
            f"set the daily limit on {owner['name']}'s card ending {card['last4']} to "
            f"{money(limit, thousands=True, whole=True)}"
        ),
        lookups=_card_lookups(owner),
    )


def set_card_status(state: StateView, rng: random.Random) -> Step | None:
    cards = _usable_cards(state)
    if not cards:
        return None
    card, owner = rng.choice(cards)
    status = "frozen" if card["status"] == "active" else "active"
    verb = "freeze" if status == "frozen" else "unfreeze"
    return Step(
        arguments={"card_last4": card["last4"], "status": status},
        request=f"{verb} {owner['name']}'s card ending {card['last4']}",
        lookups=_card_lookups(owner),
    )


def report_card_lost(state: StateView, rng: random.Random) -> Step | None:
    cards = _usable_cards(state)
    if not cards:
        return None
    card, owner = rng.choice(cards)
    return Step(
        arguments={"card_last4": card["last4"]},
        request=f"report {owner['name']}'s card ending {card['last4']} lost and block it",
        lookups=_card_lookups(owner),
    )


def file_dispute(state: StateView, rng: random.Random) -> Step | None:
    earliest = (date.fromisoformat(_today(state)) - timedelta(days=60)).isoformat()
    disputed = {d["transaction_id"] for d in state["disputes"]}
    accounts, names = by_id(state, "accounts"), unique_names(state, "customers")
    options = []
    for tx in state["transactions"]:
        if tx["kind"] not in DISPUTABLE or tx["posted"] < earliest or tx["id"] in disputed:
            continue
        twins = [
            x
            for x in state["transactions"]
            if x["account_id"] == tx["account_id"]
            and x["description"] == tx["description"]
            and x["posted"] == tx["posted"]
            and x["amount_cents"] == tx["amount_cents"]
        ]
        account = accounts[tx["account_id"]]
        owner = _owner(state, account)
        if len(twins) == 1 and owner["id"] in names:
            options.append((tx, account, owner))
    if not options:
        return None
    tx, account, owner = rng.choice(options)
    reason = rng.choice(sorted(REASON_WORDS))
    return Step(
        arguments={"transaction_id": tx["id"], "reason": reason},
        request=(
            f"dispute the {money(-tx['amount_cents'], thousands=True, whole=True)} {tx['description']} entry of "
            f"{_day(tx['posted'])} on {owner['name']}'s {_phrase(state, account)} as {REASON_WORDS[reason]}"
        ),
        lookups=_looked_up(
            owner,
            Call(tool="list_transactions", arguments={"account_number": account["number"], "since": tx["posted"]}),
        ),
    )


STEPS: dict[str, StepMaker] = {
    "deposit": deposit,
    "withdraw": withdraw,
    "transfer_funds": transfer_funds,
    "cancel_transfer": cancel_transfer,
    "set_card_daily_limit": set_card_daily_limit,
    "set_card_status": set_card_status,
    "report_card_lost": report_card_lost,
    "file_dispute": file_dispute,
}
