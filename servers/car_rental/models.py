"""The car rental's tables.

Dates are ISO strings (``YYYY-MM-DD``), money is integer cents and fuel is in
eighths of a tank (0-8). Columns that hold one of a few values carry a CHECK
constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Branch(Base, table=True):
    """A rental office; every vehicle is parked at one branch."""

    __tablename__ = "branches"
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)
    city: str
    address: str
    phone: str


class Customer(Base, table=True):
    """A renter and driver, with their driving licence."""

    __tablename__ = "customers"
    id: int = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)
    phone: str
    date_of_birth: str
    licence_number: str = Field(unique=True)
    licence_expiry: str


class Vehicle(Base, table=True):
    """One car or van of the fleet, identified by its plate."""

    __tablename__ = "vehicles"
    __table_args__ = (
        CheckConstraint("vehicle_class IN ('economy', 'compact', 'suv', 'van')", name="vehicle_class_known"),
        CheckConstraint("status IN ('available', 'rented', 'maintenance')", name="vehicle_status_known"),
        CheckConstraint("fuel_level BETWEEN 0 AND 8", name="vehicle_fuel_range"),
    )
    id: int = Field(primary_key=True)
    plate: str = Field(unique=True)
    make_model: str
    vehicle_class: str  # economy | compact | suv | van
    branch_id: int = Field(foreign_key="branches.id")
    status: str = "available"  # available | rented | maintenance
    mileage: int  # km
    fuel_level: int = 8  # eighths of a tank


class Extra(Base, table=True):
    """Something added to a reservation for a daily price (child seat, GPS, ...)."""

    __tablename__ = "extras"
    id: int = Field(primary_key=True)
    code: str = Field(unique=True)
    name: str
    daily_cents: int


class Reservation(Base, table=True):
    """A booking of a vehicle class for a range of dates."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("vehicle_class IN ('economy', 'compact', 'suv', 'van')", name="reservation_class_known"),
        CheckConstraint("status IN ('booked', 'active', 'completed', 'cancelled')", name="reservation_status_known"),
    )
    id: int = Field(primary_key=True)
    reference: str = Field(unique=True)
    customer_id: int = Field(foreign_key="customers.id")
    pickup_branch_id: int = Field(foreign_key="branches.id")
    return_branch_id: int = Field(foreign_key="branches.id")
    pickup_date: str
    return_date: str
    vehicle_class: str
    status: str = "booked"  # booked | active | completed | cancelled
    quoted_cents: int
    created: str


class ReservationExtra(Base, table=True):
    """An extra on a reservation, with a quantity."""

    __tablename__ = "reservation_extras"
    id: int = Field(primary_key=True)
    reservation_id: int = Field(foreign_key="reservations.id")
    extra_id: int = Field(foreign_key="extras.id")
    quantity: int = 1


class Rental(Base, table=True):
    """The vehicle handed over for a reservation, from pickup to return."""

    __tablename__ = "rentals"
    id: int = Field(primary_key=True)
    reservation_id: int = Field(foreign_key="reservations.id", unique=True)
    vehicle_id: int = Field(foreign_key="vehicles.id")
    picked_up: str
    start_mileage: int
    fuel_out: int
    returned: str | None = None
    end_mileage: int | None = None
    fuel_in: int | None = None


class Charge(Base, table=True):
    """Money owed on a reservation: the rental itself or a fee."""

    __tablename__ = "charges"
    __table_args__ = (
        CheckConstraint("kind IN ('rental', 'late_return', 'refuel', 'cancellation')", name="charge_kind_known"),
    )
    id: int = Field(primary_key=True)
    reservation_id: int = Field(foreign_key="reservations.id")
    kind: str  # rental | late_return | refuel | cancellation
    amount_cents: int
    created: str
    description: str


class Payment(Base, table=True):
    """A payment towards a reservation's charges."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("method IN ('card', 'cash')", name="payment_method_known"),)
    id: int = Field(primary_key=True)
    reservation_id: int = Field(foreign_key="reservations.id")
    amount_cents: int
    method: str  # card | cash
    paid_on: str
