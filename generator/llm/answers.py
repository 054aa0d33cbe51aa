"""Turning what a model said into a validated answer, or into a problem the model can fix.

Providers call these, so every provider words its problems the same way: "not valid JSON:
line 3 column 5: ...", "answer.entities[0].name: 'x' is not of type 'integer'", "the model did
not call submit_design (stop_reason: max_tokens)". The generator sends the problem back as a
repair turn, so it must say what is wrong and where.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from envfarm.generator.llm.errors import LLMError
from envfarm.generator.llm.request import Request

MAX_ERRORS = 10  # schema errors listed in one problem; more only bury the first ones
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_FENCE = re.compile(r"^```[A-Za-z0-9_-]*\s*\n(.*?)\n?```\s*$", re.DOTALL)


@lru_cache(maxsize=256)
def _validator(schema_json: str) -> Draft202012Validator:
    schema = json.loads(schema_json)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as e:
        raise LLMError(f"the answer schema is not a valid JSON Schema (draft 2020-12): {e.message}") from None
    return Draft202012Validator(schema)


def validator_for(schema: dict[str, Any]) -> Draft202012Validator:
    """A compiled validator, built once per distinct schema; ``LLMError`` if the schema itself is broken."""
    return _validator(json.dumps(schema, sort_keys=True))


def json_path(path: Any) -> str:
    """``answer.entities[0].name`` for the path ``["entities", 0, "name"]``."""
    out = "answer"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _IDENTIFIER.match(str(part)):
            out += f".{part}"
        else:
            out += f"[{json.dumps(part)}]"
    return out


def schema_problem(data: Any, schema: dict[str, Any]) -> str | None:
    """Every way ``data`` breaks ``schema`` (up to ``MAX_ERRORS``), one per line, each naming its field."""
    errors = sorted(validator_for(schema).iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    if not errors:
        return None
    lines = [f"{json_path(e.absolute_path)}: {_short(e.message)}" for e in errors[:MAX_ERRORS]]
    if len(errors) > MAX_ERRORS:
        lines.append(f"... and {len(errors) - MAX_ERRORS} more")
    return "\n".join(lines)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def parse_json(text: str) -> tuple[Any, str | None]:
    """The parsed value, or the problem naming line and column."""
    try:
        return json.loads(text), None
    except json.JSONDecodeError as e:
        return None, f"not valid JSON: line {e.lineno} column {e.colno}: {e.msg}"


def from_tool_input(value: Any, request: Request) -> tuple[dict[str, Any] | None, str | None]:
    """Check an already-parsed tool input against the request's schema."""
    problem = schema_problem(value, request.schema)
    if problem is not None:
        return None, problem
    if not isinstance(value, dict):
        return None, f"answer: must be a JSON object, not {type(value).__name__}"
    return value, None


def from_arguments(text: str, request: Request) -> tuple[dict[str, Any] | None, str | None]:
    """Parse and check tool arguments given as JSON text (the OpenAI shape)."""
    value, problem = parse_json(text)
    if problem is not None:
        return None, problem
    return from_tool_input(value, request)


def cut_off(request: Request) -> str:
    """The problem of an answer that hit ``max_tokens`` mid-way (a truncated answer is never used)."""
    return f"the answer was cut off at max_tokens ({request.max_tokens}) before it was complete"


def from_text(text: str, request: Request, why: str) -> tuple[dict[str, Any] | None, str | None]:
    """A JSON object written as plain text by a model that did not call the tool (some servers do that).

    ``why`` is the stop reason, put into the problem when the text holds no usable answer.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1).strip()
    missed = f"the model did not call {request.schema_name} ({why})"
    if not body:
        return None, f"{missed} and said nothing"
    if not body.startswith("{"):
        start, end = body.find("{"), body.rfind("}")
        if start < 0 or end <= start:
            return None, f"{missed}; its text holds no JSON object: {_short(body, 200)!r}"
        body = body[start : end + 1]
    value, problem = parse_json(body)
    if problem is not None:
        return None, f"{missed}; its text is {problem}"
    return from_tool_input(value, request)
