"""The HR leave tools: look-ups for employees, balances, requests, holidays and blackouts,
and the leave desk's mutations.

Every rule in ``RULES`` (``__init__.py``) is enforced here and named in the
``ToolError``. Leave is counted in working days (weekends and public holidays
excluded, see :func:`count_working_days_between`). Time is the scenario clock
(``ctx.today``), never the wall clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import DateStr, Id, Name, Note, SearchText, like
from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

SEARCH_LIMIT = 20
PARENTAL_MIN_SERVICE_DAYS = 182

Year = Annotated[int, Field(ge=2000, le=2100)]
Days = Annotated[int, Field(ge=0, le=366)]
LeaveCode = Literal["annual", "sick", "parental", "compassionate"]
RequestStatus = Literal["pending", "approved", "rejected", "cancelled"]


# --- helpers (not tools) -------------------------------------------------------------------------


def count_working_days_between(start: date, end: date, holidays: Iterable[str]) -> int:
    """Days from ``start`` to ``end`` inclusive that are neither weekend days nor public holidays."""
    off = set(holidays)
    days = 0
    day = start
    while day <= end:
        if day.weekday() < 5 and day.isoformat() not in off:
            days += 1
        day += timedelta(days=1)
    return days


def _holidays(ctx: ToolContext) -> list[str]:
    return [r["date"] for r in ctx.all("SELECT date FROM public_holidays")]


def _working_days(ctx: ToolContext, start: str, end: str) -> int:
    return count_working_days_between(date.fromisoformat(start), date.fromisoformat(end), _holidays(ctx))


def _employee(ctx: ToolContext, employee_id: int, what: str = "employee") -> dict[str, Any]:
    emp = ctx.one(
        "SELECT e.*, d.name AS department FROM employees e JOIN departments d ON d.id = e.department_id WHERE e.id = ?",
        (employee_id,),
    )
    if emp is None:
        raise ToolError(f"no {what} with id {employee_id}; look employees up with find_employee")
    return emp


def _who(emp: dict[str, Any]) -> str:
    return f"employee {emp['id']} ({emp['name']})"


def _leave_type(ctx: ToolContext, code: str) -> dict[str, Any]:
    lt = ctx.one("SELECT * FROM leave_types WHERE code = ?", (code,))
    if lt is None:
        raise ToolError(f"no leave type {code!r}; see list_leave_types")
    return lt


def _department(ctx: ToolContext, department_id: int) -> dict[str, Any]:
    dep = ctx.one("SELECT * FROM departments WHERE id = ?", (department_id,))
    if dep is None:
        raise ToolError(f"no department with id {department_id}; see list_departments")
    return dep


def _request(ctx: ToolContext, request_id: int) -> dict[str, Any]:
    req = ctx.one(
        "SELECT r.*, t.code AS leave_type, e.name AS employee_name FROM leave_requests r "
        "JOIN leave_types t ON t.id = r.leave_type_id JOIN employees e ON e.id = r.employee_id WHERE r.id = ?",
        (request_id,),
    )
    if req is None:
        raise ToolError(f"no leave request with id {request_id}; look requests up with list_leave_requests")
    return req


def _req_label(req: dict[str, Any]) -> str:
    return (
        f"request {req['id']} ({req['employee_name']}'s {req['leave_type']} leave "
        f"{req['start_date']} to {req['end_date']})"
    )


def _dates(start_date: str, end_date: str) -> tuple[date, date]:
    start = parse_date(start_date, "start_date")
    end = parse_date(end_date, "end_date")
    if end < start:
        raise ToolError(f"end_date {end_date} is before start_date {start_date}")
    return start, end


def _balance(ctx: ToolContext, employee_id: int, leave_type_id: int, year: int) -> dict[str, Any] | None:
    return ctx.one(
        "SELECT * FROM leave_balances WHERE employee_id = ? AND leave_type_id = ? AND year = ?",
        (employee_id, leave_type_id, year),
    )


def _pending_days(ctx: ToolContext, employee_id: int, leave_type_id: int, year: int) -> int:
    return int(
        ctx.scalar(
            "SELECT COALESCE(SUM(working_days), 0) FROM leave_requests WHERE employee_id = ? AND leave_type_id = ? "
            "AND status = 'pending' AND substr(start_date, 1, 4) = ?",
            (employee_id, leave_type_id, f"{year:04d}"),
        )
    )


def _blackout(ctx: ToolContext, department_id: int, start: str, end: str) -> dict[str, Any] | None:
    return ctx.one(
        "SELECT * FROM blackout_periods WHERE department_id = ? AND start_date <= ? AND end_date >= ? "
        "ORDER BY start_date, id",
        (department_id, end, start),
    )


def _check_blackout(ctx: ToolContext, emp: dict[str, Any], lt: dict[str, Any], start: str, end: str) -> None:
    if not lt["blackout_applies"]:
        return
    period = _blackout(ctx, emp["department_id"], start, end)
    if period is not None:
        raise ToolError(
            f"{_who(emp)} cannot take {lt['code']} leave from {start} to {end}: the {emp['department']} "
            f"department has a blackout period from {period['start_date']} to {period['end_date']} "
            f"({period['reason']})",
            rule="blackout-period",
        )


def _check_manager(ctx: ToolContext, req: dict[str, Any], approver_id: int, doing: str) -> dict[str, Any]:
    approver = _employee(ctx, approver_id, "approver")
    emp = _employee(ctx, req["employee_id"])
    if emp["manager_id"] != approver_id:
        manager = "no manager on record"
        if emp["manager_id"] is not None:
            boss = _employee(ctx, emp["manager_id"], "manager")
            manager = f"their manager is {boss['name']} (employee {emp['manager_id']})"
        raise ToolError(
            f"{_who(approver)} cannot {doing} {_req_label(req)}: only {emp['name']}'s own manager can; {manager}",
            rule="manager-approval",
        )
    return approver


def _request_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "request_id": r["id"],
        "employee_id": r["employee_id"],
        "employee_name": r["employee_name"],
        "leave_type": r["leave_type"],
        "start_date": r["start_date"],
        "end_date": r["end_date"],
        "working_days": r["working_days"],
        "status": r["status"],
        "reason": r["reason"],
        "submitted_on": r["submitted_on"],
        "decided_by": r["decided_by"],
        "decided_on": r["decided_on"],
        "decision_note": r["decision_note"],
        "cancelled_on": r["cancelled_on"],
    }


_REQUESTS_SQL = (
    "SELECT r.*, t.code AS leave_type, e.name AS employee_name FROM leave_requests r "
    "JOIN leave_types t ON t.id = r.leave_type_id JOIN employees e ON e.id = r.employee_id "
)


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_employee(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Find employees by part of their name or by their email address.

    Returns at most 20 employees with department and manager; an empty list when nobody matches.

    Args:
        query: part of the employee's name (any case), or their full email address
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty; give part of a name or an email address")
    rows = ctx.all(
        "SELECT e.id AS employee_id, e.name, e.email, e.job_title, d.name AS department, "
        "e.manager_id, m.name AS manager_name FROM employees e JOIN departments d ON d.id = e.department_id "
        "LEFT JOIN employees m ON m.id = e.manager_id "
        "WHERE lower(e.email) = lower(?) OR e.name LIKE ? ESCAPE '\\' ORDER BY e.name, e.id LIMIT ?",
        (text, like(text), SEARCH_LIMIT),
    )
    return rows


@tool(kind="query")
def get_employee(ctx: ToolContext, employee_id: Id) -> dict[str, Any]:
    """An employee's record: department, job title, hire date, manager and direct reports.

    Args:
        employee_id: the employee's id (from find_employee)
    """
    emp = _employee(ctx, employee_id)
    manager = None
    if emp["manager_id"] is not None:
        manager = ctx.one("SELECT id AS employee_id, name FROM employees WHERE id = ?", (emp["manager_id"],))
    reports = ctx.all(
        "SELECT id AS employee_id, name FROM employees WHERE manager_id = ? ORDER BY name", (employee_id,)
    )
    return {
        "employee_id": emp["id"],
        "name": emp["name"],
        "email": emp["email"],
        "job_title": emp["job_title"],
        "department_id": emp["department_id"],
        "department": emp["department"],
        "hire_date": emp["hire_date"],
        "manager": manager,
        "direct_reports": reports,
    }


@tool(kind="query")
def list_departments(ctx: ToolContext) -> list[dict[str, Any]]:
    """All departments with their cost centre and head count."""
    return ctx.all(
        "SELECT d.id AS department_id, d.name, d.cost_center, "
        "(SELECT COUNT(*) FROM employees e WHERE e.department_id = d.id) AS head_count "
        "FROM departments d ORDER BY d.name"
    )


@tool(kind="query")
def list_leave_types(ctx: ToolContext) -> list[dict[str, Any]]:
    """The leave types and their policy: notice days, whether blackouts apply, minimum service."""
    rows = ctx.all("SELECT * FROM leave_types ORDER BY id")
    return [
        {
            "code": r["code"],
            "name": r["name"],
            "paid": bool(r["paid"]),
            "notice_days": r["notice_days"],
            "blackout_applies": bool(r["blackout_applies"]),
            "min_service_days": r["min_service_days"],
            "default_days": r["default_days"],
        }
        for r in rows
    ]


@tool(kind="query")
def get_leave_balances(ctx: ToolContext, employee_id: Id, year: Year | None = None) -> list[dict[str, Any]]:
    """An employee's leave balances for a year: entitled, used, pending and remaining working days per type.

    Args:
        employee_id: the employee's id (from find_employee)
        year: the calendar year; today's year if left out
    """
    _employee(ctx, employee_id)
    year = year if year is not None else int(ctx.today[:4])
    rows = ctx.all(
        "SELECT b.*, t.code FROM leave_balances b JOIN leave_types t ON t.id = b.leave_type_id "
        "WHERE b.employee_id = ? AND b.year = ? ORDER BY t.id",
        (employee_id, year),
    )
    out = []
    for b in rows:
        pending = _pending_days(ctx, employee_id, b["leave_type_id"], year)
        out.append(
            {
                "leave_type": b["code"],
                "year": year,
                "entitled_days": b["entitled_days"],
                "used_days": b["used_days"],
                "pending_days": pending,
                "remaining_days": b["entitled_days"] - b["used_days"] - pending,
            }
        )
    return out


@tool(kind="query")
def list_leave_requests(
    ctx: ToolContext,
    employee_id: Id | None = None,
    status: RequestStatus | None = None,
    department_id: Id | None = None,
) -> list[dict[str, Any]]:
    """Leave requests, newest first, filtered by employee, status and/or department.

    Args:
        employee_id: only this employee's requests (id from find_employee)
        status: only requests with this status: pending, approved, rejected or cancelled
        department_id: only requests of employees in this department (id from list_departments)
    """
    where = ["1 = 1"]
    params: list[int | str] = []
    if employee_id is not None:
        _employee(ctx, employee_id)
        where.append("r.employee_id = ?")
        params.append(employee_id)
    if status is not None:
        where.append("r.status = ?")
        params.append(status)
    if department_id is not None:
        _department(ctx, department_id)
        where.append("e.department_id = ?")
        params.append(department_id)
    rows = ctx.all(f"{_REQUESTS_SQL}WHERE {' AND '.join(where)} ORDER BY r.start_date DESC, r.id DESC", params)
    return [_request_row(r) for r in rows]


@tool(kind="query")
def get_leave_request(ctx: ToolContext, request_id: Id) -> dict[str, Any]:
    """One leave request with its dates, working days, status and decision.

    Args:
        request_id: the request's id (from list_leave_requests or list_pending_approvals)
    """
    return _request_row(_request(ctx, request_id))


@tool(kind="query")
def list_pending_approvals(ctx: ToolContext, manager_id: Id) -> list[dict[str, Any]]:
    """The pending requests of a manager's direct reports, the ones this manager can approve or reject.

    Args:
        manager_id: the manager's employee id (from find_employee)
    """
    _employee(ctx, manager_id, "manager")
    rows = ctx.all(
        f"{_REQUESTS_SQL}WHERE e.manager_id = ? AND r.status = 'pending' ORDER BY r.start_date, r.id", (manager_id,)
    )
    return [_request_row(r) for r in rows]


@tool(kind="query")
def list_public_holidays(ctx: ToolContext, year: Year | None = None) -> list[dict[str, Any]]:
    """The public holidays of a year (not working days).

    Args:
        year: the calendar year; today's year if left out
    """
    year = year if year is not None else int(ctx.today[:4])
    return ctx.all(
        "SELECT date, name FROM public_holidays WHERE substr(date, 1, 4) = ? ORDER BY date", (f"{year:04d}",)
    )


@tool(kind="query")
def list_blackout_periods(ctx: ToolContext, department_id: Id | None = None) -> list[dict[str, Any]]:
    """Blackout periods (no annual leave), for one department or all.

    Args:
        department_id: only this department's periods (id from list_departments); all if left out
    """
    params: list[Any] = []
    where = ""
    if department_id is not None:
        _department(ctx, department_id)
        where = "WHERE b.department_id = ? "
        params.append(department_id)
    return ctx.all(
        "SELECT b.id AS blackout_id, d.name AS department, b.start_date, b.end_date, b.reason "
        f"FROM blackout_periods b JOIN departments d ON d.id = b.department_id {where}ORDER BY b.start_date, b.id",
        params,
    )


@tool(kind="query")
def count_working_days(ctx: ToolContext, start_date: DateStr, end_date: DateStr) -> dict[str, Any]:
    """How many working days a leave from start_date to end_date (inclusive) would take.

    Args:
        start_date: the first day of leave, YYYY-MM-DD
        end_date: the last day of leave, YYYY-MM-DD
    """
    start, end = _dates(start_date, end_date)
    if (end - start).days > 366:
        raise ToolError("the range is longer than a year; count one year at a time")
    holidays = ctx.all(
        "SELECT date, name FROM public_holidays WHERE date BETWEEN ? AND ? ORDER BY date", (start_date, end_date)
    )
    return {
        "start_date": start_date,
        "end_date": end_date,
        "working_days": count_working_days_between(start, end, _holidays(ctx)),
        "public_holidays": holidays,
    }


@tool(kind="query")
def who_is_off(ctx: ToolContext, department_id: Id, start_date: DateStr, end_date: DateStr) -> list[dict[str, Any]]:
    """A department's approved and pending leave overlapping a date range (a team calendar).

    Args:
        department_id: the department's id (from list_departments)
        start_date: the first day of the range, YYYY-MM-DD
        end_date: the last day of the range, YYYY-MM-DD
    """
    _department(ctx, department_id)
    _dates(start_date, end_date)
    rows = ctx.all(
        f"{_REQUESTS_SQL}WHERE e.department_id = ? AND r.status IN ('pending', 'approved') "
        "AND r.start_date <= ? AND r.end_date >= ? ORDER BY r.start_date, r.id",
        (department_id, end_date, start_date),
    )
    return [_request_row(r) for r in rows]


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def submit_leave_request(
    ctx: ToolContext,
    employee_id: Id,
    leave_type: LeaveCode,
    start_date: DateStr,
    end_date: DateStr,
    reason: Note | None = None,
) -> dict[str, Any]:
    """Submit a leave request for an employee; it waits as pending for their manager's decision.

    The working days are counted for you (weekends and public holidays excluded).

    Args:
        employee_id: the employee's id (from find_employee)
        leave_type: annual, sick, parental or compassionate
        start_date: the first day of leave, YYYY-MM-DD
        end_date: the last day of leave (inclusive, same calendar year), YYYY-MM-DD
        reason: the employee's reason, if they gave one
    """
    emp = _employee(ctx, employee_id)
    lt = _leave_type(ctx, leave_type)
    start, end = _dates(start_date, end_date)
    if start.year != end.year:
        raise ToolError(
            f"the request runs from {start_date} into {end.year}; balances are per year, so submit one "
            "request per calendar year"
        )
    start_date, end_date = start.isoformat(), end.isoformat()
    today = date.fromisoformat(ctx.today)
    if lt["min_service_days"] > 0:
        served = (today - date.fromisoformat(emp["hire_date"])).days
        if served < lt["min_service_days"]:
            raise ToolError(
                f"{_who(emp)} is not yet eligible for {lt['code']} leave: hired on {emp['hire_date']}, "
                f"{served} days of service, {lt['min_service_days']} required",
                rule="parental-eligibility",
            )
    if lt["notice_days"] > 0 and (start - today).days < lt["notice_days"]:
        earliest = (today + timedelta(days=lt["notice_days"])).isoformat()
        raise ToolError(
            f"{lt['code']} leave for {_who(emp)} starting {start_date} needs {lt['notice_days']} days' notice; "
            f"the earliest start date today is {earliest}",
            rule="advance-notice",
        )
    days = count_working_days_between(start, end, _holidays(ctx))
    if days == 0:
        raise ToolError(
            f"{start_date} to {end_date} has no working days (only weekends and public holidays); "
            f"no leave is needed for {emp['name']}",
            rule="working-days",
        )
    clash = ctx.one(
        "SELECT id, start_date, end_date, status FROM leave_requests WHERE employee_id = ? "
        "AND status IN ('pending', 'approved') AND start_date <= ? AND end_date >= ? ORDER BY start_date",
        (employee_id, end_date, start_date),
    )
    if clash is not None:
        raise ToolError(
            f"{_who(emp)} already has {clash['status']} request {clash['id']} from {clash['start_date']} to "
            f"{clash['end_date']}, which overlaps {start_date} to {end_date}; cancel it first to rebook",
            rule="no-overlap",
        )
    _check_blackout(ctx, emp, lt, start_date, end_date)
    balance = _balance(ctx, employee_id, lt["id"], start.year)
    if balance is None:
        raise ToolError(
            f"{_who(emp)} has no {lt['code']} leave entitlement for {start.year}; HR can set one with "
            "set_leave_entitlement",
            rule="sufficient-balance",
        )
    remaining = balance["entitled_days"] - balance["used_days"] - _pending_days(ctx, employee_id, lt["id"], start.year)
    if days > remaining:
        raise ToolError(
            f"{_who(emp)} asks for {days} working days of {lt['code']} leave but has only {remaining} left "
            f"for {start.year}",
            rule="sufficient-balance",
        )
    text = reason.strip() if reason and reason.strip() else None
    request_id = ctx.insert(
        "leave_requests",
        {
            "employee_id": employee_id,
            "leave_type_id": lt["id"],
            "start_date": start_date,
            "end_date": end_date,
            "working_days": days,
            "status": "pending",
            "reason": text,
            "submitted_on": ctx.today,
            "decided_by": None,
            "decided_on": None,
            "decision_note": None,
            "cancelled_on": None,
        },
    )
    return {
        "request_id": request_id,
        "employee_name": emp["name"],
        "leave_type": lt["code"],
        "start_date": start_date,
        "end_date": end_date,
        "working_days": days,
        "status": "pending",
        "remaining_after_days": remaining - days,
        "approver_id": emp["manager_id"],
    }


@tool(kind="mutation")
def approve_leave_request(ctx: ToolContext, request_id: Id, approver_id: Id) -> dict[str, Any]:
    """Approve a pending request as the employee's manager; its working days are taken from the balance.

    Args:
        request_id: the pending request's id (from list_pending_approvals or list_leave_requests)
        approver_id: the employee id of the manager approving it (must be the requester's own manager)
    """
    req = _request(ctx, request_id)
    if req["status"] != "pending":
        raise ToolError(f"{_req_label(req)} is already {req['status']}; only pending requests can be approved")
    approver = _check_manager(ctx, req, approver_id, "approve")
    emp = _employee(ctx, req["employee_id"])
    lt = _leave_type(ctx, req["leave_type"])
    _check_blackout(ctx, emp, lt, req["start_date"], req["end_date"])
    year = int(req["start_date"][:4])
    balance = _balance(ctx, req["employee_id"], req["leave_type_id"], year)
    if balance is None or balance["entitled_days"] - balance["used_days"] < req["working_days"]:
        left = 0 if balance is None else balance["entitled_days"] - balance["used_days"]
        raise ToolError(
            f"{_req_label(req)} takes {req['working_days']} working days but {emp['name']} has only {left} "
            f"{req['leave_type']} days left for {year}",
            rule="sufficient-balance",
        )
    ctx.update(
        "leave_requests",
        {"id": request_id},
        {"status": "approved", "decided_by": approver_id, "decided_on": ctx.today},
    )
    ctx.update("leave_balances", {"id": balance["id"]}, {"used_days": balance["used_days"] + req["working_days"]})
    return {
        "request_id": request_id,
        "employee_name": req["employee_name"],
        "status": "approved",
        "approved_by": approver["name"],
        "working_days": req["working_days"],
        "remaining_days": balance["entitled_days"]
        - balance["used_days"]
        - req["working_days"]
        - _pending_days(ctx, req["employee_id"], req["leave_type_id"], year),
    }


@tool(kind="mutation")
def reject_leave_request(ctx: ToolContext, request_id: Id, approver_id: Id, reason: Note) -> dict[str, Any]:
    """Reject a pending request as the employee's manager, recording why.

    Args:
        request_id: the pending request's id (from list_pending_approvals or list_leave_requests)
        approver_id: the employee id of the manager rejecting it (must be the requester's own manager)
        reason: why it is rejected, as the manager says it; shown to the employee
    """
    req = _request(ctx, request_id)
    if req["status"] != "pending":
        raise ToolError(f"{_req_label(req)} is already {req['status']}; only pending requests can be rejected")
    approver = _check_manager(ctx, req, approver_id, "reject")
    if not reason.strip():
        raise ToolError(f"give the reason for rejecting {_req_label(req)}")
    ctx.update(
        "leave_requests",
        {"id": request_id},
        {"status": "rejected", "decided_by": approver_id, "decided_on": ctx.today, "decision_note": reason.strip()},
    )
    return {
        "request_id": request_id,
        "employee_name": req["employee_name"],
        "status": "rejected",
        "rejected_by": approver["name"],
        "reason": reason.strip(),
    }


@tool(kind="mutation")
def cancel_leave_request(ctx: ToolContext, request_id: Id) -> dict[str, Any]:
    """Cancel a pending request, or an approved one before it starts (its days go back to the balance).

    Args:
        request_id: the request's id (from list_leave_requests)
    """
    req = _request(ctx, request_id)
    if req["status"] not in ("pending", "approved"):
        raise ToolError(f"{_req_label(req)} is {req['status']}; only pending or approved requests can be cancelled")
    restored = 0
    if req["status"] == "approved":
        if req["start_date"] <= ctx.today:
            raise ToolError(
                f"{_req_label(req)} started on {req['start_date']}; approved leave can only be cancelled "
                "before its first day",
                rule="cancel-before-start",
            )
        balance = _balance(ctx, req["employee_id"], req["leave_type_id"], int(req["start_date"][:4]))
        if balance is not None:
            restored = min(req["working_days"], balance["used_days"])
            ctx.update("leave_balances", {"id": balance["id"]}, {"used_days": balance["used_days"] - restored})
    ctx.update("leave_requests", {"id": request_id}, {"status": "cancelled", "cancelled_on": ctx.today})
    return {
        "request_id": request_id,
        "employee_name": req["employee_name"],
        "previous_status": req["status"],
        "status": "cancelled",
        "days_restored": restored,
    }


@tool(kind="mutation")
def set_leave_entitlement(
    ctx: ToolContext, employee_id: Id, leave_type: LeaveCode, year: Year, entitled_days: Days
) -> dict[str, Any]:
    """Set an employee's entitlement (in working days) to a leave type for a year, creating the balance if needed.

    Args:
        employee_id: the employee's id (from find_employee)
        leave_type: annual, sick, parental or compassionate
        year: the calendar year of the entitlement
        entitled_days: the new total entitlement in working days for that year
    """
    emp = _employee(ctx, employee_id)
    lt = _leave_type(ctx, leave_type)
    balance = _balance(ctx, employee_id, lt["id"], year)
    used = balance["used_days"] if balance else 0
    pending = _pending_days(ctx, employee_id, lt["id"], year)
    if entitled_days < used + pending:
        raise ToolError(
            f"{_who(emp)} has already used {used} and has {pending} pending days of {leave_type} leave in "
            f"{year}; the entitlement cannot be set to {entitled_days}",
            rule="sufficient-balance",
        )
    if balance is None:
        ctx.insert(
            "leave_balances",
            {
                "employee_id": employee_id,
                "leave_type_id": lt["id"],
                "year": year,
                "entitled_days": entitled_days,
                "used_days": 0,
            },
        )
        previous = None
    else:
        previous = balance["entitled_days"]
        ctx.update("leave_balances", {"id": balance["id"]}, {"entitled_days": entitled_days})
    return {
        "employee_name": emp["name"],
        "leave_type": leave_type,
        "year": year,
        "previous_entitled_days": previous,
        "entitled_days": entitled_days,
        "remaining_days": entitled_days - used - pending,
    }


@tool(kind="mutation")
def add_public_holiday(ctx: ToolContext, holiday_date: DateStr, name: Name) -> dict[str, Any]:
    """Add a public holiday; pending and approved requests covering it are recounted (one working day fewer).

    Args:
        holiday_date: the holiday's date, YYYY-MM-DD
        name: the holiday's name, e.g. Founders Day
    """
    day = parse_date(holiday_date, "holiday_date").isoformat()
    if not name.strip():
        raise ToolError("name is empty; give the holiday's name")
    existing = ctx.one("SELECT name FROM public_holidays WHERE date = ?", (day,))
    if existing is not None:
        raise ToolError(f"{day} is already a public holiday ({existing['name']})")
    ctx.insert("public_holidays", {"date": day, "name": name.strip()})
    recounted = []
    for req in ctx.all(
        "SELECT * FROM leave_requests WHERE status IN ('pending', 'approved') AND start_date <= ? AND end_date >= ?",
        (day, day),
    ):
        days = _working_days(ctx, req["start_date"], req["end_date"])
        if days == req["working_days"]:
            continue
        ctx.update("leave_requests", {"id": req["id"]}, {"working_days": days})
        if req["status"] == "approved":
            balance = _balance(ctx, req["employee_id"], req["leave_type_id"], int(req["start_date"][:4]))
            if balance is not None:
                back = min(req["working_days"] - days, balance["used_days"])
                ctx.update("leave_balances", {"id": balance["id"]}, {"used_days": balance["used_days"] - back})
        recounted.append({"request_id": req["id"], "working_days": days})
    return {"date": day, "name": name.strip(), "requests_recounted": recounted}


@tool(kind="mutation")
def add_blackout_period(
    ctx: ToolContext, department_id: Id, start_date: DateStr, end_date: DateStr, reason: Note
) -> dict[str, Any]:
    """Add a blackout period for a department: no annual leave may be requested or approved in it.

    Requests already approved stay approved.

    Args:
        department_id: the department's id (from list_departments)
        start_date: the first day of the blackout, YYYY-MM-DD
        end_date: the last day of the blackout (inclusive), YYYY-MM-DD
        reason: why, e.g. Quarter-end close
    """
    dep = _department(ctx, department_id)
    start, end = _dates(start_date, end_date)
    if not reason.strip():
        raise ToolError("reason is empty; say why the blackout is needed")
    blackout_id = ctx.insert(
        "blackout_periods",
        {
            "department_id": department_id,
            "start_date": start.isoformat(),
            "end_date": end.isoformat(),
            "reason": reason.strip(),
        },
    )
    pending = ctx.all(
        "SELECT r.id FROM leave_requests r JOIN employees e ON e.id = r.employee_id JOIN leave_types t "
        "ON t.id = r.leave_type_id WHERE e.department_id = ? AND r.status = 'pending' AND t.blackout_applies "
        "AND r.start_date <= ? AND r.end_date >= ?",
        (department_id, end.isoformat(), start.isoformat()),
    )
    return {
        "blackout_id": blackout_id,
        "department": dep["name"],
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "reason": reason.strip(),
        "pending_requests_now_blocked": [r["id"] for r in pending],
    }


@tool(kind="mutation")
def change_manager(ctx: ToolContext, employee_id: Id, manager_id: Id) -> dict[str, Any]:
    """Make an employee report to another manager, who then approves their leave (pending requests too).

    Args:
        employee_id: the employee's id (from find_employee)
        manager_id: the new manager's employee id (from find_employee)
    """
    emp = _employee(ctx, employee_id)
    manager = _employee(ctx, manager_id, "manager")
    if employee_id == manager_id:
        raise ToolError(f"{_who(emp)} cannot be their own manager")
    if emp["manager_id"] == manager_id:
        raise ToolError(f"{_who(emp)} already reports to {manager['name']}")
    boss, seen = manager["manager_id"], set()
    while boss is not None and boss not in seen:
        if boss == employee_id:
            raise ToolError(f"{manager['name']} reports (directly or not) to {emp['name']}; that would be a cycle")
        seen.add(boss)
        boss = ctx.scalar("SELECT manager_id FROM employees WHERE id = ?", (boss,))
    ctx.update("employees", {"id": employee_id}, {"manager_id": manager_id})
    return {
        "employee_id": employee_id,
        "name": emp["name"],
        "previous_manager_id": emp["manager_id"],
        "manager_id": manager_id,
        "manager_name": manager["name"],
    }
