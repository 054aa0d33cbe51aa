"""The restaurant's tables: guests, dining tables, services, reservations, waitlist, menu, pre-orders.

Dates are ISO strings (``YYYY-MM-DD``), times ``HH:MM`` (local), timestamps ISO
date-times with offset, and money integer cents. Columns with a few known values
carry a CHECK constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Guest(Base, table=True):
    """A person who books tables."""

    __tablename__ = "guests"
    id: int = Field(primary_key=True)
    name: str
    phone: str
    email: str | None = Field(default=None, unique=True)
    vip: bool = False
    created: str  # YYYY-MM-DD


class DiningTable(Base, table=True):
    """A table in one area of the restaurant."""

    __tablename__ = "dining_tables"
    __table_args__ = (
        CheckConstraint("area IN ('main', 'terrace', 'bar', 'private')", name="table_area_known"),
        CheckConstraint("seats >= 1", name="table_seats_positive"),
    )
    id: int = Field(primary_key=True)
    label: str = Field(unique=True)  # T1, P1, B2 ...
    area: str  # main | terrace | bar | private
    seats: int


class Service(Base, table=True):
    """One sitting on one weekday (0 = Monday): lunch or dinner, opening and closing times."""

    __tablename__ = "services"
    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="service_weekday_known"),
        CheckConstraint("name IN ('lunch', 'dinner')", name="service_name_known"),
    )
    id: int = Field(primary_key=True)
    weekday: int
    name: str
    opens: str  # HH:MM
    closes: str  # HH:MM


class Reservation(Base, table=True):
    """A party booked at a table for a 2-hour turn."""

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint(
            "status IN ('booked', 'seated', 'completed', 'cancelled', 'no_show')", name="reservation_status_known"
        ),
        CheckConstraint(
            "deposit_status IN ('none', 'paid', 'refunded', 'forfeited')", name="reservation_deposit_status_known"
        ),
        CheckConstraint("deposit_method IS NULL OR deposit_method IN ('card', 'cash')", name="deposit_method_known"),
        CheckConstraint("party_size >= 1", name="party_size_positive"),
        CheckConstraint("deposit_cents >= 0", name="deposit_non_negative"),
    )
    id: int = Field(primary_key=True)
    reference: str = Field(unique=True)  # R-1001
    guest_id: int = Field(foreign_key="guests.id")
    table_id: int = Field(foreign_key="dining_tables.id")
    date: str
    time: str  # HH:MM
    party_size: int
    status: str = "booked"
    deposit_cents: int = 0
    deposit_status: str = "none"
    deposit_method: str | None = None
    special_request: str | None = None
    created: str  # ISO date-time
    cancelled_at: str | None = None


class WaitlistEntry(Base, table=True):
    """A party waiting for a table on a date; served in the order they joined."""

    __tablename__ = "waitlist"
    __table_args__ = (CheckConstraint("status IN ('waiting', 'booked', 'removed')", name="waitlist_status_known"),)
    id: int = Field(primary_key=True)
    guest_id: int = Field(foreign_key="guests.id")
    date: str
    time: str  # the wished start, HH:MM
    party_size: int
    added: str  # ISO date-time: the queue order
    status: str = "waiting"
    reservation_id: int | None = Field(default=None, foreign_key="reservations.id")


class MenuItem(Base, table=True):
    """A dish or drink that can be pre-ordered."""

    __tablename__ = "menu_items"
    __table_args__ = (
        CheckConstraint("category IN ('starter', 'main', 'dessert', 'drink', 'set_menu')", name="menu_category_known"),
    )
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)
    category: str
    price_cents: int
    available: bool = True


class PreOrder(Base, table=True):
    """Items ordered ahead for a reservation, at the price of the day they were ordered."""

    __tablename__ = "preorders"
    id: int = Field(primary_key=True)
    reservation_id: int = Field(foreign_key="reservations.id")
    menu_item_id: int = Field(foreign_key="menu_items.id")
    quantity: int
    unit_price_cents: int
