"""tau2-bench's airline tools over SQLite: the same names, arguments, answers and errors.

Written for envfarm from the behaviour of tau2-bench's ``src/tau2/domains/airline/tools.py`` (MIT,
commit in ``tau2.json``); the tool and parameter descriptions are tau2's words, so an agent reads
what tau2's agent reads. Each tool answers the text tau2's environment answers for the same call on
the same state: a JSON object or list dumped as tau2 dumps it (``json.dumps`` of the models, fields in
model order), a plain string, or on an error ``Error: <message>`` (``ERROR_FORMAT``) with tau2's message.

tau2's quirks that change the state are kept (docs/environments/tau2_airline.md lists them), e.g. a
cancellation refunds every payment but returns no seat, a flight change takes no seat either, a
certificate is used up whole, and a booking that pays twice with one certificate fails half-way
without undoing what it had done.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from typing_extensions import TypedDict

from envfarm.core.toolkit import calculate_text
from envfarm.core.tools import ToolContext, ToolError, tool

from . import tau2db

# Bounds tau2 does not have: far above any real value, so no agent can send SQLite a string it cannot hold.
Key = Annotated[str, Field(max_length=200)]
"""An id or code as tau2 writes them ('sara_doe_496', 'ZFA04Y', 'HAT001', 'credit_card_7815826', 'JFK', a date)."""
Summary = Annotated[str, Field(max_length=10_000)]
"""Free text for a human agent."""
Expression = Annotated[str, Field(max_length=500)]
"""Arithmetic for ``calculate``."""
Name = Annotated[str, Field(max_length=500)]
Cabin = Literal["business", "economy", "basic_economy"]

NEW_RESERVATION_IDS = ("HATHAT", "HATHAU", "HATHAV")  # tau2: at most 3 bookings per task
NEW_CERTIFICATE_NUMBERS = (3221322, 3221323, 3221324)  # tau2: at most 3 certificates per task
AIRPORTS = [
    ("SFO", "San Francisco"),
    ("JFK", "New York"),
    ("LAX", "Los Angeles"),
    ("ORD", "Chicago"),
    ("DFW", "Dallas"),
    ("DEN", "Denver"),
    ("SEA", "Seattle"),
    ("ATL", "Atlanta"),
    ("MIA", "Miami"),
    ("BOS", "Boston"),
    ("PHX", "Phoenix"),
    ("IAH", "Houston"),
    ("LAS", "Las Vegas"),
    ("MCO", "Orlando"),
    ("EWR", "Newark"),
    ("CLT", "Charlotte"),
    ("MSP", "Minneapolis"),
    ("DTW", "Detroit"),
    ("PHL", "Philadelphia"),
    ("LGA", "LaGuardia"),
]


class FlightInfo(TypedDict):
    flight_number: Annotated[str, Field(max_length=200, description="Flight number, such as 'HAT001'.")]
    date: Annotated[
        str,
        Field(max_length=200, description="The date for the flight in the format 'YYYY-MM-DD', such as '2024-05-01'."),
    ]


class PassengerInfo(TypedDict):
    first_name: Annotated[str, Field(max_length=500, description="Passenger's first name")]
    last_name: Annotated[str, Field(max_length=500, description="Passenger's last name")]
    dob: Annotated[str, Field(max_length=200, description="Date of birth in YYYY-MM-DD format")]


class PaymentInfo(TypedDict):
    payment_id: Annotated[str, Field(max_length=200, description="Unique identifier for the payment")]
    amount: Annotated[int, Field(description="Payment amount in dollars")]


# --- look-ups (tau2's _get_* helpers, and their errors) ------------------------------------------


def _user(ctx: ToolContext, user_id: str) -> dict[str, Any]:
    user = ctx.one("SELECT * FROM users WHERE user_id = ?", (user_id,))
    if user is None:
        raise ToolError(f"User {user_id} not found")
    return user


def _reservation(ctx: ToolContext, reservation_id: str) -> dict[str, Any]:
    reservation = ctx.one("SELECT * FROM reservations WHERE reservation_id = ?", (reservation_id,))
    if reservation is None:
        raise ToolError(f"Reservation {reservation_id} not found")
    return reservation


def _flight(ctx: ToolContext, flight_number: str) -> dict[str, Any]:
    flight = ctx.one("SELECT * FROM flights WHERE flight_number = ?", (flight_number,))
    if flight is None:
        raise ToolError(f"Flight {flight_number} not found")
    return flight


def _flight_date(ctx: ToolContext, flight_number: str, date: str) -> dict[str, Any]:
    _flight(ctx, flight_number)
    on_date = ctx.one("SELECT * FROM flight_dates WHERE flight_number = ? AND date = ?", (flight_number, date))
    if on_date is None:
        raise ToolError(f"Flight {flight_number} not found on date {date}")
    return on_date


def _methods(ctx: ToolContext, user_id: str) -> dict[str, dict[str, Any]]:
    rows = ctx.all("SELECT * FROM payment_methods WHERE user_id = ? ORDER BY position", (user_id,))
    return {m["id"]: m for m in rows}


def _user_text(ctx: ToolContext, user_id: str) -> str:
    user = _user(ctx, user_id)
    methods = _methods(ctx, user_id).values()
    saved = ctx.all("SELECT * FROM saved_passengers WHERE user_id = ? ORDER BY position", (user_id,))
    reservations = ctx.all("SELECT * FROM user_reservations WHERE user_id = ? ORDER BY position", (user_id,))
    return tau2db.text(tau2db.user(user, methods, saved, reservations))


def _rows_of(ctx: ToolContext, table: str, reservation_id: str) -> list[dict[str, Any]]:
    return ctx.all(f'SELECT * FROM "{table}" WHERE reservation_id = ? ORDER BY position', (reservation_id,))


def _reservation_text(ctx: ToolContext, reservation_id: str) -> str:
    reservation = _reservation(ctx, reservation_id)
    parts = (_rows_of(ctx, t, reservation_id) for t in ("reservation_flights", "passengers", "payments"))
    return tau2db.text(tau2db.reservation(reservation, *parts))


def _append(ctx: ToolContext, table: str, reservation_id: str, row: dict[str, Any]) -> None:
    position = ctx.scalar(f'SELECT COUNT(*) FROM "{table}" WHERE reservation_id = ?', (reservation_id,))
    ctx.insert(table, {"reservation_id": reservation_id, "position": position, **row})


def _replace(ctx: ToolContext, table: str, reservation_id: str, rows: list[dict[str, Any]]) -> None:
    ctx.execute(f'DELETE FROM "{table}" WHERE reservation_id = ?', (reservation_id,))
    for position, row in enumerate(rows):
        ctx.insert(table, {"reservation_id": reservation_id, "position": position, **row})


def _as_int(value: Any) -> Any:
    """What tau2's pydantic int fields keep of a number: 3.0 becomes 3 (the schema admits nothing else)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _search(
    ctx: ToolContext, date: str, origin: str | None = None, destination: str | None = None, after: str | None = None
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Flights available for booking on ``date`` (tau2's _search_direct_flight), in tau2's flight order."""
    found = ctx.all(
        "SELECT f.*, d.seats_basic_economy, d.seats_economy, d.seats_business, "
        "d.price_basic_economy, d.price_economy, d.price_business "
        "FROM flights f JOIN flight_dates d ON d.flight_number = f.flight_number AND d.date = ? "
        "WHERE d.status = 'available' AND (? IS NULL OR f.origin = ?) AND (? IS NULL OR f.destination = ?) "
        "AND (? IS NULL OR f.scheduled_departure_time_est >= ?) ORDER BY f.position",
        (date, origin, origin, destination, destination, after, after),
    )
    return [(row, row) for row in found]


def _pay_for_update(ctx: ToolContext, user_id: str, payment_id: str, total_price: Any) -> dict[str, Any] | None:
    """tau2's _payment_for_update: check the method, take a gift card's share; the payment row, if any."""
    method = _methods(ctx, user_id).get(payment_id)
    if method is None:
        raise ToolError("Payment method not found")
    if method["source"] == "certificate":
        raise ToolError("Certificate cannot be used to update reservation", rule="modify-flight")
    if method["source"] == "gift_card" and method["amount"] < total_price:
        raise ToolError("Gift card balance is not enough")
    if method["source"] == "gift_card":
        ctx.update(
            "payment_methods", {"user_id": user_id, "id": payment_id}, {"amount": method["amount"] - total_price}
        )
    return None if total_price == 0 else {"payment_id": payment_id, "amount": _as_int(total_price)}


# --- tools -------------------------------------------------------------------------------------


@tool(kind="mutation")
def book_reservation(
    ctx: ToolContext,
    user_id: Key,
    origin: Key,
    destination: Key,
    flight_type: Literal["round_trip", "one_way"],
    cabin: Cabin,
    flights: list[FlightInfo],
    passengers: list[PassengerInfo],
    payment_methods: list[PaymentInfo],
    total_baggages: int,
    nonfree_baggages: int,
    insurance: Literal["yes", "no"],
) -> str:
    """Book a reservation.

    Args:
        user_id: The ID of the user to book the reservation such as 'sara_doe_496'`.
        origin: The IATA code for the origin city such as 'SFO'.
        destination: The IATA code for the destination city such as 'JFK'.
        flight_type: The type of flight such as 'one_way' or 'round_trip'.
        cabin: The cabin class such as 'basic_economy', 'economy', or 'business'.
        flights: An array of objects containing details about each piece of flight.
        passengers: An array of objects containing details about each passenger.
        payment_methods: An array of objects containing details about each payment method.
        total_baggages: The total number of baggage items to book the reservation.
        nonfree_baggages: The number of non-free baggage items to book the reservation.
        insurance: Whether the reservation has insurance.
    """
    payments = [{"payment_id": p["payment_id"], "amount": _as_int(p["amount"])} for p in payment_methods]
    _user(ctx, user_id)
    reservation_id = next(
        (
            r
            for r in NEW_RESERVATION_IDS
            if ctx.one("SELECT 1 FROM reservations WHERE reservation_id = ?", (r,)) is None
        ),
        None,
    )
    if reservation_id is None:
        raise ToolError("Too many reservations")
    count = len(passengers)
    total_price: Any = 0
    booked: list[dict[str, Any]] = []
    for info in flights:
        number = info["flight_number"]
        flight = _flight(ctx, number)
        on_date = _flight_date(ctx, number, info["date"])
        if on_date["status"] != "available":
            raise ToolError(f"Flight {number} not available on date {info['date']}")
        if on_date[f"seats_{cabin}"] < count:
            raise ToolError(f"Not enough seats on flight {number}", rule="book-flight")
        price = on_date[f"price_{cabin}"]
        booked.append(
            {
                "flight_number": number,
                "origin": flight["origin"],
                "destination": flight["destination"],
                "date": info["date"],
                "price": price,
            }
        )
        total_price += price * count
    if insurance == "yes":
        total_price += 30 * count
    total_price += 50 * nonfree_baggages  # the argument as given (tau2 does not validate it here)
    methods = _methods(ctx, user_id)
    for payment in payments:
        method = methods.get(payment["payment_id"])
        if method is None:
            raise ToolError(f"Payment method {payment['payment_id']} not found")
        if method["source"] in ("gift_card", "certificate") and method["amount"] < payment["amount"]:
            raise ToolError(f"Not enough balance in payment method {payment['payment_id']}", rule="book-flight")
    total_payment = sum(p["amount"] for p in payments)
    if total_payment != total_price:
        raise ToolError(f"Payment amount does not add up, total price is {total_price}, but paid {total_payment}")
    for payment in payments:
        method = _methods(ctx, user_id).get(payment["payment_id"])
        if method is None:  # tau2: a certificate given twice is gone the second time; what it did stays
            raise ToolError(repr(payment["payment_id"]), keep_writes=True)
        key = {"user_id": user_id, "id": method["id"]}
        if method["source"] == "gift_card":
            ctx.update("payment_methods", key, {"amount": method["amount"] - payment["amount"]})
        elif method["source"] == "certificate":  # used up whole, whatever is left on it
            ctx.execute("DELETE FROM payment_methods WHERE user_id = ? AND id = ?", (user_id, method["id"]))
            ctx.execute(
                "UPDATE payment_methods SET position = position - 1 WHERE user_id = ? AND position > ?",
                (user_id, method["position"]),
            )
    for row in booked:
        ctx.execute(
            f'UPDATE flight_dates SET "seats_{cabin}" = "seats_{cabin}" - ? WHERE flight_number = ? AND date = ?',
            (count, row["flight_number"], row["date"]),
        )
    ctx.insert(
        "reservations",
        {
            "reservation_id": reservation_id,
            "position": ctx.scalar("SELECT COUNT(*) FROM reservations"),
            "user_id": user_id,
            "origin": origin,
            "destination": destination,
            "flight_type": flight_type,
            "cabin": cabin,
            "created_at": ctx.now.strftime("%Y-%m-%dT%H:%M:%S"),  # tau2: 2024-05-15T15:00:00, the scenarios' clock
            "total_baggages": _as_int(total_baggages),
            "nonfree_baggages": _as_int(nonfree_baggages),
            "insurance": insurance,
            "status": None,
        },
    )
    _replace(ctx, "reservation_flights", reservation_id, booked)
    _replace(ctx, "passengers", reservation_id, [tau2db.passenger(p) for p in passengers])
    _replace(ctx, "payments", reservation_id, payments)
    position = ctx.scalar("SELECT COUNT(*) FROM user_reservations WHERE user_id = ?", (user_id,))
    ctx.insert("user_reservations", {"user_id": user_id, "position": position, "reservation_id": reservation_id})
    return _reservation_text(ctx, reservation_id)


@tool(kind="query")
def calculate(ctx: ToolContext, expression: Expression) -> str:
    """Calculate the result of a mathematical expression.

    Args:
        expression: The mathematical expression to calculate, such as '2 + 2'. The expression can contain
            numbers, operators (+, -, *, /), parentheses, and spaces.
    """
    return calculate_text(expression)


@tool(kind="mutation")
def cancel_reservation(ctx: ToolContext, reservation_id: Key) -> str:
    """Cancel the whole reservation.

    Args:
        reservation_id: The reservation ID, such as 'ZFA04Y'.
    """
    _reservation(ctx, reservation_id)
    for payment in _rows_of(ctx, "payments", reservation_id):  # every payment so far, refunds included
        _append(ctx, "payments", reservation_id, {"payment_id": payment["payment_id"], "amount": -payment["amount"]})
    ctx.update("reservations", {"reservation_id": reservation_id}, {"status": "cancelled"})
    return _reservation_text(ctx, reservation_id)  # tau2 releases no seat


@tool(kind="query")
def get_reservation_details(ctx: ToolContext, reservation_id: Key) -> str:
    """Get the details of a reservation.

    Args:
        reservation_id: The reservation ID, such as '8JX2WO'.
    """
    return _reservation_text(ctx, reservation_id)


@tool(kind="query")
def get_user_details(ctx: ToolContext, user_id: Key) -> str:
    """Get the details of a user, including their reservations.

    Args:
        user_id: The user ID, such as 'sara_doe_496'.
    """
    return _user_text(ctx, user_id)


@tool(kind="query")
def list_all_airports(ctx: ToolContext) -> str:
    """Returns a list of all available airports."""
    return tau2db.text([{"iata": iata, "city": city} for iata, city in AIRPORTS])


@tool(kind="query")
def search_direct_flight(ctx: ToolContext, origin: Key, destination: Key, date: Key) -> str:
    """Search for direct flights between two cities on a specific date.

    Args:
        origin: The origin city airport in three letters, such as 'JFK'.
        destination: The destination city airport in three letters, such as 'LAX'.
        date: The date of the flight in the format 'YYYY-MM-DD', such as '2024-01-01'.
    """
    found = _search(ctx, date, origin, destination)
    return tau2db.text([tau2db.direct_flight(flight, on_date) for flight, on_date in found])


@tool(kind="query")
def search_onestop_flight(ctx: ToolContext, origin: Key, destination: Key, date: Key) -> str:
    """Search for one-stop flights between two cities on a specific date.

    Args:
        origin: The origin city airport in three letters, such as 'JFK'.
        destination: The destination city airport in three letters, such as 'LAX'.
        date: The date of the flight in the format 'YYYY-MM-DD', such as '2024-05-01'.
    """
    pairs = []
    for flight, on_date in _search(ctx, date, origin):
        arrival = flight["scheduled_arrival_time_est"]
        second_date = date
        if "+1" in arrival:  # tau2's next day: May only, and not zero-padded ('2024-05-6' matches no flight)
            try:
                second_date = f"2024-05-{int(date[-2:]) + 1}"
            except ValueError as e:
                raise ToolError(str(e)) from None
        first = tau2db.direct_flight(flight, on_date, date)
        for flight2, on_date2 in _search(ctx, second_date, flight["destination"], destination, after=arrival):
            pairs.append([first, tau2db.direct_flight(flight2, on_date2, second_date)])
    return tau2db.text(pairs)


@tool(kind="mutation")
def send_certificate(ctx: ToolContext, user_id: Key, amount: int) -> str:
    """Send a certificate to a user. Be careful!

    Args:
        user_id: The ID of the user to book the reservation, such as 'sara_doe_496'.
        amount: The amount of the certificate to send.
    """
    _user(ctx, user_id)
    methods = _methods(ctx, user_id)
    for number in NEW_CERTIFICATE_NUMBERS:
        payment_id = f"certificate_{number}"
        if payment_id not in methods:
            row = {"user_id": user_id, "id": payment_id, "position": len(methods), "source": "certificate"}
            ctx.insert("payment_methods", {**row, "amount": float(amount)})
            return f"Certificate {payment_id} added to user {user_id} with amount {amount}."
    raise ToolError("Too many certificates")


@tool(kind="query")
def transfer_to_human_agents(ctx: ToolContext, summary: Summary) -> str:
    """Transfer the user to a human agent, with a summary of the user's issue.

    Only transfer if
     -  the user explicitly asks for a human agent
     -  given the policy and the available tools, you cannot solve the user's issue.

    Args:
        summary: A summary of the user's issue.
    """
    return "Transfer successful"


@tool(kind="mutation")
def update_reservation_baggages(
    ctx: ToolContext, reservation_id: Key, total_baggages: int, nonfree_baggages: int, payment_id: Key
) -> str:
    """Update the baggage information of a reservation.

    Args:
        reservation_id: The reservation ID, such as 'ZFA04Y'
        total_baggages: The updated total number of baggage items included in the reservation.
        nonfree_baggages: The updated number of non-free baggage items included in the reservation.
        payment_id: The payment id stored in user profile, such as 'credit_card_7815826', 'gift_card_7815826',
            'certificate_7815826'.
    """
    reservation = _reservation(ctx, reservation_id)
    _user(ctx, reservation["user_id"])
    total_price = 50 * max(0, nonfree_baggages - reservation["nonfree_baggages"])
    payment = _pay_for_update(ctx, reservation["user_id"], payment_id, total_price)
    if payment is not None:
        _append(ctx, "payments", reservation_id, payment)
    values = {"total_baggages": total_baggages, "nonfree_baggages": nonfree_baggages}  # as given: tau2 stores them so
    ctx.update("reservations", {"reservation_id": reservation_id}, values)
    return _reservation_text(ctx, reservation_id)


@tool(kind="mutation")
def update_reservation_flights(
    ctx: ToolContext, reservation_id: Key, cabin: Cabin, flights: list[FlightInfo], payment_id: Key
) -> str:
    """Update the flight information of a reservation.

    Args:
        reservation_id: The reservation ID, such as 'ZFA04Y'.
        cabin: The cabin class of the reservation
        flights: An array of objects containing details about each piece of flight in the ENTIRE new reservation.
            Even if the a flight segment is not changed, it should still be included in the array.
        payment_id: The payment id stored in user profile, such as 'credit_card_7815826', 'gift_card_7815826',
            'certificate_7815826'.
    """
    reservation = _reservation(ctx, reservation_id)
    _user(ctx, reservation["user_id"])
    current = _rows_of(ctx, "reservation_flights", reservation_id)
    count = ctx.scalar("SELECT COUNT(*) FROM passengers WHERE reservation_id = ?", (reservation_id,))
    total_price: Any = 0
    new_flights: list[dict[str, Any]] = []
    for info in flights:
        kept = next(
            (
                f
                for f in current
                if f["flight_number"] == info["flight_number"]
                and f["date"] == info["date"]
                and cabin == reservation["cabin"]
            ),
            None,
        )
        if kept is not None:  # an unchanged segment keeps the price paid
            total_price += kept["price"] * count
            new_flights.append({k: kept[k] for k in ("flight_number", "origin", "destination", "date", "price")})
            continue
        flight = _flight(ctx, info["flight_number"])
        on_date = _flight_date(ctx, info["flight_number"], info["date"])
        if on_date["status"] != "available":
            raise ToolError(f"Flight {info['flight_number']} not available on date {info['date']}")
        if on_date[f"seats_{cabin}"] < count:
            raise ToolError(f"Not enough seats on flight {info['flight_number']}", rule="modify-flight")
        price = on_date[f"price_{cabin}"]
        new_flights.append(
            {
                "flight_number": info["flight_number"],
                "origin": flight["origin"],
                "destination": flight["destination"],
                "date": info["date"],
                "price": price,
            }
        )
        total_price += price * count
    total_price -= sum(f["price"] for f in current) * count
    payment = _pay_for_update(ctx, reservation["user_id"], payment_id, total_price)
    if payment is not None:
        _append(ctx, "payments", reservation_id, payment)
    _replace(ctx, "reservation_flights", reservation_id, new_flights)  # no seat taken or released, as in tau2
    ctx.update("reservations", {"reservation_id": reservation_id}, {"cabin": cabin})
    return _reservation_text(ctx, reservation_id)


@tool(kind="mutation")
def update_reservation_passengers(ctx: ToolContext, reservation_id: Key, passengers: list[PassengerInfo]) -> str:
    """Update the passenger information of a reservation.

    Args:
        reservation_id: The reservation ID, such as 'ZFA04Y'.
        passengers: An array of objects containing details about each passenger.
    """
    _reservation(ctx, reservation_id)
    count = ctx.scalar("SELECT COUNT(*) FROM passengers WHERE reservation_id = ?", (reservation_id,))
    if len(passengers) != count:
        raise ToolError("Number of passengers does not match")
    _replace(ctx, "passengers", reservation_id, [tau2db.passenger(p) for p in passengers])
    return _reservation_text(ctx, reservation_id)


@tool(kind="query")
def get_flight_status(ctx: ToolContext, flight_number: Key, date: Key) -> str:
    """Get the status of a flight.

    Args:
        flight_number: The flight number.
        date: The date of the flight.
    """
    return str(_flight_date(ctx, flight_number, date)["status"])
