"""How an environment declares a tool, and what a tool sees when it runs.

A tool is a plain function in an environment's ``tools.py``, marked with
:func:`tool`. Its signature and docstring are the single source of its manifest
entry: parameter types become JSON Schema (draft 2020-12), the docstring's
``Args:`` section becomes the parameter descriptions, and the kind (query or
mutation) is declared next to the code. Nothing is listed twice, so the manifest
cannot drift from the code (as in tau2-bench).

A tool receives a :class:`ToolContext` as its first argument: the episode's
SQLite connection, the scenario's frozen clock and a seeded random generator.
It reports a broken precondition by raising :class:`ToolError`; the runtime
turns that into an error result and rolls the call back.
"""

from __future__ import annotations

import inspect
import random
import re
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal, get_type_hints

from jsonschema import Draft202012Validator
from pydantic import Field, create_model

from envfarm.core.errors import EnvfarmError

ToolKind = Literal["query", "mutation"]
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

_TOOL_ATTR = "__envfarm_tool__"


class ToolError(EnvfarmError):
    """A tool's precondition failed; the message is shown to the agent.

    ``rule`` names the business rule (an id from the environment's rules) that
    refused the call, so scoring and logs can count violations per rule.

    A failed call is rolled back whole. ``keep_writes=True`` keeps what the call wrote
    before it failed: only for an environment imported from a benchmark whose own code
    fails half-way without undoing its writes (``tau2_airline``), so scores match its own.
    """

    def __init__(self, message: str, *, rule: str | None = None, keep_writes: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.rule = rule
        self.keep_writes = keep_writes


@dataclass(frozen=True)
class ToolSpec:
    """A tool as the runtime and the manifest see it."""

    name: str
    kind: ToolKind
    description: str
    input_schema: dict[str, Any]
    func: Callable[..., Any]
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        checker = Draft202012Validator.FORMAT_CHECKER
        object.__setattr__(self, "validator", Draft202012Validator(self.input_schema, format_checker=checker))

    def manifest_entry(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "description": self.description,
            "input_schema": self.input_schema,
        }


def tool(kind: ToolKind) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a function as a tool of kind ``query`` (reads only) or ``mutation``."""
    if kind not in ("query", "mutation"):
        raise ValueError(f"tool kind must be 'query' or 'mutation', not {kind!r}")

    def mark(func: Callable[..., Any]) -> Callable[..., Any]:
        setattr(func, _TOOL_ATTR, kind)
        return func

    return mark


def collect_tools(module: Any) -> list[ToolSpec]:
    """All functions marked with :func:`tool` in ``module``, in source order."""
    found = [
        obj
        for obj in vars(module).values()
        if inspect.isfunction(obj) and hasattr(obj, _TOOL_ATTR) and obj.__module__ == module.__name__
    ]
    found.sort(key=lambda f: f.__code__.co_firstlineno)
    return [spec_from_function(f) for f in found]


def spec_from_function(func: Callable[..., Any]) -> ToolSpec:
    """Derive a tool's name, description and input schema from its code.

    Raises ``ValueError`` naming the tool and the parameter when the function
    cannot be described (no docstring, an undocumented or untyped parameter).
    """
    name = func.__name__
    kind: ToolKind = getattr(func, _TOOL_ATTR)
    doc = inspect.getdoc(func)
    if not doc:
        raise ValueError(f"tool {name!r} has no docstring; its first paragraph is the tool description")
    summary, arg_docs = _parse_docstring(doc)
    params = list(inspect.signature(func).parameters.values())
    if not params or params[0].name != "ctx":
        raise ValueError(f"tool {name!r}: the first parameter must be 'ctx: ToolContext'")
    hints = get_type_hints(func, include_extras=True)
    fields: dict[str, Any] = {}
    for p in params[1:]:
        if p.kind not in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            raise ValueError(f"tool {name!r}: parameter {p.name!r} must be a plain named parameter")
        if p.name not in hints:
            raise ValueError(f"tool {name!r}: parameter {p.name!r} has no type annotation")
        if p.name not in arg_docs:
            raise ValueError(f"tool {name!r}: parameter {p.name!r} is not described in the docstring's Args")
        default = ... if p.default is inspect.Parameter.empty else p.default
        fields[p.name] = (hints[p.name], Field(default, description=arg_docs[p.name]))
    extra = set(arg_docs) - set(fields)
    if extra:
        raise ValueError(f"tool {name!r}: docstring describes unknown parameter(s) {sorted(extra)}")
    model = create_model(f"{name}_arguments", **fields)
    schema = model.model_json_schema()
    _strip_titles(schema)
    schema.pop("title", None)
    input_schema = {
        "$schema": JSON_SCHEMA_DIALECT,
        "type": "object",
        "properties": schema.get("properties", {}),
        "required": schema.get("required", []),
        "additionalProperties": False,
    }
    if "$defs" in schema:
        input_schema["$defs"] = schema["$defs"]
    return ToolSpec(name=name, kind=kind, description=summary, input_schema=input_schema, func=func)


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google-style docstring into its description and ``Args:`` entries."""
    lines = doc.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "Args:")
    except StopIteration:
        return doc.strip(), {}
    summary = "\n".join(lines[:start]).strip()
    args: dict[str, str] = {}
    current: str | None = None
    for line in lines[start + 1 :]:
        if not line.strip():
            continue
        if not line.startswith((" ", "\t")):
            break  # the next section (Returns:, Raises:) ends Args
        m = re.match(r"\s+(\w+)(?:\s*\([^)]*\))?:\s*(.*)", line)
        if m and (current is None or len(line) - len(line.lstrip()) <= 4):
            current = m.group(1)
            args[current] = m.group(2).strip()
        elif current is not None:
            args[current] = f"{args[current]} {line.strip()}".strip()
    return summary, args


def _strip_titles(node: Any) -> None:
    """Drop pydantic's generated ``title`` keys: they repeat the property name."""
    if isinstance(node, dict):
        props = node.get("properties")
        if isinstance(props, dict):
            for sub in props.values():
                if isinstance(sub, dict):
                    sub.pop("title", None)
        for value in node.values():
            _strip_titles(value)
    elif isinstance(node, list):
        for value in node:
            _strip_titles(value)


class ToolContext:
    """What a tool may use: the episode's database, its clock and its randomness.

    Time comes from the scenario's frozen clock and randomness from the episode
    seed, never from the wall clock or global state, so replaying the same calls
    always gives the same final state.
    """

    def __init__(self, db: sqlite3.Connection, now: datetime, rng: random.Random) -> None:
        self.db = db
        self.now = now
        self.random = rng

    @property
    def today(self) -> str:
        """The scenario's date as ``YYYY-MM-DD``."""
        return self.now.date().isoformat()

    def days_from_today(self, days: int) -> str:
        """The date ``days`` after the scenario's date, as ``YYYY-MM-DD``."""
        return (self.now.date() + timedelta(days=days)).isoformat()

    def one(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> dict[str, Any] | None:
        """The first row of a query as a dict, or None."""
        cur = self.db.execute(sql, params)
        row = cur.fetchone()
        if row is None:
            return None
        return dict(zip([c[0] for c in cur.description], row, strict=True))

    def all(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> list[dict[str, Any]]:
        """All rows of a query as dicts."""
        cur = self.db.execute(sql, params)
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def scalar(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> Any:
        """The first column of the first row, or None."""
        row = self.db.execute(sql, params).fetchone()
        return None if row is None else row[0]

    def execute(self, sql: str, params: Sequence[Any] | Mapping[str, Any] = ()) -> sqlite3.Cursor:
        """Run a statement that changes state; returns the cursor (``lastrowid``, ``rowcount``)."""
        return self.db.execute(sql, params)

    def insert(self, table: str, row: Mapping[str, Any]) -> int:
        """Insert one row and return its rowid."""
        cols = ", ".join(f'"{c}"' for c in row)
        marks = ", ".join("?" for _ in row)
        cur = self.db.execute(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', list(row.values()))
        assert cur.lastrowid is not None
        return cur.lastrowid

    def update(self, table: str, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Set ``values`` on the row(s) matching ``key``."""
        sets = ", ".join(f'"{c}" = ?' for c in values)
        where = " AND ".join(f'"{c}" = ?' for c in key)
        self.db.execute(f'UPDATE "{table}" SET {sets} WHERE {where}', [*values.values(), *key.values()])


def parse_date(value: str, what: str) -> date:
    """Parse ``YYYY-MM-DD`` or raise a ToolError naming the argument."""
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ToolError(f"{what} must be a date as YYYY-MM-DD, got {value!r}") from None
