"""The HR leave tables: departments, employees, leave types, balances, requests, holidays, blackouts.

Dates are ISO strings (``YYYY-MM-DD``); leave is counted in whole working days.
Columns that hold one of a few values carry a CHECK constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Department(Base, table=True):
    """A team; blackout periods are set per department."""

    __tablename__ = "departments"
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)
    cost_center: str = Field(unique=True)


class Employee(Base, table=True):
    """A person on the payroll; ``manager_id`` is who approves their leave."""

    __tablename__ = "employees"
    id: int = Field(primary_key=True)
    name: str
    email: str = Field(unique=True)
    job_title: str
    department_id: int = Field(foreign_key="departments.id")
    manager_id: int | None = Field(default=None, foreign_key="employees.id")
    hire_date: str


class LeaveType(Base, table=True):
    """A kind of leave and its policy: notice, blackout, minimum service."""

    __tablename__ = "leave_types"
    __table_args__ = (
        CheckConstraint("code IN ('annual', 'sick', 'parental', 'compassionate')", name="leave_code_known"),
    )
    id: int = Field(primary_key=True)
    code: str = Field(unique=True)
    name: str
    paid: bool
    notice_days: int
    blackout_applies: bool
    min_service_days: int
    default_days: int


class LeaveBalance(Base, table=True):
    """An employee's entitlement to one leave type in one calendar year."""

    __tablename__ = "leave_balances"
    __table_args__ = (
        UniqueConstraint("employee_id", "leave_type_id", "year", name="one_balance_per_year"),
        CheckConstraint("used_days >= 0", name="used_not_negative"),
    )
    id: int = Field(primary_key=True)
    employee_id: int = Field(foreign_key="employees.id")
    leave_type_id: int = Field(foreign_key="leave_types.id")
    year: int
    entitled_days: int
    used_days: int = 0  # working days of approved requests in that year


class LeaveRequest(Base, table=True):
    """A request for leave from start_date to end_date (inclusive)."""

    __tablename__ = "leave_requests"
    __table_args__ = (
        CheckConstraint("status IN ('pending', 'approved', 'rejected', 'cancelled')", name="request_status_known"),
    )
    id: int = Field(primary_key=True)
    employee_id: int = Field(foreign_key="employees.id")
    leave_type_id: int = Field(foreign_key="leave_types.id")
    start_date: str
    end_date: str
    working_days: int
    status: str = "pending"  # pending | approved | rejected | cancelled
    reason: str | None = None
    submitted_on: str
    decided_by: int | None = Field(default=None, foreign_key="employees.id")
    decided_on: str | None = None
    decision_note: str | None = None
    cancelled_on: str | None = None


class PublicHoliday(Base, table=True):
    """A public holiday: not a working day for anyone."""

    __tablename__ = "public_holidays"
    id: int = Field(primary_key=True)
    date: str = Field(unique=True)
    name: str


class BlackoutPeriod(Base, table=True):
    """Dates when a department's staff cannot take annual leave."""

    __tablename__ = "blackout_periods"
    id: int = Field(primary_key=True)
    department_id: int = Field(foreign_key="departments.id")
    start_date: str
    end_date: str
    reason: str
