"""Procedural steps for the library: desk requests built from the current state.

Each maker picks a row that the request can name unambiguously (a member by
name, a book by title and branch, a copy by the barcode on it) and lists the
look-ups a desk agent makes first. The walker drops a step whose call a rule
refuses, so makers prefer rows that satisfy the rules but need not prove it.
"""

from __future__ import annotations

import random

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, by_id, unique_names
from envfarm.core.toolkit import money


def return_copy(state: StateView, rng: random.Random) -> Step | None:
    copies, books, names = by_id(state, "copies"), by_id(state, "books"), unique_names(state, "members")
    loans = [loan for loan in state["loans"] if loan["status"] == "active" and loan["member_id"] in names]
    if not loans:
        return None
    loan = rng.choice(loans)
    copy = copies[loan["copy_id"]]
    title, who = books[copy["book_id"]]["title"], names[loan["member_id"]]
    return Step(
        arguments={"barcode": copy["barcode"]},
        request=f"check in the copy of {title} (barcode {copy['barcode']}) that {who} brought back",
        lookups=[Call(tool="get_copy", arguments={"barcode": copy["barcode"]})],
    )


def checkout_copy(state: StateView, rng: random.Random) -> Step | None:
    copies, books, branches, names = (
        state["copies"],
        by_id(state, "books"),
        by_id(state, "branches"),
        unique_names(state, "members"),
    )
    members = [m for m in state["members"] if m["status"] == "active" and m["id"] in names]
    available = [c for c in copies if c["status"] == "available"]
    if not members or not available:
        return None
    member, copy = rng.choice(members), rng.choice(available)
    book = books[copy["book_id"]]
    same_branch = [c for c in copies if c["book_id"] == book["id"] and c["branch_id"] == copy["branch_id"]]
    which = f"the {branches[copy['branch_id']]['name']} copy of {book['title']}"
    if len(same_branch) > 1:
        which += f" (barcode {copy['barcode']})"
    return Step(
        arguments={"member_id": member["id"], "barcode": copy["barcode"]},
        request=f"lend {which} to {member['name']}",
        lookups=[
            Call(tool="find_member", arguments={"query": member["name"]}),
            Call(tool="search_books", arguments={"query": book["title"], "field": "title"}),
            Call(tool="list_copies", arguments={"book_id": book["id"]}),
        ],
    )


def renew_loan(state: StateView, rng: random.Random) -> Step | None:
    copies, books, names = by_id(state, "copies"), by_id(state, "books"), unique_names(state, "members")
    loans = [
        loan
        for loan in state["loans"]
        if loan["status"] == "active" and loan["member_id"] in names and loan["renewals"] < 2
    ]
    if not loans:
        return None
    loan = rng.choice(loans)
    member = names[loan["member_id"]]
    title = books[copies[loan["copy_id"]]["book_id"]]["title"]
    held_twice = sum(
        1
        for other in state["loans"]
        if other["member_id"] == loan["member_id"]
        and other["status"] == "active"
        and books[copies[other["copy_id"]]["book_id"]]["title"] == title
    )
    if held_twice > 1:
        return None
    return Step(
        arguments={"loan_id": loan["id"]},
        request=f"renew {member}'s loan of {title}",
        lookups=[
            Call(tool="find_member", arguments={"query": member}),
            Call(tool="list_member_loans", arguments={"member_id": loan["member_id"]}),
        ],
    )


def pay_fine(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "members")
    fines = [f for f in state["fines"] if f["status"] == "unpaid" and f["member_id"] in names]
    if not fines:
        return None
    fine = rng.choice(fines)
    member = names[fine["member_id"]]
    owed = [f for f in state["fines"] if f["member_id"] == fine["member_id"] and f["status"] == "unpaid"]
    if len(owed) > 1:
        return None  # "pay the fine" must name one fine; members with several are left to authored tasks
    balance = fine["amount_cents"] - fine["paid_cents"]
    method = rng.choice(["cash", "card"])
    return Step(
        arguments={"fine_id": fine["id"], "amount_cents": balance, "method": method},
        request=f"take {member}'s payment of {money(balance)} by {method}, which clears their fine",
        lookups=[
            Call(tool="find_member", arguments={"query": member}),
            Call(tool="list_member_fines", arguments={"member_id": fine["member_id"]}),
        ],
    )


def update_member_contact(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "members")
    members = [m for m in state["members"] if m["id"] in names]
    if not members:
        return None
    member = rng.choice(members)
    phone = f"555-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
    if phone == member["phone"]:
        return None
    return Step(
        arguments={"member_id": member["id"], "phone": phone},
        request=f"change {member['name']}'s phone number to {phone}",
        lookups=[Call(tool="find_member", arguments={"query": member["name"]})],
    )


def place_hold(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "members")
    shelved = {c["book_id"] for c in state["copies"] if c["status"] == "available"}
    books = [b for b in state["books"] if b["id"] not in shelved]
    members = [m for m in state["members"] if m["status"] == "active" and m["id"] in names]
    if not books or not members:
        return None
    book, member = rng.choice(books), rng.choice(members)
    return Step(
        arguments={"member_id": member["id"], "book_id": book["id"]},
        request=f"put {member['name']} on the waiting list for {book['title']}",
        lookups=[
            Call(tool="find_member", arguments={"query": member["name"]}),
            Call(tool="search_books", arguments={"query": book["title"], "field": "title"}),
        ],
    )


def renew_membership(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "members")
    members = [m for m in state["members"] if m["status"] == "active" and m["id"] in names]
    if not members:
        return None
    member = rng.choice(members)
    return Step(
        arguments={"member_id": member["id"]},
        request=f"renew {member['name']}'s library membership for another year",
        lookups=[
            Call(tool="find_member", arguments={"query": member["name"]}),
            Call(tool="get_member_account", arguments={"member_id": member["id"]}),
        ],
    )


STEPS = {
    "return_copy": return_copy,
    "checkout_copy": checkout_copy,
    "renew_loan": renew_loan,
    "pay_fine": pay_fine,
    "update_member_contact": update_member_contact,
    "place_hold": place_hold,
    "renew_membership": renew_membership,
}
