"""Procedural steps for the car rental desk: requests built from the current state.

Each maker picks rows the request can name unambiguously (a customer by name, a
booking by its reference, a vehicle by its plate) and lists the look-ups a desk
agent makes first. Makers only pick arguments that the rules allow. The base
scenarios share one clock, so ``TODAY`` is that date.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, by_id, unique_names
from envfarm.core.toolkit import money
from envfarm.servers.car_rental.tools import DAILY_RATES, age_on

TODAY = "2026-10-05"  # the clock of the base scenarios
ARTICLE = {"economy": "an economy car", "compact": "a compact", "suv": "an suv", "van": "a van"}
EXTRA_WORDS = {
    "child_seat": "child seat",
    "gps": "gps",
    "extra_driver": "additional driver",
    "snow_chains": "snow chains",
}


def _day(iso: str, year: bool = True) -> str:
    d = date.fromisoformat(iso)
    return f"{d.day} {d.strftime('%B')}" + (f" {d.year}" if year else "")


def _plus(iso: str, days: int) -> str:
    return (date.fromisoformat(iso) + timedelta(days=days)).isoformat()


def _free(state: StateView, branch_id: int, cls: str, pickup: str, ret: str) -> int:
    fleet = sum(
        v["branch_id"] == branch_id and v["vehicle_class"] == cls and v["status"] != "maintenance"
        for v in state["vehicles"]
    )
    taken = sum(
        r["pickup_branch_id"] == branch_id
        and r["vehicle_class"] == cls
        and r["status"] in ("booked", "active")
        and r["pickup_date"] < ret
        and r["return_date"] > pickup
        for r in state["reservations"]
    )
    return fleet - taken


def _driver_ok(customer: dict[str, Any], cls: str, pickup: str, ret: str) -> bool:
    need = 25 if cls == "van" else 21
    return age_on(customer["date_of_birth"], pickup) >= need and customer["licence_expiry"] >= ret


def create_reservation(state: StateView, rng: random.Random) -> Step | None:
    names, branches = unique_names(state, "customers"), by_id(state, "branches")
    customers = [c for c in state["customers"] if c["id"] in names]
    for _ in range(40):
        customer = rng.choice(customers)
        branch = rng.choice(sorted(branches))
        cls = rng.choice(sorted(DAILY_RATES))
        pickup = _plus(TODAY, rng.randint(3, 25))
        ret = _plus(pickup, rng.randint(1, 6))
        if not _driver_ok(customer, cls, pickup, ret) or _free(state, branch, cls, pickup, ret) < 1:
            continue
        other = rng.choice([b for b in sorted(branches) if b != branch]) if rng.random() < 0.3 else None
        args: dict[str, Any] = {
            "customer_id": customer["id"],
            "pickup_branch": branches[branch]["name"],
            "vehicle_class": cls,
            "pickup_date": pickup,
            "return_date": ret,
        }
        request = (
            f"book {ARTICLE[cls]} for {customer['name']} at the {branches[branch]['name']} branch "
            f"from {_day(pickup, year=False)} to {_day(ret)}"
        )
        if other is not None:
            args["return_branch"] = branches[other]["name"]
            request += f", returning it to {branches[other]['name']}"
        lookup_args = {k: args[k] for k in ("pickup_branch", "pickup_date", "return_date")}
        if other is not None:
            lookup_args["return_branch"] = args["return_branch"]
        return Step(
            arguments=args,
            request=request,
            lookups=[
                Call(tool="find_customer", arguments={"query": customer["name"]}),
                Call(tool="check_availability", arguments=lookup_args),
            ],
        )
    return None


def add_extra(state: StateView, rng: random.Random) -> Step | None:
    names, extras = unique_names(state, "customers"), by_id(state, "extras")
    booked = [r for r in state["reservations"] if r["status"] == "booked" and r["customer_id"] in names]
    if not booked:
        return None
    res = rng.choice(booked)
    extra = extras[rng.choice(sorted(extras))]
    have = {x["extra_id"]: x["quantity"] for x in state["reservation_extras"] if x["reservation_id"] == res["id"]}
    quantity = rng.choice([q for q in (1, 2) if have.get(extra["id"]) != q])
    word = EXTRA_WORDS[extra["code"]]
    what = f"a {word}" if quantity == 1 and extra["code"] != "snow_chains" else f"{quantity} {word}s"
    if extra["code"] == "snow_chains":
        what = f"{quantity} set{'s' if quantity > 1 else ''} of snow chains"
    return Step(
        arguments={"reference": res["reference"], "extra": extra["code"], "quantity": quantity},
        request=f"put {what} on {names[res['customer_id']]}'s booking {res['reference']}",
        lookups=[
            Call(tool="get_reservation", arguments={"reference": res["reference"]}),
            Call(tool="list_extras", arguments={}),
        ],
    )


def cancel_reservation(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "customers")
    booked = [r for r in state["reservations"] if r["status"] == "booked" and r["customer_id"] in names]
    if not booked:
        return None
    res = rng.choice(booked)
    who = names[res["customer_id"]]
    return Step(
        arguments={"reference": res["reference"]},
        request=f"cancel {who}'s booking {res['reference']} starting {_day(res['pickup_date'])}",
        lookups=[
            Call(tool="find_customer", arguments={"query": who}),
            Call(tool="list_customer_reservations", arguments={"customer_id": res["customer_id"], "status": "booked"}),
        ],
    )


def start_rental(state: StateView, rng: random.Random) -> Step | None:
    names, branches, customers = unique_names(state, "customers"), by_id(state, "branches"), by_id(state, "customers")
    options = []
    for res in state["reservations"]:
        if res["status"] != "booked" or res["pickup_date"] != TODAY or res["customer_id"] not in names:
            continue
        if not _driver_ok(customers[res["customer_id"]], res["vehicle_class"], res["pickup_date"], res["return_date"]):
            continue
        for v in state["vehicles"]:
            if (
                v["status"] == "available"
                and v["branch_id"] == res["pickup_branch_id"]
                and v["vehicle_class"] == res["vehicle_class"]
            ):
                options.append((res, v))
    if not options:
        return None
    res, v = rng.choice(options)
    branch = branches[res["pickup_branch_id"]]["name"]
    return Step(
        arguments={"reference": res["reference"], "plate": v["plate"]},
        request=(
            f"hand the {v['make_model']} {v['plate']} to {names[res['customer_id']]} for booking {res['reference']}"
        ),
        lookups=[
            Call(tool="get_reservation", arguments={"reference": res["reference"]}),
            Call(
                tool="list_vehicles",
                arguments={"branch": branch, "vehicle_class": res["vehicle_class"], "status": "available"},
            ),
        ],
    )


def return_vehicle(state: StateView, rng: random.Random) -> Step | None:
    names, vehicles = unique_names(state, "customers"), by_id(state, "vehicles")
    rentals = {r["reservation_id"]: r for r in state["rentals"]}
    active = [r for r in state["reservations"] if r["status"] == "active" and r["id"] in rentals]
    if not active:
        return None
    res = rng.choice(active)
    rental = rentals[res["id"]]
    v = vehicles[rental["vehicle_id"]]
    mileage = rental["start_mileage"] + rng.randint(40, 1200)
    fuel = rng.randint(0, 8)
    who = names.get(res["customer_id"], "the customer")
    return Step(
        arguments={"reference": res["reference"], "mileage": mileage, "fuel_level": fuel},
        request=(
            f"check in the {v['make_model']} {v['plate']} that {who} brought back with {mileage} km on the "
            f"clock and the tank at {fuel} eighths"
        ),
        lookups=[Call(tool="get_vehicle", arguments={"plate": v["plate"]})],
    )


def record_payment(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "customers")
    owed = []
    for res in state["reservations"]:
        charged = sum(c["amount_cents"] for c in state["charges"] if c["reservation_id"] == res["id"])
        paid = sum(p["amount_cents"] for p in state["payments"] if p["reservation_id"] == res["id"])
        if charged > paid and res["customer_id"] in names:
            owed.append((res, charged - paid))
    if not owed:
        return None
    res, balance = rng.choice(owed)
    amount = balance if balance <= 1000 or rng.random() < 0.6 else rng.randint(1, balance // 1000) * 1000
    method = rng.choice(["card", "cash"])
    how = "by card" if method == "card" else "in cash"
    return Step(
        arguments={"reference": res["reference"], "amount_cents": amount, "method": method},
        request=(
            f"take a payment of {money(amount, 'EUR ')} {how} from {names[res['customer_id']]} "
            f"for booking {res['reference']}"
        ),
        lookups=[Call(tool="get_reservation", arguments={"reference": res["reference"]})],
    )


def set_vehicle_status(state: StateView, rng: random.Random) -> Step | None:
    vehicles = [v for v in state["vehicles"] if v["status"] != "rented"]
    if not vehicles:
        return None
    v = rng.choice(vehicles)
    if v["status"] == "maintenance":
        status, request = "available", f"put the {v['make_model']} {v['plate']} back into service"
    else:
        status, request = "maintenance", f"take the {v['make_model']} {v['plate']} out of service for maintenance"
    return Step(
        arguments={"plate": v["plate"], "status": status},
        request=request,
        lookups=[Call(tool="get_vehicle", arguments={"plate": v["plate"]})],
    )


STEPS = {
    "create_reservation": create_reservation,
    "add_extra": add_extra,
    "cancel_reservation": cancel_reservation,
    "start_rental": start_rental,
    "return_vehicle": return_vehicle,
    "record_payment": record_payment,
    "set_vehicle_status": set_vehicle_status,
}
