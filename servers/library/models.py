"""The library's tables: branches, members, books, copies, loans, holds, fines, payments.

Dates are ISO strings (``YYYY-MM-DD``) and money is integer cents. Columns that
hold one of a few values carry a CHECK constraint, so an initial state (or a
buggy tool) cannot store a status the tools do not know.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Branch(Base, table=True):
    """A library building; every copy sits at one branch."""

    __tablename__ = "branches"
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)
    address: str
    phone: str


class Member(Base, table=True):
    """A library card holder. A child member has an adult member as guardian."""

    __tablename__ = "members"
    __table_args__ = (
        CheckConstraint("member_type IN ('adult', 'child')", name="member_type_known"),
        CheckConstraint("status IN ('active', 'suspended')", name="member_status_known"),
    )
    id: int = Field(primary_key=True)
    card_number: str = Field(unique=True)
    name: str
    email: str | None = Field(default=None, unique=True)
    phone: str | None = None
    member_type: str  # adult | child
    status: str = "active"  # active | suspended (expiry is the expires date, not a status)
    guardian_id: int | None = Field(default=None, foreign_key="members.id", index=True)
    joined: str
    expires: str


class Book(Base, table=True):
    """A title in the catalogue; the physical items are its copies."""

    __tablename__ = "books"
    id: int = Field(primary_key=True)
    title: str
    author: str
    isbn: str = Field(unique=True)  # ISBN-13, digits only
    year: int
    genre: str
    replacement_cents: int  # charged when a borrowed copy is lost


class Copy(Base, table=True):
    """One physical item of a book, identified by its barcode."""

    __tablename__ = "copies"
    __table_args__ = (
        CheckConstraint("status IN ('available', 'on_loan', 'on_hold_shelf', 'lost')", name="copy_status_known"),
    )
    id: int = Field(primary_key=True)
    book_id: int = Field(foreign_key="books.id", index=True)
    barcode: str = Field(unique=True)
    branch_id: int = Field(foreign_key="branches.id", index=True)
    status: str = "available"  # available | on_loan | on_hold_shelf | lost


class Loan(Base, table=True):
    """A copy lent to a member: active until returned, or closed as lost."""

    __tablename__ = "loans"
    __table_args__ = (CheckConstraint("status IN ('active', 'returned', 'lost')", name="loan_status_known"),)
    id: int = Field(primary_key=True)
    copy_id: int = Field(foreign_key="copies.id", index=True)
    member_id: int = Field(foreign_key="members.id", index=True)
    loaned: str
    due: str
    returned: str | None = None
    renewals: int = 0
    status: str = "active"  # active | returned | lost


class Hold(Base, table=True):
    """A member's place in the queue for a book.

    The queue order is (placed, id) among queued holds. A ready hold has a copy
    waiting on the hold shelf (``copy_id``) until ``pickup_by``.
    """

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("status IN ('queued', 'ready', 'fulfilled', 'cancelled')", name="hold_status_known"),
    )
    id: int = Field(primary_key=True)
    book_id: int = Field(foreign_key="books.id", index=True)
    member_id: int = Field(foreign_key="members.id", index=True)
    placed: str
    status: str = "queued"  # queued | ready | fulfilled | cancelled
    copy_id: int | None = Field(default=None, foreign_key="copies.id", index=True)
    pickup_by: str | None = None
    closed: str | None = None  # the date it was fulfilled or cancelled


class Fine(Base, table=True):
    """Money a member owes: an overdue fine or a lost item's replacement fee."""

    __tablename__ = "fines"
    __table_args__ = (
        CheckConstraint("reason IN ('overdue', 'lost_item')", name="fine_reason_known"),
        CheckConstraint("status IN ('unpaid', 'paid', 'waived')", name="fine_status_known"),
        CheckConstraint("paid_cents >= 0 AND paid_cents <= amount_cents", name="fine_paid_in_range"),
    )
    id: int = Field(primary_key=True)
    member_id: int = Field(foreign_key="members.id", index=True)
    loan_id: int | None = Field(default=None, foreign_key="loans.id", index=True)
    reason: str  # overdue | lost_item
    amount_cents: int
    paid_cents: int = 0
    status: str = "unpaid"  # unpaid | paid | waived
    created: str
    note: str | None = None


class Payment(Base, table=True):
    """A payment towards one fine."""

    __tablename__ = "payments"
    __table_args__ = (CheckConstraint("method IN ('cash', 'card')", name="payment_method_known"),)
    id: int = Field(primary_key=True)
    fine_id: int = Field(foreign_key="fines.id", index=True)
    member_id: int = Field(foreign_key="members.id", index=True)
    amount_cents: int
    method: str  # cash | card
    paid_on: str
