"""The clinic's tables: plans and their coverage, patients, doctors, slots, appointments,
referrals, prescriptions and invoices.

Dates are ISO strings (``YYYY-MM-DD``), times ISO date-times with a UTC offset, and money
integer cents. Columns holding one of a few values carry a CHECK constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

SPECIALTIES = "('general_practice', 'cardiology', 'dermatology', 'orthopedics', 'neurology')"


class Base(SQLModel, registry=registry()):
    pass


class Plan(Base, table=True):
    """An insurance plan a patient is on."""

    __tablename__ = "plans"
    id: int = Field(primary_key=True)
    code: str = Field(unique=True)  # BASIC | STANDARD | PREMIUM
    name: str
    monthly_premium_cents: int


class PlanCoverage(Base, table=True):
    """A specialty a plan covers, with the patient's copay per completed visit."""

    __tablename__ = "plan_coverages"
    __table_args__ = (CheckConstraint(f"specialty IN {SPECIALTIES}", name="coverage_specialty_known"),)
    id: int = Field(primary_key=True)
    plan_id: int = Field(foreign_key="plans.id")
    specialty: str
    copay_cents: int


class Patient(Base, table=True):
    """A registered patient."""

    __tablename__ = "patients"
    id: int = Field(primary_key=True)
    patient_number: str = Field(unique=True)  # PT-1001
    name: str
    date_of_birth: str
    email: str | None = Field(default=None, unique=True)
    phone: str | None = None
    plan_id: int = Field(foreign_key="plans.id")
    registered: str


class Doctor(Base, table=True):
    """A doctor of the clinic; general_practice is the only non-specialist specialty."""

    __tablename__ = "doctors"
    __table_args__ = (CheckConstraint(f"specialty IN {SPECIALTIES}", name="doctor_specialty_known"),)
    id: int = Field(primary_key=True)
    name: str
    specialty: str
    room: str
    fee_cents: int  # charged for a completed visit the patient's plan does not cover


class Slot(Base, table=True):
    """A 30-minute time a doctor is available; free while no live appointment holds it."""

    __tablename__ = "slots"
    id: int = Field(primary_key=True)
    doctor_id: int = Field(foreign_key="doctors.id")
    starts_at: str  # ISO date-time, UTC
    duration_minutes: int = 30


class Appointment(Base, table=True):
    """A patient's booking of a slot."""

    __tablename__ = "appointments"
    __table_args__ = (
        CheckConstraint("status IN ('booked', 'cancelled', 'completed', 'no_show')", name="appt_status_known"),
        CheckConstraint("cancelled_by IS NULL OR cancelled_by IN ('patient', 'clinic')", name="appt_cancel_known"),
    )
    id: int = Field(primary_key=True)
    slot_id: int = Field(foreign_key="slots.id")
    patient_id: int = Field(foreign_key="patients.id")
    status: str = "booked"
    reason: str | None = None
    booked_at: str
    cancelled_by: str | None = None
    cancelled_at: str | None = None
    referral_id: int | None = Field(default=None, foreign_key="referrals.id")


class Referral(Base, table=True):
    """A GP's referral of a patient to a specialty; used up by one booking."""

    __tablename__ = "referrals"
    __table_args__ = (
        CheckConstraint(f"specialty IN {SPECIALTIES}", name="referral_specialty_known"),
        CheckConstraint("status IN ('active', 'used')", name="referral_status_known"),
    )
    id: int = Field(primary_key=True)
    patient_id: int = Field(foreign_key="patients.id")
    referring_doctor_id: int = Field(foreign_key="doctors.id")
    specialty: str
    issued: str
    valid_until: str
    status: str = "active"


class Prescription(Base, table=True):
    """A medication a doctor prescribed to a patient."""

    __tablename__ = "prescriptions"
    id: int = Field(primary_key=True)
    patient_id: int = Field(foreign_key="patients.id")
    doctor_id: int = Field(foreign_key="doctors.id")
    medication: str
    dosage: str
    refills: int = 0
    issued: str


class Invoice(Base, table=True):
    """Money a patient owes: a visit copay, a late-cancellation fee or a no-show fee."""

    __tablename__ = "invoices"
    __table_args__ = (
        CheckConstraint("kind IN ('visit', 'late_cancellation', 'no_show')", name="invoice_kind_known"),
        CheckConstraint("status IN ('unpaid', 'paid')", name="invoice_status_known"),
        CheckConstraint("method IS NULL OR method IN ('card', 'cash')", name="invoice_method_known"),
    )
    id: int = Field(primary_key=True)
    patient_id: int = Field(foreign_key="patients.id")
    appointment_id: int = Field(foreign_key="appointments.id")
    kind: str
    amount_cents: int
    status: str = "unpaid"
    created: str
    paid_on: str | None = None
    method: str | None = None
