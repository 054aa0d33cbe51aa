"""Procedural steps for the restaurant: host-stand requests built from the current state.

Each maker picks rows the request can name unambiguously (a guest by name, a
table by its label, a booking by guest and date) and arguments that satisfy the
house rules, and lists the look-ups a host makes first.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, unique_names

NOW = datetime.fromisoformat("2026-07-14T15:00:00+00:00")  # the scenarios' clock
SLOTS = ["12:00", "12:30", "13:00", "18:00", "18:30", "19:00", "19:30", "20:00", "20:30"]


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def _future(r: dict[str, Any], hours: int = 0) -> bool:
    start = datetime.fromisoformat(f"{r['date']}T{r['time']}:00+00:00")
    return start - NOW > timedelta(hours=hours)


def _open(state: StateView, day: str, hhmm: str) -> bool:
    weekday = date.fromisoformat(day).weekday()
    return any(
        s["weekday"] == weekday
        and _minutes(s["opens"]) <= _minutes(hhmm)
        and _minutes(hhmm) + 120 <= _minutes(s["closes"])
        for s in state["services"]
    )


def _free(state: StateView, table_id: int, day: str, hhmm: str, skip: int | None = None) -> bool:
    return all(
        abs(_minutes(r["time"]) - _minutes(hhmm)) >= 120
        for r in state["reservations"]
        if r["table_id"] == table_id and r["date"] == day and r["status"] in ("booked", "seated") and r["id"] != skip
    )


def _upcoming(state: StateView, guest_id: int) -> list[dict[str, Any]]:
    return [r for r in state["reservations"] if r["guest_id"] == guest_id and r["status"] == "booked" and _future(r)]


def _day_words(day: str) -> str:
    d = date.fromisoformat(day)
    return f"{d.strftime('%A')} {d.day} {d.strftime('%B')}"


def create_reservation(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "guests")
    guests = [g for g in state["guests"] if g["id"] in names and len(_upcoming(state, g["id"])) < 2]
    if not guests:
        return None
    guest = rng.choice(guests)
    for _ in range(30):  # a few tries to land on an open day and a free table
        day = (NOW.date() + timedelta(days=rng.randint(1, 12))).isoformat()
        hhmm = rng.choice(SLOTS)
        party = rng.randint(1, 6)
        if not _open(state, day, hhmm):
            continue
        tables = [
            t
            for t in state["dining_tables"]
            if t["seats"] >= party and (t["area"] != "private" or guest["vip"]) and _free(state, t["id"], day, hhmm)
        ]
        if not tables:
            continue
        table = rng.choice(tables)
        return Step(
            arguments={
                "guest_id": guest["id"],
                "table_id": table["id"],
                "date": day,
                "time": hhmm,
                "party_size": party,
            },
            request=f"book table {table['label']} for {guest['name']}, {party} people, on {_day_words(day)} at {hhmm}",
            lookups=[
                Call(tool="find_guest", arguments={"query": guest["name"]}),
                Call(tool="check_availability", arguments={"date": day, "time": hhmm, "party_size": party}),
            ],
        )
    return None


def _one_booking(state: StateView, rng: random.Random, hours: int = 0) -> tuple[dict[str, Any], str] | None:
    """A future booked reservation whose guest name and date identify it."""
    names = unique_names(state, "guests")
    candidates = []
    for r in state["reservations"]:
        if r["status"] != "booked" or not _future(r, hours) or r["guest_id"] not in names:
            continue
        same_day = [x for x in _upcoming(state, r["guest_id"]) if x["date"] == r["date"]]
        if len(same_day) == 1:
            candidates.append(r)
    if not candidates:
        return None
    r = rng.choice(candidates)
    return r, names[r["guest_id"]]


def _booking_lookups(r: dict[str, Any], who: str) -> list[Call]:
    """How a host finds the booking ``_one_booking`` picked: the guest by name, then their bookings."""
    return [
        Call(tool="find_guest", arguments={"query": who}),
        Call(tool="list_guest_reservations", arguments={"guest_id": r["guest_id"]}),
    ]


def cancel_reservation(state: StateView, rng: random.Random) -> Step | None:
    picked = _one_booking(state, rng)
    if picked is None:
        return None
    r, who = picked
    return Step(
        arguments={"reservation_id": r["id"]},
        request=f"cancel {who}'s booking on {_day_words(r['date'])} at {r['time']}",
        lookups=_booking_lookups(r, who),
    )


def set_special_request(state: StateView, rng: random.Random) -> Step | None:
    picked = _one_booking(state, rng)
    if picked is None:
        return None
    r, who = picked
    text = rng.choice(
        ["nut allergy", "high chair needed", "window seat please", "celebrating an anniversary", "gluten free"]
    )
    return Step(
        arguments={"reservation_id": r["id"], "request": text},
        request=f"note '{text}' on {who}'s booking on {_day_words(r['date'])}",
        lookups=_booking_lookups(r, who),
    )


def change_reservation(state: StateView, rng: random.Random) -> Step | None:
    picked = _one_booking(state, rng)
    if picked is None:
        return None
    r, who = picked
    options = []
    for hhmm in SLOTS:
        later = _future({"date": r["date"], "time": hhmm})
        if (
            hhmm != r["time"]
            and later
            and _open(state, r["date"], hhmm)
            and _free(state, r["table_id"], r["date"], hhmm, r["id"])
        ):
            options.append(hhmm)
    if not options:
        return None
    hhmm = rng.choice(options)
    return Step(
        arguments={"reservation_id": r["id"], "time": hhmm},
        request=f"move {who}'s booking on {_day_words(r['date'])} from {r['time']} to {hhmm}, same table",
        lookups=_booking_lookups(r, who),
    )


def add_preorder(state: StateView, rng: random.Random) -> Step | None:
    picked = _one_booking(state, rng)
    items = [m for m in state["menu_items"] if m["available"]]
    if picked is None or not items:
        return None
    r, who = picked
    item = rng.choice(items)
    quantity = rng.randint(1, max(1, r["party_size"]))
    return Step(
        arguments={"reservation_id": r["id"], "menu_item_id": item["id"], "quantity": quantity},
        request=f"pre-order {quantity} x {item['name']} for {who}'s booking on {_day_words(r['date'])}",
        lookups=[*_booking_lookups(r, who), Call(tool="list_menu", arguments={})],
    )


def remove_from_waitlist(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "guests")
    entries = [w for w in state["waitlist"] if w["status"] == "waiting" and w["guest_id"] in names]
    if not entries:
        return None
    w = rng.choice(entries)
    who = names[w["guest_id"]]
    return Step(
        arguments={"waitlist_id": w["id"]},
        request=f"take {who} off the waitlist for {_day_words(w['date'])}",
        lookups=[Call(tool="list_waitlist", arguments={"date": w["date"]})],
    )


STEPS = {
    "create_reservation": create_reservation,
    "cancel_reservation": cancel_reservation,
    "change_reservation": change_reservation,
    "set_special_request": set_special_request,
    "add_preorder": add_preorder,
    "remove_from_waitlist": remove_from_waitlist,
}
