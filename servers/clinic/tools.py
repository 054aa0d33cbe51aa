"""The clinic's tools: look-ups for patients, plans, doctors, slots, appointments, referrals,
prescriptions and invoices, and the front desk's mutations.

Every rule in ``RULES`` (``__init__.py``) that can refuse a call is enforced here and named in
the ``ToolError``; the charging rules (``late-cancellation-fee``, ``no-show-fee``) are applied
by ``cancel_appointment`` and ``mark_no_show``. Time is the scenario clock (``ctx.now``),
never the wall clock.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import DateStr, Email, Id, Name, Note, Phone, SearchText, like, money, unique_email
from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

LATE_CANCEL_FEE_CENTS = 4000
NO_SHOW_FEE_CENTS = 5000
LATE_CANCEL_WINDOW = timedelta(hours=24)
MAX_FUTURE_APPOINTMENTS = 3
REFERRAL_VALID_DAYS = 90
MAX_REFILLS = 12
SEARCH_LIMIT = 20
GP = "general_practice"

Refills = Annotated[int, Field(ge=0, le=MAX_REFILLS)]
Specialty = Literal["general_practice", "cardiology", "dermatology", "orthopedics", "neurology"]
PlanCode = Literal["BASIC", "STANDARD", "PREMIUM"]
Method = Literal["card", "cash"]
CancelledBy = Literal["patient", "clinic"]


# --- helpers (not tools) -------------------------------------------------------------------------


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _now_iso(ctx: ToolContext) -> str:
    return ctx.now.isoformat()


def _patient(ctx: ToolContext, patient_id: int) -> dict[str, Any]:
    row = ctx.one(
        "SELECT p.*, pl.code AS plan_code, pl.name AS plan_name FROM patients p "
        "JOIN plans pl ON pl.id = p.plan_id WHERE p.id = ?",
        (patient_id,),
    )
    if row is None:
        raise ToolError(f"no patient with id {patient_id}; look patients up with find_patient")
    return row


def _who(patient: dict[str, Any]) -> str:
    return f"patient {patient['id']} ({patient['name']})"


def _doctor(ctx: ToolContext, doctor_id: int) -> dict[str, Any]:
    row = ctx.one("SELECT * FROM doctors WHERE id = ?", (doctor_id,))
    if row is None:
        raise ToolError(f"no doctor with id {doctor_id}; look doctors up with find_doctors")
    return row


def _slot(ctx: ToolContext, slot_id: int) -> dict[str, Any]:
    row = ctx.one(
        "SELECT s.*, d.name AS doctor_name, d.specialty FROM slots s JOIN doctors d ON d.id = s.doctor_id "
        "WHERE s.id = ?",
        (slot_id,),
    )
    if row is None:
        raise ToolError(f"no slot with id {slot_id}; look open slots up with list_open_slots")
    return row


_APPT_SQL = (
    "SELECT a.*, s.starts_at, s.doctor_id, d.name AS doctor_name, d.specialty, p.name AS patient_name "
    "FROM appointments a JOIN slots s ON s.id = a.slot_id JOIN doctors d ON d.id = s.doctor_id "
    "JOIN patients p ON p.id = a.patient_id "
)


def _appointment(ctx: ToolContext, appointment_id: int) -> dict[str, Any]:
    row = ctx.one(f"{_APPT_SQL}WHERE a.id = ?", (appointment_id,))
    if row is None:
        raise ToolError(f"no appointment with id {appointment_id}; see list_patient_appointments")
    return row


def _what(appt: dict[str, Any]) -> str:
    return f"appointment {appt['id']} ({appt['patient_name']} with {appt['doctor_name']} at {appt['starts_at']})"


def _appt_out(appt: dict[str, Any]) -> dict[str, Any]:
    return {
        "appointment_id": appt["id"],
        "patient_id": appt["patient_id"],
        "patient_name": appt["patient_name"],
        "doctor_id": appt["doctor_id"],
        "doctor_name": appt["doctor_name"],
        "specialty": appt["specialty"],
        "slot_id": appt["slot_id"],
        "starts_at": appt["starts_at"],
        "status": appt["status"],
        "reason": appt["reason"],
        "cancelled_by": appt["cancelled_by"],
        "referral_id": appt["referral_id"],
    }


def _plan_id(ctx: ToolContext, code: str) -> int:
    plan_id = ctx.scalar("SELECT id FROM plans WHERE code = ?", (code,))
    if plan_id is None:
        raise ToolError(f"no plan with code {code!r}; see list_plans")
    return int(plan_id)


def _coverage(ctx: ToolContext, plan_id: int, specialty: str) -> dict[str, Any] | None:
    return ctx.one("SELECT * FROM plan_coverages WHERE plan_id = ? AND specialty = ?", (plan_id, specialty))


def _require_free_future_slot(ctx: ToolContext, slot: dict[str, Any], ignore_appt: int | None = None) -> None:
    what = f"slot {slot['id']} ({slot['doctor_name']} at {slot['starts_at']})"
    if _at(slot["starts_at"]) <= ctx.now:
        raise ToolError(f"{what} has already started; only future slots can be booked", rule="appointment-timing")
    taken = ctx.one(
        "SELECT a.id FROM appointments a WHERE a.slot_id = ? AND a.status != 'cancelled' AND a.id IS NOT ?",
        (slot["id"], ignore_appt),
    )
    if taken is not None:
        raise ToolError(f"{what} is already taken by appointment {taken['id']}", rule="slot-double-booking")


def _require_no_overlap(
    ctx: ToolContext, patient: dict[str, Any], slot: dict[str, Any], ignore_appt: int | None = None
) -> None:
    clash = ctx.one(
        f"{_APPT_SQL}WHERE a.patient_id = ? AND a.status = 'booked' AND s.starts_at = ? AND a.id IS NOT ?",
        (patient["id"], slot["starts_at"], ignore_appt),
    )
    if clash is not None:
        raise ToolError(f"{_who(patient)} already has {_what(clash)} at the same time", rule="patient-double-booking")


def _future_booked(ctx: ToolContext, patient_id: int) -> list[dict[str, Any]]:
    rows = ctx.all(f"{_APPT_SQL}WHERE a.patient_id = ? AND a.status = 'booked'", (patient_id,))
    return [r for r in rows if _at(r["starts_at"]) > ctx.now]


def _unpaid_no_show(ctx: ToolContext, patient_id: int) -> dict[str, Any] | None:
    return ctx.one(
        "SELECT * FROM invoices WHERE patient_id = ? AND kind = 'no_show' AND status = 'unpaid' ORDER BY id",
        (patient_id,),
    )


def _has_seen(ctx: ToolContext, doctor_id: int, patient_id: int) -> bool:
    return (
        ctx.scalar(
            "SELECT COUNT(*) FROM appointments a JOIN slots s ON s.id = a.slot_id "
            "WHERE s.doctor_id = ? AND a.patient_id = ? AND a.status = 'completed'",
            (doctor_id, patient_id),
        )
        > 0
    )


def _invoice_out(inv: dict[str, Any]) -> dict[str, Any]:
    return {
        "invoice_id": inv["id"],
        "patient_id": inv["patient_id"],
        "appointment_id": inv["appointment_id"],
        "kind": inv["kind"],
        "amount_cents": inv["amount_cents"],
        "status": inv["status"],
        "created": inv["created"],
        "paid_on": inv["paid_on"],
        "method": inv["method"],
    }


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_patient(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Find patients by part of their name, their patient number (PT-1001), email or phone.

    Args:
        query: text to look for in the name, patient number, email or phone number
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty; give part of a name, a patient number, an email or a phone number")
    pattern = like(text)
    return ctx.all(
        "SELECT p.id AS patient_id, p.patient_number, p.name, p.date_of_birth, p.email, p.phone, "
        "pl.code AS plan_code, pl.name AS plan_name FROM patients p JOIN plans pl ON pl.id = p.plan_id "
        "WHERE p.name LIKE ? ESCAPE '\\' OR p.patient_number LIKE ? ESCAPE '\\' "
        "OR p.email LIKE ? ESCAPE '\\' OR p.phone LIKE ? ESCAPE '\\' ORDER BY p.name, p.id LIMIT ?",
        (pattern, pattern, pattern, pattern, SEARCH_LIMIT),
    )


@tool(kind="query")
def get_patient(ctx: ToolContext, patient_id: Id) -> dict[str, Any]:
    """A patient's record: contact details, insurance plan and what it covers, future bookings and balance owed.

    Args:
        patient_id: the patient's id (from find_patient)
    """
    p = _patient(ctx, patient_id)
    covered = ctx.all(
        "SELECT specialty, copay_cents FROM plan_coverages WHERE plan_id = ? ORDER BY id", (p["plan_id"],)
    )
    owed = ctx.scalar(
        "SELECT COALESCE(SUM(amount_cents), 0) FROM invoices WHERE patient_id = ? AND status = 'unpaid'",
        (patient_id,),
    )
    return {
        "patient_id": p["id"],
        "patient_number": p["patient_number"],
        "name": p["name"],
        "date_of_birth": p["date_of_birth"],
        "email": p["email"],
        "phone": p["phone"],
        "registered": p["registered"],
        "plan_code": p["plan_code"],
        "plan_name": p["plan_name"],
        "covered_specialties": covered,
        "future_booked_appointments": len(_future_booked(ctx, patient_id)),
        "unpaid_cents": int(owed),
        "unpaid_no_show_fee": _unpaid_no_show(ctx, patient_id) is not None,
    }


@tool(kind="query")
def list_plans(ctx: ToolContext) -> list[dict[str, Any]]:
    """The insurance plans the clinic accepts, with the specialties each covers and the copay per visit."""
    plans = ctx.all("SELECT id AS plan_id, code, name, monthly_premium_cents FROM plans ORDER BY id")
    for plan in plans:
        plan["coverage"] = ctx.all(
            "SELECT specialty, copay_cents FROM plan_coverages WHERE plan_id = ? ORDER BY id", (plan["plan_id"],)
        )
    return plans


@tool(kind="query")
def find_doctors(
    ctx: ToolContext, name: Name | None = None, specialty: Specialty | None = None
) -> list[dict[str, Any]]:
    """Find the clinic's doctors by part of their name and/or by specialty; all doctors if neither is given.

    Args:
        name: part of the doctor's name, e.g. Hart
        specialty: only doctors of this specialty
    """
    sql = "SELECT id AS doctor_id, name, specialty, room, fee_cents FROM doctors WHERE 1 = 1 "
    params: list[Any] = []
    if name is not None and name.strip():
        sql += "AND name LIKE ? ESCAPE '\\' "
        params.append(like(name.strip()))
    if specialty is not None:
        sql += "AND specialty = ? "
        params.append(specialty)
    return ctx.all(sql + "ORDER BY id", params)


@tool(kind="query")
def list_open_slots(
    ctx: ToolContext,
    doctor_id: Id | None = None,
    specialty: Specialty | None = None,
    on_date: DateStr | None = None,
) -> list[dict[str, Any]]:
    """Free slots that start after now, earliest first, optionally for one doctor, specialty or day.

    Args:
        doctor_id: only this doctor's slots (from find_doctors)
        specialty: only slots of doctors of this specialty
        on_date: only slots on this day (YYYY-MM-DD, UTC)
    """
    sql = (
        "SELECT s.id AS slot_id, s.doctor_id, d.name AS doctor_name, d.specialty, s.starts_at, s.duration_minutes "
        "FROM slots s JOIN doctors d ON d.id = s.doctor_id WHERE NOT EXISTS (SELECT 1 FROM appointments a "
        "WHERE a.slot_id = s.id AND a.status != 'cancelled') "
    )
    params: list[Any] = []
    if doctor_id is not None:
        _doctor(ctx, doctor_id)
        sql += "AND s.doctor_id = ? "
        params.append(doctor_id)
    if specialty is not None:
        sql += "AND d.specialty = ? "
        params.append(specialty)
    if on_date is not None:
        sql += "AND substr(s.starts_at, 1, 10) = ? "
        params.append(parse_date(on_date, "on_date").isoformat())
    rows = ctx.all(sql + "ORDER BY s.starts_at, s.id", params)
    return [r for r in rows if _at(r["starts_at"]) > ctx.now]


@tool(kind="query")
def get_doctor_schedule(ctx: ToolContext, doctor_id: Id, on_date: DateStr) -> list[dict[str, Any]]:
    """All of a doctor's slots on one day, with the patient and status of each live appointment.

    Args:
        doctor_id: the doctor's id (from find_doctors)
        on_date: the day (YYYY-MM-DD, UTC)
    """
    _doctor(ctx, doctor_id)
    day = parse_date(on_date, "on_date").isoformat()
    return ctx.all(
        "SELECT s.id AS slot_id, s.starts_at, s.duration_minutes, a.id AS appointment_id, "
        "a.patient_id, p.name AS patient_name, a.status FROM slots s "
        "LEFT JOIN appointments a ON a.slot_id = s.id AND a.status != 'cancelled' "
        "LEFT JOIN patients p ON p.id = a.patient_id "
        "WHERE s.doctor_id = ? AND substr(s.starts_at, 1, 10) = ? ORDER BY s.starts_at, s.id",
        (doctor_id, day),
    )


@tool(kind="query")
def list_patient_appointments(ctx: ToolContext, patient_id: Id, include_past: bool = False) -> list[dict[str, Any]]:
    """A patient's appointments, earliest first: by default only booked ones.

    Args:
        patient_id: the patient's id (from find_patient)
        include_past: also list completed, cancelled and no-show appointments
    """
    _patient(ctx, patient_id)
    status = "" if include_past else "AND a.status = 'booked' "
    rows = ctx.all(f"{_APPT_SQL}WHERE a.patient_id = ? {status}ORDER BY s.starts_at, a.id", (patient_id,))
    return [_appt_out(r) for r in rows]


@tool(kind="query")
def get_appointment(ctx: ToolContext, appointment_id: Id) -> dict[str, Any]:
    """One appointment: patient, doctor, time, status, referral used and invoices raised on it.

    Args:
        appointment_id: the appointment's id (from list_patient_appointments or get_doctor_schedule)
    """
    appt = _appointment(ctx, appointment_id)
    out = _appt_out(appt)
    out["booked_at"] = appt["booked_at"]
    out["cancelled_at"] = appt["cancelled_at"]
    out["invoices"] = [
        _invoice_out(i)
        for i in ctx.all("SELECT * FROM invoices WHERE appointment_id = ? ORDER BY id", (appointment_id,))
    ]
    return out


@tool(kind="query")
def list_patient_referrals(ctx: ToolContext, patient_id: Id) -> list[dict[str, Any]]:
    """A patient's referrals with specialty, referring doctor, validity and whether each is still usable.

    Args:
        patient_id: the patient's id (from find_patient)
    """
    _patient(ctx, patient_id)
    rows = ctx.all(
        "SELECT r.id AS referral_id, r.specialty, r.referring_doctor_id, d.name AS referring_doctor, r.issued, "
        "r.valid_until, r.status FROM referrals r JOIN doctors d ON d.id = r.referring_doctor_id "
        "WHERE r.patient_id = ? ORDER BY r.issued, r.id",
        (patient_id,),
    )
    for r in rows:
        r["usable"] = r["status"] == "active" and r["valid_until"] >= ctx.today
    return rows


@tool(kind="query")
def list_patient_prescriptions(ctx: ToolContext, patient_id: Id) -> list[dict[str, Any]]:
    """A patient's prescriptions, newest first.

    Args:
        patient_id: the patient's id (from find_patient)
    """
    _patient(ctx, patient_id)
    return ctx.all(
        "SELECT r.id AS prescription_id, r.medication, r.dosage, r.refills, r.issued, r.doctor_id, "
        "d.name AS doctor_name FROM prescriptions r JOIN doctors d ON d.id = r.doctor_id "
        "WHERE r.patient_id = ? ORDER BY r.issued DESC, r.id DESC",
        (patient_id,),
    )


@tool(kind="query")
def list_patient_invoices(ctx: ToolContext, patient_id: Id, include_paid: bool = False) -> list[dict[str, Any]]:
    """A patient's invoices (visit copays, late-cancellation and no-show fees): by default only unpaid ones.

    Args:
        patient_id: the patient's id (from find_patient)
        include_paid: also list invoices already paid
    """
    _patient(ctx, patient_id)
    status = "" if include_paid else "AND status = 'unpaid' "
    rows = ctx.all(f"SELECT * FROM invoices WHERE patient_id = ? {status}ORDER BY created, id", (patient_id,))
    return [_invoice_out(r) for r in rows]


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def book_appointment(ctx: ToolContext, patient_id: Id, slot_id: Id, reason: Note | None = None) -> dict[str, Any]:
    """Book a patient into a free future slot.

    A specialist booking uses up the patient's active referral for that specialty.

    Args:
        patient_id: the patient's id (from find_patient)
        slot_id: the slot's id (from list_open_slots)
        reason: the reason for the visit, as the patient puts it
    """
    patient = _patient(ctx, patient_id)
    slot = _slot(ctx, slot_id)
    _require_free_future_slot(ctx, slot)
    _require_no_overlap(ctx, patient, slot)
    fee = _unpaid_no_show(ctx, patient_id)
    if fee is not None:
        raise ToolError(
            f"{_who(patient)} has an unpaid no-show fee (invoice {fee['id']}, {money(fee['amount_cents'])}); "
            "it must be paid before booking",
            rule="unpaid-no-show-block",
        )
    future = _future_booked(ctx, patient_id)
    if len(future) >= MAX_FUTURE_APPOINTMENTS:
        raise ToolError(
            f"{_who(patient)} already holds {len(future)} future appointments, the maximum of "
            f"{MAX_FUTURE_APPOINTMENTS}; one must be cancelled first",
            rule="future-appointment-limit",
        )
    if _coverage(ctx, patient["plan_id"], slot["specialty"]) is None:
        raise ToolError(
            f"{_who(patient)}'s plan {patient['plan_name']} does not cover {slot['specialty']} ({slot['doctor_name']})",
            rule="plan-coverage",
        )
    referral_id = None
    if slot["specialty"] != GP:
        referral = ctx.one(
            "SELECT * FROM referrals WHERE patient_id = ? AND specialty = ? AND status = 'active' "
            "AND valid_until >= ? ORDER BY valid_until, id",
            (patient_id, slot["specialty"], ctx.today),
        )
        if referral is None:
            raise ToolError(
                f"{_who(patient)} has no active, unexpired referral for {slot['specialty']}, which "
                f"{slot['doctor_name']} needs; a general practitioner must refer them first",
                rule="referral-required",
            )
        referral_id = referral["id"]
        ctx.update("referrals", {"id": referral_id}, {"status": "used"})
    text = reason.strip() if reason and reason.strip() else None
    appt_id = ctx.insert(
        "appointments",
        {
            "slot_id": slot_id,
            "patient_id": patient_id,
            "status": "booked",
            "reason": text,
            "booked_at": _now_iso(ctx),
            "cancelled_by": None,
            "cancelled_at": None,
            "referral_id": referral_id,
        },
    )
    return _appt_out(_appointment(ctx, appt_id))


@tool(kind="mutation")
def cancel_appointment(ctx: ToolContext, appointment_id: Id, cancelled_by: CancelledBy) -> dict[str, Any]:
    """Cancel a booked appointment, freeing its slot and giving back the referral it used.

    A patient cancelling less than 24 hours ahead is charged a $40.00 late-cancellation fee.

    Args:
        appointment_id: the appointment's id (from list_patient_appointments)
        cancelled_by: who cancels: the patient, or the clinic (never charged)
    """
    appt = _appointment(ctx, appointment_id)
    if appt["status"] != "booked":
        raise ToolError(f"{_what(appt)} is {appt['status']}; only booked appointments can be cancelled")
    if _at(appt["starts_at"]) <= ctx.now:
        raise ToolError(
            f"{_what(appt)} has already started; complete it or mark it a no-show instead",
            rule="appointment-timing",
        )
    ctx.update(
        "appointments",
        {"id": appointment_id},
        {"status": "cancelled", "cancelled_by": cancelled_by, "cancelled_at": _now_iso(ctx)},
    )
    if appt["referral_id"] is not None:
        ctx.update("referrals", {"id": appt["referral_id"]}, {"status": "active"})
    fee = None
    if cancelled_by == "patient" and _at(appt["starts_at"]) - ctx.now < LATE_CANCEL_WINDOW:
        invoice_id = ctx.insert(
            "invoices",
            {
                "patient_id": appt["patient_id"],
                "appointment_id": appointment_id,
                "kind": "late_cancellation",
                "amount_cents": LATE_CANCEL_FEE_CENTS,
                "status": "unpaid",
                "created": ctx.today,
                "paid_on": None,
                "method": None,
            },
        )
        fee = {"invoice_id": invoice_id, "amount_cents": LATE_CANCEL_FEE_CENTS}
    return {
        "appointment_id": appointment_id,
        "status": "cancelled",
        "cancelled_by": cancelled_by,
        "referral_returned": appt["referral_id"],
        "late_cancellation_fee": fee,
    }


@tool(kind="mutation")
def reschedule_appointment(ctx: ToolContext, appointment_id: Id, new_slot_id: Id) -> dict[str, Any]:
    """Move a booked future appointment to another free future slot of the same doctor.

    Args:
        appointment_id: the appointment's id (from list_patient_appointments)
        new_slot_id: the new slot's id (from list_open_slots), of the same doctor
    """
    appt = _appointment(ctx, appointment_id)
    if appt["status"] != "booked":
        raise ToolError(f"{_what(appt)} is {appt['status']}; only booked appointments can be rescheduled")
    if _at(appt["starts_at"]) <= ctx.now:
        raise ToolError(f"{_what(appt)} has already started and cannot be moved", rule="appointment-timing")
    slot = _slot(ctx, new_slot_id)
    if slot["doctor_id"] != appt["doctor_id"]:
        raise ToolError(
            f"slot {new_slot_id} is with {slot['doctor_name']}, not {appt['doctor_name']}; to change doctor, "
            "cancel and book again"
        )
    if new_slot_id == appt["slot_id"]:
        raise ToolError(f"{_what(appt)} is already in slot {new_slot_id}")
    _require_free_future_slot(ctx, slot, ignore_appt=appointment_id)
    _require_no_overlap(ctx, _patient(ctx, appt["patient_id"]), slot, ignore_appt=appointment_id)
    ctx.update("appointments", {"id": appointment_id}, {"slot_id": new_slot_id})
    out = _appt_out(_appointment(ctx, appointment_id))
    out["previous_starts_at"] = appt["starts_at"]
    return out


def _close(ctx: ToolContext, appointment_id: int, doing: str) -> dict[str, Any]:
    appt = _appointment(ctx, appointment_id)
    if appt["status"] != "booked":
        raise ToolError(f"{_what(appt)} is {appt['status']}; only booked appointments can be {doing}")
    if _at(appt["starts_at"]) > ctx.now:
        raise ToolError(
            f"{_what(appt)} has not started yet; it cannot be {doing} before its start time",
            rule="appointment-timing",
        )
    return appt


def _bill(ctx: ToolContext, appt: dict[str, Any], kind: str, amount: int) -> int:
    return ctx.insert(
        "invoices",
        {
            "patient_id": appt["patient_id"],
            "appointment_id": appt["id"],
            "kind": kind,
            "amount_cents": amount,
            "status": "unpaid",
            "created": ctx.today,
            "paid_on": None,
            "method": None,
        },
    )


@tool(kind="mutation")
def complete_appointment(ctx: ToolContext, appointment_id: Id) -> dict[str, Any]:
    """Record that an appointment took place and bill the visit.

    The patient is invoiced their plan's copay for the specialty (nothing when it is $0), or
    the doctor's full fee if the plan no longer covers it.

    Args:
        appointment_id: the appointment's id (from get_doctor_schedule or list_patient_appointments)
    """
    appt = _close(ctx, appointment_id, "completed")
    patient = _patient(ctx, appt["patient_id"])
    coverage = _coverage(ctx, patient["plan_id"], appt["specialty"])
    fee = coverage["copay_cents"] if coverage is not None else _doctor(ctx, appt["doctor_id"])["fee_cents"]
    amount = int(fee)
    ctx.update("appointments", {"id": appointment_id}, {"status": "completed"})
    invoice_id = _bill(ctx, appt, "visit", amount) if amount > 0 else None
    return {"appointment_id": appointment_id, "status": "completed", "invoice_id": invoice_id, "billed_cents": amount}


@tool(kind="mutation")
def mark_no_show(ctx: ToolContext, appointment_id: Id) -> dict[str, Any]:
    """Record that the patient did not come to an appointment; a $50.00 no-show fee is charged.

    Args:
        appointment_id: the appointment's id (from get_doctor_schedule or list_patient_appointments)
    """
    appt = _close(ctx, appointment_id, "marked a no-show")
    ctx.update("appointments", {"id": appointment_id}, {"status": "no_show"})
    invoice_id = _bill(ctx, appt, "no_show", NO_SHOW_FEE_CENTS)
    return {
        "appointment_id": appointment_id,
        "status": "no_show",
        "invoice_id": invoice_id,
        "fee_cents": NO_SHOW_FEE_CENTS,
    }


@tool(kind="mutation")
def create_referral(ctx: ToolContext, patient_id: Id, referring_doctor_id: Id, specialty: Specialty) -> dict[str, Any]:
    """Issue a referral to a specialty, valid for 90 days from today.

    Args:
        patient_id: the patient's id (from find_patient)
        referring_doctor_id: the general practitioner who refers (from find_doctors)
        specialty: the specialty referred to (not general_practice)
    """
    patient = _patient(ctx, patient_id)
    doctor = _doctor(ctx, referring_doctor_id)
    if specialty == GP:
        raise ToolError("general practice needs no referral; refer to a specialty")
    if doctor["specialty"] != GP:
        raise ToolError(
            f"{doctor['name']} is a {doctor['specialty']} specialist; only general practitioners refer",
            rule="referral-from-gp",
        )
    if not _has_seen(ctx, referring_doctor_id, patient_id):
        raise ToolError(
            f"{doctor['name']} has no completed appointment with {_who(patient)} and cannot refer them",
            rule="referral-from-gp",
        )
    existing = ctx.one(
        "SELECT id FROM referrals WHERE patient_id = ? AND specialty = ? AND status = 'active' AND valid_until >= ?",
        (patient_id, specialty, ctx.today),
    )
    if existing is not None:
        raise ToolError(f"{_who(patient)} already has active referral {existing['id']} for {specialty}")
    valid_until = (date.fromisoformat(ctx.today) + timedelta(days=REFERRAL_VALID_DAYS)).isoformat()
    referral_id = ctx.insert(
        "referrals",
        {
            "patient_id": patient_id,
            "referring_doctor_id": referring_doctor_id,
            "specialty": specialty,
            "issued": ctx.today,
            "valid_until": valid_until,
            "status": "active",
        },
    )
    return {"referral_id": referral_id, "specialty": specialty, "issued": ctx.today, "valid_until": valid_until}


@tool(kind="mutation")
def issue_prescription(
    ctx: ToolContext, patient_id: Id, doctor_id: Id, medication: Name, dosage: Note, refills: Refills = 0
) -> dict[str, Any]:
    """Record a prescription written by a doctor who has seen the patient, dated today.

    Args:
        patient_id: the patient's id (from find_patient)
        doctor_id: the prescribing doctor's id (from find_doctors)
        medication: the drug and strength, e.g. Amoxicillin 500 mg
        dosage: how to take it, e.g. three times daily for 7 days
        refills: how many refills are allowed (0-12)
    """
    patient = _patient(ctx, patient_id)
    doctor = _doctor(ctx, doctor_id)
    if not medication.strip() or not dosage.strip():
        raise ToolError("medication and dosage must both be given")
    if not _has_seen(ctx, doctor_id, patient_id):
        raise ToolError(
            f"{doctor['name']} has no completed appointment with {_who(patient)} and cannot prescribe to them",
            rule="prescriber-has-seen-patient",
        )
    rx_id = ctx.insert(
        "prescriptions",
        {
            "patient_id": patient_id,
            "doctor_id": doctor_id,
            "medication": medication.strip(),
            "dosage": dosage.strip(),
            "refills": refills,
            "issued": ctx.today,
        },
    )
    return {"prescription_id": rx_id, "medication": medication.strip(), "refills": refills, "issued": ctx.today}


@tool(kind="mutation")
def pay_invoice(ctx: ToolContext, invoice_id: Id, method: Method) -> dict[str, Any]:
    """Take payment of an invoice in full.

    Args:
        invoice_id: the invoice's id (from list_patient_invoices)
        method: how the patient pays: card or cash
    """
    inv = ctx.one("SELECT * FROM invoices WHERE id = ?", (invoice_id,))
    if inv is None:
        raise ToolError(f"no invoice with id {invoice_id}; see list_patient_invoices")
    if inv["status"] != "unpaid":
        raise ToolError(f"invoice {invoice_id} is already {inv['status']}")
    paid = {"status": "paid", "paid_on": ctx.today, "method": method}
    ctx.update("invoices", {"id": invoice_id}, paid)
    return _invoice_out({**inv, **paid})


@tool(kind="mutation")
def register_patient(
    ctx: ToolContext, name: Name, date_of_birth: DateStr, plan_code: PlanCode, email: Email, phone: Phone | None = None
) -> dict[str, Any]:
    """Register a new patient with the next patient number.

    Args:
        name: the patient's full name
        date_of_birth: the patient's date of birth (YYYY-MM-DD)
        plan_code: the insurance plan: BASIC (Basic Care), STANDARD (Standard Plus) or PREMIUM (Premium Complete)
        email: the patient's email address, unique among patients
        phone: the patient's phone number
    """
    name = name.strip()
    if not name:
        raise ToolError("name is empty")
    born = parse_date(date_of_birth, "date_of_birth").isoformat()
    if born > ctx.today:
        raise ToolError(f"date of birth {born} is in the future")
    email = unique_email(ctx, "patients", email, None, "patient", "unique-email")
    plan_id = _plan_id(ctx, plan_code)
    numbers = [int(n[3:]) for (n,) in ctx.db.execute("SELECT patient_number FROM patients") if n[3:].isdigit()]
    number = f"PT-{max(numbers, default=1000) + 1}"
    patient_id = ctx.insert(
        "patients",
        {
            "patient_number": number,
            "name": name,
            "date_of_birth": born,
            "email": email,
            "phone": phone.strip() if phone and phone.strip() else None,
            "plan_id": plan_id,
            "registered": ctx.today,
        },
    )
    return {"patient_id": patient_id, "patient_number": number, "name": name, "plan_code": plan_code}


@tool(kind="mutation")
def change_patient_plan(ctx: ToolContext, patient_id: Id, plan_code: PlanCode) -> dict[str, Any]:
    """Move a patient to another insurance plan.

    Args:
        patient_id: the patient's id (from find_patient)
        plan_code: the new plan: BASIC, STANDARD or PREMIUM
    """
    patient = _patient(ctx, patient_id)
    if patient["plan_code"] == plan_code:
        raise ToolError(f"{_who(patient)} is already on {patient['plan_name']}")
    ctx.update("patients", {"id": patient_id}, {"plan_id": _plan_id(ctx, plan_code)})
    return {"patient_id": patient_id, "previous_plan": patient["plan_code"], "plan_code": plan_code}
