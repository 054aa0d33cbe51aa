"""The car rental desk's tools: look-ups for customers, fleet, availability and
reservations, and the mutations of the booking and rental life cycle.

Every refusing rule in ``RULES`` is enforced here and named in its ``ToolError``;
the charging rules (``one-way-fee``, ``late-return``, ``refuel-charge``,
``late-cancellation``) are applied by the tools that price, return and cancel.
Time is the scenario clock (``ctx.today``), never the wall clock.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import (
    SQLITE_MAX_INT,
    Code,
    DateStr,
    Email,
    Id,
    Name,
    Phone,
    PositiveCents,
    SearchText,
    like,
    money,
    unique_email,
)
from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

DAILY_RATES = {"economy": 3900, "compact": 4900, "suv": 7900, "van": 8900}
ONE_WAY_FEE_CENTS = 7500
REFUEL_CENTS_PER_EIGHTH = 1500
MIN_AGE = 21
MIN_AGE_VAN = 25
MAX_DAYS = 30
SEARCH_LIMIT = 20
REF_CHARS = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"

Mileage = Annotated[int, Field(ge=0, le=SQLITE_MAX_INT)]
Fuel = Annotated[int, Field(ge=0, le=8)]
Quantity = Annotated[int, Field(ge=1, le=4)]
VehicleClass = Literal["economy", "compact", "suv", "van"]
ExtraCode = Literal["child_seat", "gps", "extra_driver", "snow_chains"]


# --- helpers (not tools) -------------------------------------------------------------------------


def age_on(born: str, day: str) -> int:
    """Age in whole years on ``day`` (both YYYY-MM-DD)."""
    b, d = date.fromisoformat(born), date.fromisoformat(day)
    return d.year - b.year - ((d.month, d.day) < (b.month, b.day))


def _days(start: str, end: str) -> int:
    return (date.fromisoformat(end) - date.fromisoformat(start)).days


def _customer(ctx: ToolContext, customer_id: int) -> dict[str, Any]:
    row = ctx.one("SELECT * FROM customers WHERE id = ?", (customer_id,))
    if row is None:
        raise ToolError(f"no customer with id {customer_id}; look customers up with find_customer")
    return row


def _branch(ctx: ToolContext, name: str) -> dict[str, Any]:
    row = ctx.one("SELECT * FROM branches WHERE lower(name) = lower(?) OR lower(city) = lower(?)", (name.strip(),) * 2)
    if row is None:
        names = ", ".join(r["name"] for r in ctx.all("SELECT name FROM branches ORDER BY id"))
        raise ToolError(f"no branch named {name!r}; the branches are {names} (see list_branches)")
    return row


def _reservation(ctx: ToolContext, reference: str) -> dict[str, Any]:
    row = ctx.one("SELECT * FROM reservations WHERE upper(reference) = upper(?)", (reference.strip(),))
    if row is None:
        raise ToolError(
            f"no reservation with reference {reference!r}; references look like CR-4F7K "
            "(see list_customer_reservations)"
        )
    return row


def _vehicle(ctx: ToolContext, plate: str) -> dict[str, Any]:
    row = ctx.one("SELECT * FROM vehicles WHERE upper(plate) = upper(?)", (plate.strip(),))
    if row is None:
        raise ToolError(f"no vehicle with plate {plate!r}; plates look like AA-12-BC (see list_vehicles)")
    return row


def _require_open(res: dict[str, Any], doing: str) -> None:
    if res["status"] != "booked":
        raise ToolError(
            f"reservation {res['reference']} is {res['status']}, so it cannot {doing}; only a booked reservation can",
            rule="reservation-open",
        )


def _check_dates(ctx: ToolContext, pickup: str, ret: str) -> None:
    parse_date(pickup, "pickup_date")
    parse_date(ret, "return_date")
    if pickup < ctx.today:
        raise ToolError(f"pickup date {pickup} is in the past (today is {ctx.today})", rule="booking-dates")
    days = _days(pickup, ret)
    if days < 1:
        raise ToolError(f"return date {ret} must be after pickup date {pickup}", rule="booking-dates")
    if days > MAX_DAYS:
        raise ToolError(f"{days} days is longer than the {MAX_DAYS}-day maximum rental", rule="booking-dates")


def _check_driver(customer: dict[str, Any], vehicle_class: str, pickup: str, ret: str) -> None:
    age = age_on(customer["date_of_birth"], pickup)
    need = MIN_AGE_VAN if vehicle_class == "van" else MIN_AGE
    if age < need:
        raise ToolError(
            f"customer {customer['name']} will be {age} on {pickup}; renting a {vehicle_class} needs a driver "
            f"aged at least {need}",
            rule="driver-age",
        )
    if customer["licence_expiry"] < ret:
        raise ToolError(
            f"customer {customer['name']}'s driving licence expires on {customer['licence_expiry']}, before the "
            f"return date {ret}; update the licence first",
            rule="licence-valid",
        )


def _free(ctx: ToolContext, branch_id: int, vehicle_class: str, pickup: str, ret: str, skip: int = 0) -> int:
    """Vehicles of a class at a branch not claimed by overlapping reservations."""
    fleet = ctx.scalar(
        "SELECT COUNT(*) FROM vehicles WHERE branch_id = ? AND vehicle_class = ? AND status != 'maintenance'",
        (branch_id, vehicle_class),
    )
    taken = ctx.scalar(
        "SELECT COUNT(*) FROM reservations WHERE pickup_branch_id = ? AND vehicle_class = ? "
        "AND status IN ('booked', 'active') AND pickup_date < ? AND return_date > ? AND id != ?",
        (branch_id, vehicle_class, ret, pickup, skip),
    )
    return int(fleet) - int(taken)


def _require_free(
    ctx: ToolContext, branch: dict[str, Any], vehicle_class: str, pickup: str, ret: str, skip: int = 0
) -> None:
    if _free(ctx, branch["id"], vehicle_class, pickup, ret, skip) < 1:
        raise ToolError(
            f"no {vehicle_class} is free at the {branch['name']} branch from {pickup} to {ret}; try another "
            "class, branch or dates (see check_availability)",
            rule="class-availability",
        )


def _extras_daily(ctx: ToolContext, reservation_id: int) -> int:
    return int(
        ctx.scalar(
            "SELECT COALESCE(SUM(e.daily_cents * re.quantity), 0) FROM reservation_extras re "
            "JOIN extras e ON e.id = re.extra_id WHERE re.reservation_id = ?",
            (reservation_id,),
        )
    )


def _quote(vehicle_class: str, pickup: str, ret: str, one_way: bool, extras_daily: int = 0) -> int:
    days = _days(pickup, ret)
    return days * (DAILY_RATES[vehicle_class] + extras_daily) + (ONE_WAY_FEE_CENTS if one_way else 0)


def _balance(ctx: ToolContext, reservation_id: int) -> tuple[int, int]:
    charged = ctx.scalar(
        "SELECT COALESCE(SUM(amount_cents), 0) FROM charges WHERE reservation_id = ?", (reservation_id,)
    )
    paid = ctx.scalar("SELECT COALESCE(SUM(amount_cents), 0) FROM payments WHERE reservation_id = ?", (reservation_id,))
    return int(charged), int(paid)


def _new_reference(ctx: ToolContext) -> str:
    while True:
        ref = "CR-" + "".join(ctx.random.choice(REF_CHARS) for _ in range(4))
        if ctx.scalar("SELECT COUNT(*) FROM reservations WHERE reference = ?", (ref,)) == 0:
            return ref


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_customer(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Find customers by part of their name, or by their exact email or licence number.

    Args:
        query: part of the customer's name, their email address, or their driving licence number
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty; give part of a name, an email or a licence number")
    rows = ctx.all(
        "SELECT id AS customer_id, name, email, phone, date_of_birth, licence_number, licence_expiry "
        "FROM customers WHERE lower(email) = lower(?) OR upper(licence_number) = upper(?) "
        "OR name LIKE ? ESCAPE '\\' ORDER BY name, id LIMIT ?",
        (text, text, like(text), SEARCH_LIMIT),
    )
    return rows


@tool(kind="query")
def get_customer(ctx: ToolContext, customer_id: Id) -> dict[str, Any]:
    """A customer's details, age today and licence, with their reservation count.

    Args:
        customer_id: the customer's id (from find_customer)
    """
    c = _customer(ctx, customer_id)
    return {
        "customer_id": c["id"],
        "name": c["name"],
        "email": c["email"],
        "phone": c["phone"],
        "date_of_birth": c["date_of_birth"],
        "age_today": age_on(c["date_of_birth"], ctx.today),
        "licence_number": c["licence_number"],
        "licence_expiry": c["licence_expiry"],
        "reservations": ctx.scalar("SELECT COUNT(*) FROM reservations WHERE customer_id = ?", (customer_id,)),
    }


@tool(kind="query")
def list_branches(ctx: ToolContext) -> list[dict[str, Any]]:
    """All branches with their city, address, phone and vehicles available now.

    Args:
    """
    return ctx.all(
        "SELECT b.name, b.city, b.address, b.phone, "
        "(SELECT COUNT(*) FROM vehicles v WHERE v.branch_id = b.id AND v.status = 'available') AS vehicles_available "
        "FROM branches b ORDER BY b.id"
    )


@tool(kind="query")
def list_vehicles(
    ctx: ToolContext,
    branch: Name,
    vehicle_class: VehicleClass | None = None,
    status: Literal["available", "rented", "maintenance"] | None = None,
) -> list[dict[str, Any]]:
    """Vehicles parked at (or belonging to) a branch, optionally of one class and status.

    Args:
        branch: the branch's name or city, e.g. Lisbon
        vehicle_class: only this class: economy, compact, suv or van
        status: only vehicles in this status: available, rented or maintenance
    """
    b = _branch(ctx, branch)
    sql = "SELECT plate, make_model, vehicle_class, status, mileage, fuel_level FROM vehicles WHERE branch_id = ?"
    params: list[Any] = [b["id"]]
    if vehicle_class is not None:
        sql += " AND vehicle_class = ?"
        params.append(vehicle_class)
    if status is not None:
        sql += " AND status = ?"
        params.append(status)
    return ctx.all(sql + " ORDER BY vehicle_class, plate", params)


@tool(kind="query")
def get_vehicle(ctx: ToolContext, plate: Code) -> dict[str, Any]:
    """One vehicle by plate: class, branch, status, mileage, fuel, and its current rental if rented.

    Args:
        plate: the vehicle's licence plate, e.g. AA-12-BC
    """
    v = _vehicle(ctx, plate)
    branch = ctx.scalar("SELECT name FROM branches WHERE id = ?", (v["branch_id"],))
    rental = ctx.one(
        "SELECT r.reference, c.name AS customer_name, r.return_date, rt.picked_up FROM rentals rt "
        "JOIN reservations r ON r.id = rt.reservation_id JOIN customers c ON c.id = r.customer_id "
        "WHERE rt.vehicle_id = ? AND rt.returned IS NULL",
        (v["id"],),
    )
    return {
        "plate": v["plate"],
        "make_model": v["make_model"],
        "vehicle_class": v["vehicle_class"],
        "branch": branch,
        "status": v["status"],
        "mileage": v["mileage"],
        "fuel_level": v["fuel_level"],
        "current_rental": rental,
    }


@tool(kind="query")
def check_availability(
    ctx: ToolContext,
    pickup_branch: Name,
    pickup_date: DateStr,
    return_date: DateStr,
    return_branch: Name | None = None,
) -> list[dict[str, Any]]:
    """How many vehicles of each class are free at a branch for some dates, and each class's price.

    Args:
        pickup_branch: the branch's name or city where the vehicle is picked up
        pickup_date: the first day of the rental
        return_date: the day the vehicle is returned
        return_branch: where it is returned, when not the pickup branch (adds the one-way fee)
    """
    b = _branch(ctx, pickup_branch)
    rb = _branch(ctx, return_branch) if return_branch else b
    _check_dates(ctx, pickup_date, return_date)
    return [
        {
            "vehicle_class": cls,
            "free": max(_free(ctx, b["id"], cls, pickup_date, return_date), 0),
            "daily_cents": rate,
            "quote_cents": _quote(cls, pickup_date, return_date, rb["id"] != b["id"]),
        }
        for cls, rate in DAILY_RATES.items()
    ]


@tool(kind="query")
def get_reservation(ctx: ToolContext, reference: Code) -> dict[str, Any]:
    """A reservation in full: customer, branches, dates, class, status, extras, rental, charges, payments, balance.

    Args:
        reference: the reservation's reference, e.g. CR-4F7K
    """
    r = _reservation(ctx, reference)
    names = {row["id"]: row["name"] for row in ctx.all("SELECT id, name FROM branches")}
    customer = _customer(ctx, r["customer_id"])
    rental = ctx.one(
        "SELECT v.plate, rt.picked_up, rt.start_mileage, rt.fuel_out, rt.returned, rt.end_mileage, rt.fuel_in "
        "FROM rentals rt JOIN vehicles v ON v.id = rt.vehicle_id WHERE rt.reservation_id = ?",
        (r["id"],),
    )
    charged, paid = _balance(ctx, r["id"])
    return {
        "reference": r["reference"],
        "customer": {"customer_id": customer["id"], "name": customer["name"]},
        "pickup_branch": names[r["pickup_branch_id"]],
        "return_branch": names[r["return_branch_id"]],
        "pickup_date": r["pickup_date"],
        "return_date": r["return_date"],
        "vehicle_class": r["vehicle_class"],
        "status": r["status"],
        "quoted_cents": r["quoted_cents"],
        "extras": ctx.all(
            "SELECT e.code, e.name, re.quantity, e.daily_cents FROM reservation_extras re "
            "JOIN extras e ON e.id = re.extra_id WHERE re.reservation_id = ? ORDER BY e.code",
            (r["id"],),
        ),
        "rental": rental,
        "charges": ctx.all(
            "SELECT kind, amount_cents, created, description FROM charges WHERE reservation_id = ? ORDER BY id",
            (r["id"],),
        ),
        "payments": ctx.all(
            "SELECT amount_cents, method, paid_on FROM payments WHERE reservation_id = ? ORDER BY id", (r["id"],)
        ),
        "charged_cents": charged,
        "paid_cents": paid,
        "balance_cents": charged - paid,
    }


@tool(kind="query")
def list_customer_reservations(
    ctx: ToolContext, customer_id: Id, status: Literal["booked", "active", "completed", "cancelled"] | None = None
) -> list[dict[str, Any]]:
    """A customer's reservations, newest pickup first, optionally only those in one status.

    Args:
        customer_id: the customer's id (from find_customer)
        status: only reservations in this status: booked, active, completed or cancelled
    """
    _customer(ctx, customer_id)
    sql = (
        "SELECT r.reference, pb.name AS pickup_branch, rb.name AS return_branch, r.pickup_date, r.return_date, "
        "r.vehicle_class, r.status, r.quoted_cents FROM reservations r "
        "JOIN branches pb ON pb.id = r.pickup_branch_id JOIN branches rb ON rb.id = r.return_branch_id "
        "WHERE r.customer_id = ?"
    )
    params: list[Any] = [customer_id]
    if status is not None:
        sql += " AND r.status = ?"
        params.append(status)
    return ctx.all(sql + " ORDER BY r.pickup_date DESC, r.id DESC", params)


@tool(kind="query")
def list_extras(ctx: ToolContext) -> list[dict[str, Any]]:
    """The extras that can be added to a reservation, with their daily price.

    Args:
    """
    return ctx.all("SELECT code, name, daily_cents FROM extras ORDER BY id")


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def register_customer(
    ctx: ToolContext,
    name: Name,
    email: Email,
    phone: Phone,
    date_of_birth: DateStr,
    licence_number: Code,
    licence_expiry: DateStr,
) -> dict[str, Any]:
    """Register a new customer with their driving licence.

    Args:
        name: the customer's full name
        email: the customer's email address, unique among customers
        phone: the customer's phone number
        date_of_birth: the customer's date of birth
        licence_number: the driving licence number, unique among customers
        licence_expiry: the last day the driving licence is valid
    """
    name, phone, licence = name.strip(), phone.strip(), licence_number.strip().upper()
    if not name or not phone or not licence:
        raise ToolError("name, phone and licence_number must not be empty")
    parse_date(date_of_birth, "date_of_birth")
    parse_date(licence_expiry, "licence_expiry")
    email = unique_email(ctx, "customers", email, None, "customer", None)
    other = ctx.one("SELECT name FROM customers WHERE upper(licence_number) = ?", (licence,))
    if other is not None:
        raise ToolError(f"licence {licence} is already registered to customer {other['name']}")
    customer_id = ctx.insert(
        "customers",
        {
            "name": name,
            "email": email,
            "phone": phone,
            "date_of_birth": date_of_birth,
            "licence_number": licence,
            "licence_expiry": licence_expiry,
        },
    )
    return {"customer_id": customer_id, "name": name, "age_today": age_on(date_of_birth, ctx.today)}


@tool(kind="mutation")
def update_customer_licence(
    ctx: ToolContext, customer_id: Id, licence_number: Code, licence_expiry: DateStr
) -> dict[str, Any]:
    """Record a customer's renewed or replaced driving licence.

    Args:
        customer_id: the customer's id (from find_customer)
        licence_number: the new licence's number
        licence_expiry: the last day the new licence is valid
    """
    c = _customer(ctx, customer_id)
    licence = licence_number.strip().upper()
    if not licence:
        raise ToolError("licence_number is empty")
    parse_date(licence_expiry, "licence_expiry")
    if licence_expiry < ctx.today:
        raise ToolError(f"a licence expiring on {licence_expiry} has already expired", rule="licence-valid")
    other = ctx.one("SELECT name FROM customers WHERE upper(licence_number) = ? AND id != ?", (licence, customer_id))
    if other is not None:
        raise ToolError(f"licence {licence} is already registered to customer {other['name']}")
    ctx.update("customers", {"id": customer_id}, {"licence_number": licence, "licence_expiry": licence_expiry})
    return {"customer_id": customer_id, "name": c["name"], "licence_number": licence, "licence_expiry": licence_expiry}


@tool(kind="mutation")
def create_reservation(
    ctx: ToolContext,
    customer_id: Id,
    pickup_branch: Name,
    vehicle_class: VehicleClass,
    pickup_date: DateStr,
    return_date: DateStr,
    return_branch: Name | None = None,
) -> dict[str, Any]:
    """Book a vehicle class for a customer; returns the new reference and the quoted price.

    Args:
        customer_id: the driver's customer id (from find_customer)
        pickup_branch: the branch's name or city where the vehicle is picked up
        vehicle_class: the class booked: economy, compact, suv or van
        pickup_date: the first day of the rental
        return_date: the day the vehicle is returned
        return_branch: where the vehicle is returned, when not the pickup branch (one-way fee)
    """
    c = _customer(ctx, customer_id)
    b = _branch(ctx, pickup_branch)
    rb = _branch(ctx, return_branch) if return_branch else b
    _check_dates(ctx, pickup_date, return_date)
    _check_driver(c, vehicle_class, pickup_date, return_date)
    _require_free(ctx, b, vehicle_class, pickup_date, return_date)
    quote = _quote(vehicle_class, pickup_date, return_date, rb["id"] != b["id"])
    reference = _new_reference(ctx)
    ctx.insert(
        "reservations",
        {
            "reference": reference,
            "customer_id": customer_id,
            "pickup_branch_id": b["id"],
            "return_branch_id": rb["id"],
            "pickup_date": pickup_date,
            "return_date": return_date,
            "vehicle_class": vehicle_class,
            "status": "booked",
            "quoted_cents": quote,
            "created": ctx.today,
        },
    )
    return {
        "reference": reference,
        "customer": c["name"],
        "pickup_branch": b["name"],
        "return_branch": rb["name"],
        "pickup_date": pickup_date,
        "return_date": return_date,
        "vehicle_class": vehicle_class,
        "quoted_cents": quote,
        "one_way_fee_cents": ONE_WAY_FEE_CENTS if rb["id"] != b["id"] else 0,
    }


def _requote(ctx: ToolContext, res: dict[str, Any], pickup: str, ret: str) -> int:
    return _quote(
        res["vehicle_class"],
        pickup,
        ret,
        res["pickup_branch_id"] != res["return_branch_id"],
        _extras_daily(ctx, res["id"]),
    )


@tool(kind="mutation")
def add_extra(ctx: ToolContext, reference: Code, extra: ExtraCode, quantity: Quantity = 1) -> dict[str, Any]:
    """Add an extra to a booked reservation (or set its quantity if already there); the quote is updated.

    Args:
        reference: the reservation's reference, e.g. CR-4F7K
        extra: which extra: child_seat, gps, extra_driver or snow_chains
        quantity: how many (1-4); replaces the quantity if the extra is already on the reservation
    """
    res = _reservation(ctx, reference)
    _require_open(res, "be given extras")
    e = ctx.one("SELECT * FROM extras WHERE code = ?", (extra,))
    if e is None:
        raise ToolError(f"no extra {extra!r}; see list_extras")
    existing = ctx.one(
        "SELECT id FROM reservation_extras WHERE reservation_id = ? AND extra_id = ?", (res["id"], e["id"])
    )
    if existing is None:
        ctx.insert("reservation_extras", {"reservation_id": res["id"], "extra_id": e["id"], "quantity": quantity})
    else:
        ctx.update("reservation_extras", {"id": existing["id"]}, {"quantity": quantity})
    quote = _requote(ctx, res, res["pickup_date"], res["return_date"])
    ctx.update("reservations", {"id": res["id"]}, {"quoted_cents": quote})
    return {"reference": res["reference"], "extra": e["name"], "quantity": quantity, "quoted_cents": quote}


@tool(kind="mutation")
def change_reservation_dates(
    ctx: ToolContext, reference: Code, pickup_date: DateStr, return_date: DateStr
) -> dict[str, Any]:
    """Move a booked reservation to new dates; availability, the driver's licence and the quote are rechecked.

    Args:
        reference: the reservation's reference, e.g. CR-4F7K
        pickup_date: the new first day of the rental
        return_date: the new return day
    """
    res = _reservation(ctx, reference)
    _require_open(res, "be changed")
    _check_dates(ctx, pickup_date, return_date)
    c = _customer(ctx, res["customer_id"])
    _check_driver(c, res["vehicle_class"], pickup_date, return_date)
    b = ctx.one("SELECT * FROM branches WHERE id = ?", (res["pickup_branch_id"],))
    if b is None:
        raise ToolError(f"reservation {res['reference']} has no pickup branch on record")
    _require_free(ctx, b, res["vehicle_class"], pickup_date, return_date, skip=res["id"])
    quote = _requote(ctx, res, pickup_date, return_date)
    ctx.update(
        "reservations",
        {"id": res["id"]},
        {"pickup_date": pickup_date, "return_date": return_date, "quoted_cents": quote},
    )
    return {
        "reference": res["reference"],
        "pickup_date": pickup_date,
        "return_date": return_date,
        "quoted_cents": quote,
    }


@tool(kind="mutation")
def cancel_reservation(ctx: ToolContext, reference: Code) -> dict[str, Any]:
    """Cancel a booked reservation; from the day before pickup on, one day at the class rate is charged.

    Args:
        reference: the reservation's reference, e.g. CR-4F7K
    """
    res = _reservation(ctx, reference)
    _require_open(res, "be cancelled")
    ctx.update("reservations", {"id": res["id"]}, {"status": "cancelled"})
    fee = 0
    if _days(ctx.today, res["pickup_date"]) <= 1:
        fee = DAILY_RATES[res["vehicle_class"]]
        ctx.insert(
            "charges",
            {
                "reservation_id": res["id"],
                "kind": "cancellation",
                "amount_cents": fee,
                "created": ctx.today,
                "description": f"late cancellation of {res['reference']}: one day of {res['vehicle_class']}",
            },
        )
    return {"reference": res["reference"], "status": "cancelled", "cancellation_fee_cents": fee}


@tool(kind="mutation")
def start_rental(ctx: ToolContext, reference: Code, plate: Code) -> dict[str, Any]:
    """Hand a vehicle over for a booked reservation on its pickup date; mileage and fuel are recorded.

    Args:
        reference: the reservation's reference, e.g. CR-4F7K
        plate: the plate of the vehicle handed over, e.g. AA-12-BC (see list_vehicles)
    """
    res = _reservation(ctx, reference)
    _require_open(res, "be picked up")
    if res["pickup_date"] != ctx.today:
        raise ToolError(
            f"reservation {res['reference']} is for pickup on {res['pickup_date']}, not today ({ctx.today})",
            rule="pickup-on-date",
        )
    v = _vehicle(ctx, plate)
    c = _customer(ctx, res["customer_id"])
    _check_driver(c, res["vehicle_class"], res["pickup_date"], res["return_date"])
    problem = None
    if v["status"] != "available":
        problem = f"it is {v['status']}"
    elif v["branch_id"] != res["pickup_branch_id"]:
        problem = "it is parked at another branch"
    elif v["vehicle_class"] != res["vehicle_class"]:
        problem = f"it is a {v['vehicle_class']}, but a {res['vehicle_class']} is reserved"
    if problem:
        raise ToolError(
            f"vehicle {v['plate']} cannot be handed over for {res['reference']}: {problem}", rule="vehicle-ready"
        )
    ctx.insert(
        "rentals",
        {
            "reservation_id": res["id"],
            "vehicle_id": v["id"],
            "picked_up": ctx.today,
            "start_mileage": v["mileage"],
            "fuel_out": v["fuel_level"],
            "returned": None,
            "end_mileage": None,
            "fuel_in": None,
        },
    )
    ctx.update("vehicles", {"id": v["id"]}, {"status": "rented"})
    ctx.update("reservations", {"id": res["id"]}, {"status": "active"})
    return {
        "reference": res["reference"],
        "plate": v["plate"],
        "start_mileage": v["mileage"],
        "fuel_out": v["fuel_level"],
        "due_back": res["return_date"],
    }


@tool(kind="mutation")
def return_vehicle(ctx: ToolContext, reference: Code, mileage: Mileage, fuel_level: Fuel) -> dict[str, Any]:
    """Take a rented vehicle back at the reservation's return branch and charge the rental and any fees.

    Charges the quoted price, one extra day per day late, and refuelling when the
    tank holds less than at pickup.

    Args:
        reference: the reservation's reference, e.g. CR-4F7K
        mileage: the odometer reading on return, in km
        fuel_level: the fuel on return, in eighths of a tank (0-8)
    """
    res = _reservation(ctx, reference)
    if res["status"] != "active":
        raise ToolError(f"reservation {res['reference']} is {res['status']}; only an active rental can be returned")
    rental = ctx.one("SELECT * FROM rentals WHERE reservation_id = ?", (res["id"],))
    if rental is None:
        raise ToolError(f"reservation {res['reference']} is active but has no rental on record")
    if mileage < rental["start_mileage"]:
        raise ToolError(f"mileage {mileage} is below the {rental['start_mileage']} km recorded at pickup")
    charges = [("rental", res["quoted_cents"], f"rental {res['reference']} as quoted")]
    late = max(_days(res["return_date"], ctx.today), 0)
    if late:
        charges.append(
            ("late_return", late * DAILY_RATES[res["vehicle_class"]], f"{late} day(s) late after {res['return_date']}")
        )
    missing = rental["fuel_out"] - fuel_level
    if missing > 0:
        charges.append(("refuel", missing * REFUEL_CENTS_PER_EIGHTH, f"refuelling {missing} eighth(s) of a tank"))
    for kind, amount, text in charges:
        ctx.insert(
            "charges",
            {
                "reservation_id": res["id"],
                "kind": kind,
                "amount_cents": amount,
                "created": ctx.today,
                "description": text,
            },
        )
    ctx.update("rentals", {"id": rental["id"]}, {"returned": ctx.today, "end_mileage": mileage, "fuel_in": fuel_level})
    ctx.update(
        "vehicles",
        {"id": rental["vehicle_id"]},
        {"status": "available", "mileage": mileage, "fuel_level": fuel_level, "branch_id": res["return_branch_id"]},
    )
    ctx.update("reservations", {"id": res["id"]}, {"status": "completed"})
    charged, paid = _balance(ctx, res["id"])
    return {
        "reference": res["reference"],
        "days_late": late,
        "charges": [{"kind": k, "amount_cents": a, "description": t} for k, a, t in charges],
        "km_driven": mileage - rental["start_mileage"],
        "balance_cents": charged - paid,
    }


@tool(kind="mutation")
def record_payment(
    ctx: ToolContext, reference: Code, amount_cents: PositiveCents, method: Literal["card", "cash"]
) -> dict[str, Any]:
    """Record a payment towards a reservation's charges, at most the balance still owed.

    Args:
        reference: the reservation's reference, e.g. CR-4F7K
        amount_cents: the amount paid, in cents (4900 = EUR 49.00)
        method: how the customer pays: card or cash
    """
    res = _reservation(ctx, reference)
    charged, paid = _balance(ctx, res["id"])
    if amount_cents > charged - paid:
        raise ToolError(
            f"{money(amount_cents, 'EUR ')} is more than the {money(charged - paid, 'EUR ')} still owed on "
            f"{res['reference']}"
        )
    ctx.insert(
        "payments", {"reservation_id": res["id"], "amount_cents": amount_cents, "method": method, "paid_on": ctx.today}
    )
    return {"reference": res["reference"], "paid_cents": amount_cents, "balance_cents": charged - paid - amount_cents}


@tool(kind="mutation")
def set_vehicle_status(ctx: ToolContext, plate: Code, status: Literal["available", "maintenance"]) -> dict[str, Any]:
    """Send a vehicle to maintenance or bring it back into service.

    Args:
        plate: the vehicle's licence plate, e.g. AA-12-BC
        status: maintenance (out of service) or available (back in service)
    """
    v = _vehicle(ctx, plate)
    if v["status"] == "rented":
        raise ToolError(f"vehicle {v['plate']} is rented out; it can change status only once returned")
    if v["status"] == status:
        raise ToolError(f"vehicle {v['plate']} is already {status}")
    ctx.update("vehicles", {"id": v["id"]}, {"status": status})
    return {"plate": v["plate"], "status": status}
