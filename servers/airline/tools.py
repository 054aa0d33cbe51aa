"""Quill Air's tools: look-ups for passengers, flights, bookings, bags and payments, and the
reservation desk's mutations.

Every rule in ``RULES`` (``__init__.py``) that can refuse a call is enforced here and named
in the ``ToolError``; the charging rules (``change-fee``, ``cancellation-refund``,
``bag-allowance``) are applied by the tools that charge. Time is the scenario clock
(``ctx.now``), never the wall clock.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import Code, DateStr, Email, Id, Phone, SearchText, like, money, update_contact
from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

CHANGE_FEE_CENTS = {"standard": 7500, "flex": 0}
STANDARD_CANCEL_FEE_CENTS = 10000
FREE_BAGS = {"member": 0, "silver": 1, "gold": 2, "platinum": 3}
BAG_FEE_CENTS = 3500
MAX_BAGS = 5
MAX_BAG_KG = 32
CHECK_IN_OPENS = timedelta(hours=24)
CHECK_IN_CLOSES = timedelta(minutes=45)
REFUND_CUTOFF = timedelta(hours=24)
SEAT_ROWS = {"business": (1, 4, "ABCD"), "economy": (10, 35, "ABCDEF")}
LOCATOR_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
SEARCH_LIMIT = 20

Weight = Annotated[int, Field(ge=1, le=100)]
CabinName = Literal["economy", "business"]
FareClass = Literal["basic", "standard", "flex"]
Method = Literal["card", "voucher"]
Airport = Annotated[str, Field(min_length=3, max_length=3, pattern="^[A-Za-z]{3}$")]


# --- helpers (not tools) -------------------------------------------------------------------------


def _passenger(ctx: ToolContext, passenger_id: int) -> dict[str, Any]:
    row = ctx.one("SELECT * FROM passengers WHERE id = ?", (passenger_id,))
    if row is None:
        raise ToolError(f"no passenger with id {passenger_id}; look passengers up with find_passenger")
    return row


def _flight(ctx: ToolContext, flight_id: int) -> dict[str, Any]:
    row = ctx.one("SELECT * FROM flights WHERE id = ?", (flight_id,))
    if row is None:
        raise ToolError(f"no flight with id {flight_id}; look flights up with search_flights")
    return row


def _booking(ctx: ToolContext, locator: str) -> dict[str, Any]:
    code = locator.strip().upper()
    row = ctx.one(
        "SELECT b.*, p.name AS passenger_name, p.tier FROM bookings b JOIN passengers p ON p.id = b.passenger_id "
        "WHERE b.locator = ?",
        (code,),
    )
    if row is None:
        raise ToolError(
            f"no booking with record locator {locator!r}; locators look like QX7K2P (see list_passenger_bookings)"
        )
    return row


def _what(booking: dict[str, Any]) -> str:
    return f"booking {booking['locator']} ({booking['passenger_name']})"


def _flight_name(flight: dict[str, Any]) -> str:
    return f"flight {flight['number']} {flight['origin']}-{flight['destination']} on {flight['date']}"


def _departure(flight: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(f"{flight['date']}T{flight['departure_time']}:00+00:00")


def _now(ctx: ToolContext) -> datetime:
    now = ctx.now
    return now if now.tzinfo is not None else now.replace(tzinfo=UTC)


def _require_open(ctx: ToolContext, flight: dict[str, Any], doing: str) -> None:
    """Enforce flight-open."""
    if flight["status"] == "cancelled":
        raise ToolError(f"cannot {doing}: {_flight_name(flight)} was cancelled by the airline", rule="flight-open")
    if flight["status"] == "departed" or _departure(flight) <= _now(ctx):
        raise ToolError(f"cannot {doing}: {_flight_name(flight)} has already departed", rule="flight-open")


def _require_not_checked_in(booking: dict[str, Any], doing: str) -> None:
    if booking["status"] == "checked_in":
        raise ToolError(f"{_what(booking)} is checked in, so it cannot be {doing}", rule="no-changes-after-check-in")


def _require_active(booking: dict[str, Any]) -> None:
    if booking["status"] == "cancelled":
        raise ToolError(f"{_what(booking)} was cancelled on {booking['cancelled']}")


def _cabin(ctx: ToolContext, flight_id: int, cabin: str) -> dict[str, Any]:
    row = ctx.one("SELECT * FROM cabins WHERE flight_id = ? AND cabin = ?", (flight_id, cabin))
    if row is None:
        raise ToolError(f"flight {flight_id} has no {cabin} cabin")
    return row


def _occupied(ctx: ToolContext, flight_id: int, cabin: str) -> int:
    return int(
        ctx.scalar(
            "SELECT COUNT(*) FROM bookings WHERE flight_id = ? AND cabin = ? AND status != 'cancelled'",
            (flight_id, cabin),
        )
    )


def _require_room(ctx: ToolContext, flight: dict[str, Any], cabin: str) -> dict[str, Any]:
    row = _cabin(ctx, flight["id"], cabin)
    if _occupied(ctx, flight["id"], cabin) >= row["capacity"]:
        raise ToolError(
            f"the {cabin} cabin of {_flight_name(flight)} is full ({row['capacity']} seats)", rule="cabin-capacity"
        )
    return row


def _require_one_seat(ctx: ToolContext, passenger: dict[str, Any], flight: dict[str, Any]) -> None:
    other = ctx.one(
        "SELECT locator FROM bookings WHERE passenger_id = ? AND flight_id = ? AND status != 'cancelled'",
        (passenger["id"], flight["id"]),
    )
    if other is not None:
        raise ToolError(
            f"{passenger['name']} already holds booking {other['locator']} on {_flight_name(flight)}",
            rule="one-seat-per-flight",
        )


def _pay(ctx: ToolContext, booking_id: int, kind: str, amount: int, method: str | None) -> int | None:
    if amount <= 0:
        return None
    if method is None:
        raise ToolError(
            f"this costs {money(amount)} ({kind.replace('_', ' ')}): give a payment method, card or voucher"
        )
    return ctx.insert(
        "payments",
        {"booking_id": booking_id, "kind": kind, "amount_cents": amount, "method": method, "created": ctx.today},
    )


def _refund_method(ctx: ToolContext, booking_id: int) -> str:
    method = ctx.scalar(
        "SELECT method FROM payments WHERE booking_id = ? AND kind = 'fare' ORDER BY id LIMIT 1", (booking_id,)
    )
    return method or "card"


def _booking_row(ctx: ToolContext, b: dict[str, Any]) -> dict[str, Any]:
    flight = _flight(ctx, b["flight_id"])
    bags = ctx.all("SELECT weight_kg, fee_cents FROM bags WHERE booking_id = ? ORDER BY id", (b["id"],))
    return {
        "locator": b["locator"],
        "passenger_id": b["passenger_id"],
        "passenger_name": b.get("passenger_name"),
        "flight_id": flight["id"],
        "flight": flight["number"],
        "route": f"{flight['origin']}-{flight['destination']}",
        "date": flight["date"],
        "departure_time": flight["departure_time"],
        "flight_status": flight["status"],
        "cabin": b["cabin"],
        "fare_class": b["fare_class"],
        "fare_cents": b["fare_cents"],
        "status": b["status"],
        "seat": b["seat"],
        "checked_in_at": b["checked_in_at"],
        "cancelled": b["cancelled"],
        "bags": len(bags),
        "bag_weights_kg": [x["weight_kg"] for x in bags],
    }


def _cancel_refund(ctx: ToolContext, booking: dict[str, Any], flight: dict[str, Any]) -> tuple[int, str]:
    """The refund a cancellation would give now, and why (the cancellation-refund rule)."""
    if flight["status"] == "cancelled":
        return booking["fare_cents"], "the airline cancelled the flight: full refund"
    if _departure(flight) - _now(ctx) < REFUND_CUTOFF:
        return 0, "less than 24 hours before departure: no refund"
    if booking["fare_class"] == "flex":
        return booking["fare_cents"], "flex fare: full refund"
    if booking["fare_class"] == "standard":
        return max(0, booking["fare_cents"] - STANDARD_CANCEL_FEE_CENTS), "standard fare: fare less the $100.00 fee"
    return 0, "basic fare: no refund"


def _change_quote(ctx: ToolContext, booking: dict[str, Any], new_flight: dict[str, Any]) -> dict[str, Any]:
    """Check a move of ``booking`` to ``new_flight`` against the rules; return its costs."""
    _require_active(booking)
    _require_not_checked_in(booking, "moved to another flight")
    old = _flight(ctx, booking["flight_id"])
    waived = old["status"] == "cancelled"
    if not waived:
        _require_open(ctx, old, f"change {_what(booking)}")
    if new_flight["id"] == old["id"]:
        raise ToolError(f"{_what(booking)} is already on {_flight_name(old)}")
    if (new_flight["origin"], new_flight["destination"]) != (old["origin"], old["destination"]):
        raise ToolError(
            f"{_what(booking)} is for {old['origin']}-{old['destination']}; {_flight_name(new_flight)} flies "
            "another route",
            rule="same-route",
        )
    if booking["fare_class"] == "basic" and not waived:
        raise ToolError(f"{_what(booking)} is a basic fare, which cannot be changed", rule="basic-fare-locked")
    _require_open(ctx, new_flight, f"move {_what(booking)} there")
    passenger = _passenger(ctx, booking["passenger_id"])
    _require_one_seat(ctx, passenger, new_flight)
    cabin = _require_room(ctx, new_flight, booking["cabin"])
    new_fare = cabin[f"{booking['fare_class']}_fare_cents"]
    fee = 0 if waived else CHANGE_FEE_CENTS[booking["fare_class"]]
    difference = 0 if waived else max(0, new_fare - booking["fare_cents"])
    return {
        "change_fee_cents": fee,
        "fare_difference_cents": difference,
        "total_cents": fee + difference,
        "new_fare_cents": max(new_fare, booking["fare_cents"]) if not waived else booking["fare_cents"],
        "waived": waived,
    }


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_passenger(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Find passengers by part of their name, their loyalty number (FF-10001) or their email.

    Args:
        query: a name or part of it, a loyalty number or an email address
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty: give a name, loyalty number or email")
    rows = ctx.all(
        "SELECT id, loyalty_number, name, email, phone, tier FROM passengers WHERE name LIKE ? ESCAPE '\\' "
        "OR upper(loyalty_number) = upper(?) OR lower(email) = lower(?) ORDER BY name, id LIMIT ?",
        (like(text), text, text, SEARCH_LIMIT),
    )
    return [{"passenger_id": r.pop("id"), **r} for r in rows]


@tool(kind="query")
def get_passenger(ctx: ToolContext, passenger_id: Id) -> dict[str, Any]:
    """A passenger's profile: contact details, loyalty tier and free checked-bag allowance.

    Args:
        passenger_id: the passenger's id (from find_passenger)
    """
    p = _passenger(ctx, passenger_id)
    return {
        "passenger_id": p["id"],
        "loyalty_number": p["loyalty_number"],
        "name": p["name"],
        "email": p["email"],
        "phone": p["phone"],
        "tier": p["tier"],
        "free_bags_per_booking": FREE_BAGS[p["tier"]],
        "joined": p["joined"],
    }


@tool(kind="query")
def list_passenger_bookings(
    ctx: ToolContext, passenger_id: Id, include_cancelled: bool = False
) -> list[dict[str, Any]]:
    """A passenger's bookings with their flights, cabins, fares, seats and bag counts.

    Args:
        passenger_id: the passenger's id (from find_passenger)
        include_cancelled: also list cancelled bookings
    """
    p = _passenger(ctx, passenger_id)
    rows = ctx.all(
        "SELECT b.* FROM bookings b JOIN flights f ON f.id = b.flight_id WHERE b.passenger_id = ? "
        "ORDER BY f.date, f.departure_time, b.id",
        (passenger_id,),
    )
    return [
        _booking_row(ctx, {**b, "passenger_name": p["name"]})
        for b in rows
        if include_cancelled or b["status"] != "cancelled"
    ]


@tool(kind="query")
def get_booking(ctx: ToolContext, locator: Code) -> dict[str, Any]:
    """A booking by its record locator, with its flight, seat, bags and payments.

    Args:
        locator: the six-character record locator, e.g. QX7K2P
    """
    b = _booking(ctx, locator)
    row = _booking_row(ctx, b)
    row["passenger_tier"] = b["tier"]
    row["payments"] = ctx.all(
        "SELECT kind, amount_cents, method, created FROM payments WHERE booking_id = ? ORDER BY id", (b["id"],)
    )
    return row


@tool(kind="query")
def search_flights(
    ctx: ToolContext,
    origin: Airport | None = None,
    destination: Airport | None = None,
    date: DateStr | None = None,
    number: Code | None = None,
) -> list[dict[str, Any]]:
    """Search flights by route, date and/or flight number, with seats left and fares per cabin.

    Args:
        origin: the departure airport's three-letter code, e.g. SFO
        destination: the arrival airport's three-letter code, e.g. SEA
        date: the departure date, YYYY-MM-DD
        number: the flight number, e.g. QX101
    """
    where, params = [], []
    if origin is not None:
        where.append("upper(origin) = upper(?)")
        params.append(origin.strip())
    if destination is not None:
        where.append("upper(destination) = upper(?)")
        params.append(destination.strip())
    if date is not None:
        where.append("date = ?")
        params.append(parse_date(date, "date").isoformat())
    if number is not None:
        where.append("upper(number) = upper(?)")
        params.append(number.strip())
    if not where:
        raise ToolError("give at least one of origin, destination, date or number")
    flights = ctx.all(
        f"SELECT * FROM flights WHERE {' AND '.join(where)} ORDER BY date, departure_time, id LIMIT ?",
        (*params, SEARCH_LIMIT),
    )
    return [_flight_summary(ctx, f) for f in flights]


def _flight_summary(ctx: ToolContext, f: dict[str, Any]) -> dict[str, Any]:
    cabins = ctx.all("SELECT * FROM cabins WHERE flight_id = ? ORDER BY cabin DESC", (f["id"],))
    return {
        "flight_id": f["id"],
        "number": f["number"],
        "origin": f["origin"],
        "destination": f["destination"],
        "date": f["date"],
        "departure_time": f["departure_time"],
        "status": f["status"],
        "cabins": [
            {
                "cabin": c["cabin"],
                "seats_left": c["capacity"] - _occupied(ctx, f["id"], c["cabin"]),
                "basic_fare_cents": c["basic_fare_cents"],
                "standard_fare_cents": c["standard_fare_cents"],
                "flex_fare_cents": c["flex_fare_cents"],
            }
            for c in cabins
        ],
    }


@tool(kind="query")
def get_flight(ctx: ToolContext, flight_id: Id) -> dict[str, Any]:
    """One flight: status, departure, cabins with seats left and fares, and the seats already taken.

    Args:
        flight_id: the flight's id (from search_flights)
    """
    f = _flight(ctx, flight_id)
    out = _flight_summary(ctx, f)
    out["seats_taken"] = [
        r["seat"]
        for r in ctx.all(
            "SELECT seat FROM bookings WHERE flight_id = ? AND status != 'cancelled' AND seat IS NOT NULL "
            "ORDER BY seat",
            (flight_id,),
        )
    ]
    return out


@tool(kind="query")
def list_bags(ctx: ToolContext, locator: Code) -> dict[str, Any]:
    """The checked bags of a booking, and how many more would be free under the tier allowance.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
    """
    b = _booking(ctx, locator)
    bags = ctx.all("SELECT id, weight_kg, fee_cents, added FROM bags WHERE booking_id = ? ORDER BY id", (b["id"],))
    free = FREE_BAGS[b["tier"]]
    return {
        "locator": b["locator"],
        "passenger_name": b["passenger_name"],
        "tier": b["tier"],
        "free_allowance": free,
        "free_bags_left": max(0, free - len(bags)),
        "fee_per_extra_bag_cents": BAG_FEE_CENTS,
        "bags": [{"bag_id": x.pop("id"), **x} for x in bags],
    }


@tool(kind="query")
def list_payments(ctx: ToolContext, locator: Code) -> list[dict[str, Any]]:
    """Every payment taken or refunded on a booking.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
    """
    b = _booking(ctx, locator)
    rows = ctx.all("SELECT * FROM payments WHERE booking_id = ? ORDER BY id", (b["id"],))
    return [
        {
            "payment_id": r["id"],
            "kind": r["kind"],
            "amount_cents": r["amount_cents"],
            "method": r["method"],
            "created": r["created"],
        }
        for r in rows
    ]


@tool(kind="query")
def quote_cancellation(ctx: ToolContext, locator: Code) -> dict[str, Any]:
    """What cancelling a booking now would refund, under the cancellation-refund rule.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
    """
    b = _booking(ctx, locator)
    _require_active(b)
    flight = _flight(ctx, b["flight_id"])
    refund, why = _cancel_refund(ctx, b, flight)
    return {"locator": b["locator"], "fare_cents": b["fare_cents"], "refund_cents": refund, "reason": why}


@tool(kind="query")
def quote_change(ctx: ToolContext, locator: Code, new_flight_id: Id) -> dict[str, Any]:
    """What moving a booking to another flight would cost (change fee and fare difference), or why it is refused.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
        new_flight_id: the id of the flight to move to (from search_flights)
    """
    b = _booking(ctx, locator)
    quote = _change_quote(ctx, b, _flight(ctx, new_flight_id))
    return {"locator": b["locator"], **quote}


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def create_booking(
    ctx: ToolContext, passenger_id: Id, flight_id: Id, cabin: CabinName, fare_class: FareClass, method: Method
) -> dict[str, Any]:
    """Book a passenger on a flight in a cabin and fare class, charging the fare.

    Args:
        passenger_id: the passenger's id (from find_passenger)
        flight_id: the flight's id (from search_flights)
        cabin: economy or business
        fare_class: basic, standard or flex (see the change and refund rules)
        method: how the fare is paid: card or voucher
    """
    p = _passenger(ctx, passenger_id)
    f = _flight(ctx, flight_id)
    _require_open(ctx, f, f"book {p['name']}")
    _require_one_seat(ctx, p, f)
    c = _require_room(ctx, f, cabin)
    fare = c[f"{fare_class}_fare_cents"]
    taken = {r for (r,) in ctx.db.execute("SELECT locator FROM bookings")}
    while True:
        locator = "".join(ctx.random.choice(LOCATOR_CHARS) for _ in range(6))
        if locator not in taken:
            break
    booking_id = ctx.insert(
        "bookings",
        {
            "locator": locator,
            "passenger_id": p["id"],
            "flight_id": f["id"],
            "cabin": cabin,
            "fare_class": fare_class,
            "fare_cents": fare,
            "status": "confirmed",
            "seat": None,
            "booked": ctx.today,
            "checked_in_at": None,
            "cancelled": None,
        },
    )
    _pay(ctx, booking_id, "fare", fare, method)
    return {
        "locator": locator,
        "passenger_name": p["name"],
        "flight": _flight_name(f),
        "cabin": cabin,
        "fare_class": fare_class,
        "charged_cents": fare,
    }


@tool(kind="mutation")
def change_flight(ctx: ToolContext, locator: Code, new_flight_id: Id, method: Method | None = None) -> dict[str, Any]:
    """Move a booking to another flight on the same route, in the same cabin and fare class.

    Charges the change fee and any fare difference (see quote_change); the seat is released.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
        new_flight_id: the id of the flight to move to (from search_flights)
        method: how to pay the change fee and fare difference, card or voucher; needed only when something is due
    """
    b = _booking(ctx, locator)
    new = _flight(ctx, new_flight_id)
    quote = _change_quote(ctx, b, new)
    if quote["total_cents"] > 0 and method is None:
        raise ToolError(
            f"moving {_what(b)} costs {money(quote['total_cents'])} (change fee {money(quote['change_fee_cents'])}, "
            f"fare difference {money(quote['fare_difference_cents'])}): give a payment method, card or voucher"
        )
    _pay(ctx, b["id"], "change_fee", quote["change_fee_cents"], method)
    _pay(ctx, b["id"], "fare_difference", quote["fare_difference_cents"], method)
    ctx.update(
        "bookings", {"id": b["id"]}, {"flight_id": new["id"], "seat": None, "fare_cents": quote["new_fare_cents"]}
    )
    return {"locator": b["locator"], "flight": _flight_name(new), **quote}


@tool(kind="mutation")
def upgrade_cabin(ctx: ToolContext, locator: Code, method: Method) -> dict[str, Any]:
    """Upgrade an economy booking to business on the same flight and fare class, charging the fare difference.

    The economy seat is released.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
        method: how to pay the difference: card or voucher
    """
    b = _booking(ctx, locator)
    _require_active(b)
    _require_not_checked_in(b, "upgraded")
    if b["cabin"] == "business":
        raise ToolError(f"{_what(b)} is already in business")
    f = _flight(ctx, b["flight_id"])
    _require_open(ctx, f, f"upgrade {_what(b)}")
    if b["fare_class"] == "basic":
        raise ToolError(f"{_what(b)} is a basic fare, which cannot be upgraded", rule="basic-fare-locked")
    c = _require_room(ctx, f, "business")
    fare = c[f"{b['fare_class']}_fare_cents"]
    difference = max(0, fare - b["fare_cents"])
    _pay(ctx, b["id"], "upgrade", difference, method)
    ctx.update(
        "bookings", {"id": b["id"]}, {"cabin": "business", "seat": None, "fare_cents": max(fare, b["fare_cents"])}
    )
    return {"locator": b["locator"], "cabin": "business", "charged_cents": difference}


@tool(kind="mutation")
def assign_seat(ctx: ToolContext, locator: Code, seat: Code) -> dict[str, Any]:
    """Give a booking a seat (e.g. 14C) in its cabin, replacing any seat it had.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
        seat: row number and letter, e.g. 14C (business rows 1-4 A-D, economy rows 10-35 A-F)
    """
    b = _booking(ctx, locator)
    _require_active(b)
    _require_not_checked_in(b, "re-seated")
    f = _flight(ctx, b["flight_id"])
    _require_open(ctx, f, f"seat {_what(b)}")
    m = re.fullmatch(r"\s*(\d{1,2})\s*([A-Za-z])\s*", seat)
    if m is None:
        raise ToolError(f"{seat!r} is not a seat; seats look like 14C")
    row, letter = int(m.group(1)), m.group(2).upper()
    first, last, letters = SEAT_ROWS[b["cabin"]]
    code = f"{row}{letter}"
    if not (first <= row <= last and letter in letters):
        raise ToolError(
            f"seat {code} is not in the {b['cabin']} cabin (rows {first}-{last}, seats {letters[0]}-{letters[-1]})",
            rule="seat-assignment",
        )
    holder = ctx.one(
        "SELECT locator FROM bookings WHERE flight_id = ? AND seat = ? AND status != 'cancelled' AND id != ?",
        (f["id"], code, b["id"]),
    )
    if holder is not None:
        raise ToolError(f"seat {code} on {_flight_name(f)} is already taken", rule="seat-assignment")
    ctx.update("bookings", {"id": b["id"]}, {"seat": code})
    return {"locator": b["locator"], "flight": _flight_name(f), "seat": code, "previous_seat": b["seat"]}


@tool(kind="mutation")
def check_in(ctx: ToolContext, locator: Code) -> dict[str, Any]:
    """Check a booking in for its flight; it needs a seat first (assign_seat).

    Args:
        locator: the booking's record locator, e.g. QX7K2P
    """
    b = _booking(ctx, locator)
    _require_active(b)
    if b["status"] == "checked_in":
        raise ToolError(f"{_what(b)} is already checked in")
    f = _flight(ctx, b["flight_id"])
    _require_open(ctx, f, f"check in {_what(b)}")
    until = _departure(f) - _now(ctx)
    if until > CHECK_IN_OPENS:
        opens = (_departure(f) - CHECK_IN_OPENS).isoformat()
        raise ToolError(f"check-in for {_flight_name(f)} opens at {opens}", rule="check-in-window")
    if until < CHECK_IN_CLOSES:
        raise ToolError(f"check-in for {_flight_name(f)} closed 45 minutes before departure", rule="check-in-window")
    if b["seat"] is None:
        raise ToolError(f"{_what(b)} has no seat yet; assign one with assign_seat before check-in")
    at = _now(ctx).isoformat()
    ctx.update("bookings", {"id": b["id"]}, {"status": "checked_in", "checked_in_at": at})
    return {"locator": b["locator"], "status": "checked_in", "seat": b["seat"], "checked_in_at": at}


@tool(kind="mutation")
def add_checked_bag(ctx: ToolContext, locator: Code, weight_kg: Weight, method: Method | None = None) -> dict[str, Any]:
    """Add one checked bag to a booking: free within the tier allowance, $35.00 beyond it.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
        weight_kg: the bag's weight in whole kilograms (at most 32)
        method: how to pay the bag fee, card or voucher; needed only when the bag is not free
    """
    b = _booking(ctx, locator)
    _require_active(b)
    f = _flight(ctx, b["flight_id"])
    _require_open(ctx, f, f"add a bag to {_what(b)}")
    if weight_kg > MAX_BAG_KG:
        raise ToolError(f"a {weight_kg} kg bag is over the {MAX_BAG_KG} kg limit", rule="bag-weight-limit")
    count = int(ctx.scalar("SELECT COUNT(*) FROM bags WHERE booking_id = ?", (b["id"],)))
    if count >= MAX_BAGS:
        raise ToolError(f"{_what(b)} already has {count} checked bags, the most allowed", rule="bag-allowance")
    fee = 0 if count < FREE_BAGS[b["tier"]] else BAG_FEE_CENTS
    bag_id = ctx.insert("bags", {"booking_id": b["id"], "weight_kg": weight_kg, "fee_cents": fee, "added": ctx.today})
    _pay(ctx, b["id"], "bag_fee", fee, method)
    return {"locator": b["locator"], "bag_id": bag_id, "weight_kg": weight_kg, "fee_cents": fee, "bags": count + 1}


@tool(kind="mutation")
def cancel_booking(ctx: ToolContext, locator: Code) -> dict[str, Any]:
    """Cancel a booking and refund what the cancellation-refund rule allows, to the fare's payment method.

    Args:
        locator: the booking's record locator, e.g. QX7K2P
    """
    b = _booking(ctx, locator)
    _require_active(b)
    _require_not_checked_in(b, "cancelled")
    f = _flight(ctx, b["flight_id"])
    if f["status"] != "cancelled":
        _require_open(ctx, f, f"cancel {_what(b)}")
    refund, why = _cancel_refund(ctx, b, f)
    if refund > 0:
        ctx.insert(
            "payments",
            {
                "booking_id": b["id"],
                "kind": "refund",
                "amount_cents": refund,
                "method": _refund_method(ctx, b["id"]),
                "created": ctx.today,
            },
        )
    ctx.update("bookings", {"id": b["id"]}, {"status": "cancelled", "seat": None, "cancelled": ctx.today})
    return {"locator": b["locator"], "status": "cancelled", "refund_cents": refund, "reason": why}


@tool(kind="mutation")
def update_passenger_contact(
    ctx: ToolContext, passenger_id: Id, email: Email | None = None, phone: Phone | None = None
) -> dict[str, Any]:
    """Change a passenger's email address and/or phone number (names cannot be changed).

    Args:
        passenger_id: the passenger's id (from find_passenger)
        email: the new email address (unique among passengers); unchanged if left out
        phone: the new phone number; unchanged if left out
    """
    p = _passenger(ctx, passenger_id)
    contact = update_contact(ctx, "passengers", p, email, phone, noun="passenger", rule="unique-email")
    return {"passenger_id": passenger_id, **contact}
