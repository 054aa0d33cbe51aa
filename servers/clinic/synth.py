"""Procedural steps for the clinic: front-desk requests built from the current state.

Each maker picks rows the request can name unambiguously (a patient by name, a doctor by
name, a slot by its date and time) and lists the look-ups a desk agent makes first. Time
rules are judged against ``NOW``, the clock of the scenarios on ``states/base.json``.
"""

from __future__ import annotations

import random
from datetime import datetime
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, by_id, unique_names
from envfarm.core.toolkit import money

NOW = datetime.fromisoformat("2026-04-20T08:30:00+00:00")
PLAN_NAMES = {"BASIC": "Basic Care", "STANDARD": "Standard Plus", "PREMIUM": "Premium Complete"}
MEDICATIONS = [
    ("Amoxicillin 500 mg", "three times daily for 7 days"),
    ("Cetirizine 10 mg", "one tablet daily"),
    ("Omeprazole 20 mg", "once daily before breakfast"),
    ("Metformin 500 mg", "twice daily with meals"),
    ("Lisinopril 10 mg", "one tablet each morning"),
]


def _when(starts_at: str) -> str:
    at = datetime.fromisoformat(starts_at)
    return f"{at.date().isoformat()} at {at.strftime('%H:%M')}"


def _start(state: StateView, slot_id: int) -> datetime:
    return datetime.fromisoformat(by_id(state, "slots")[slot_id]["starts_at"])


def _booked(state: StateView) -> list[dict[str, Any]]:
    return [a for a in state["appointments"] if a["status"] == "booked"]


def book_appointment(state: StateView, rng: random.Random) -> Step | None:
    names, doctors = unique_names(state, "patients"), by_id(state, "doctors")
    taken = {a["slot_id"] for a in state["appointments"] if a["status"] != "cancelled"}
    slots = [
        s
        for s in state["slots"]
        if s["id"] not in taken
        and doctors[s["doctor_id"]]["specialty"] == "general_practice"
        and datetime.fromisoformat(s["starts_at"]) > NOW
    ]
    blocked = {i["patient_id"] for i in state["invoices"] if i["kind"] == "no_show" and i["status"] == "unpaid"}
    covered = {c["plan_id"] for c in state["plan_coverages"] if c["specialty"] == "general_practice"}
    patients = [
        p
        for p in state["patients"]
        if p["id"] in names
        and p["id"] not in blocked
        and p["plan_id"] in covered
        and sum(1 for a in _booked(state) if a["patient_id"] == p["id"] and _start(state, a["slot_id"]) > NOW) < 3
    ]
    if not slots:
        return None
    slot = rng.choice(slots)
    by_slot = by_id(state, "slots")
    busy = {a["patient_id"] for a in _booked(state) if by_slot[a["slot_id"]]["starts_at"] == slot["starts_at"]}
    patients = [p for p in patients if p["id"] not in busy]
    if not patients:
        return None
    patient = rng.choice(patients)
    doctor = doctors[slot["doctor_id"]]
    day = slot["starts_at"][:10]
    return Step(
        arguments={"patient_id": patient["id"], "slot_id": slot["id"]},
        request=f"book {patient['name']} with {doctor['name']} on {_when(slot['starts_at'])}",
        lookups=[
            Call(tool="find_patient", arguments={"query": patient["name"]}),
            Call(tool="find_doctors", arguments={"name": doctor["name"].split()[-1]}),
            Call(tool="list_open_slots", arguments={"doctor_id": doctor["id"], "on_date": day}),
        ],
    )


def cancel_appointment(state: StateView, rng: random.Random) -> Step | None:
    names, slots, doctors = unique_names(state, "patients"), by_id(state, "slots"), by_id(state, "doctors")
    appts = [a for a in _booked(state) if a["patient_id"] in names and _start(state, a["slot_id"]) > NOW]
    if not appts:
        return None
    appt = rng.choice(appts)
    slot = slots[appt["slot_id"]]
    who = rng.choice(["patient", "clinic"])
    side = "at the patient's request" if who == "patient" else "on the clinic's side (no charge)"
    return Step(
        arguments={"appointment_id": appt["id"], "cancelled_by": who},
        request=(
            f"cancel {names[appt['patient_id']]}'s appointment with {doctors[slot['doctor_id']]['name']} "
            f"on {_when(slot['starts_at'])}, {side}"
        ),
        lookups=[
            Call(tool="find_patient", arguments={"query": names[appt["patient_id"]]}),
            Call(tool="list_patient_appointments", arguments={"patient_id": appt["patient_id"]}),
        ],
    )


def pay_invoice(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "patients")
    unpaid = [i for i in state["invoices"] if i["status"] == "unpaid" and i["patient_id"] in names]
    if not unpaid:
        return None
    inv = rng.choice(unpaid)
    if sum(1 for i in unpaid if i["patient_id"] == inv["patient_id"]) > 1:
        return None  # "pay the bill" must name one invoice
    method = rng.choice(["card", "cash"])
    who = names[inv["patient_id"]]
    return Step(
        arguments={"invoice_id": inv["id"], "method": method},
        request=f"take {who}'s {method} payment of {money(inv['amount_cents'])}, which settles their open invoice",
        lookups=[
            Call(tool="find_patient", arguments={"query": who}),
            Call(tool="list_patient_invoices", arguments={"patient_id": inv["patient_id"]}),
        ],
    )


def change_patient_plan(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "patients")
    patients = [p for p in state["patients"] if p["id"] in names]
    if not patients:
        return None
    patient = rng.choice(patients)
    choices = [p for p in state["plans"] if p["id"] != patient["plan_id"]]
    plan = rng.choice(choices)
    return Step(
        arguments={"patient_id": patient["id"], "plan_code": plan["code"]},
        request=f"switch {patient['name']}'s insurance to the {plan['name']} plan",
        lookups=[
            Call(tool="find_patient", arguments={"query": patient["name"]}),
            Call(tool="list_plans", arguments={}),
        ],
    )


def _past_booked(state: StateView) -> list[dict[str, Any]]:
    names = unique_names(state, "patients")
    return [a for a in _booked(state) if a["patient_id"] in names and _start(state, a["slot_id"]) <= NOW]


def _closing(state: StateView, rng: random.Random, happened: str) -> Step | None:
    appts = _past_booked(state)
    if not appts:
        return None
    appt = rng.choice(appts)
    slot = by_id(state, "slots")[appt["slot_id"]]
    doctor = by_id(state, "doctors")[slot["doctor_id"]]
    who = unique_names(state, "patients")[appt["patient_id"]]
    return Step(
        arguments={"appointment_id": appt["id"]},
        request=f"{who}'s appointment with {doctor['name']} on {_when(slot['starts_at'])} {happened}",
        lookups=[
            Call(tool="find_doctors", arguments={"name": doctor["name"].split()[-1]}),
            Call(tool="get_doctor_schedule", arguments={"doctor_id": doctor["id"], "on_date": slot["starts_at"][:10]}),
        ],
    )


def complete_appointment(state: StateView, rng: random.Random) -> Step | None:
    return _closing(state, rng, "took place: close it out and bill it")


def mark_no_show(state: StateView, rng: random.Random) -> Step | None:
    return _closing(state, rng, "was missed: the patient never came, record the no-show")


def issue_prescription(state: StateView, rng: random.Random) -> Step | None:
    names, slots, doctors = unique_names(state, "patients"), by_id(state, "slots"), by_id(state, "doctors")
    pairs = sorted(
        {
            (slots[a["slot_id"]]["doctor_id"], a["patient_id"])
            for a in state["appointments"]
            if a["status"] == "completed" and a["patient_id"] in names
        }
    )
    if not pairs:
        return None
    doctor_id, patient_id = rng.choice(pairs)
    medication, dosage = rng.choice(MEDICATIONS)
    refills = rng.randint(0, 3)
    doctor = doctors[doctor_id]
    return Step(
        arguments={
            "patient_id": patient_id,
            "doctor_id": doctor_id,
            "medication": medication,
            "dosage": dosage,
            "refills": refills,
        },
        request=(
            f"record {doctor['name']}'s prescription for {names[patient_id]}: {medication}, "
            f"dosage '{dosage}', {refills} refill{'s' if refills != 1 else ''}"
        ),
        lookups=[
            Call(tool="find_patient", arguments={"query": names[patient_id]}),
            Call(tool="find_doctors", arguments={"name": doctor["name"].split()[-1]}),
        ],
    )


def create_referral(state: StateView, rng: random.Random) -> Step | None:
    names, slots, doctors = unique_names(state, "patients"), by_id(state, "slots"), by_id(state, "doctors")
    today = NOW.date().isoformat()
    pairs = sorted(
        {
            (slots[a["slot_id"]]["doctor_id"], a["patient_id"])
            for a in state["appointments"]
            if a["status"] == "completed"
            and a["patient_id"] in names
            and doctors[slots[a["slot_id"]]["doctor_id"]]["specialty"] == "general_practice"
        }
    )
    if not pairs:
        return None
    doctor_id, patient_id = rng.choice(pairs)
    held = {
        r["specialty"]
        for r in state["referrals"]
        if r["patient_id"] == patient_id and r["status"] == "active" and r["valid_until"] >= today
    }
    options = [s for s in ["cardiology", "dermatology", "orthopedics", "neurology"] if s not in held]
    if not options:
        return None
    specialty = rng.choice(options)
    doctor = doctors[doctor_id]
    return Step(
        arguments={"patient_id": patient_id, "referring_doctor_id": doctor_id, "specialty": specialty},
        request=f"issue {doctor['name']}'s referral of {names[patient_id]} to {specialty}",
        lookups=[
            Call(tool="find_patient", arguments={"query": names[patient_id]}),
            Call(tool="find_doctors", arguments={"name": doctor["name"].split()[-1]}),
            Call(tool="list_patient_referrals", arguments={"patient_id": patient_id}),
        ],
    )


STEPS = {
    "book_appointment": book_appointment,
    "cancel_appointment": cancel_appointment,
    "pay_invoice": pay_invoice,
    "change_patient_plan": change_patient_plan,
    "complete_appointment": complete_appointment,
    "mark_no_show": mark_no_show,
    "issue_prescription": issue_prescription,
    "create_referral": create_referral,
}
