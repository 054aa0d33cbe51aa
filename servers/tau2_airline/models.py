"""tau2-bench's airline database (``db.json``: flights, users, reservations) as SQLite tables.

tau2 keeps it as nested pydantic models; here each list and each dictionary of it is a table.
Dictionaries keep their order in ``position`` (tau2's flight search walks flights in that order;
a user's payment methods are shown in theirs, and a certificate used up or sent moves it), lists
keep theirs in ``position`` too, as part of the key. A flight's status on a date is one row of
``flight_dates``: the seats left and prices per cabin when it is available for booking, the
actual or estimated times otherwise. :mod:`.tau2db` turns the tables back into tau2's
``db.json`` shape, so the state can be hashed as tau2 hashes it.

Money is tau2's: whole dollars for prices and payments, float dollars for certificates and gift cards.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlalchemy.types import UserDefinedType
from sqlmodel import Field, SQLModel


class AsGiven(UserDefinedType[Any]):
    """A column without a type (SQLite: no affinity), so a number stays the int or float it was given.

    tau2 tells them apart (``2`` and ``2.0`` dump, and hash, differently) where its code stores an
    argument without validating it (``update_reservation_baggages``); an INTEGER column would turn 2.0 into 2.
    (envfarm's kernel gives an integer parameter a whole number as an int, so over MCP the tool gets 2.)
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return ""


class Base(SQLModel, registry=registry()):
    pass


class Flight(Base, table=True):
    """A scheduled flight (HAT001 ...): its route and daily times (EST; '+1' arrives the next day)."""

    __tablename__ = "flights"
    flight_number: str = Field(primary_key=True)
    position: int  # its place in tau2's flights dictionary: search results come in this order
    origin: str
    destination: str
    scheduled_departure_time_est: str
    scheduled_arrival_time_est: str


class FlightDate(Base, table=True):
    """A flight on one date: its status, and its seats left and prices per cabin while it can be booked."""

    __tablename__ = "flight_dates"
    __table_args__ = (
        CheckConstraint(
            "status IN ('available', 'landed', 'cancelled', 'delayed', 'flying', 'on time')", name="status_known"
        ),
    )
    flight_number: str = Field(primary_key=True, foreign_key="flights.flight_number")
    date: str = Field(primary_key=True)
    position: int  # its place in the flight's dates dictionary
    status: str
    seats_basic_economy: int | None = None  # available
    seats_economy: int | None = None
    seats_business: int | None = None
    price_basic_economy: int | None = None  # available
    price_economy: int | None = None
    price_business: int | None = None
    actual_departure_time_est: str | None = None  # landed, flying
    actual_arrival_time_est: str | None = None  # landed
    estimated_departure_time_est: str | None = None  # delayed, on time
    estimated_arrival_time_est: str | None = None  # delayed, on time, flying


class User(Base, table=True):
    """A customer: name, address, email, date of birth, membership level."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint("membership IN ('gold', 'silver', 'regular')", name="membership_known"),)
    user_id: str = Field(primary_key=True)
    position: int  # its place in tau2's users dictionary
    first_name: str
    last_name: str
    address1: str
    address2: str | None = None
    city: str
    country: str
    state: str
    zip: str
    email: str
    dob: str
    membership: str


class PaymentMethod(Base, table=True):
    """A customer's credit card, gift card or travel certificate (the last two with an amount)."""

    __tablename__ = "payment_methods"
    __table_args__ = (CheckConstraint("source IN ('credit_card', 'gift_card', 'certificate')", name="source_known"),)
    user_id: str = Field(primary_key=True, foreign_key="users.user_id")
    id: str = Field(primary_key=True)
    position: int  # its place in the user's payment methods dictionary
    source: str  # credit_card | gift_card | certificate
    brand: str | None = None  # credit cards
    last_four: str | None = None  # credit cards
    amount: float | None = None  # gift cards and certificates


class SavedPassenger(Base, table=True):
    """A passenger a user saved, in the user's list."""

    __tablename__ = "saved_passengers"
    user_id: str = Field(primary_key=True, foreign_key="users.user_id")
    position: int = Field(primary_key=True)
    first_name: str
    last_name: str
    dob: str


class UserReservation(Base, table=True):
    """The list of a user's reservation ids, in tau2's order."""

    __tablename__ = "user_reservations"
    user_id: str = Field(primary_key=True, foreign_key="users.user_id")
    position: int = Field(primary_key=True)
    reservation_id: str = Field(foreign_key="reservations.reservation_id")


class Reservation(Base, table=True):
    """A booking: one trip, one cabin, its passengers, bags and insurance."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("flight_type IN ('round_trip', 'one_way')", name="flight_type_known"),
        CheckConstraint("cabin IN ('business', 'economy', 'basic_economy')", name="cabin_known"),
        CheckConstraint("insurance IN ('yes', 'no')", name="insurance_known"),
    )
    reservation_id: str = Field(primary_key=True)
    position: int  # its place in tau2's reservations dictionary
    user_id: str = Field(foreign_key="users.user_id", index=True)
    origin: str
    destination: str
    flight_type: str
    cabin: str
    created_at: str
    total_baggages: int = Field(sa_type=AsGiven)
    nonfree_baggages: int = Field(sa_type=AsGiven)
    insurance: str
    status: str | None = None  # None, or 'cancelled'


class ReservationFlight(Base, table=True):
    """A flight of a reservation, at the price paid per passenger."""

    __tablename__ = "reservation_flights"
    reservation_id: str = Field(primary_key=True, foreign_key="reservations.reservation_id")
    position: int = Field(primary_key=True)
    flight_number: str
    origin: str
    destination: str
    date: str
    price: int


class Passenger(Base, table=True):
    """A passenger of a reservation."""

    __tablename__ = "passengers"
    reservation_id: str = Field(primary_key=True, foreign_key="reservations.reservation_id")
    position: int = Field(primary_key=True)
    first_name: str
    last_name: str
    dob: str


class Payment(Base, table=True):
    """A payment (or, negative, a refund) of a reservation, by payment method id."""

    __tablename__ = "payments"
    reservation_id: str = Field(primary_key=True, foreign_key="reservations.reservation_id")
    position: int = Field(primary_key=True)
    payment_id: str
    amount: int
