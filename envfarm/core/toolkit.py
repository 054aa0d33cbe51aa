"""The environment author's toolkit: what most ``tools.py`` files need beside their own domain.

Parameter types whose JSON Schema every value it admits fits SQLite (ids, cents,
dates, emails), a LIKE pattern that takes the agent's text literally, money as
people write it, and the contact-update pattern (email and/or phone, email unique
per table). Import what you need::

    from envfarm.core.toolkit import DateStr, Id, Name, like, money, update_contact
"""

from __future__ import annotations

import ast
import hashlib
import json
import operator
import re
from collections.abc import Callable, Mapping
from typing import Annotated, Any

from pydantic import Field

from envfarm.core.tools import ToolContext, ToolError

SQLITE_MAX_INT = 2**63 - 1
"""The largest integer SQLite stores: a bound on every integer parameter, so no value the schema admits overflows."""

Id = Annotated[int, Field(ge=1, le=SQLITE_MAX_INT)]
"""A row id (1 and up)."""

Cents = Annotated[int, Field(ge=0, le=SQLITE_MAX_INT)]
"""An amount of money in integer cents, zero allowed."""

PositiveCents = Annotated[int, Field(gt=0, le=SQLITE_MAX_INT)]
"""An amount of money in integer cents, more than zero."""

DateStr = Annotated[str, Field(json_schema_extra={"format": "date"})]
"""A date as ``YYYY-MM-DD`` (checked against JSON Schema's ``date`` format before the tool runs)."""

# Free text is bounded in the schema, so no agent can send SQLite a string too long to store or match
# (a 50,000-character LIKE pattern is "too complex" for it); the bounds are far past any real value.

Email = Annotated[str, Field(max_length=254, json_schema_extra={"format": "email"})]
"""An email address (checked against JSON Schema's ``email`` format before the tool runs): at most 254
characters, the longest SMTP delivers (RFC 5321)."""

SearchText = Annotated[str, Field(max_length=200)]
"""Free text to search for: at most 200 characters."""

Name = Annotated[str, Field(max_length=200)]
"""A name (of a person, a place, a thing) or a one-line title: at most 200 characters."""

Code = Annotated[str, Field(max_length=64)]
"""An identifier as people read it out (a barcode, a booking reference, an account number): at most 64
characters."""

Phone = Annotated[str, Field(max_length=50)]
"""A phone number as people write it (spaces, dashes, an extension): at most 50 characters."""

Note = Annotated[str, Field(max_length=2000)]
"""Free text a person writes (a reason, a comment, a description): at most 2,000 characters."""

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def like(text: str) -> str:
    """A LIKE pattern matching ``text`` anywhere, its own ``%``, ``_`` and ``\\`` taken literally.

    Use it with ``ESCAPE '\\'``: ``ctx.all("... WHERE name LIKE ? ESCAPE '\\'", (like(query),))``.
    """
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def money(cents: int, symbol: str = "$", *, thousands: bool = False, whole: bool = False) -> str:
    """Cents as people write them: ``money(1250)`` is ``$12.50``, ``money(-250)`` is ``-$2.50``.

    ``symbol`` goes before the amount (``"EUR "`` gives ``EUR 12.50``); ``thousands`` groups the
    units (``$1,234.00``); ``whole`` leaves out ``.00`` on whole amounts (``$1,234``).
    """
    sign = "-" if cents < 0 else ""
    units, rest = divmod(abs(cents), 100)
    amount = f"{units:,}" if thousands else str(units)
    return f"{sign}{symbol}{amount}" + ("" if whole and rest == 0 else f".{rest:02d}")


def unique_email(ctx: ToolContext, table: str, email: str, row_id: int | None, noun: str, rule: str | None) -> str:
    """The address, trimmed, if it looks like one and no other row of ``table`` has it (case-insensitive).

    ``row_id`` is the row being changed (None for a new one); ``noun`` names a row in the refusal
    ("member"); ``rule`` is the environment's rule id for unique addresses, if it has one.
    """
    email = email.strip()
    if not _EMAIL.fullmatch(email):
        raise ToolError(f"{email!r} is not an email address")
    other = ctx.one(
        f'SELECT id, name FROM "{table}" WHERE lower(email) = lower(?) AND id IS NOT ?',
        (email, row_id),
    )
    if other is not None:
        raise ToolError(f"email {email} already belongs to {noun} {other['id']} ({other['name']})", rule=rule)
    return email


def update_contact(
    ctx: ToolContext,
    table: str,
    row: dict[str, Any],
    email: str | None,
    phone: str | None,
    *,
    noun: str,
    rule: str | None = None,
) -> dict[str, Any]:
    """Change a person's email and/or phone (the common contact-update tool's body).

    ``row`` is the person's current row (``id``, ``name``, ``email``, ``phone``), already looked up by
    the tool so that an unknown id is refused in the tool's own words. Returns the id, name and the
    contact details as they now are; the caller adds its own id key.
    """
    if email is None and phone is None:
        raise ToolError("nothing to change: give a new email, a new phone number, or both")
    values: dict[str, Any] = {}
    if email is not None:
        values["email"] = unique_email(ctx, table, email, row["id"], noun, rule)
    if phone is not None:
        if not phone.strip():
            raise ToolError("phone is empty")
        values["phone"] = phone.strip()
    ctx.update(table, {"id": row["id"]}, values)
    return {
        "name": row["name"],
        "email": values.get("email", row["email"]),
        "phone": values.get("phone", row["phone"]),
    }


# --- a calculator tool's arithmetic -------------------------------------------------------------


_CALCULATOR_CHARACTERS = frozenset("0123456789+-*/(). ")
_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
_MAX_POWER_BITS = 1 << 20  # an integer power past this (~315,000 digits) is never a float again


def calculate_text(expression: str) -> str:
    """Python's arithmetic on an expression of digits, ``+ - * / ( ) .`` and spaces, rounded to 2 places,
    without eval; a refusal words the problem as Python would. tau2-bench's ``calculate`` tool answers
    exactly this (both tau2 environments use it)."""
    if not all(c in _CALCULATOR_CHARACTERS for c in expression):
        raise ToolError("Invalid characters in expression")
    try:
        tree = ast.parse(expression.lstrip(" \t"), "<string>", "eval")
        return str(round(float(_evaluate(tree.body)), 2))
    except (SyntaxError, ArithmeticError, TypeError, ValueError, RecursionError) as e:
        raise ToolError(str(e)) from None


def _huge_power(base: Any, exponent: Any) -> bool:
    """An integer power too large to compute (tau2 would grind at it, then fail to make it a float)."""
    if type(base) is not int or type(exponent) is not int or exponent <= 0:
        return False
    return exponent * max(abs(base).bit_length() - 1, 0) > _MAX_POWER_BITS


def _evaluate(node: ast.AST) -> Any:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate(node.operand))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _evaluate(node.left), _evaluate(node.right)
        if isinstance(node.op, ast.Pow) and _huge_power(left, right):
            raise OverflowError("int too large to convert to float")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.Tuple) and not node.elts:  # "()"
        return ()
    if isinstance(node, ast.Call):  # "(2)(3)": Python evaluates both, then cannot call a number
        callee = _evaluate(node.func)
        for arg in node.args:
            _evaluate(arg.value if isinstance(arg, ast.Starred) else arg)
        raise TypeError(f"'{type(callee).__name__}' object is not callable")
    raise ValueError("invalid syntax")  # nothing else parses from these characters


# --- a state as a benchmark's own nested database document ----------------------------------------

StateRows = Mapping[str, list[dict[str, Any]]]
"""A state view: each table's rows."""


class NestedDocument:
    """A state dumped as the nested JSON document an imported benchmark keeps its database in, and that
    document's sha256 (of its sorted-key JSON, as tau2-bench's ``get_db_hash`` takes it).

    ``parts`` names each top-level entry: the tables it is built from, and how. An entry's JSON is
    kept and used again while those tables are the very same objects, so hashing a replay's final
    view (which shares the initial view's unchanged tables) dumps only what changed.
    """

    def __init__(self, parts: dict[str, tuple[tuple[str, ...], Callable[[StateRows], Any]]]) -> None:
        self.parts = parts
        self._dumped: dict[str, tuple[list[Any], str]] = {}

    def document(self, view: StateRows) -> dict[str, Any]:
        """The whole document, its entries in ``parts``' order."""
        return {name: build(view) for name, (_, build) in self.parts.items()}

    def sha256(self, view: StateRows) -> str:
        """The sha256 (hex) of the document's JSON with sorted keys."""
        texts = []
        for name in sorted(self.parts):
            tables, build = self.parts[name]
            sources = [view[t] for t in tables]
            kept = self._dumped.get(name)
            if kept is not None and all(a is b for a, b in zip(kept[0], sources, strict=True)):
                text = kept[1]
            else:
                text = json.dumps(build(view), sort_keys=True, default=str)
                self._dumped[name] = (sources, text)
            texts.append(f"{json.dumps(name)}: {text}")
        return hashlib.sha256(("{" + ", ".join(texts) + "}").encode()).hexdigest()
