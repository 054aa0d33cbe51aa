"""The bundled university registration environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the state
untouched, waitlists and grades work as the rules say, and bad or odd input must come back
as an error result, never an exception. What every environment must do (tables, docs,
procedural steps, scenarios) is tested for all of them in test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row, sweep_odd_values

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode

BASE = "drop-data-structures-add-discrete"  # any scenario on states/base.json at 2026-08-28


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("university")


# --- the package -----------------------------------------------------------------------------------


def test_schemas_are_typed(env: Environment) -> None:
    props = env.tools["record_grade"].input_schema["properties"]
    assert "B+" in props["grade"]["enum"]
    assert env.tools["place_hold"].input_schema["properties"]["kind"]["enum"] == ["financial", "advising", "registrar"]
    assert env.tools["update_student_email"].input_schema["properties"]["email"]["format"] == "email"
    assert env.tools["enroll_student"].input_schema["properties"]["student_id"]["maximum"] == 2**63 - 1


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); all on the base state at 2026-08-28.
REFUSALS: list[Refusal] = [
    # Noah Kim (4) has a financial hold; Chloe Martin (7) an advising hold.
    ("registration-hold", "enroll_student", {"student_id": 4, "section_id": 8}, ["Noah Kim", "financial"]),
    ("registration-hold", "enroll_student", {"student_id": 7, "section_id": 25}, ["Chloe Martin", "advising"]),
    # Ethan Brooks (6) already has 18 credits in Fall 2026.
    ("credit-cap", "enroll_student", {"student_id": 6, "section_id": 18}, ["Ethan Brooks", "18 credits"]),
    # Sofia Garcia (3) has CS 101 with a D; CS 201 needs a C.
    ("prerequisites", "enroll_student", {"student_id": 3, "section_id": 12}, ["CS 101", "best grade is D"]),
    # Kenji Tanaka (20) has no MATH 120 completed; MATH 220 needs it.
    ("prerequisites", "enroll_student", {"student_id": 20, "section_id": 18}, ["MATH 120", "has not completed"]),
    # Maya Patel (1) takes CS 201-002 TR 09:30, the same time as MATH 220-001.
    ("time-conflict", "enroll_student", {"student_id": 1, "section_id": 18}, ["MATH 220-001", "CS 201-002"]),
    # Lucas Rossi (8) is on the CS 201-001 waitlist already.
    ("duplicate-course", "enroll_student", {"student_id": 8, "section_id": 11}, ["CS 201-001", "waitlisted"]),
    # CS 201-001 (section 10) is full: 3 of 3.
    (
        "section-capacity",
        "enroll_student",
        {"student_id": 19, "section_id": 10, "waitlist_if_full": False},
        ["CS 201-001", "full"],
    ),
    ("section-capacity", "set_section_capacity", {"section_id": 10, "capacity": 2}, ["3 students"]),
    ("section-capacity", "swap_section", {"enrollment_id": 38, "new_section_id": 10}, ["full", "free seat"]),
    # Summer 2026 ended on 2026-08-07.
    ("add-drop-deadline", "enroll_student", {"student_id": 20, "section_id": 7}, ["ENGL 101-S01", "2026-08-07"]),
    ("add-drop-deadline", "drop_enrollment", {"enrollment_id": 36}, ["MATH 120-S01", "ended"]),
    # Noah Kim owes $450.00.
    ("financial-hold-paid", "clear_hold", {"hold_id": 1, "paid_cents": 40000}, ["$450.00", "$400.00"]),
]


def test_every_rule_is_tested(env: Environment) -> None:
    assert {r for r, *_ in REFUSALS} == set(env.rules)


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_eligibility_lists_every_problem(episode: Episode) -> None:
    out = episode.call("check_eligibility", {"student_id": 4, "section_id": 12}).value
    assert not out["eligible"]
    assert {p["rule"] for p in out["problems"]} == {"registration-hold", "prerequisites"}
    ok = episode.call("check_eligibility", {"student_id": 12, "section_id": 18}).value
    assert ok["eligible"] and ok["would_be"] == "enrolled"


# --- behaviour -------------------------------------------------------------------------------------


def test_drop_promotes_the_first_waitlisted_student(episode: Episode) -> None:
    result = episode.call("drop_enrollment", {"enrollment_id": 57})
    assert result.ok, result.error
    assert [p["student_name"] for p in result.value["promoted"]] == ["Lucas Rossi"]
    view = episode.view()
    assert row(view, "enrollments", 64)["status"] == "enrolled"
    assert row(view, "enrollments", 66)["status"] == "waitlisted"


def test_dropping_a_waitlisted_spot_promotes_nobody(episode: Episode) -> None:
    result = episode.call("drop_enrollment", {"enrollment_id": 64})
    assert result.ok and result.value["promoted"] == []
    roster = episode.call("get_section_roster", {"section_id": 10}).value
    assert [w["student_name"] for w in roster["waitlist"]] == ["Grace Lee"]


def test_full_section_waitlists_in_order(episode: Episode) -> None:
    result = episode.call("enroll_student", {"student_id": 19, "section_id": 10})
    assert result.ok and result.value["status"] == "waitlisted" and result.value["waitlist_position"] == 3
    grown = episode.call("set_section_capacity", {"section_id": 10, "capacity": 5}).value
    assert [p["student_name"] for p in grown["promoted"]] == ["Lucas Rossi", "Grace Lee"]


def test_swap_moves_and_frees_the_old_seat(episode: Episode) -> None:
    result = episode.call("swap_section", {"enrollment_id": 57, "new_section_id": 12})
    assert result.ok, result.error
    assert result.value["promoted_in_old_section"][0]["student_name"] == "Lucas Rossi"
    view = episode.view()
    assert row(view, "enrollments", 57)["status"] == "dropped"


def test_grade_unlocks_a_prerequisite(episode: Episode) -> None:
    assert episode.call("enroll_student", {"student_id": 14, "section_id": 17}).rule == "prerequisites"
    assert episode.call("record_grade", {"enrollment_id": 36, "grade": "C-"}).ok
    assert episode.call("enroll_student", {"student_id": 14, "section_id": 17}).rule == "prerequisites"


def test_grades_wait_for_the_end_of_term(episode: Episode) -> None:
    result = episode.call("record_grade", {"enrollment_id": 38, "grade": "A"})
    assert not result.ok and "after the term ends" in (result.error or "")


def test_schedule_and_lookups(episode: Episode) -> None:
    sched = episode.call("get_student_schedule", {"student_id": 6, "term": "2026fa"}).value
    assert sched["enrolled_credits"] == 18
    grace = episode.call("get_student_schedule", {"student_id": 9, "term": "Fall 2026"}).value
    assert grace["sections"][0]["waitlist_position"] == 2
    assert [s["name"] for s in episode.call("find_student", {"query": "s1012"}).value] == ["Daniel Cho"]
    assert episode.call("find_student", {"query": "%"}).value == []
    assert episode.call("get_course", {"course_code": "cs310"}).value["title"] == "Algorithms"
    codes = [c["code"] for c in episode.call("search_courses", {"query": "calculus"}).value]
    assert codes == ["MATH 120", "MATH 121"]
    sections = episode.call("list_sections", {"course_code": "CS 201", "term": "Fall 2026"}).value
    assert [(s["section_code"], s["seats_left"], s["waitlisted"]) for s in sections][0] == ("001", 0, 2)
    record = episode.call("get_student_record", {"student_id": 3}).value
    assert {t["course_code"] for t in record["transcript"]} == {"MATH 120", "CS 101"}
    terms = episode.call("list_terms", {}).value
    assert [t["registration_open"] for t in terms] == [False, False, True, True]


BAD_CALLS: list[BadCall] = [
    ("get_student_record", {"student_id": 999}, "no student with id 999"),
    ("get_student_schedule", {"student_id": 1, "term": "Winter 1999"}, "no term"),
    ("get_course", {"course_code": "XYZ 999"}, "no course"),
    ("get_section_roster", {"section_id": 999}, "no section with id 999"),
    ("drop_enrollment", {"enrollment_id": 999}, "no enrollment with id 999"),
    ("drop_enrollment", {"enrollment_id": 47}, "dropped"),
    ("clear_hold", {"hold_id": 999}, "no hold with id 999"),
    ("clear_hold", {"hold_id": 4}, "already cleared"),
    ("clear_hold", {"hold_id": 2, "paid_cents": 10}, "nothing is paid"),
    ("place_hold", {"student_id": 1, "kind": "advising", "reason": " "}, "reason is empty"),
    ("place_hold", {"student_id": 1, "kind": "financial", "reason": "x"}, "amount owed"),
    ("swap_section", {"enrollment_id": 38, "new_section_id": 18}, "not a section of CS 201"),
    ("update_student_email", {"student_id": 1, "email": "liam.obrien@lakeside.edu"}, "already belongs to student"),
    ("enroll_student", {"student_id": 1, "section_id": -1}, "section_id"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)


def test_no_tool_crashes_on_odd_values(env: Environment, episode: Episode) -> None:
    """Every tool, every parameter, a spread of valid-typed odd values: never an internal error."""
    odd: dict[str, list[Any]] = {
        "integer": [1, 2, 10, 38, 999, 2**63 - 1],
        "string": ["", " ", "CS 201", "%_\\", "'; DROP TABLE students; --", "é✓", "2026FA"],
        "boolean": [True, False],
    }
    valid: dict[str, Any] = {"student_id": 1, "section_id": 8, "enrollment_id": 38, "new_section_id": 12}
    valid |= {"capacity": 30, "grade": "B", "kind": "advising", "reason": "x", "hold_id": 2, "query": "a"}
    valid |= {"term": "Fall 2026", "course_code": "CS 201", "email": "t@example.org"}
    assert sweep_odd_values(env, episode, odd, valid) > 150
