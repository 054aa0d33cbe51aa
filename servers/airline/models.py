"""The airline's tables: passengers, flights, cabins, bookings, bags and payments.

Dates are ISO strings (``YYYY-MM-DD``), departure times ``HH:MM`` in UTC and money
integer cents. Columns that hold one of a few values carry a CHECK constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Passenger(Base, table=True):
    """A traveller with a loyalty account."""

    __tablename__ = "passengers"
    __table_args__ = (CheckConstraint("tier IN ('member', 'silver', 'gold', 'platinum')", name="tier_known"),)
    id: int = Field(primary_key=True)
    loyalty_number: str = Field(unique=True)
    name: str
    email: str = Field(unique=True)
    phone: str | None = None
    tier: str = "member"  # member | silver | gold | platinum
    joined: str


class Flight(Base, table=True):
    """One departure of a flight number on a date."""

    __tablename__ = "flights"
    __table_args__ = (
        CheckConstraint("status IN ('scheduled', 'delayed', 'departed', 'cancelled')", name="flight_status_known"),
        UniqueConstraint("number", "date", name="one_flight_number_per_day"),
    )
    id: int = Field(primary_key=True)
    number: str
    origin: str  # IATA airport code
    destination: str
    date: str
    departure_time: str  # HH:MM, UTC
    status: str = "scheduled"  # scheduled | delayed | departed | cancelled


class Cabin(Base, table=True):
    """A cabin of one flight, with its capacity and its fares."""

    __tablename__ = "cabins"
    __table_args__ = (
        CheckConstraint("cabin IN ('economy', 'business')", name="cabin_known"),
        UniqueConstraint("flight_id", "cabin", name="one_cabin_per_kind"),
    )
    id: int = Field(primary_key=True)
    flight_id: int = Field(foreign_key="flights.id")
    cabin: str  # economy | business
    capacity: int
    basic_fare_cents: int
    standard_fare_cents: int
    flex_fare_cents: int


class Booking(Base, table=True):
    """One passenger on one flight, under a record locator."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("cabin IN ('economy', 'business')", name="booking_cabin_known"),
        CheckConstraint("fare_class IN ('basic', 'standard', 'flex')", name="fare_class_known"),
        CheckConstraint("status IN ('confirmed', 'checked_in', 'cancelled')", name="booking_status_known"),
    )
    id: int = Field(primary_key=True)
    locator: str = Field(unique=True)
    passenger_id: int = Field(foreign_key="passengers.id")
    flight_id: int = Field(foreign_key="flights.id")
    cabin: str
    fare_class: str
    fare_cents: int  # the fare paid so far for this seat
    status: str = "confirmed"  # confirmed | checked_in | cancelled
    seat: str | None = None  # e.g. 14C
    booked: str
    checked_in_at: str | None = None  # ISO date-time
    cancelled: str | None = None  # date


class Bag(Base, table=True):
    """A checked bag of a booking."""

    __tablename__ = "bags"
    id: int = Field(primary_key=True)
    booking_id: int = Field(foreign_key="bookings.id")
    weight_kg: int
    fee_cents: int
    added: str


class Payment(Base, table=True):
    """Money taken for a booking, or refunded on it."""

    __tablename__ = "payments"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('fare', 'change_fee', 'fare_difference', 'upgrade', 'bag_fee', 'refund')", name="kind_known"
        ),
        CheckConstraint("method IN ('card', 'voucher')", name="method_known"),
        CheckConstraint("amount_cents > 0", name="amount_positive"),
    )
    id: int = Field(primary_key=True)
    booking_id: int = Field(foreign_key="bookings.id")
    kind: str  # fare | change_fee | fare_difference | upgrade | bag_fee | refund
    amount_cents: int
    method: str  # card | voucher
    created: str  # date
