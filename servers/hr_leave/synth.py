"""Procedural steps for the HR leave environment: one maker per mutation tool.

Each maker looks at the current state view, picks arguments that the leave policy
accepts, and phrases the request the way an employee, manager or HR would (names
and dates, never internal ids). The tools' own clock is the scenario's; the makers
count "today" as the later of the bundled scenarios' date (2026-03-02) and the
latest date written in the state, and keep a margin of weeks around it.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, StepMaker, by_id
from envfarm.servers.hr_leave.tools import count_working_days_between

SCENARIO_TODAY = "2026-03-02"
CODES = {1: "annual", 2: "sick", 3: "parental", 4: "compassionate"}
REJECT_REASONS = [
    "Too many people are off that week",
    "Client launch that week, please pick other dates",
    "Team offsite planned, please move it",
]
HOLIDAY_NAMES = ["Founders Day", "Company Wellbeing Day", "Summer Recharge Day", "Volunteering Day"]
BLACKOUT_REASONS = ["Quarter-end close", "Product launch", "Annual audit", "System migration"]


def _today(state: StateView) -> date:
    dates = [SCENARIO_TODAY]
    for r in state["leave_requests"]:
        dates += [d for d in (r["submitted_on"], r["decided_on"], r["cancelled_on"]) if d]
    return date.fromisoformat(max(dates))


def _holidays(state: StateView) -> set[str]:
    return {h["date"] for h in state["public_holidays"]}


def _overlaps(a_start: str, a_end: str, b_start: str, b_end: str) -> bool:
    return a_start <= b_end and a_end >= b_start


def _remaining(state: StateView, balance: dict[str, Any]) -> int:
    pending = sum(
        r["working_days"]
        for r in state["leave_requests"]
        if r["employee_id"] == balance["employee_id"]
        and r["leave_type_id"] == balance["leave_type_id"]
        and r["status"] == "pending"
        and r["start_date"][:4] == f"{balance['year']:04d}"
    )
    return balance["entitled_days"] - balance["used_days"] - pending


def _blocked(state: StateView, department_id: int, start: str, end: str) -> bool:
    return any(
        b["department_id"] == department_id and _overlaps(start, end, b["start_date"], b["end_date"])
        for b in state["blackout_periods"]
    )


def _say(day: str) -> str:
    d = date.fromisoformat(day)
    return f"{d.strftime('%A')} {d.day} {d.strftime('%B')} {d.year}"


def submit_leave_request(state: StateView, rng: random.Random) -> Step | None:
    today = _today(state)
    employees = by_id(state, "employees")
    holidays = _holidays(state)
    balances = [b for b in state["leave_balances"] if b["leave_type_id"] == 1 and _remaining(state, b) > 0]
    for _ in range(40):
        if not balances:
            return None
        bal = rng.choice(balances)
        emp = employees[bal["employee_id"]]
        start = today + timedelta(days=rng.randint(21, 240))
        while start.weekday() >= 5:
            start += timedelta(days=1)
        end = start + timedelta(days=rng.randint(0, 6))
        if start.year != bal["year"] or end.year != bal["year"]:
            continue
        s, e = start.isoformat(), end.isoformat()
        days = count_working_days_between(start, end, holidays)
        if days == 0 or days > _remaining(state, bal) or _blocked(state, emp["department_id"], s, e):
            continue
        if any(
            r["employee_id"] == emp["id"]
            and r["status"] in ("pending", "approved")
            and _overlaps(s, e, r["start_date"], r["end_date"])
            for r in state["leave_requests"]
        ):
            continue
        return Step(
            arguments={"employee_id": emp["id"], "leave_type": "annual", "start_date": s, "end_date": e},
            request=f"Please book annual leave for {emp['name']} from {_say(s)} to {_say(e)}.",
            lookups=[
                Call(tool="find_employee", arguments={"query": emp["name"]}),
                Call(tool="get_leave_balances", arguments={"employee_id": emp["id"], "year": bal["year"]}),
            ],
        )
    return None


def _decidable(state: StateView) -> list[tuple[dict[str, Any], dict[str, Any], dict[str, Any]]]:
    """Pending requests whose employee has a manager: (request, employee, manager)."""
    employees = by_id(state, "employees")
    out = []
    for r in state["leave_requests"]:
        emp = employees[r["employee_id"]]
        if r["status"] == "pending" and emp["manager_id"] is not None:
            out.append((r, emp, employees[emp["manager_id"]]))
    return out


def approve_leave_request(state: StateView, rng: random.Random) -> Step | None:
    types = by_id(state, "leave_types")
    options = []
    for r, emp, manager in _decidable(state):
        if types[r["leave_type_id"]]["blackout_applies"] and _blocked(
            state, emp["department_id"], r["start_date"], r["end_date"]
        ):
            continue
        bal = next(
            (
                b
                for b in state["leave_balances"]
                if b["employee_id"] == emp["id"]
                and b["leave_type_id"] == r["leave_type_id"]
                and b["year"] == int(r["start_date"][:4])
            ),
            None,
        )
        if bal is not None and bal["entitled_days"] - bal["used_days"] >= r["working_days"]:
            options.append((r, emp, manager))
    if not options:
        return None
    r, emp, manager = rng.choice(options)
    code = CODES[r["leave_type_id"]]
    return Step(
        arguments={"request_id": r["id"], "approver_id": manager["id"]},
        request=(
            f"This is {manager['name']}: please approve {emp['name']}'s {code} leave from "
            f"{_say(r['start_date'])} to {_say(r['end_date'])}."
        ),
        lookups=[
            Call(tool="find_employee", arguments={"query": manager["name"]}),
            Call(tool="list_pending_approvals", arguments={"manager_id": manager["id"]}),
        ],
    )


def reject_leave_request(state: StateView, rng: random.Random) -> Step | None:
    options = _decidable(state)
    if not options:
        return None
    r, emp, manager = rng.choice(options)
    reason = rng.choice(REJECT_REASONS)
    code = CODES[r["leave_type_id"]]
    return Step(
        arguments={"request_id": r["id"], "approver_id": manager["id"], "reason": reason},
        request=(
            f"This is {manager['name']}: please reject {emp['name']}'s {code} leave from "
            f"{_say(r['start_date'])} to {_say(r['end_date'])}, with the reason '{reason}'."
        ),
        lookups=[
            Call(tool="find_employee", arguments={"query": manager["name"]}),
            Call(tool="list_pending_approvals", arguments={"manager_id": manager["id"]}),
        ],
    )


def cancel_leave_request(state: StateView, rng: random.Random) -> Step | None:
    cutoff = (_today(state) + timedelta(days=14)).isoformat()
    employees = by_id(state, "employees")
    options = [
        r
        for r in state["leave_requests"]
        if r["status"] == "pending" or (r["status"] == "approved" and r["start_date"] > cutoff)
    ]
    if not options:
        return None
    r = rng.choice(options)
    emp = employees[r["employee_id"]]
    return Step(
        arguments={"request_id": r["id"]},
        request=(
            f"Please cancel {emp['name']}'s {r['status']} {CODES[r['leave_type_id']]} leave from "
            f"{_say(r['start_date'])} to {_say(r['end_date'])}."
        ),
        lookups=[
            Call(tool="find_employee", arguments={"query": emp["name"]}),
            Call(tool="list_leave_requests", arguments={"employee_id": emp["id"]}),
        ],
    )


def set_leave_entitlement(state: StateView, rng: random.Random) -> Step | None:
    if not state["leave_balances"]:
        return None
    bal = rng.choice(state["leave_balances"])
    emp = by_id(state, "employees")[bal["employee_id"]]
    new = min(bal["entitled_days"] + rng.randint(1, 5), 366)
    if new == bal["entitled_days"]:
        return None
    code = CODES[bal["leave_type_id"]]
    return Step(
        arguments={"employee_id": emp["id"], "leave_type": code, "year": bal["year"], "entitled_days": new},
        request=f"Set {emp['name']}'s {code} leave entitlement for {bal['year']} to {new} days.",
        lookups=[
            Call(tool="find_employee", arguments={"query": emp["name"]}),
            Call(tool="get_leave_balances", arguments={"employee_id": emp["id"], "year": bal["year"]}),
        ],
    )


def add_public_holiday(state: StateView, rng: random.Random) -> Step | None:
    today = _today(state)
    holidays = _holidays(state)
    for _ in range(20):
        day = today + timedelta(days=rng.randint(14, 250))
        if day.weekday() < 5 and day.isoformat() not in holidays:
            name = rng.choice(HOLIDAY_NAMES)
            return Step(
                arguments={"holiday_date": day.isoformat(), "name": name},
                request=f"Add {_say(day.isoformat())} as a company-wide public holiday called '{name}'.",
                lookups=[Call(tool="list_public_holidays", arguments={"year": day.year})],
            )
    return None


def add_blackout_period(state: StateView, rng: random.Random) -> Step | None:
    if not state["departments"]:
        return None
    dep = rng.choice(state["departments"])
    start = _today(state) + timedelta(days=rng.randint(14, 250))
    end = start + timedelta(days=rng.randint(2, 14))
    reason = rng.choice(BLACKOUT_REASONS)
    s, e = start.isoformat(), end.isoformat()
    return Step(
        arguments={"department_id": dep["id"], "start_date": s, "end_date": e, "reason": reason},
        request=f"Put a blackout on the {dep['name']} department from {_say(s)} to {_say(e)} for '{reason}'.",
        lookups=[Call(tool="list_departments", arguments={})],
    )


def change_manager(state: StateView, rng: random.Random) -> Step | None:
    employees = by_id(state, "employees")

    def chain(emp_id: int) -> set[int]:
        """The employee and everyone above them."""
        seen: set[int] = set()
        current: int | None = emp_id
        while current is not None and current not in seen:
            seen.add(current)
            current = employees[current]["manager_id"]
        return seen

    options = [
        (e, m)
        for e in employees.values()
        for m in employees.values()
        if m["id"] != e["manager_id"] and e["id"] not in chain(m["id"])
    ]
    if not options:
        return None
    emp, manager = rng.choice(options)
    return Step(
        arguments={"employee_id": emp["id"], "manager_id": manager["id"]},
        request=f"{emp['name']} now reports to {manager['name']}; please update their manager.",
        lookups=[
            Call(tool="find_employee", arguments={"query": emp["name"]}),
            Call(tool="find_employee", arguments={"query": manager["name"]}),
        ],
    )


STEPS: dict[str, StepMaker] = {
    "submit_leave_request": submit_leave_request,
    "approve_leave_request": approve_leave_request,
    "reject_leave_request": reject_leave_request,
    "cancel_leave_request": cancel_leave_request,
    "set_leave_entitlement": set_leave_entitlement,
    "add_public_holiday": add_public_holiday,
    "add_blackout_period": add_blackout_period,
    "change_manager": change_manager,
}
