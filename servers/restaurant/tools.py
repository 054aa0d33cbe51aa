"""The restaurant's tools: look-ups for guests, tables, hours, reservations, waitlist and menu,
and the host stand's mutations.

Every rule in ``RULES`` (``__init__.py``) that can refuse a call is enforced here and
named in the ``ToolError``; ``late-cancellation-forfeit`` is applied by
``cancel_reservation``. Time is the scenario clock (``ctx.now``), never the wall clock.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import DateStr, Email, Id, Name, Note, Phone, SearchText, like, money, unique_email
from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

TURN_MINUTES = 120
DEPOSIT_PARTY = 8  # parties of this size or more pay a deposit
DEPOSIT_PER_GUEST_CENTS = 2000
MAX_UPCOMING = 2
LATE_CANCEL_HOURS = 24
SEARCH_LIMIT = 20

TimeStr = Annotated[
    str, Field(max_length=5, pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", json_schema_extra={"examples": ["19:30"]})
]
PartySize = Annotated[int, Field(ge=1, le=40)]
Quantity = Annotated[int, Field(ge=1, le=100)]
Area = Literal["main", "terrace", "bar", "private"]
Category = Literal["starter", "main", "dessert", "drink", "set_menu"]
DepositMethod = Literal["card", "cash"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


# --- helpers (not tools) -------------------------------------------------------------------------


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:5])


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _time(value: str, what: str = "time") -> str:
    value = value.strip()
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", value):
        raise ToolError(f"{what} must be a 24-hour time as HH:MM, got {value!r}")
    return value


def _start(ctx: ToolContext, day: str, hhmm: str) -> datetime:
    return datetime.fromisoformat(f"{day}T{hhmm}:00").replace(tzinfo=ctx.now.tzinfo)


def _guest(ctx: ToolContext, guest_id: int) -> dict[str, Any]:
    guest = ctx.one("SELECT * FROM guests WHERE id = ?", (guest_id,))
    if guest is None:
        raise ToolError(f"no guest with id {guest_id}; look guests up with find_guest")
    return guest


def _who(guest: dict[str, Any]) -> str:
    return f"guest {guest['id']} ({guest['name']})"


def _table(ctx: ToolContext, table_id: int) -> dict[str, Any]:
    table = ctx.one("SELECT * FROM dining_tables WHERE id = ?", (table_id,))
    if table is None:
        raise ToolError(f"no table with id {table_id}; see list_tables")
    return table


_RES_SQL = (
    "SELECT r.*, g.name AS guest_name, t.label AS table_label, t.area, t.seats FROM reservations r "
    "JOIN guests g ON g.id = r.guest_id JOIN dining_tables t ON t.id = r.table_id "
)


def _reservation(ctx: ToolContext, reservation_id: int) -> dict[str, Any]:
    res = ctx.one(f"{_RES_SQL}WHERE r.id = ?", (reservation_id,))
    if res is None:
        raise ToolError(
            f"no reservation with id {reservation_id}; look it up with list_guest_reservations or list_reservations"
        )
    return res


def _res_out(res: dict[str, Any]) -> dict[str, Any]:
    return {
        "reservation_id": res["id"],
        "reference": res["reference"],
        "guest_id": res["guest_id"],
        "guest_name": res["guest_name"],
        "table_id": res["table_id"],
        "table": res["table_label"],
        "area": res["area"],
        "date": res["date"],
        "time": res["time"],
        "party_size": res["party_size"],
        "status": res["status"],
        "deposit_cents": res["deposit_cents"],
        "deposit_status": res["deposit_status"],
        "special_request": res["special_request"],
    }


def _service_for(ctx: ToolContext, day: str, hhmm: str) -> dict[str, Any] | None:
    weekday = date.fromisoformat(day).weekday()
    start = _minutes(hhmm)
    for service in ctx.all("SELECT * FROM services WHERE weekday = ? ORDER BY opens", (weekday,)):
        if _minutes(service["opens"]) <= start and start + TURN_MINUTES <= _minutes(service["closes"]):
            return service
    return None


def _hours_problem(ctx: ToolContext, day: str, hhmm: str) -> str | None:
    if _start(ctx, day, hhmm) <= ctx.now:
        return f"{day} {hhmm} is not in the future (it is now {ctx.now.isoformat(timespec='minutes')})"
    if _service_for(ctx, day, hhmm) is None:
        weekday = date.fromisoformat(day).weekday()
        services = ctx.all("SELECT * FROM services WHERE weekday = ? ORDER BY opens", (weekday,))
        if not services:
            return f"the restaurant is closed on {WEEKDAYS[weekday]}s"
        spans = ", ".join(f"{s['name']} {s['opens']}-{s['closes']}" for s in services)
        return (
            f"a 2-hour turn from {hhmm} on {WEEKDAYS[weekday]} {day} does not fit a service ({spans}; "
            "the turn must end by closing)"
        )
    return None


def _require_open(ctx: ToolContext, day: str, hhmm: str) -> None:
    problem = _hours_problem(ctx, day, hhmm)
    if problem is not None:
        raise ToolError(f"cannot book {day} at {hhmm}: {problem}", rule="opening-hours")


def _clash(ctx: ToolContext, table_id: int, day: str, hhmm: str, skip_id: int | None) -> dict[str, Any] | None:
    start = _minutes(hhmm)
    for other in ctx.all(
        f"{_RES_SQL}WHERE r.table_id = ? AND r.date = ? AND r.status IN ('booked', 'seated') AND r.id IS NOT ? "
        "ORDER BY r.time",
        (table_id, day, skip_id),
    ):
        if abs(_minutes(other["time"]) - start) < TURN_MINUTES:
            return other
    return None


def _upcoming(ctx: ToolContext, guest_id: int, skip_id: int | None = None) -> list[dict[str, Any]]:
    rows = ctx.all(
        "SELECT * FROM reservations WHERE guest_id = ? AND status = 'booked' AND id IS NOT ? ORDER BY date, time",
        (guest_id, skip_id),
    )
    return [r for r in rows if _start(ctx, r["date"], r["time"]) > ctx.now]


def _check_booking(
    ctx: ToolContext,
    guest: dict[str, Any],
    table: dict[str, Any],
    day: str,
    hhmm: str,
    party_size: int,
    skip_id: int | None = None,
) -> None:
    """Every booking rule but the deposit, for a new or changed reservation."""
    _require_open(ctx, day, hhmm)
    if table["area"] == "private" and not guest["vip"]:
        raise ToolError(
            f"table {table['label']} is in the private room, which only VIP guests can book; "
            f"{_who(guest)} is not a VIP",
            rule="private-room-vip",
        )
    if party_size > table["seats"]:
        raise ToolError(
            f"table {table['label']} seats {table['seats']}, too few for a party of {party_size}",
            rule="table-capacity",
        )
    clash = _clash(ctx, table["id"], day, hhmm, skip_id)
    if clash is not None:
        raise ToolError(
            f"table {table['label']} is taken on {day} by reservation {clash['reference']} at {clash['time']}; "
            f"a {hhmm} start would overlap its 2-hour turn",
            rule="no-overlap",
        )
    upcoming = _upcoming(ctx, guest["id"], skip_id)
    if skip_id is None and len(upcoming) >= MAX_UPCOMING:
        refs = ", ".join(f"{r['reference']} ({r['date']} {r['time']})" for r in upcoming)
        raise ToolError(
            f"{_who(guest)} already holds {len(upcoming)} upcoming reservations ({refs}), the maximum",
            rule="guest-reservation-limit",
        )


def _next_reference(ctx: ToolContext) -> str:
    numbers = [int(r[2:]) for (r,) in ctx.db.execute("SELECT reference FROM reservations") if r[2:].isdigit()]
    return f"R-{max(numbers, default=1000) + 1}"


def _stamp(ctx: ToolContext) -> str:
    return ctx.now.isoformat(timespec="seconds")


def _phone(phone: str) -> str:
    phone = phone.strip()
    if not phone or not re.fullmatch(r"[0-9+()\- ]{3,30}", phone):
        raise ToolError(f"{phone!r} is not a phone number")
    return phone


def _book(
    ctx: ToolContext,
    guest: dict[str, Any],
    table: dict[str, Any],
    day: str,
    hhmm: str,
    party_size: int,
    deposit_method: str | None,
    special_request: str | None,
) -> dict[str, Any]:
    """Check every booking rule and insert the reservation; returns it."""
    _check_booking(ctx, guest, table, day, hhmm, party_size)
    deposit = DEPOSIT_PER_GUEST_CENTS * party_size if party_size >= DEPOSIT_PARTY else 0
    if deposit and deposit_method is None:
        raise ToolError(
            f"a party of {party_size} must pay a {money(deposit)} deposit ($20.00 per guest); "
            "give deposit_method (card or cash)",
            rule="large-party-deposit",
        )
    if not deposit and deposit_method is not None:
        raise ToolError(f"a party of {party_size} pays no deposit; leave deposit_method out")
    request = special_request.strip() if special_request and special_request.strip() else None
    res_id = ctx.insert(
        "reservations",
        {
            "reference": _next_reference(ctx),
            "guest_id": guest["id"],
            "table_id": table["id"],
            "date": day,
            "time": hhmm,
            "party_size": party_size,
            "status": "booked",
            "deposit_cents": deposit,
            "deposit_status": "paid" if deposit else "none",
            "deposit_method": deposit_method if deposit else None,
            "special_request": request,
            "created": _stamp(ctx),
            "cancelled_at": None,
        },
    )
    return _reservation(ctx, res_id)


def _live(ctx: ToolContext, res: dict[str, Any], doing: str) -> None:
    if res["status"] != "booked":
        raise ToolError(f"reservation {res['reference']} is {res['status']}; only a booked reservation can be {doing}")
    if _start(ctx, res["date"], res["time"]) <= ctx.now:
        raise ToolError(
            f"reservation {res['reference']} started at {res['date']} {res['time']}; it can no longer be {doing}"
        )


def _waitlist_entry(ctx: ToolContext, waitlist_id: int) -> dict[str, Any]:
    entry = ctx.one(
        "SELECT w.*, g.name AS guest_name FROM waitlist w JOIN guests g ON g.id = w.guest_id WHERE w.id = ?",
        (waitlist_id,),
    )
    if entry is None:
        raise ToolError(f"no waitlist entry with id {waitlist_id}; see list_waitlist")
    return entry


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_guest(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Find guests whose name, phone number or email contains the query (case-insensitive).

    Args:
        query: part of a name, a phone number or an email address
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty; give part of a name, a phone number or an email")
    pattern = like(text)
    rows = ctx.all(
        "SELECT * FROM guests WHERE name LIKE ? ESCAPE '\\' OR phone LIKE ? ESCAPE '\\' "
        "OR COALESCE(email, '') LIKE ? ESCAPE '\\' ORDER BY name, id LIMIT ?",
        (pattern, pattern, pattern, SEARCH_LIMIT),
    )
    return [
        {"guest_id": g["id"], "name": g["name"], "phone": g["phone"], "email": g["email"], "vip": bool(g["vip"])}
        for g in rows
    ]


@tool(kind="query")
def get_guest(ctx: ToolContext, guest_id: Id) -> dict[str, Any]:
    """A guest's details, upcoming reservations and waitlist entries.

    Args:
        guest_id: the guest's id (from find_guest)
    """
    guest = _guest(ctx, guest_id)
    upcoming = [_res_out(_reservation(ctx, r["id"])) for r in _upcoming(ctx, guest_id)]
    waiting = ctx.all(
        "SELECT id AS waitlist_id, date, time, party_size, added FROM waitlist WHERE guest_id = ? "
        "AND status = 'waiting' ORDER BY date, added",
        (guest_id,),
    )
    return {
        "guest_id": guest["id"],
        "name": guest["name"],
        "phone": guest["phone"],
        "email": guest["email"],
        "vip": bool(guest["vip"]),
        "since": guest["created"],
        "upcoming_reservations": upcoming,
        "upcoming_limit": MAX_UPCOMING,
        "waitlist": waiting,
    }


@tool(kind="query")
def list_tables(ctx: ToolContext, area: Area | None = None, min_seats: PartySize | None = None) -> list[dict[str, Any]]:
    """List the dining tables, optionally only one area or only tables with enough seats.

    Args:
        area: only tables in this area (main, terrace, bar or private)
        min_seats: only tables with at least this many seats
    """
    rows = ctx.all(
        "SELECT * FROM dining_tables WHERE (? IS NULL OR area = ?) AND seats >= ? ORDER BY id",
        (area, area, min_seats or 1),
    )
    return [
        {
            "table_id": t["id"],
            "label": t["label"],
            "area": t["area"],
            "seats": t["seats"],
            "vip_only": t["area"] == "private",
        }
        for t in rows
    ]


@tool(kind="query")
def get_opening_hours(ctx: ToolContext) -> list[dict[str, Any]]:
    """The services (lunch and dinner) of each weekday; a reservation's 2-hour turn must fit in one."""
    rows = ctx.all("SELECT * FROM services ORDER BY weekday, opens")
    out = []
    for weekday, name in enumerate(WEEKDAYS):
        services = [
            {
                "service": s["name"],
                "opens": s["opens"],
                "closes": s["closes"],
                "last_start": _hhmm(_minutes(s["closes"]) - TURN_MINUTES),
            }
            for s in rows
            if s["weekday"] == weekday
        ]
        out.append({"weekday": name, "closed": not services, "services": services})
    return out


@tool(kind="query")
def check_availability(
    ctx: ToolContext, date: DateStr, time: TimeStr, party_size: PartySize, area: Area | None = None
) -> dict[str, Any]:
    """Which tables are free for a party at a date and start time (for the whole 2-hour turn).

    Args:
        date: the day, YYYY-MM-DD
        time: the start time, HH:MM (24-hour)
        party_size: how many guests
        area: only tables in this area
    """
    day = parse_date(date, "date").isoformat()
    hhmm = _time(time)
    problem = _hours_problem(ctx, day, hhmm)
    if problem is not None:
        return {"date": day, "time": hhmm, "bookable": False, "reason": problem, "free_tables": []}
    tables = ctx.all(
        "SELECT * FROM dining_tables WHERE seats >= ? AND (? IS NULL OR area = ?) ORDER BY seats, id",
        (party_size, area, area),
    )
    free = [
        {
            "table_id": t["id"],
            "label": t["label"],
            "area": t["area"],
            "seats": t["seats"],
            "vip_only": t["area"] == "private",
        }
        for t in tables
        if _clash(ctx, t["id"], day, hhmm, None) is None
    ]
    deposit = DEPOSIT_PER_GUEST_CENTS * party_size if party_size >= DEPOSIT_PARTY else 0
    return {"date": day, "time": hhmm, "bookable": True, "free_tables": free, "deposit_cents": deposit}


@tool(kind="query")
def list_reservations(
    ctx: ToolContext,
    date: DateStr,
    status: Literal["booked", "seated", "completed", "cancelled", "no_show"] | None = None,
) -> list[dict[str, Any]]:
    """All reservations on a date, by start time.

    Args:
        date: the day, YYYY-MM-DD
        status: only reservations with this status
    """
    day = parse_date(date, "date").isoformat()
    rows = ctx.all(
        f"{_RES_SQL}WHERE r.date = ? AND (? IS NULL OR r.status = ?) ORDER BY r.time, t.label",
        (day, status, status),
    )
    return [_res_out(r) for r in rows]


@tool(kind="query")
def list_guest_reservations(ctx: ToolContext, guest_id: Id, include_past: bool = False) -> list[dict[str, Any]]:
    """A guest's reservations by date: upcoming ones, or all of them.

    Args:
        guest_id: the guest's id (from find_guest)
        include_past: also list past, cancelled and completed reservations
    """
    _guest(ctx, guest_id)
    rows = ctx.all(f"{_RES_SQL}WHERE r.guest_id = ? ORDER BY r.date, r.time", (guest_id,))
    if not include_past:
        rows = [r for r in rows if r["status"] == "booked" and _start(ctx, r["date"], r["time"]) > ctx.now]
    return [_res_out(r) for r in rows]


@tool(kind="query")
def get_reservation(ctx: ToolContext, reservation_id: Id) -> dict[str, Any]:
    """One reservation with its deposit, special request and pre-ordered items.

    Args:
        reservation_id: the reservation's id (from list_guest_reservations or list_reservations)
    """
    res = _reservation(ctx, reservation_id)
    items = ctx.all(
        "SELECT p.id AS preorder_id, m.name, p.quantity, p.unit_price_cents FROM preorders p "
        "JOIN menu_items m ON m.id = p.menu_item_id WHERE p.reservation_id = ? ORDER BY p.id",
        (reservation_id,),
    )
    hours_left = (_start(ctx, res["date"], res["time"]) - ctx.now).total_seconds() / 3600
    return {
        **_res_out(res),
        "deposit_method": res["deposit_method"],
        "created": res["created"],
        "cancelled_at": res["cancelled_at"],
        "hours_until_start": round(hours_left, 1),
        "preorders": items,
        "preorder_total_cents": sum(i["quantity"] * i["unit_price_cents"] for i in items),
    }


@tool(kind="query")
def list_waitlist(ctx: ToolContext, date: DateStr) -> list[dict[str, Any]]:
    """The waiting parties for a date, first in line first.

    Args:
        date: the day, YYYY-MM-DD
    """
    day = parse_date(date, "date").isoformat()
    rows = ctx.all(
        "SELECT w.*, g.name AS guest_name FROM waitlist w JOIN guests g ON g.id = w.guest_id "
        "WHERE w.date = ? AND w.status = 'waiting' ORDER BY w.added, w.id",
        (day,),
    )
    return [
        {
            "position": i + 1,
            "waitlist_id": w["id"],
            "guest_id": w["guest_id"],
            "guest_name": w["guest_name"],
            "time": w["time"],
            "party_size": w["party_size"],
            "added": w["added"],
        }
        for i, w in enumerate(rows)
    ]


@tool(kind="query")
def list_menu(ctx: ToolContext, category: Category | None = None) -> list[dict[str, Any]]:
    """The menu items that can be pre-ordered, with prices in cents.

    Args:
        category: only this category (starter, main, dessert, drink or set_menu)
    """
    rows = ctx.all(
        "SELECT * FROM menu_items WHERE (? IS NULL OR category = ?) ORDER BY category, name", (category, category)
    )
    return [
        {
            "menu_item_id": m["id"],
            "name": m["name"],
            "category": m["category"],
            "price_cents": m["price_cents"],
            "available": bool(m["available"]),
        }
        for m in rows
    ]


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def create_guest(ctx: ToolContext, name: Name, phone: Phone, email: Email | None = None) -> dict[str, Any]:
    """Register a new guest (not a VIP).

    Args:
        name: the guest's full name
        phone: the guest's phone number
        email: the guest's email address, unique among guests
    """
    name = name.strip()
    if not name:
        raise ToolError("name is empty")
    phone = _phone(phone)
    mail = unique_email(ctx, "guests", email, None, "guest", None) if email is not None else None
    guest_id = ctx.insert("guests", {"name": name, "phone": phone, "email": mail, "vip": False, "created": ctx.today})
    return {"guest_id": guest_id, "name": name, "phone": phone, "email": mail, "vip": False}


@tool(kind="mutation")
def update_guest(
    ctx: ToolContext,
    guest_id: Id,
    phone: Phone | None = None,
    email: Email | None = None,
    vip: bool | None = None,
) -> dict[str, Any]:
    """Change a guest's phone number, email address or VIP status (VIP only as the manager approved).

    Args:
        guest_id: the guest's id (from find_guest)
        phone: the new phone number; unchanged if left out
        email: the new email address (unique among guests); unchanged if left out
        vip: true to make the guest a VIP, false to end it; unchanged if left out
    """
    _guest(ctx, guest_id)
    values: dict[str, Any] = {}
    if phone is not None:
        values["phone"] = _phone(phone)
    if email is not None:
        values["email"] = unique_email(ctx, "guests", email, guest_id, "guest", None)
    if vip is not None:
        values["vip"] = bool(vip)
    if not values:
        raise ToolError("nothing to change: give a new phone, email or vip status")
    ctx.update("guests", {"id": guest_id}, values)
    new = _guest(ctx, guest_id)
    return {
        "guest_id": guest_id,
        "name": new["name"],
        "phone": new["phone"],
        "email": new["email"],
        "vip": bool(new["vip"]),
    }


@tool(kind="mutation")
def create_reservation(
    ctx: ToolContext,
    guest_id: Id,
    table_id: Id,
    date: DateStr,
    time: TimeStr,
    party_size: PartySize,
    deposit_method: DepositMethod | None = None,
    special_request: Note | None = None,
) -> dict[str, Any]:
    """Book a table for a guest's party for a 2-hour turn.

    Parties of 8 or more pay a deposit of $20.00 per guest now.

    Args:
        guest_id: the guest's id (from find_guest)
        table_id: the table's id (from check_availability or list_tables)
        date: the day, YYYY-MM-DD
        time: the start time, HH:MM (24-hour)
        party_size: how many guests, the booker included
        deposit_method: how a party of 8 or more pays its deposit (card or cash); leave out for smaller parties
        special_request: a request the guest made (allergy, occasion, seating), recorded on the booking
    """
    guest = _guest(ctx, guest_id)
    table = _table(ctx, table_id)
    day = parse_date(date, "date").isoformat()
    res = _book(ctx, guest, table, day, _time(time), party_size, deposit_method, special_request)
    return _res_out(res)


@tool(kind="mutation")
def change_reservation(
    ctx: ToolContext,
    reservation_id: Id,
    date: DateStr | None = None,
    time: TimeStr | None = None,
    party_size: PartySize | None = None,
    table_id: Id | None = None,
    deposit_method: DepositMethod | None = None,
) -> dict[str, Any]:
    """Move a booked reservation to another date, time or table, or change its party size.

    A party that grows to 8 or more pays the missing deposit ($20.00 per guest) now.

    Args:
        reservation_id: the reservation's id (from list_guest_reservations)
        date: the new day, YYYY-MM-DD; unchanged if left out
        time: the new start time, HH:MM; unchanged if left out
        party_size: the new number of guests; unchanged if left out
        table_id: the new table's id (from check_availability); unchanged if left out
        deposit_method: how a deposit that becomes due is paid (card or cash)
    """
    res = _reservation(ctx, reservation_id)
    _live(ctx, res, "changed")
    if date is None and time is None and party_size is None and table_id is None:
        raise ToolError("nothing to change: give a new date, time, party size or table")
    guest = _guest(ctx, res["guest_id"])
    day = parse_date(date, "date").isoformat() if date is not None else res["date"]
    hhmm = _time(time) if time is not None else res["time"]
    size = party_size if party_size is not None else res["party_size"]
    table = _table(ctx, table_id) if table_id is not None else _table(ctx, res["table_id"])
    _check_booking(ctx, guest, table, day, hhmm, size, skip_id=reservation_id)
    required = DEPOSIT_PER_GUEST_CENTS * size if size >= DEPOSIT_PARTY else 0
    values: dict[str, Any] = {"date": day, "time": hhmm, "party_size": size, "table_id": table["id"]}
    if required > res["deposit_cents"]:
        if deposit_method is None:
            raise ToolError(
                f"a party of {size} must have a {money(required)} deposit ($20.00 per guest) and "
                f"{money(res['deposit_cents'])} is paid; give deposit_method (card or cash) for the rest",
                rule="large-party-deposit",
            )
        values |= {"deposit_cents": required, "deposit_status": "paid", "deposit_method": deposit_method}
    elif deposit_method is not None:
        raise ToolError(f"no deposit is due for reservation {res['reference']}; leave deposit_method out")
    ctx.update("reservations", {"id": reservation_id}, values)
    out = _res_out(_reservation(ctx, reservation_id))
    out["previous"] = {
        "date": res["date"],
        "time": res["time"],
        "party_size": res["party_size"],
        "table": res["table_label"],
    }
    return out


@tool(kind="mutation")
def cancel_reservation(ctx: ToolContext, reservation_id: Id) -> dict[str, Any]:
    """Cancel a booked reservation. A deposit is refunded, or forfeited when the start is less than 24 hours away.

    The result lists the waiting parties of that date that would fit the freed table, first in line first.

    Args:
        reservation_id: the reservation's id (from list_guest_reservations or list_reservations)
    """
    res = _reservation(ctx, reservation_id)
    _live(ctx, res, "cancelled")
    late = _start(ctx, res["date"], res["time"]) - ctx.now < timedelta(hours=LATE_CANCEL_HOURS)
    deposit_status = res["deposit_status"]
    if deposit_status == "paid":
        deposit_status = "forfeited" if late else "refunded"
    ctx.update(
        "reservations",
        {"id": reservation_id},
        {"status": "cancelled", "cancelled_at": _stamp(ctx), "deposit_status": deposit_status},
    )
    fits = ctx.all(
        "SELECT w.id AS waitlist_id, g.name AS guest_name, w.time, w.party_size FROM waitlist w "
        "JOIN guests g ON g.id = w.guest_id WHERE w.date = ? AND w.status = 'waiting' AND w.party_size <= ? "
        "ORDER BY w.added, w.id",
        (res["date"], res["seats"]),
    )
    return {
        "reservation_id": reservation_id,
        "reference": res["reference"],
        "status": "cancelled",
        "late_cancellation": late,
        "deposit_cents": res["deposit_cents"],
        "deposit_status": deposit_status,
        "freed_table": res["table_label"],
        "waitlist_that_fits": fits,
    }


@tool(kind="mutation")
def add_to_waitlist(
    ctx: ToolContext, guest_id: Id, date: DateStr, time: TimeStr, party_size: PartySize
) -> dict[str, Any]:
    """Put a guest's party on the waitlist for a date when no table is free at the wished time.

    Args:
        guest_id: the guest's id (from find_guest)
        date: the day, YYYY-MM-DD
        time: the wished start time, HH:MM
        party_size: how many guests (at most 7; larger parties book with a deposit)
    """
    guest = _guest(ctx, guest_id)
    day = parse_date(date, "date").isoformat()
    hhmm = _time(time)
    _require_open(ctx, day, hhmm)
    if party_size >= DEPOSIT_PARTY:
        raise ToolError(f"a party of {party_size} cannot wait for a table; large parties book ahead with a deposit")
    tables = ctx.all("SELECT * FROM dining_tables WHERE seats >= ? ORDER BY seats, id", (party_size,))
    free = [
        t["label"]
        for t in tables
        if (t["area"] != "private" or guest["vip"]) and _clash(ctx, t["id"], day, hhmm, None) is None
    ]
    if free:
        raise ToolError(f"table(s) {', '.join(free)} are free on {day} at {hhmm}; book one instead of waiting")
    if ctx.one("SELECT id FROM waitlist WHERE guest_id = ? AND date = ? AND status = 'waiting'", (guest_id, day)):
        raise ToolError(f"{_who(guest)} is already on the waitlist for {day}")
    entry_id = ctx.insert(
        "waitlist",
        {
            "guest_id": guest_id,
            "date": day,
            "time": hhmm,
            "party_size": party_size,
            "added": _stamp(ctx),
            "status": "waiting",
            "reservation_id": None,
        },
    )
    position = int(ctx.scalar("SELECT COUNT(*) FROM waitlist WHERE date = ? AND status = 'waiting'", (day,)))
    return {"waitlist_id": entry_id, "guest_name": guest["name"], "date": day, "time": hhmm, "position": position}


@tool(kind="mutation")
def seat_from_waitlist(ctx: ToolContext, waitlist_id: Id, table_id: Id) -> dict[str, Any]:
    """Book a freed table for a waiting party at its wished time; the entry is marked booked.

    The earliest waiting party of that date that fits the table must be served first.

    Args:
        waitlist_id: the waitlist entry's id (from list_waitlist)
        table_id: the freed table's id
    """
    entry = _waitlist_entry(ctx, waitlist_id)
    if entry["status"] != "waiting":
        raise ToolError(f"waitlist entry {waitlist_id} ({entry['guest_name']}) is {entry['status']}, not waiting")
    table = _table(ctx, table_id)
    ahead = ctx.one(
        "SELECT w.*, g.name AS guest_name FROM waitlist w JOIN guests g ON g.id = w.guest_id "
        "WHERE w.date = ? AND w.status = 'waiting' AND w.party_size <= ? "
        "AND (w.added < ? OR (w.added = ? AND w.id < ?)) "
        "ORDER BY w.added, w.id",
        (entry["date"], table["seats"], entry["added"], entry["added"], waitlist_id),
    )
    if ahead is not None:
        raise ToolError(
            f"{ahead['guest_name']} (party of {ahead['party_size']}, waitlist entry {ahead['id']}) joined the "
            f"{entry['date']} waitlist before {entry['guest_name']} and fits table {table['label']}; serve them first",
            rule="waitlist-order",
        )
    guest = _guest(ctx, entry["guest_id"])
    res = _book(ctx, guest, table, entry["date"], entry["time"], entry["party_size"], None, None)
    ctx.update("waitlist", {"id": waitlist_id}, {"status": "booked", "reservation_id": res["id"]})
    return {"waitlist_id": waitlist_id, "status": "booked", "reservation": _res_out(res)}


@tool(kind="mutation")
def remove_from_waitlist(ctx: ToolContext, waitlist_id: Id) -> dict[str, Any]:
    """Take a waiting party off the waitlist (they no longer need a table).

    Args:
        waitlist_id: the waitlist entry's id (from list_waitlist or get_guest)
    """
    entry = _waitlist_entry(ctx, waitlist_id)
    if entry["status"] != "waiting":
        raise ToolError(f"waitlist entry {waitlist_id} ({entry['guest_name']}) is {entry['status']}, not waiting")
    ctx.update("waitlist", {"id": waitlist_id}, {"status": "removed"})
    return {"waitlist_id": waitlist_id, "guest_name": entry["guest_name"], "date": entry["date"], "status": "removed"}


@tool(kind="mutation")
def set_special_request(ctx: ToolContext, reservation_id: Id, request: Note) -> dict[str, Any]:
    """Record (or replace) the special request on a booked reservation: allergies, occasion, seating.

    Args:
        reservation_id: the reservation's id (from list_guest_reservations)
        request: the request in the guest's words, e.g. 'nut allergy' or 'high chair needed'
    """
    res = _reservation(ctx, reservation_id)
    _live(ctx, res, "changed")
    text = request.strip()
    if not text:
        raise ToolError("request is empty")
    ctx.update("reservations", {"id": reservation_id}, {"special_request": text})
    return {"reservation_id": reservation_id, "reference": res["reference"], "special_request": text}


@tool(kind="mutation")
def add_preorder(ctx: ToolContext, reservation_id: Id, menu_item_id: Id, quantity: Quantity) -> dict[str, Any]:
    """Pre-order a menu item for a booked reservation at today's price; ordering an item again adds to it.

    Args:
        reservation_id: the reservation's id (from list_guest_reservations)
        menu_item_id: the item's id (from list_menu)
        quantity: how many portions or bottles
    """
    res = _reservation(ctx, reservation_id)
    _live(ctx, res, "pre-ordered for")
    item = ctx.one("SELECT * FROM menu_items WHERE id = ?", (menu_item_id,))
    if item is None:
        raise ToolError(f"no menu item with id {menu_item_id}; see list_menu")
    if not item["available"]:
        raise ToolError(f"{item['name']} is not available at the moment")
    existing = ctx.one(
        "SELECT * FROM preorders WHERE reservation_id = ? AND menu_item_id = ?", (reservation_id, menu_item_id)
    )
    if existing is not None:
        total = existing["quantity"] + quantity
        if total > 100:
            raise ToolError(f"{total} x {item['name']} is more than 100")
        ctx.update("preorders", {"id": existing["id"]}, {"quantity": total})
        preorder_id = existing["id"]
    else:
        total = quantity
        preorder_id = ctx.insert(
            "preorders",
            {
                "reservation_id": reservation_id,
                "menu_item_id": menu_item_id,
                "quantity": quantity,
                "unit_price_cents": item["price_cents"],
            },
        )
    return {
        "preorder_id": preorder_id,
        "reference": res["reference"],
        "item": item["name"],
        "quantity": total,
        "unit_price_cents": item["price_cents"] if existing is None else existing["unit_price_cents"],
    }
