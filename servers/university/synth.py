"""Procedural steps for the university: registrar requests built from the current state.

The state view carries no clock, so the makers assume the shared scenario date
(``TODAY``, the clock of every authored scenario): Fall 2026 and Spring 2027 are
open for registration, Summer 2026 has ended and awaits grades. Each maker names
students by name and sections by course, term, section code and meeting time,
and only picks registrations that the registration rules allow.
"""

from __future__ import annotations

import random
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, by_id, unique_names
from envfarm.core.toolkit import money

TODAY = "2026-08-28"
CREDIT_CAP = 18
GRADES = ["A", "A-", "B+", "B", "B-", "C+", "C", "C-", "D+", "D", "F"]
POINTS = dict(zip(GRADES, [4.0, 3.7, 3.3, 3.0, 2.7, 2.3, 2.0, 1.7, 1.3, 1.0, 0.0], strict=True))
HOLD_REASONS = {
    "financial": ["Unpaid housing balance", "Unpaid lab fees", "Returned tuition payment"],
    "advising": ["Advising meeting required before registration", "Declare a major"],
    "registrar": ["Missing immunization records", "Missing proof of residency"],
}


def _open_terms(state: StateView) -> set[int]:
    return {t["id"] for t in state["terms"] if t["add_drop_deadline"] >= TODAY and t["ends"] >= TODAY}


def _held(state: StateView) -> set[int]:
    return {h["student_id"] for h in state["holds"] if h["status"] == "active"}


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(set(a["days"]) & set(b["days"])) and a["start_time"] < b["end_time"] and b["start_time"] < a["end_time"]


def _enrolled_count(state: StateView, section_id: int) -> int:
    return sum(e["section_id"] == section_id and e["status"] == "enrolled" for e in state["enrollments"])


def _describe(section: dict[str, Any], course: dict[str, Any], term: dict[str, Any]) -> str:
    return (
        f"{course['code']} {course['title']} section {section['section_code']} "
        f"({section['days']} {section['start_time']}-{section['end_time']}) in {term['name']}"
    )


def _can_register(state: StateView, student_id: int, section: dict[str, Any], skip: int | None = None) -> bool:
    sections, courses = by_id(state, "sections"), by_id(state, "courses")
    current = [
        e
        for e in state["enrollments"]
        if e["student_id"] == student_id
        and e["status"] in ("enrolled", "waitlisted")
        and e["id"] != skip
        and sections[e["section_id"]]["term_id"] == section["term_id"]
    ]
    mine = [sections[e["section_id"]] for e in current]
    if any(s["course_id"] == section["course_id"] for s in mine):
        return False
    if any(_overlap(s, section) for s in mine):
        return False
    credits = sum(courses[s["course_id"]]["credits"] for s in mine)
    if credits + courses[section["course_id"]]["credits"] > CREDIT_CAP:
        return False
    for p in state["prerequisites"]:
        if p["course_id"] != section["course_id"]:
            continue
        grades = [
            e["grade"]
            for e in state["enrollments"]
            if e["student_id"] == student_id
            and e["status"] == "completed"
            and e["grade"] in POINTS
            and sections[e["section_id"]]["course_id"] == p["required_course_id"]
        ]
        if not grades or max(POINTS[g] for g in grades) < POINTS[p["min_grade"]]:
            return False
    return True


def enroll_student(state: StateView, rng: random.Random) -> Step | None:
    names, courses, terms = unique_names(state, "students"), by_id(state, "courses"), by_id(state, "terms")
    open_terms, held = _open_terms(state), _held(state)
    options = [
        (sid, s)
        for sid in sorted(names)
        if sid not in held
        for s in state["sections"]
        if s["term_id"] in open_terms and _can_register(state, sid, s)
    ]
    if not options:
        return None
    student_id, section = rng.choice(options)
    course, term = courses[section["course_id"]], terms[section["term_id"]]
    full = _enrolled_count(state, section["id"]) >= section["capacity"]
    tail = " (the waitlist is fine if it is full)" if full else ""
    return Step(
        arguments={"student_id": student_id, "section_id": section["id"]},
        request=f"register {names[student_id]} for {_describe(section, course, term)}{tail}",
        lookups=[
            Call(tool="find_student", arguments={"query": names[student_id]}),
            Call(tool="list_sections", arguments={"course_code": course["code"], "term": term["name"]}),
        ],
    )


def _current(state: StateView) -> list[dict[str, Any]]:
    sections, names = by_id(state, "sections"), unique_names(state, "students")
    open_terms = _open_terms(state)
    return [
        e
        for e in state["enrollments"]
        if e["status"] in ("enrolled", "waitlisted")
        and e["student_id"] in names
        and sections[e["section_id"]]["term_id"] in open_terms
    ]


def drop_enrollment(state: StateView, rng: random.Random) -> Step | None:
    sections, courses, terms, names = (
        by_id(state, "sections"),
        by_id(state, "courses"),
        by_id(state, "terms"),
        unique_names(state, "students"),
    )
    current = _current(state)
    if not current:
        return None
    e = rng.choice(current)
    section = sections[e["section_id"]]
    course, term = courses[section["course_id"]], terms[section["term_id"]]
    what = "take {who} off the waitlist for" if e["status"] == "waitlisted" else "drop {who} from"
    return Step(
        arguments={"enrollment_id": e["id"]},
        request=f"{what.format(who=names[e['student_id']])} {course['code']} {course['title']} in {term['name']}",
        lookups=[
            Call(tool="find_student", arguments={"query": names[e["student_id"]]}),
            Call(tool="get_student_schedule", arguments={"student_id": e["student_id"], "term": term["name"]}),
        ],
    )


def swap_section(state: StateView, rng: random.Random) -> Step | None:
    sections, courses, terms, names = (
        by_id(state, "sections"),
        by_id(state, "courses"),
        by_id(state, "terms"),
        unique_names(state, "students"),
    )
    held = _held(state)
    options = []
    for e in _current(state):
        if e["student_id"] in held:
            continue
        old = sections[e["section_id"]]
        for s in state["sections"]:
            if (
                s["id"] != old["id"]
                and s["course_id"] == old["course_id"]
                and s["term_id"] == old["term_id"]
                and _enrolled_count(state, s["id"]) < s["capacity"]
                and _can_register(state, e["student_id"], s, skip=e["id"])
            ):
                options.append((e, s))
    if not options:
        return None
    e, new = rng.choice(options)
    course, term, who = courses[new["course_id"]], terms[new["term_id"]], names[e["student_id"]]
    return Step(
        arguments={"enrollment_id": e["id"], "new_section_id": new["id"]},
        request=f"move {who}'s {course['code']} registration in {term['name']} to section {new['section_code']} "
        f"({new['days']} {new['start_time']}-{new['end_time']})",
        lookups=[
            Call(tool="find_student", arguments={"query": who}),
            Call(tool="get_student_schedule", arguments={"student_id": e["student_id"], "term": term["name"]}),
            Call(tool="list_sections", arguments={"course_code": course["code"], "term": term["name"]}),
        ],
    )


def set_section_capacity(state: StateView, rng: random.Random) -> Step | None:
    courses, terms = by_id(state, "courses"), by_id(state, "terms")
    live = [s for s in state["sections"] if terms[s["term_id"]]["ends"] >= TODAY]
    if not live:
        return None
    section = rng.choice(live)
    enrolled = _enrolled_count(state, section["id"])
    capacity = rng.choice([c for c in range(max(enrolled, 1), enrolled + 12) if c != section["capacity"]])
    course, term = courses[section["course_id"]], terms[section["term_id"]]
    return Step(
        arguments={"section_id": section["id"], "capacity": capacity},
        request=f"set the capacity of {_describe(section, course, term)} to {capacity} seats",
        lookups=[Call(tool="list_sections", arguments={"course_code": course["code"], "term": term["name"]})],
    )


def record_grade(state: StateView, rng: random.Random) -> Step | None:
    sections, courses, terms, names = (
        by_id(state, "sections"),
        by_id(state, "courses"),
        by_id(state, "terms"),
        unique_names(state, "students"),
    )
    pending = [
        e
        for e in state["enrollments"]
        if e["status"] == "enrolled"
        and e["student_id"] in names
        and terms[sections[e["section_id"]]["term_id"]]["ends"] < TODAY
    ]
    if not pending:
        return None
    e = rng.choice(pending)
    grade = rng.choice(GRADES)
    section = sections[e["section_id"]]
    course, term, who = courses[section["course_id"]], terms[section["term_id"]], names[e["student_id"]]
    return Step(
        arguments={"enrollment_id": e["id"], "grade": grade},
        request=f"record {who}'s final grade in {course['code']} {course['title']} for {term['name']} as {grade}",
        lookups=[
            Call(tool="find_student", arguments={"query": who}),
            Call(tool="get_student_schedule", arguments={"student_id": e["student_id"], "term": term["name"]}),
        ],
    )


def place_hold(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "students")
    if not names:
        return None
    student_id = rng.choice(sorted(names))
    kind = rng.choice(sorted(HOLD_REASONS))
    reason = rng.choice(HOLD_REASONS[kind])
    arguments: dict[str, object] = {"student_id": student_id, "kind": kind, "reason": reason}
    owed = ""
    if kind == "financial":
        amount = rng.randrange(5000, 150001, 500)
        arguments["amount_cents"] = amount
        owed = f" for {money(amount)} owed"
    return Step(
        arguments=arguments,
        request=f"place a {kind} hold on {names[student_id]}'s account{owed}, with the reason '{reason}'",
        lookups=[Call(tool="find_student", arguments={"query": names[student_id]})],
    )


def clear_hold(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "students")
    active = [h for h in state["holds"] if h["status"] == "active" and h["student_id"] in names]
    if not active:
        return None
    hold = rng.choice(active)
    who = names[hold["student_id"]]
    arguments: dict[str, object] = {"hold_id": hold["id"]}
    paid = ""
    if hold["kind"] == "financial":
        owed = hold["amount_cents"] - hold["paid_cents"]
        arguments["paid_cents"] = owed
        paid = f"; they paid the full {money(owed)}"
    return Step(
        arguments=arguments,
        request=f"clear {who}'s {hold['kind']} hold ({hold['reason']}){paid}",
        lookups=[
            Call(tool="find_student", arguments={"query": who}),
            Call(tool="list_student_holds", arguments={"student_id": hold["student_id"]}),
        ],
    )


def update_student_email(state: StateView, rng: random.Random) -> Step | None:
    names = unique_names(state, "students")
    if not names:
        return None
    student_id = rng.choice(sorted(names))
    taken = {s["email"].lower() for s in state["students"]}
    slug = names[student_id].lower().replace("'", "").replace(" ", ".")
    candidates = [f"{slug}.{rng.randint(100, 999)}@example.com" for _ in range(5)]
    free = [e for e in candidates if e not in taken]
    if not free:
        return None
    email = free[0]
    return Step(
        arguments={"student_id": student_id, "email": email},
        request=f"change {names[student_id]}'s email address to {email}",
        lookups=[Call(tool="find_student", arguments={"query": names[student_id]})],
    )


STEPS = {
    "enroll_student": enroll_student,
    "drop_enrollment": drop_enrollment,
    "swap_section": swap_section,
    "set_section_capacity": set_section_capacity,
    "record_grade": record_grade,
    "place_hold": place_hold,
    "clear_hold": clear_hold,
    "update_student_email": update_student_email,
}
