"""The university's tables: terms, students, courses, prerequisites, sections, enrollments, holds.

Dates are ISO strings (``YYYY-MM-DD``), meeting times ``HH:MM`` (24 h) and money
integer cents. Columns that hold one of a few values carry a CHECK constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Term(Base, table=True):
    """An academic term with its teaching dates and add/drop deadline."""

    __tablename__ = "terms"
    id: int = Field(primary_key=True)
    code: str = Field(unique=True)  # e.g. 2026FA
    name: str = Field(unique=True)  # e.g. Fall 2026
    starts: str
    add_drop_deadline: str
    ends: str


class Student(Base, table=True):
    """A student in a degree program."""

    __tablename__ = "students"
    id: int = Field(primary_key=True)
    student_number: str = Field(unique=True)  # e.g. S1024
    name: str
    email: str = Field(unique=True)
    program: str
    year: int  # 1..4


class Course(Base, table=True):
    """A course in the catalogue, identified by its code such as 'CS 201'."""

    __tablename__ = "courses"
    id: int = Field(primary_key=True)
    code: str = Field(unique=True)
    title: str
    department: str
    credits: int


class Prerequisite(Base, table=True):
    """Course ``course_id`` requires ``required_course_id`` completed with at least ``min_grade``."""

    __tablename__ = "prerequisites"
    id: int = Field(primary_key=True)
    course_id: int = Field(foreign_key="courses.id")
    required_course_id: int = Field(foreign_key="courses.id")
    min_grade: str  # a letter grade, e.g. C


class Section(Base, table=True):
    """One offering of a course in a term, meeting on fixed days at fixed times."""

    __tablename__ = "sections"
    id: int = Field(primary_key=True)
    course_id: int = Field(foreign_key="courses.id")
    term_id: int = Field(foreign_key="terms.id")
    section_code: str  # 001, 002, S01
    days: str  # letters of M T W R F, e.g. MWF, TR
    start_time: str  # HH:MM
    end_time: str  # HH:MM
    room: str
    instructor: str
    capacity: int


class Enrollment(Base, table=True):
    """A student in a section: enrolled, waitlisted (queue order = registered_on, id), dropped or completed."""

    __tablename__ = "enrollments"
    __table_args__ = (
        CheckConstraint("status IN ('enrolled', 'waitlisted', 'dropped', 'completed')", name="enrollment_status_known"),
    )
    id: int = Field(primary_key=True)
    student_id: int = Field(foreign_key="students.id")
    section_id: int = Field(foreign_key="sections.id")
    status: str  # enrolled | waitlisted | dropped | completed
    registered_on: str
    dropped_on: str | None = None
    grade: str | None = None  # letter grade once completed


class Hold(Base, table=True):
    """A registration hold on a student's account; a financial hold carries the amount owed."""

    __tablename__ = "holds"
    __table_args__ = (
        CheckConstraint("kind IN ('financial', 'advising', 'registrar')", name="hold_kind_known"),
        CheckConstraint("status IN ('active', 'cleared')", name="hold_status_known"),
    )
    id: int = Field(primary_key=True)
    student_id: int = Field(foreign_key="students.id")
    kind: str  # financial | advising | registrar
    reason: str
    amount_cents: int = 0  # owed, for a financial hold
    paid_cents: int = 0
    status: str = "active"  # active | cleared
    placed: str
    cleared: str | None = None
