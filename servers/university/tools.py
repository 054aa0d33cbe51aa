"""The registrar's tools: look-ups for students, courses, sections, terms and holds, and the
registration mutations.

Every rule in ``RULES`` (``__init__.py``) is enforced here and named in the ``ToolError``.
Time is the scenario clock (``ctx.today``), never the wall clock.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import Cents, Code, Email, Id, Name, Note, SearchText, like, money, unique_email
from envfarm.core.tools import ToolContext, ToolError, tool

CREDIT_CAP = 18
SEARCH_LIMIT = 20

Capacity = Annotated[int, Field(ge=0, le=1000)]
Grade = Literal["A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "F"]
HoldKind = Literal["financial", "advising", "registrar"]

GRADE_POINTS = {
    "A": 4.0,
    "A-": 3.7,
    "B+": 3.3,
    "B": 3.0,
    "B-": 2.7,
    "C+": 2.3,
    "C": 2.0,
    "C-": 1.7,
    "D+": 1.3,
    "D": 1.0,
    "F": 0.0,
}

_SECTION_SQL = (
    "SELECT s.*, c.code AS course_code, c.title, c.credits, t.code AS term_code, t.name AS term_name, "
    "t.add_drop_deadline, t.ends AS term_ends, "
    "(SELECT COUNT(*) FROM enrollments e WHERE e.section_id = s.id AND e.status = 'enrolled') AS enrolled, "
    "(SELECT COUNT(*) FROM enrollments e WHERE e.section_id = s.id AND e.status = 'waitlisted') AS waitlisted "
    "FROM sections s JOIN courses c ON c.id = s.course_id JOIN terms t ON t.id = s.term_id "
)

_ENROLLMENT_SQL = (
    "SELECT e.*, s.course_id, s.term_id, s.section_code, s.days, s.start_time, s.end_time, s.room, "
    "s.instructor, c.code AS course_code, c.title, c.credits, t.code AS term_code, t.name AS term_name, "
    "t.add_drop_deadline, t.ends AS term_ends FROM enrollments e JOIN sections s ON s.id = e.section_id "
    "JOIN courses c ON c.id = s.course_id JOIN terms t ON t.id = s.term_id "
)


# --- helpers (not tools) -------------------------------------------------------------------------


def _norm_code(code: str) -> str:
    """'cs201', 'CS-201' and 'cs 201' all become 'CS 201'."""
    text = "".join(ch for ch in code.upper() if ch.isalnum())
    letters = "".join(ch for ch in text if ch.isalpha())
    digits = "".join(ch for ch in text if ch.isdigit())
    return f"{letters} {digits}" if letters and digits and text == letters + digits else code.strip().upper()


def _student(ctx: ToolContext, student_id: int) -> dict[str, Any]:
    student = ctx.one("SELECT * FROM students WHERE id = ?", (student_id,))
    if student is None:
        raise ToolError(f"no student with id {student_id}; look students up with find_student")
    return student


def _who(student: dict[str, Any]) -> str:
    return f"student {student['student_number']} ({student['name']})"


def _course(ctx: ToolContext, code: str) -> dict[str, Any]:
    course = ctx.one("SELECT * FROM courses WHERE code = ?", (_norm_code(code),))
    if course is None:
        raise ToolError(f"no course with code {code!r}; look courses up with search_courses")
    return course


def _term(ctx: ToolContext, term: str) -> dict[str, Any]:
    row = ctx.one(
        "SELECT * FROM terms WHERE upper(code) = upper(?) OR lower(name) = lower(?)", (term.strip(), term.strip())
    )
    if row is None:
        raise ToolError(f"no term {term!r}; terms are listed by list_terms (e.g. 2026FA or Fall 2026)")
    return row


def _section(ctx: ToolContext, section_id: int) -> dict[str, Any]:
    section = ctx.one(f"{_SECTION_SQL}WHERE s.id = ?", (section_id,))
    if section is None:
        raise ToolError(f"no section with id {section_id}; look sections up with list_sections")
    return section


def _what(section: dict[str, Any]) -> str:
    return f"{section['course_code']}-{section['section_code']} ({section['term_name']})"


def _enrollment(ctx: ToolContext, enrollment_id: int) -> dict[str, Any]:
    row = ctx.one(f"{_ENROLLMENT_SQL}WHERE e.id = ?", (enrollment_id,))
    if row is None:
        raise ToolError(f"no enrollment with id {enrollment_id}; see get_student_schedule")
    return row


def _require_open(ctx: ToolContext, section: dict[str, Any], doing: str) -> None:
    if section["term_ends"] < ctx.today:
        raise ToolError(
            f"cannot {doing} {_what(section)}: the term ended on {section['term_ends']}", rule="add-drop-deadline"
        )
    if section["add_drop_deadline"] < ctx.today:
        raise ToolError(
            f"cannot {doing} {_what(section)}: the add/drop deadline was {section['add_drop_deadline']}",
            rule="add-drop-deadline",
        )


def _require_no_hold(ctx: ToolContext, student: dict[str, Any]) -> None:
    holds = ctx.all("SELECT * FROM holds WHERE student_id = ? AND status = 'active' ORDER BY id", (student["id"],))
    if holds:
        said = "; ".join(f"hold {h['id']} ({h['kind']}: {h['reason']})" for h in holds)
        raise ToolError(f"{_who(student)} has an active registration hold: {said}", rule="registration-hold")


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if not set(a["days"]) & set(b["days"]):
        return False
    return a["start_time"] < b["end_time"] and b["start_time"] < a["end_time"]


def _current(ctx: ToolContext, student_id: int, term_id: int, skip: int | None = None) -> list[dict[str, Any]]:
    """The student's enrolled and waitlisted sections in a term (minus enrollment ``skip``)."""
    return ctx.all(
        f"{_ENROLLMENT_SQL}WHERE e.student_id = ? AND s.term_id = ? AND e.status IN ('enrolled', 'waitlisted') "
        "AND e.id IS NOT ? ORDER BY e.id",
        (student_id, term_id, skip),
    )


def _problems(
    ctx: ToolContext, student: dict[str, Any], section: dict[str, Any], skip: int | None = None
) -> list[tuple[str, str]]:
    """(rule, message) for every registration rule a new registration in ``section`` would break.

    ``skip`` is an enrollment being replaced (a section change), left out of the comparisons.
    Capacity is not included: a full section means the waitlist.
    """
    found: list[tuple[str, str]] = []
    what = _what(section)
    if section["term_ends"] < ctx.today or section["add_drop_deadline"] < ctx.today:
        found.append(("add-drop-deadline", f"the add/drop deadline for {what} was {section['add_drop_deadline']}"))
    holds = ctx.all("SELECT * FROM holds WHERE student_id = ? AND status = 'active' ORDER BY id", (student["id"],))
    for h in holds:
        found.append(("registration-hold", f"{_who(student)} has an active {h['kind']} hold ({h['reason']})"))
    current = _current(ctx, student["id"], section["term_id"], skip)
    for e in current:
        if e["course_id"] == section["course_id"]:
            found.append(
                (
                    "duplicate-course",
                    f"{_who(student)} is already {e['status']} in {e['course_code']}-{e['section_code']} "
                    f"(enrollment {e['id']}) this term",
                )
            )
    prereqs = ctx.all(
        "SELECT p.min_grade, c.id, c.code FROM prerequisites p JOIN courses c ON c.id = p.required_course_id "
        "WHERE p.course_id = ? ORDER BY c.code",
        (section["course_id"],),
    )
    for p in prereqs:
        grades = [
            r["grade"]
            for r in ctx.all(
                "SELECT e.grade FROM enrollments e JOIN sections s ON s.id = e.section_id "
                "WHERE e.student_id = ? AND s.course_id = ? AND e.status = 'completed' AND e.grade IS NOT NULL",
                (student["id"], p["id"]),
            )
        ]
        best = max(grades, key=lambda g: GRADE_POINTS.get(g, -1), default=None)
        if best is None or GRADE_POINTS.get(best, -1) < GRADE_POINTS[p["min_grade"]]:
            had = "has not completed it" if best is None else f"best grade is {best}"
            found.append(
                (
                    "prerequisites",
                    f"{section['course_code']} requires {p['code']} with at least {p['min_grade']}; "
                    f"{student['name']} {had}",
                )
            )
    credits = sum(e["credits"] for e in current)
    if credits + section["credits"] > CREDIT_CAP:
        found.append(
            (
                "credit-cap",
                f"{_who(student)} already has {credits} credits in {section['term_name']}; adding "
                f"{section['course_code']} ({section['credits']} credits) would exceed the {CREDIT_CAP}-credit cap",
            )
        )
    for e in current:
        if e["course_id"] != section["course_id"] and _overlap(e, section):
            found.append(
                (
                    "time-conflict",
                    f"{what} ({section['days']} {section['start_time']}-{section['end_time']}) overlaps "
                    f"{e['course_code']}-{e['section_code']} ({e['days']} {e['start_time']}-{e['end_time']})",
                )
            )
    return found


def _refuse(problems: list[tuple[str, str]], doing: str) -> None:
    if problems:
        rule, message = problems[0]
        more = f" (also: {'; '.join(m for _, m in problems[1:])})" if len(problems) > 1 else ""
        raise ToolError(f"cannot {doing}: {message}{more}", rule=rule)


def _waitlist(ctx: ToolContext, section_id: int) -> list[dict[str, Any]]:
    return ctx.all(
        "SELECT e.*, st.name AS student_name FROM enrollments e JOIN students st ON st.id = e.student_id "
        "WHERE e.section_id = ? AND e.status = 'waitlisted' ORDER BY e.registered_on, e.id",
        (section_id,),
    )


def _fill(ctx: ToolContext, section_id: int) -> list[dict[str, Any]]:
    """Promote waitlisted students, first in line first, while the section has free seats."""
    section = _section(ctx, section_id)
    free = section["capacity"] - section["enrolled"]
    promoted = []
    for e in _waitlist(ctx, section_id)[: max(free, 0)]:
        ctx.update("enrollments", {"id": e["id"]}, {"status": "enrolled"})
        promoted.append({"enrollment_id": e["id"], "student_id": e["student_id"], "student_name": e["student_name"]})
    return promoted


def _enrollment_row(e: dict[str, Any]) -> dict[str, Any]:
    return {
        "enrollment_id": e["id"],
        "section_id": e["section_id"],
        "course_code": e["course_code"],
        "title": e["title"],
        "section_code": e["section_code"],
        "term": e["term_name"],
        "credits": e["credits"],
        "status": e["status"],
        "grade": e["grade"],
        "days": e["days"],
        "time": f"{e['start_time']}-{e['end_time']}",
        "room": e["room"],
        "instructor": e["instructor"],
        "registered_on": e["registered_on"],
        "dropped_on": e["dropped_on"],
    }


def _section_row(s: dict[str, Any]) -> dict[str, Any]:
    return {
        "section_id": s["id"],
        "course_code": s["course_code"],
        "title": s["title"],
        "section_code": s["section_code"],
        "term": s["term_name"],
        "credits": s["credits"],
        "days": s["days"],
        "time": f"{s['start_time']}-{s['end_time']}",
        "room": s["room"],
        "instructor": s["instructor"],
        "capacity": s["capacity"],
        "enrolled": s["enrolled"],
        "seats_left": max(s["capacity"] - s["enrolled"], 0),
        "waitlisted": s["waitlisted"],
    }


# --- queries ---------------------------------------------------------------------------------------


@tool(kind="query")
def list_terms(ctx: ToolContext) -> list[dict[str, Any]]:
    """All terms with their start and end dates and add/drop deadline, and whether registration is open today."""
    terms = ctx.all("SELECT * FROM terms ORDER BY starts")
    return [
        {
            "term_id": t["id"],
            "code": t["code"],
            "name": t["name"],
            "starts": t["starts"],
            "add_drop_deadline": t["add_drop_deadline"],
            "ends": t["ends"],
            "registration_open": t["add_drop_deadline"] >= ctx.today,
        }
        for t in terms
    ]


@tool(kind="query")
def find_student(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Find students whose name, student number or email contains the text (case-insensitive).

    Args:
        query: part of a name ('Patel'), a student number ('S1001') or an email
    """
    text = query.strip()
    if not text:
        raise ToolError("query is empty; give part of a name, a student number or an email")
    pattern = like(text)
    return ctx.all(
        "SELECT id AS student_id, student_number, name, email, program, year FROM students "
        "WHERE name LIKE ? ESCAPE '\\' OR student_number LIKE ? ESCAPE '\\' OR email LIKE ? ESCAPE '\\' "
        f"ORDER BY name, id LIMIT {SEARCH_LIMIT}",
        (pattern, pattern, pattern),
    )


@tool(kind="query")
def get_student_record(ctx: ToolContext, student_id: Id) -> dict[str, Any]:
    """A student's profile, active holds, transcript of completed courses with grades, and current registrations.

    Args:
        student_id: the student's id (from find_student)
    """
    student = _student(ctx, student_id)
    rows = ctx.all(f"{_ENROLLMENT_SQL}WHERE e.student_id = ? ORDER BY t.starts, c.code, e.id", (student_id,))
    holds = ctx.all(
        "SELECT id AS hold_id, kind, reason, amount_cents, placed FROM holds "
        "WHERE student_id = ? AND status = 'active' ORDER BY id",
        (student_id,),
    )
    transcript = [
        {
            "course_code": e["course_code"],
            "title": e["title"],
            "term": e["term_name"],
            "credits": e["credits"],
            "grade": e["grade"],
        }
        for e in rows
        if e["status"] == "completed"
    ]
    return {
        "student_id": student["id"],
        "student_number": student["student_number"],
        "name": student["name"],
        "email": student["email"],
        "program": student["program"],
        "year": student["year"],
        "active_holds": holds,
        "transcript": transcript,
        "current": [_enrollment_row(e) for e in rows if e["status"] in ("enrolled", "waitlisted")],
    }


@tool(kind="query")
def get_student_schedule(ctx: ToolContext, student_id: Id, term: Name, include_dropped: bool = False) -> dict[str, Any]:
    """A student's sections in one term (enrolled and waitlisted, with waitlist positions) and credit totals.

    Args:
        student_id: the student's id (from find_student)
        term: the term's code (2026FA) or name (Fall 2026)
        include_dropped: also list dropped enrollments of that term
    """
    student = _student(ctx, student_id)
    t = _term(ctx, term)
    status = "" if include_dropped else "AND e.status != 'dropped' "
    rows = ctx.all(
        f"{_ENROLLMENT_SQL}WHERE e.student_id = ? AND s.term_id = ? {status}ORDER BY c.code, e.id",
        (student_id, t["id"]),
    )
    out = []
    for e in rows:
        row = _enrollment_row(e)
        if e["status"] == "waitlisted":
            row["waitlist_position"] = [w["id"] for w in _waitlist(ctx, e["section_id"])].index(e["id"]) + 1
        out.append(row)
    return {
        "student_id": student_id,
        "name": student["name"],
        "term": t["name"],
        "enrolled_credits": sum(e["credits"] for e in rows if e["status"] == "enrolled"),
        "waitlisted_credits": sum(e["credits"] for e in rows if e["status"] == "waitlisted"),
        "credit_cap": CREDIT_CAP,
        "sections": out,
    }


@tool(kind="query")
def list_student_holds(ctx: ToolContext, student_id: Id, include_cleared: bool = False) -> list[dict[str, Any]]:
    """A student's registration holds: kind, reason, amount owed for financial holds, and dates.

    Args:
        student_id: the student's id (from find_student)
        include_cleared: also list holds that were already cleared
    """
    _student(ctx, student_id)
    status = "" if include_cleared else "AND status = 'active' "
    return ctx.all(
        "SELECT id AS hold_id, kind, reason, amount_cents, paid_cents, status, placed, cleared FROM holds "
        f"WHERE student_id = ? {status}ORDER BY placed, id",
        (student_id,),
    )


@tool(kind="query")
def search_courses(ctx: ToolContext, query: SearchText, department: Code | None = None) -> list[dict[str, Any]]:
    """Find courses whose code or title contains the text (case-insensitive).

    Args:
        query: part of a course code ('CS 2') or title ('calculus')
        department: only courses of this department code, e.g. CS, MATH, ENGL
    """
    text = query.strip()
    pattern = like(text)
    code_pattern = like(_norm_code(text)) if text else "%"
    params: list[Any] = [pattern, code_pattern, pattern]
    where = ""
    if department is not None:
        where = "AND upper(department) = upper(?) "
        params.append(department.strip())
    return ctx.all(
        "SELECT id AS course_id, code, title, department, credits FROM courses "
        f"WHERE (title LIKE ? ESCAPE '\\' OR code LIKE ? ESCAPE '\\' OR code LIKE ? ESCAPE '\\') {where}"
        f"ORDER BY code LIMIT {SEARCH_LIMIT}",
        params,
    )


@tool(kind="query")
def get_course(ctx: ToolContext, course_code: Code) -> dict[str, Any]:
    """A course's details and its prerequisites with the minimum grade each needs.

    Args:
        course_code: the course code, e.g. CS 201
    """
    course = _course(ctx, course_code)
    prereqs = ctx.all(
        "SELECT c.code AS course_code, c.title, p.min_grade FROM prerequisites p "
        "JOIN courses c ON c.id = p.required_course_id WHERE p.course_id = ? ORDER BY c.code",
        (course["id"],),
    )
    return {
        "course_id": course["id"],
        "code": course["code"],
        "title": course["title"],
        "department": course["department"],
        "credits": course["credits"],
        "prerequisites": prereqs,
    }


@tool(kind="query")
def list_sections(ctx: ToolContext, course_code: Code, term: Name | None = None) -> list[dict[str, Any]]:
    """The sections of a course: meeting days and times, room, instructor, seats left and waitlist length.

    Args:
        course_code: the course code, e.g. CS 201
        term: only this term, by code (2026FA) or name (Fall 2026); every term if left out
    """
    course = _course(ctx, course_code)
    params: list[Any] = [course["id"]]
    where = ""
    if term is not None:
        where = "AND s.term_id = ? "
        params.append(_term(ctx, term)["id"])
    sections = ctx.all(f"{_SECTION_SQL}WHERE s.course_id = ? {where}ORDER BY t.starts, s.section_code", params)
    return [_section_row(s) for s in sections]


@tool(kind="query")
def get_section_roster(ctx: ToolContext, section_id: Id) -> dict[str, Any]:
    """A section's details, its enrolled students and its waitlist in order.

    Args:
        section_id: the section's id (from list_sections)
    """
    section = _section(ctx, section_id)
    enrolled = ctx.all(
        "SELECT e.id AS enrollment_id, st.name AS student_name, st.student_number FROM enrollments e "
        "JOIN students st ON st.id = e.student_id WHERE e.section_id = ? AND e.status = 'enrolled' ORDER BY st.name",
        (section_id,),
    )
    waitlist = [
        {
            "position": i,
            "enrollment_id": w["id"],
            "student_name": w["student_name"],
            "registered_on": w["registered_on"],
        }
        for i, w in enumerate(_waitlist(ctx, section_id), start=1)
    ]
    return {**_section_row(section), "roster": enrolled, "waitlist": waitlist}


@tool(kind="query")
def check_eligibility(ctx: ToolContext, student_id: Id, section_id: Id) -> dict[str, Any]:
    """Say whether a student could register for a section now, and every rule that would refuse it.

    Args:
        student_id: the student's id (from find_student)
        section_id: the section's id (from list_sections)
    """
    student = _student(ctx, student_id)
    section = _section(ctx, section_id)
    problems = _problems(ctx, student, section)
    full = section["enrolled"] >= section["capacity"]
    return {
        "student": student["name"],
        "section": _what(section),
        "eligible": not problems,
        "would_be": "waitlisted" if full else "enrolled",
        "problems": [{"rule": r, "message": m} for r, m in problems],
    }


# --- mutations -------------------------------------------------------------------------------------


@tool(kind="mutation")
def enroll_student(ctx: ToolContext, student_id: Id, section_id: Id, waitlist_if_full: bool = True) -> dict[str, Any]:
    """Register a student in a section; when the section is full the student joins its waitlist.

    Args:
        student_id: the student's id (from find_student)
        section_id: the section's id (from list_sections)
        waitlist_if_full: when the section is full, put the student on the waitlist (true) or refuse (false)
    """
    student = _student(ctx, student_id)
    section = _section(ctx, section_id)
    _require_open(ctx, section, "register for")
    _refuse(_problems(ctx, student, section), f"register {student['name']} for {_what(section)}")
    full = section["enrolled"] >= section["capacity"]
    if full and not waitlist_if_full:
        raise ToolError(
            f"{_what(section)} is full ({section['enrolled']}/{section['capacity']}); "
            "allow the waitlist to register anyway",
            rule="section-capacity",
        )
    status = "waitlisted" if full else "enrolled"
    enrollment_id = ctx.insert(
        "enrollments",
        {
            "student_id": student_id,
            "section_id": section_id,
            "status": status,
            "registered_on": ctx.today,
            "dropped_on": None,
            "grade": None,
        },
    )
    out = {"enrollment_id": enrollment_id, "student": student["name"], "section": _what(section), "status": status}
    if full:
        out["waitlist_position"] = [w["id"] for w in _waitlist(ctx, section_id)].index(enrollment_id) + 1
    return out


@tool(kind="mutation")
def drop_enrollment(ctx: ToolContext, enrollment_id: Id) -> dict[str, Any]:
    """Drop a student's enrolled or waitlisted section; a freed seat goes to the first student on the waitlist.

    Args:
        enrollment_id: the enrollment's id (from get_student_schedule)
    """
    e = _enrollment(ctx, enrollment_id)
    what = f"enrollment {enrollment_id} in {e['course_code']}-{e['section_code']} ({e['term_name']})"
    if e["status"] not in ("enrolled", "waitlisted"):
        raise ToolError(f"{what} is {e['status']}; only enrolled or waitlisted registrations can be dropped")
    _require_open(ctx, _section(ctx, e["section_id"]), "drop")
    ctx.update("enrollments", {"id": enrollment_id}, {"status": "dropped", "dropped_on": ctx.today})
    promoted = _fill(ctx, e["section_id"]) if e["status"] == "enrolled" else []
    return {"enrollment_id": enrollment_id, "status": "dropped", "was": e["status"], "promoted": promoted}


@tool(kind="mutation")
def swap_section(ctx: ToolContext, enrollment_id: Id, new_section_id: Id) -> dict[str, Any]:
    """Move a student's registration to another section of the same course in the same term, in one step.

    The new section must have a free seat; the old seat goes to the old section's waitlist.

    Args:
        enrollment_id: the current enrollment's id (from get_student_schedule)
        new_section_id: the id of the section to move to (from list_sections)
    """
    e = _enrollment(ctx, enrollment_id)
    if e["status"] not in ("enrolled", "waitlisted"):
        raise ToolError(f"enrollment {enrollment_id} is {e['status']}; only a current registration can change section")
    new = _section(ctx, new_section_id)
    if new["course_id"] != e["course_id"] or new["term_id"] != e["term_id"]:
        raise ToolError(
            f"{_what(new)} is not a section of {e['course_code']} in {e['term_name']}; drop and register instead"
        )
    if new["id"] == e["section_id"]:
        raise ToolError(f"enrollment {enrollment_id} is already in {_what(new)}")
    _require_open(ctx, new, "change section to")
    student = _student(ctx, e["student_id"])
    _refuse(_problems(ctx, student, new, skip=enrollment_id), f"move {student['name']} to {_what(new)}")
    if new["enrolled"] >= new["capacity"]:
        raise ToolError(
            f"{_what(new)} is full ({new['enrolled']}/{new['capacity']}); a section change needs a free seat",
            rule="section-capacity",
        )
    ctx.update("enrollments", {"id": enrollment_id}, {"status": "dropped", "dropped_on": ctx.today})
    new_id = ctx.insert(
        "enrollments",
        {
            "student_id": e["student_id"],
            "section_id": new_section_id,
            "status": "enrolled",
            "registered_on": ctx.today,
            "dropped_on": None,
            "grade": None,
        },
    )
    promoted = _fill(ctx, e["section_id"]) if e["status"] == "enrolled" else []
    return {
        "dropped_enrollment_id": enrollment_id,
        "enrollment_id": new_id,
        "section": _what(new),
        "status": "enrolled",
        "promoted_in_old_section": promoted,
    }


@tool(kind="mutation")
def set_section_capacity(ctx: ToolContext, section_id: Id, capacity: Capacity) -> dict[str, Any]:
    """Change a section's capacity; new seats go to its waitlist in order.

    Args:
        section_id: the section's id (from list_sections)
        capacity: the new number of seats, at least the number of students already enrolled
    """
    section = _section(ctx, section_id)
    if section["term_ends"] < ctx.today:
        raise ToolError(f"{_what(section)} ended on {section['term_ends']}", rule="add-drop-deadline")
    if capacity < section["enrolled"]:
        raise ToolError(
            f"{_what(section)} has {section['enrolled']} students enrolled; capacity cannot go below that",
            rule="section-capacity",
        )
    ctx.update("sections", {"id": section_id}, {"capacity": capacity})
    promoted = _fill(ctx, section_id)
    return {"section_id": section_id, "section": _what(section), "capacity": capacity, "promoted": promoted}


@tool(kind="mutation")
def record_grade(ctx: ToolContext, enrollment_id: Id, grade: Grade) -> dict[str, Any]:
    """Record the final grade of an enrolled student once the term has ended; the course becomes completed.

    Args:
        enrollment_id: the enrollment's id (from get_section_roster or get_student_schedule)
        grade: the letter grade, A to F
    """
    e = _enrollment(ctx, enrollment_id)
    what = f"enrollment {enrollment_id} in {e['course_code']}-{e['section_code']} ({e['term_name']})"
    if e["status"] != "enrolled":
        raise ToolError(f"{what} is {e['status']}; only an enrolled student gets a final grade")
    if e["term_ends"] >= ctx.today:
        raise ToolError(f"{what}: final grades are recorded after the term ends on {e['term_ends']}")
    ctx.update("enrollments", {"id": enrollment_id}, {"status": "completed", "grade": grade})
    return {"enrollment_id": enrollment_id, "course_code": e["course_code"], "status": "completed", "grade": grade}


@tool(kind="mutation")
def place_hold(
    ctx: ToolContext, student_id: Id, kind: HoldKind, reason: Note, amount_cents: Cents = 0
) -> dict[str, Any]:
    """Place a registration hold on a student's account, dated today.

    Args:
        student_id: the student's id (from find_student)
        kind: financial (money owed), advising (must see an advisor) or registrar (administrative)
        reason: why the hold is placed, as stated by the office that asked for it
        amount_cents: for a financial hold, the amount owed in cents (45000 = $450.00); 0 for other kinds
    """
    student = _student(ctx, student_id)
    reason = reason.strip()
    if not reason:
        raise ToolError("reason is empty; say why the hold is placed")
    if kind == "financial" and amount_cents == 0:
        raise ToolError("a financial hold needs the amount owed in amount_cents")
    if kind != "financial" and amount_cents != 0:
        raise ToolError(f"only a financial hold carries an amount; leave amount_cents out for a {kind} hold")
    hold_id = ctx.insert(
        "holds",
        {
            "student_id": student_id,
            "kind": kind,
            "reason": reason,
            "amount_cents": amount_cents,
            "paid_cents": 0,
            "status": "active",
            "placed": ctx.today,
            "cleared": None,
        },
    )
    return {
        "hold_id": hold_id,
        "student": student["name"],
        "kind": kind,
        "reason": reason,
        "amount_cents": amount_cents,
    }


@tool(kind="mutation")
def clear_hold(ctx: ToolContext, hold_id: Id, paid_cents: Cents = 0) -> dict[str, Any]:
    """Clear an active hold, dated today; a financial hold needs its full amount paid now.

    Args:
        hold_id: the hold's id (from list_student_holds)
        paid_cents: for a financial hold, the amount the student paid, in cents; 0 for other kinds
    """
    hold = ctx.one("SELECT * FROM holds WHERE id = ?", (hold_id,))
    if hold is None:
        raise ToolError(f"no hold with id {hold_id}; see list_student_holds")
    if hold["status"] != "active":
        raise ToolError(f"hold {hold_id} was already cleared on {hold['cleared']}")
    if hold["kind"] == "financial":
        owed = hold["amount_cents"] - hold["paid_cents"]
        if paid_cents != owed:
            raise ToolError(
                f"financial hold {hold_id} ({hold['reason']}) has {money(owed)} owed; a payment of "
                f"{money(paid_cents)} does not clear it",
                rule="financial-hold-paid",
            )
    elif paid_cents != 0:
        raise ToolError(f"hold {hold_id} is a {hold['kind']} hold; nothing is paid on it, leave paid_cents out")
    ctx.update(
        "holds",
        {"id": hold_id},
        {"status": "cleared", "cleared": ctx.today, "paid_cents": hold["paid_cents"] + paid_cents},
    )
    remaining = ctx.scalar(
        "SELECT COUNT(*) FROM holds WHERE student_id = ? AND status = 'active'", (hold["student_id"],)
    )
    return {"hold_id": hold_id, "status": "cleared", "cleared": ctx.today, "other_active_holds": remaining}


@tool(kind="mutation")
def update_student_email(ctx: ToolContext, student_id: Id, email: Email) -> dict[str, Any]:
    """Change a student's email address.

    Args:
        student_id: the student's id (from find_student)
        email: the new email address, not used by another student
    """
    student = _student(ctx, student_id)
    email = unique_email(ctx, "students", email, student_id, "student", None)
    ctx.update("students", {"id": student_id}, {"email": email})
    return {"student_id": student_id, "name": student["name"], "previous_email": student["email"], "email": email}
