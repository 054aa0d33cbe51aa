"""Recorded LLM answers for one generator run on tests/generator/data/corpus-sample.jsonl.

The fake provider servers (tests/fakes/llm_server.py) answer from these: each
entry names the tool the request forces and strings the request must contain.
They are what a model answers for this corpus sample: a fitness-class booking
environment, tested, and two scenarios. ``script(**faults)`` builds the fake
server's script; the variants used by the repair tests swap single answers.
"""

from __future__ import annotations

import copy
from typing import Any

SAMPLE_IDS = [f"apibank-lv3-{i:04d}" for i in range(12)] + ["apibank-lv3-0029", "apibank-lv3-0046"]

FITNESS = ("fitness_classes", "Fitness classes", "Studios' class schedules, members with class credits, and bookings.")


def _judgement(task_id: str, env: str, title: str, description: str, stateful: bool, use: int, model: int) -> dict:
    reason = "needs records that tools read and change" if stateful else "knowledge or computation, no state"
    return {
        "task_id": task_id,
        "stateful": stateful,
        "environment": env,
        "title": title,
        "description": description,
        "usefulness": use,
        "modelability": model,
        "reason": reason,
    }


CLINIC = (
    "clinic_appointments",
    "Clinic appointments",
    "Doctors at clinics and the check-up appointments patients book.",
)
DOCTOR = (
    "doctor_consultations",
    "Doctor consultations",
    "Book consultations with doctors at clinics, in person or virtual.",
)
ADVICE = ("health_advice", "Health advice", "General health information.")
JUDGEMENTS = {
    "judgements": [
        _judgement("apibank-lv3-0000", *CLINIC, True, 4, 5),
        _judgement(
            "apibank-lv3-0001", "retreat_bookings", "Retreat bookings", "Wellness retreats and bookings.", True, 3, 4
        ),
        _judgement(
            "apibank-lv3-0002", "clinical_trials", "Clinical trials", "A registry of clinical trials.", False, 2, 3
        ),
        _judgement("apibank-lv3-0003", *ADVICE, False, 1, 1),
        _judgement("apibank-lv3-0004", *DOCTOR, True, 4, 5),
        _judgement(
            "apibank-lv3-0005", "medication_reminders", "Medication reminders", "Reminders per patient.", True, 3, 4
        ),
        _judgement("apibank-lv3-0006", *FITNESS, True, 4, 5),
        _judgement(
            "apibank-lv3-0007", "medical_records", "Medical records", "Patients' records and access.", True, 2, 3
        ),
        _judgement("apibank-lv3-0008", *FITNESS, True, 4, 5),
        _judgement("apibank-lv3-0009", *ADVICE, False, 1, 1),
        _judgement("apibank-lv3-0010", "cost_estimates", "Cost estimates", "Price lookups.", False, 2, 2),
        _judgement("apibank-lv3-0011", "cost_estimates", "Cost estimates", "Price lookups.", False, 2, 2),
        _judgement("apibank-lv3-0029", *FITNESS, True, 4, 5),
        _judgement("apibank-lv3-0046", *FITNESS, True, 4, 5),
    ]
}


def _attr(name: str, kind: str, description: str, **extra: Any) -> dict:
    return {"name": name, "type": kind, "description": description, **extra}


def _param(name: str, kind: str, description: str, required: bool = True) -> dict:
    return {"name": name, "type": kind, "description": description, "required": required}


DESIGN = {
    "title": "Fitness classes",
    "description": "Fitness studios publish class schedules; members spend credits to book classes and can cancel.",
    "entities": [
        {
            "table": "studios",
            "description": "A studio that runs classes.",
            "attributes": [
                _attr("id", "int", "studio id", primary_key=True),
                _attr("name", "str", "the studio's name"),
                _attr("city", "str", "city"),
                _attr("neighborhood", "str", "neighbourhood within the city"),
            ],
        },
        {
            "table": "classes",
            "description": "One scheduled class.",
            "attributes": [
                _attr("id", "int", "class id", primary_key=True),
                _attr("studio_id", "int", "where it runs", references="studios.id"),
                _attr("title", "str", "the class's title"),
                _attr("style", "str", "yoga, meditation, zumba, hiit or pilates"),
                _attr("date", "str", "YYYY-MM-DD"),
                _attr("time", "str", "HH:MM, 24-hour"),
                _attr("virtual", "bool", "streamed online rather than in the studio"),
                _attr("capacity", "int", "places"),
            ],
        },
        {
            "table": "members",
            "description": "A member who books classes.",
            "attributes": [
                _attr("id", "int", "member id", primary_key=True),
                _attr("name", "str", "full name"),
                _attr("credits", "int", "class credits left"),
            ],
        },
        {
            "table": "bookings",
            "description": "A member's place in a class.",
            "attributes": [
                _attr("id", "int", "booking id", primary_key=True),
                _attr("class_id", "int", "the class", references="classes.id"),
                _attr("member_id", "int", "the member", references="members.id"),
                _attr("status", "str", "booked or cancelled"),
            ],
        },
    ],
    "rules": [
        {
            "id": "capacity",
            "text": "A class never has more active bookings than its capacity.",
            "invariant": (
                "def invariant(state):\n"
                "    for c in state['classes']:\n"
                "        mine = [b for b in state['bookings'] if b['class_id'] == c['id']]\n"
                "        taken = sum(1 for b in mine if b['status'] == 'booked')\n"
                "        if taken > c['capacity']:\n"
                "            return False\n"
                "    return True"
            ),
        },
        {
            "id": "one-place",
            "text": "A member holds at most one active booking per class.",
            "invariant": (
                "def invariant(state):\n"
                "    seen = [(b['class_id'], b['member_id']) for b in state['bookings'] if b['status'] == 'booked']\n"
                "    return len(seen) == len(set(seen))"
            ),
        },
        {
            "id": "credits",
            "text": "Booking costs one credit; a member without credits cannot book, and credits never go below zero.",
            "invariant": "def invariant(state):\n    return all(m['credits'] >= 0 for m in state['members'])",
        },
        {
            "id": "no-past-classes",
            "text": "Only classes on or after today can be booked or cancelled.",
            "invariant": None,
        },
        {"id": "refund", "text": "Cancelling a booking gives the member's credit back.", "invariant": None},
    ],
    "operations": [
        {
            "name": "find_classes",
            "kind": "query",
            "description": "Classes in a city, optionally of one style and on one date.",
            "parameters": [
                _param("city", "string", "the city"),
                _param("style", "string", "yoga, meditation, zumba, hiit or pilates", False),
                _param("date", "string", "YYYY-MM-DD", False),
            ],
        },
        {
            "name": "find_member",
            "kind": "query",
            "description": "A member by name, with their credits.",
            "parameters": [_param("name", "string", "the member's full name")],
        },
        {
            "name": "list_bookings",
            "kind": "query",
            "description": "A member's bookings.",
            "parameters": [_param("member_name", "string", "the member's full name")],
        },
        {
            "name": "book_class",
            "kind": "mutation",
            "description": "Book a place in a class for a member, spending one credit.",
            "parameters": [_param("member_name", "string", "the member"), _param("class_id", "integer", "the class")],
        },
        {
            "name": "cancel_booking",
            "kind": "mutation",
            "description": "Cancel a member's booking in a class and refund the credit.",
            "parameters": [_param("member_name", "string", "the member"), _param("class_id", "integer", "the class")],
        },
        {
            "name": "add_credits",
            "kind": "mutation",
            "description": "Add 1 to 50 class credits to a member.",
            "parameters": [_param("member_name", "string", "the member"), _param("credits", "integer", "1 to 50")],
        },
    ],
}

MODELS_PY = """\
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Studio(Base, table=True):
    __tablename__ = "studios"
    id: int = Field(primary_key=True)
    name: str
    city: str
    neighborhood: str


class FitnessClass(Base, table=True):
    __tablename__ = "classes"
    id: int = Field(primary_key=True)
    studio_id: int = Field(foreign_key="studios.id")
    title: str
    style: str
    date: str
    time: str
    virtual: bool = False
    capacity: int


class Member(Base, table=True):
    __tablename__ = "members"
    id: int = Field(primary_key=True)
    name: str
    credits: int = 0


class Booking(Base, table=True):
    __tablename__ = "bookings"
    id: int = Field(primary_key=True)
    class_id: int = Field(foreign_key="classes.id")
    member_id: int = Field(foreign_key="members.id")
    status: str = "booked"
"""

TOOLS_PY = '''\
from typing import Any

from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

STYLES = ("yoga", "meditation", "zumba", "hiit", "pilates")


def _member(ctx: ToolContext, name: str) -> dict[str, Any]:
    member = ctx.one("SELECT id, name, credits FROM members WHERE name = ?", (name,))
    if member is None:
        raise ToolError(f"no member named {name!r}")
    return member


def _class(ctx: ToolContext, class_id: int) -> dict[str, Any]:
    found = ctx.one("SELECT * FROM classes WHERE id = ?", (class_id,))
    if found is None:
        raise ToolError(f"no class with id {class_id}")
    return found


@tool(kind="query")
def find_classes(
    ctx: ToolContext, city: str, style: str | None = None, date: str | None = None
) -> list[dict[str, Any]]:
    """Classes in a city, optionally of one style and on one date, with the places left.

    Args:
        city: the city
        style: yoga, meditation, zumba, hiit or pilates
        date: YYYY-MM-DD
    """
    if style is not None and style not in STYLES:
        raise ToolError(f"style must be one of {', '.join(STYLES)}, got {style!r}")
    if date is not None:
        parse_date(date, "date")
    rows = ctx.all(
        "SELECT c.id, c.title, c.style, c.date, c.time, c.virtual, c.capacity, s.name AS studio, s.neighborhood "
        "FROM classes c JOIN studios s ON s.id = c.studio_id WHERE s.city = ? "
        "AND (? IS NULL OR c.style = ?) AND (? IS NULL OR c.date = ?) ORDER BY c.date, c.time, c.id",
        (city, style, style, date, date),
    )
    for row in rows:
        taken = ctx.scalar("SELECT COUNT(*) FROM bookings WHERE class_id = ? AND status = 'booked'", (row["id"],))
        row["places_left"] = row.pop("capacity") - taken
        row["virtual"] = bool(row["virtual"])
    return rows


@tool(kind="query")
def find_member(ctx: ToolContext, name: str) -> dict[str, Any]:
    """A member by name, with their credits.

    Args:
        name: the member's full name
    """
    return _member(ctx, name)


@tool(kind="query")
def list_bookings(ctx: ToolContext, member_name: str) -> list[dict[str, Any]]:
    """A member's bookings, with each class's title, date and time.

    Args:
        member_name: the member's full name
    """
    member = _member(ctx, member_name)
    return ctx.all(
        "SELECT b.id, b.status, c.id AS class_id, c.title, c.date, c.time FROM bookings b "
        "JOIN classes c ON c.id = b.class_id WHERE b.member_id = ? ORDER BY c.date, c.time, b.id",
        (member["id"],),
    )


@tool(kind="mutation")
def book_class(ctx: ToolContext, member_name: str, class_id: int) -> dict[str, Any]:
    """Book a place in a class for a member, spending one credit.

    Args:
        member_name: the member
        class_id: the class
    """
    member = _member(ctx, member_name)
    found = _class(ctx, class_id)
    if found["date"] < ctx.today:
        raise ToolError(f"class {class_id} was on {found['date']}, before today", rule="no-past-classes")
    if member["credits"] < 1:
        raise ToolError(f"{member_name} has no credits left", rule="credits")
    mine = "SELECT 1 FROM bookings WHERE class_id = ? AND member_id = ? AND status = 'booked'"
    if ctx.scalar(mine, (class_id, member["id"])):
        raise ToolError(f"{member_name} already has a place in class {class_id}", rule="one-place")
    taken = ctx.scalar("SELECT COUNT(*) FROM bookings WHERE class_id = ? AND status = 'booked'", (class_id,))
    if taken >= found["capacity"]:
        raise ToolError(f"class {class_id} is full", rule="capacity")
    booking_id = ctx.insert("bookings", {"class_id": class_id, "member_id": member["id"], "status": "booked"})
    ctx.update("members", {"id": member["id"]}, {"credits": member["credits"] - 1})
    return {"booking_id": booking_id, "class": found["title"], "credits_left": member["credits"] - 1}


@tool(kind="mutation")
def cancel_booking(ctx: ToolContext, member_name: str, class_id: int) -> dict[str, Any]:
    """Cancel a member's booking in a class and refund the credit.

    Args:
        member_name: the member
        class_id: the class
    """
    member = _member(ctx, member_name)
    found = _class(ctx, class_id)
    if found["date"] < ctx.today:
        raise ToolError(f"class {class_id} was on {found['date']}, before today", rule="no-past-classes")
    booking = ctx.one(
        "SELECT id FROM bookings WHERE class_id = ? AND member_id = ? AND status = 'booked'", (class_id, member["id"])
    )
    if booking is None:
        raise ToolError(f"{member_name} has no booking in class {class_id}")
    ctx.update("bookings", {"id": booking["id"]}, {"status": "cancelled"})
    ctx.update("members", {"id": member["id"]}, {"credits": member["credits"] + 1})
    return {"booking_id": booking["id"], "status": "cancelled", "credits_left": member["credits"] + 1}


@tool(kind="mutation")
def add_credits(ctx: ToolContext, member_name: str, credits: int) -> dict[str, Any]:
    """Add 1 to 50 class credits to a member.

    Args:
        member_name: the member
        credits: 1 to 50
    """
    if not 1 <= credits <= 50:
        raise ToolError(f"credits must be between 1 and 50, got {credits}")
    member = _member(ctx, member_name)
    ctx.update("members", {"id": member["id"]}, {"credits": member["credits"] + credits})
    return {"name": member_name, "credits": member["credits"] + credits}
'''

CODE = {"models_py": MODELS_PY, "tools_py": TOOLS_PY}


def _cls(id: int, studio: int, title: str, style: str, date: str, time: str, virtual: bool, cap: int) -> dict:
    return {
        "id": id,
        "studio_id": studio,
        "title": title,
        "style": style,
        "date": date,
        "time": time,
        "virtual": virtual,
        "capacity": cap,
    }


STATE_ROWS: dict[str, list[dict[str, Any]]] = {
    "studios": [
        {"id": 1, "name": "Flow House", "city": "New York", "neighborhood": "Brooklyn"},
        {"id": 2, "name": "Pulse Gym", "city": "New York", "neighborhood": "Midtown"},
        {"id": 3, "name": "Lakeside Studio", "city": "Chicago", "neighborhood": "Lincoln Park"},
    ],
    "classes": [
        _cls(1, 1, "Morning Vinyasa", "yoga", "2026-05-05", "07:30", False, 12),
        _cls(2, 1, "Yoga and Meditation Online", "meditation", "2026-05-05", "19:00", True, 30),
        _cls(3, 2, "Zumba Blast", "zumba", "2026-05-06", "18:00", False, 2),
        _cls(4, 2, "HIIT 45", "hiit", "2026-05-06", "07:00", False, 10),
        _cls(5, 3, "Core Pilates", "pilates", "2026-05-07", "09:00", False, 8),
        _cls(6, 2, "Sunday Stretch", "yoga", "2026-05-01", "10:00", False, 15),
    ],
    "members": [
        {"id": 1, "name": "Maya Chen", "credits": 3},
        {"id": 2, "name": "Sam Okafor", "credits": 1},
        {"id": 3, "name": "Lena Fischer", "credits": 0},
        {"id": 4, "name": "Diego Ramos", "credits": 5},
    ],
    "bookings": [
        {"id": 1, "class_id": 3, "member_id": 4, "status": "booked"},
        {"id": 2, "class_id": 4, "member_id": 2, "status": "booked"},
        {"id": 3, "class_id": 6, "member_id": 1, "status": "booked"},
    ],
}
CLOCK = "2026-05-04T08:00:00+00:00"
STATE = {"state": STATE_ROWS, "clock": CLOCK}

TEST_PLAN = {
    "calls": [
        {"tool": "find_classes", "arguments": {"city": "New York", "style": "yoga"}, "expect": "classes 1 and 6"},
        {"tool": "find_member", "arguments": {"name": "Maya Chen"}, "expect": "Maya with 3 credits"},
        {
            "tool": "book_class",
            "arguments": {"member_name": "Maya Chen", "class_id": 1},
            "expect": "a new booked row for Maya in class 1; her credits go from 3 to 2",
        },
        {
            "tool": "book_class",
            "arguments": {"member_name": "Maya Chen", "class_id": 1},
            "expect": "refused: she already has a place (one-place); no change",
        },
        {
            "tool": "book_class",
            "arguments": {"member_name": "Lena Fischer", "class_id": 2},
            "expect": "refused: Lena has no credits; no change",
        },
        {
            "tool": "book_class",
            "arguments": {"member_name": "Maya Chen", "class_id": 6},
            "expect": "refused: class 6 was on 2026-05-01, in the past",
        },
        {
            "tool": "book_class",
            "arguments": {"member_name": "Maya Chen", "class_id": 3},
            "expect": "a booking for Maya in Zumba (1 of 2 places was taken); credits 2 to 1",
        },
        {
            "tool": "book_class",
            "arguments": {"member_name": "Sam Okafor", "class_id": 3},
            "expect": "refused: Zumba is full (capacity 2)",
        },
        {
            "tool": "cancel_booking",
            "arguments": {"member_name": "Sam Okafor", "class_id": 4},
            "expect": "Sam's HIIT booking cancelled; credits 1 to 2",
        },
        {
            "tool": "add_credits",
            "arguments": {"member_name": "Lena Fischer", "credits": 0},
            "expect": "refused: credits must be 1 to 50",
        },
        {"tool": "find_member", "arguments": {"name": "Nobody Here"}, "expect": "refused: no such member"},
        {"tool": "list_bookings", "arguments": {"member_name": "Sam Okafor"}, "expect": "one cancelled booking"},
    ]
}
VERDICTS = {
    "verdicts": [
        {"index": i, "verdict": "pass", "reason": "behaves as the rules say"} for i in range(len(TEST_PLAN["calls"]))
    ]
}


def _state(**changes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    rows = copy.deepcopy(STATE_ROWS)
    rows.update(changes)
    return rows


SCENARIO_1 = {
    "id": "morning-yoga-brooklyn",
    "task": "I'm Maya Chen. Book me into the yoga class in New York tomorrow morning, please.",
    "state": _state(),
    "clock": CLOCK,
    "checklist": ["Maya has a place in Morning Vinyasa", "Maya spent one credit"],
    "checks": [
        {
            "id": "maya-booked",
            "description": "Maya has an active booking in class 1",
            "code": (
                "def check(initial, final):\n"
                "    return any(b['class_id'] == 1 and b['member_id'] == 1 and b['status'] == 'booked'\n"
                "               for b in final['bookings'])"
            ),
        },
        {
            "id": "credit-spent",
            "description": "Maya has one credit fewer",
            "code": (
                "def check(initial, final):\n"
                "    before = next(m for m in initial['members'] if m['id'] == 1)['credits']\n"
                "    after = next(m for m in final['members'] if m['id'] == 1)['credits']\n"
                "    return after == before - 1"
            ),
        },
    ],
    "oracle": [
        {"tool": "find_classes", "arguments": {"city": "New York", "style": "yoga", "date": "2026-05-05"}},
        {"tool": "book_class", "arguments": {"member_name": "Maya Chen", "class_id": 1}},
    ],
}

SCENARIO_2 = {
    "id": "swap-hiit-for-zumba",
    "task": "This is Sam Okafor. I can't make my HIIT class on Wednesday; cancel it and put me in Zumba Blast instead.",
    "state": _state(bookings=[{"id": 2, "class_id": 4, "member_id": 2, "status": "booked"}]),
    "clock": CLOCK,
    "checklist": ["Sam's HIIT booking is cancelled", "Sam has a place in Zumba Blast"],
    "checks": [
        {
            "id": "hiit-cancelled",
            "description": "booking 2 (Sam, HIIT) is cancelled",
            "code": (
                "def check(initial, final):\n"
                "    return any(b['id'] == 2 and b['status'] == 'cancelled' for b in final['bookings'])"
            ),
        },
        {
            "id": "zumba-booked",
            "description": "Sam has an active booking in class 3",
            "code": (
                "def check(initial, final):\n"
                "    return any(b['class_id'] == 3 and b['member_id'] == 2 and b['status'] == 'booked'\n"
                "               for b in final['bookings'])"
            ),
        },
    ],
    "oracle": [
        {"tool": "list_bookings", "arguments": {"member_name": "Sam Okafor"}},
        {"tool": "cancel_booking", "arguments": {"member_name": "Sam Okafor", "class_id": 4}},
        {"tool": "find_classes", "arguments": {"city": "New York", "style": "zumba"}},
        {"tool": "book_class", "arguments": {"member_name": "Sam Okafor", "class_id": 3}},
    ],
}


def entries() -> list[dict[str, Any]]:
    """The good run: one answer per request the pipeline makes."""
    env = "Environment: fitness_classes"
    return [
        {"tool": "submit_judgements", "answer": JUDGEMENTS},
        {"tool": "submit_design", "match": [env], "answer": DESIGN},
        {"tool": "submit_code", "match": [env], "answer": CODE},
        {"tool": "submit_state", "match": [env], "answer": STATE},
        {"tool": "submit_test_plan", "match": [env], "answer": TEST_PLAN},
        {"tool": "submit_verdicts", "match": [env], "answer": VERDICTS},
        {"tool": "submit_scenario", "match": [env, "Scenario 1 of"], "answer": SCENARIO_1},
        {"tool": "submit_scenario", "match": [env, "Scenario 2 of"], "answer": SCENARIO_2},
    ]


def script(before: list[dict[str, Any]] | None = None, faults: list[dict[str, int]] | None = None) -> dict[str, Any]:
    """The fake server's script: ``before`` entries (answered first, once each) then the good run."""
    first = [{**e, "uses": e.get("uses", 1)} for e in (before or [])]
    return {"entries": first + entries(), "faults": faults or []}
