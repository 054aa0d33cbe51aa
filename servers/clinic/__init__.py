"""Outpatient clinic: patients and their insurance plans, doctors, appointment slots,
appointments, referrals, prescriptions and invoices, run by the front desk under the
clinic's booking rules (below), which the tools enforce and name when they refuse a call.
"""

TITLE = "Outpatient clinic"

DESCRIPTION = (
    "You are the front-desk assistant of the Maple Grove Medical Clinic. Patients are insured on one "
    "of three plans (Basic Care, Standard Plus, Premium Complete), each covering some specialties with "
    "a copay. Doctors are general practitioners or specialists (cardiology, dermatology, orthopedics, "
    "neurology) who publish 30-minute appointment slots. Use the tools to look patients up (by name, "
    "patient number, email or phone), find doctors and open slots, then book, reschedule, cancel, "
    "complete or mark appointments as no-shows, issue referrals and prescriptions, take invoice "
    "payments, register patients and change their plan. Money is in integer cents (4000 = $40.00); "
    "dates are YYYY-MM-DD and times are ISO date-times in UTC. The current time is the clinic's clock, "
    "which the tools use for every time rule. The tools refuse anything the clinic's rules forbid and "
    "say which rule; explain such a refusal to the patient rather than working around it."
)

RULES = {
    "slot-double-booking": "A slot holds at most one appointment that is not cancelled.",
    "patient-double-booking": "A patient cannot hold two booked appointments starting at the same time.",
    "appointment-timing": (
        "Only slots that start after the current time can be booked or rescheduled into, and an "
        "appointment can be completed or marked a no-show only once its start time has passed (and can "
        "then no longer be cancelled or moved)."
    ),
    "future-appointment-limit": "A patient may hold at most 3 booked appointments in the future.",
    "plan-coverage": "A patient's insurance plan must cover the doctor's specialty for a booking.",
    "referral-required": (
        "Booking a specialist (any specialty but general practice) needs the patient's active, unexpired "
        "referral for that specialty; the booking uses it up, and cancelling that appointment gives it back."
    ),
    "referral-from-gp": (
        "Referrals are issued by a general practitioner who has completed an appointment with the patient."
    ),
    "prescriber-has-seen-patient": (
        "A doctor may prescribe only to a patient with whom they have a completed appointment."
    ),
    "late-cancellation-fee": (
        "A patient who cancels less than 24 hours before the appointment starts is charged a $40.00 "
        "fee; cancellations by the clinic are never charged."
    ),
    "no-show-fee": "An appointment marked a no-show charges the patient a $50.00 fee.",
    "unpaid-no-show-block": "A patient with an unpaid no-show fee cannot book until it is paid.",
    "unique-email": "No two patients may share an email address.",
}
