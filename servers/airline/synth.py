"""Procedural steps for the airline: desk requests built from the current state.

Each maker picks a booking the request can name by its record locator (which
passengers do quote) or a passenger by name, chooses arguments that the fare
rules allow, and lists the look-ups a reservations agent makes first.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, StepMaker, by_id, unique_names
from envfarm.core.toolkit import money
from envfarm.servers.airline.tools import CHANGE_FEE_CENTS, FREE_BAGS, MAX_BAGS, SEAT_ROWS

NOW = datetime.fromisoformat("2026-05-10T09:00:00+00:00")  # the bundled scenarios' clock


def _departure(flight: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(f"{flight['date']}T{flight['departure_time']}:00+00:00")


def _open(flight: dict[str, Any]) -> bool:
    return flight["status"] in ("scheduled", "delayed") and _departure(flight) > NOW


def _flight_words(flight: dict[str, Any]) -> str:
    return f"{flight['number']} from {flight['origin']} to {flight['destination']} on {flight['date']}"


def _open_bookings(state: StateView) -> list[dict[str, Any]]:
    flights = by_id(state, "flights")
    return [b for b in state["bookings"] if b["status"] == "confirmed" and _open(flights[b["flight_id"]])]


def _occupied(state: StateView, flight_id: int, cabin: str) -> int:
    return sum(
        1
        for b in state["bookings"]
        if b["flight_id"] == flight_id and b["cabin"] == cabin and b["status"] != "cancelled"
    )


def assign_seat(state: StateView, rng: random.Random) -> Step | None:
    bookings = _open_bookings(state)
    if not bookings:
        return None
    b = rng.choice(bookings)
    taken = {x["seat"] for x in state["bookings"] if x["flight_id"] == b["flight_id"] and x["status"] != "cancelled"}
    first, last, letters = SEAT_ROWS[b["cabin"]]
    free = [f"{r}{c}" for r in range(first, last + 1) for c in letters if f"{r}{c}" not in taken]
    seat = rng.choice(free)
    return Step(
        arguments={"locator": b["locator"], "seat": seat},
        request=f"put booking {b['locator']} in seat {seat}",
        lookups=[
            Call(tool="get_booking", arguments={"locator": b["locator"]}),
            Call(tool="get_flight", arguments={"flight_id": b["flight_id"]}),
        ],
    )


def add_checked_bag(state: StateView, rng: random.Random) -> Step | None:
    passengers = by_id(state, "passengers")
    counts = {b["id"]: sum(1 for x in state["bags"] if x["booking_id"] == b["id"]) for b in state["bookings"]}
    bookings = [b for b in _open_bookings(state) if counts[b["id"]] < MAX_BAGS]
    if not bookings:
        return None
    b = rng.choice(bookings)
    weight = rng.randint(8, 32)
    free = counts[b["id"]] < FREE_BAGS[passengers[b["passenger_id"]]["tier"]]
    args: dict[str, object] = {"locator": b["locator"], "weight_kg": weight}
    request = f"add a checked bag of {weight} kg to booking {b['locator']}"
    if not free:
        method = rng.choice(["card", "voucher"])
        args["method"] = method
        request += f", paying the bag fee by {method}"
    return Step(arguments=args, request=request, lookups=[Call(tool="list_bags", arguments={"locator": b["locator"]})])


def cancel_booking(state: StateView, rng: random.Random) -> Step | None:
    bookings = _open_bookings(state)
    if not bookings:
        return None
    b = rng.choice(bookings)
    return Step(
        arguments={"locator": b["locator"]},
        request=f"cancel booking {b['locator']} and refund whatever the fare rules allow",
        lookups=[Call(tool="quote_cancellation", arguments={"locator": b["locator"]})],
    )


def create_booking(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "passengers")
    numbers: dict[tuple[str, str], int] = {}
    for f in state["flights"]:
        numbers[(f["number"], f["date"])] = numbers.get((f["number"], f["date"]), 0) + 1
    options = []
    for f in state["flights"]:
        if not _open(f) or numbers[(f["number"], f["date"])] > 1:
            continue
        for c in state["cabins"]:
            if c["flight_id"] != f["id"] or _occupied(state, f["id"], c["cabin"]) >= c["capacity"]:
                continue
            for pid in sorted(names):
                on_it = any(
                    b["passenger_id"] == pid and b["flight_id"] == f["id"] and b["status"] != "cancelled"
                    for b in state["bookings"]
                )
                if not on_it:
                    options.append((pid, f, c["cabin"]))
    if not options:
        return None
    pid, flight, cabin = rng.choice(options)
    fare_class = rng.choice(["basic", "standard", "flex"])
    method = rng.choice(["card", "voucher"])
    return Step(
        arguments={
            "passenger_id": pid,
            "flight_id": flight["id"],
            "cabin": cabin,
            "fare_class": fare_class,
            "method": method,
        },
        request=f"book {names[pid]} on {_flight_words(flight)}, {cabin}, {fare_class} fare, paid by {method}",
        lookups=[
            Call(tool="find_passenger", arguments={"query": names[pid]}),
            Call(tool="search_flights", arguments={"number": flight["number"], "date": flight["date"]}),
        ],
    )


def change_flight(state: StateView, rng: random.Random) -> Step | None:
    flights = by_id(state, "flights")
    options = []
    for b in _open_bookings(state):
        if b["fare_class"] == "basic":
            continue
        old = flights[b["flight_id"]]
        for f in state["flights"]:
            if (
                f["id"] == old["id"]
                or not _open(f)
                or (f["origin"], f["destination"]) != (old["origin"], old["destination"])
            ):
                continue
            capacity = next(
                c["capacity"] for c in state["cabins"] if c["flight_id"] == f["id"] and c["cabin"] == b["cabin"]
            )
            on_it = any(
                x["passenger_id"] == b["passenger_id"] and x["flight_id"] == f["id"] and x["status"] != "cancelled"
                for x in state["bookings"]
            )
            if not on_it and _occupied(state, f["id"], b["cabin"]) < capacity:
                options.append((b, f))
    if not options:
        return None
    b, f = rng.choice(options)
    cabin = next(c for c in state["cabins"] if c["flight_id"] == f["id"] and c["cabin"] == b["cabin"])
    due = CHANGE_FEE_CENTS[b["fare_class"]] + max(0, cabin[f"{b['fare_class']}_fare_cents"] - b["fare_cents"])
    args: dict[str, object] = {"locator": b["locator"], "new_flight_id": f["id"]}
    request = f"move booking {b['locator']} to {_flight_words(f)}"
    if due > 0:  # a method is passed only when something is charged, so it always matters
        args["method"] = rng.choice(["card", "voucher"])
        request += f", paying the {money(due)} due by {args['method']}"
    return Step(
        arguments=args,
        request=request,
        lookups=[
            Call(tool="get_booking", arguments={"locator": b["locator"]}),
            Call(tool="search_flights", arguments={"number": f["number"], "date": f["date"]}),
            Call(tool="quote_change", arguments={"locator": b["locator"], "new_flight_id": f["id"]}),
        ],
    )


def update_passenger_contact(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "passengers")
    if not names:
        return None
    pid = rng.choice(sorted(names))
    used = {p["phone"] for p in state["passengers"]}
    phone = f"555-{rng.randint(2000, 9999)}"
    while phone in used:
        phone = f"555-{rng.randint(2000, 9999)}"
    return Step(
        arguments={"passenger_id": pid, "phone": phone},
        request=f"change {names[pid]}'s phone number to {phone}",
        lookups=[Call(tool="find_passenger", arguments={"query": names[pid]})],
    )


STEPS: dict[str, StepMaker] = {
    "assign_seat": assign_seat,
    "add_checked_bag": add_checked_bag,
    "cancel_booking": cancel_booking,
    "create_booking": create_booking,
    "change_flight": change_flight,
    "update_passenger_contact": update_passenger_contact,
}
