"""The helpdesk's tables: users, agents, tickets, comments, assets.

Times are ISO date-time strings in UTC (``2026-02-16T11:00:00+00:00``), dates are
``YYYY-MM-DD`` and money is integer cents. Columns that hold one of a few values
carry a CHECK constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class User(Base, table=True):
    """A staff member who raises tickets and may hold assets."""

    __tablename__ = "users"
    id: int = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)
    department: str
    location: str
    phone: str | None = None


class Agent(Base, table=True):
    """A support agent; ``skills`` is a comma-separated list of ticket categories."""

    __tablename__ = "agents"
    id: int = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)
    skills: str  # e.g. "hardware,network"
    on_duty: bool = False


class Asset(Base, table=True):
    """A tracked device, identified by its asset tag."""

    __tablename__ = "assets"
    __table_args__ = (
        CheckConstraint("kind IN ('laptop', 'phone', 'monitor')", name="asset_kind_known"),
        CheckConstraint("status IN ('in_stock', 'assigned', 'in_repair', 'retired')", name="asset_status_known"),
        CheckConstraint("(status = 'assigned') = (user_id IS NOT NULL)", name="asset_assigned_has_user"),
    )
    id: int = Field(primary_key=True)
    tag: str = Field(unique=True)  # LT-0001, PH-0001, MN-0001
    kind: str  # laptop | phone | monitor
    model: str
    serial: str = Field(unique=True)
    purchased: str  # date
    cost_cents: int
    status: str = "in_stock"  # in_stock | assigned | in_repair | retired
    user_id: int | None = Field(default=None, foreign_key="users.id")
    assigned_on: str | None = None  # date


class Ticket(Base, table=True):
    """A support request raised by a user."""

    __tablename__ = "tickets"
    __table_args__ = (
        CheckConstraint(
            "category IN ('hardware', 'software', 'network', 'access', 'email')", name="ticket_category_known"
        ),
        CheckConstraint("priority IN ('low', 'medium', 'high', 'critical')", name="ticket_priority_known"),
        CheckConstraint(
            "status IN ('new', 'assigned', 'in_progress', 'resolved', 'closed')", name="ticket_status_known"
        ),
    )
    id: int = Field(primary_key=True)
    number: str = Field(unique=True)  # HD-1001
    user_id: int = Field(foreign_key="users.id")
    title: str
    description: str
    category: str
    priority: str
    status: str = "new"
    agent_id: int | None = Field(default=None, foreign_key="agents.id")
    asset_id: int | None = Field(default=None, foreign_key="assets.id")
    opened_at: str  # date-time
    due_at: str  # date-time: opened_at + SLA hours of the priority
    resolved_at: str | None = None
    resolution: str | None = None
    closed_at: str | None = None


class Comment(Base, table=True):
    """A note on a ticket, by an agent or the desk; internal notes are hidden from the user."""

    __tablename__ = "comments"
    __table_args__ = (CheckConstraint("kind IN ('note', 'escalation', 'reopen')", name="comment_kind_known"),)
    id: int = Field(primary_key=True)
    ticket_id: int = Field(foreign_key="tickets.id")
    agent_id: int | None = Field(default=None, foreign_key="agents.id")
    kind: str = "note"  # note | escalation | reopen
    body: str
    internal: bool = False
    created_at: str  # date-time
