"""The JSON Schemas of what each generator stage asks an LLM to answer.

Each stage forces one tool call (Anthropic tool use, OpenAI function calling)
whose input must match its schema; the LLM layer validates the answer against it
before the generator sees it, so the stages only check meaning, not shape.
"""

from __future__ import annotations

from typing import Any

NAME = {"type": "string", "pattern": r"^[a-z][a-z0-9_]{0,39}$"}
SLUG = {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_-]{0,63}$"}
TEXT = {"type": "string", "minLength": 1}
SCORE = {"type": "integer", "minimum": 1, "maximum": 5}
ROWS = {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "object"}}}
CALL = {
    "type": "object",
    "properties": {"tool": TEXT, "arguments": {"type": "object"}},
    "required": ["tool", "arguments"],
    "additionalProperties": False,
}


def _object(properties: dict[str, Any], optional: tuple[str, ...] = ()) -> dict[str, Any]:
    """A closed object schema whose properties are all required but ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [k for k in properties if k not in optional],
        "additionalProperties": False,
    }


JUDGEMENTS = _object(
    {
        "judgements": {
            "type": "array",
            "items": _object(
                {
                    "task_id": TEXT,
                    "stateful": {"type": "boolean"},
                    "environment": NAME,
                    "title": TEXT,
                    "description": TEXT,
                    "usefulness": SCORE,
                    "modelability": SCORE,
                    "reason": TEXT,
                }
            ),
        }
    }
)

DESIGN = _object(
    {
        "title": TEXT,
        "description": TEXT,
        "entities": {
            "type": "array",
            "minItems": 1,
            "items": _object(
                {
                    "table": NAME,
                    "description": TEXT,
                    "attributes": {
                        "type": "array",
                        "minItems": 1,
                        "items": _object(
                            {
                                "name": NAME,
                                "type": {"enum": ["int", "str", "float", "bool"]},
                                "description": TEXT,
                                "primary_key": {"type": "boolean"},
                                "references": {"type": "string"},
                            },
                            optional=("primary_key", "references"),
                        ),
                    },
                }
            ),
        },
        "rules": {
            "type": "array",
            "minItems": 1,
            "items": _object(
                {"id": SLUG, "text": TEXT, "invariant": {"type": ["string", "null"]}}, optional=("invariant",)
            ),
        },
        "operations": {
            "type": "array",
            "minItems": 2,
            "items": _object(
                {
                    "name": NAME,
                    "kind": {"enum": ["query", "mutation"]},
                    "description": TEXT,
                    "parameters": {
                        "type": "array",
                        "items": _object(
                            {"name": NAME, "type": TEXT, "description": TEXT, "required": {"type": "boolean"}}
                        ),
                    },
                }
            ),
        },
    }
)

CODE = _object({"models_py": TEXT, "tools_py": TEXT})

STATE = _object({"state": ROWS, "clock": TEXT})

TEST_PLAN = _object(
    {
        "calls": {
            "type": "array",
            "minItems": 1,
            "items": _object({"tool": TEXT, "arguments": {"type": "object"}, "expect": TEXT}),
        }
    }
)

VERDICTS = _object(
    {
        "verdicts": {
            "type": "array",
            "items": _object(
                {
                    "index": {"type": "integer", "minimum": 0},
                    "verdict": {"enum": ["pass", "warning", "fail"]},
                    "reason": TEXT,
                }
            ),
        }
    }
)

SCENARIO = _object(
    {
        "id": SLUG,
        "task": TEXT,
        "state": ROWS,
        "clock": TEXT,
        "checklist": {"type": "array", "minItems": 1, "items": TEXT},
        "checks": {
            "type": "array",
            "minItems": 1,
            "items": _object(
                {"id": SLUG, "description": TEXT, "code": TEXT, "preserve": {"type": "boolean"}},
                optional=("preserve",),
            ),
        },
        "oracle": {"type": "array", "minItems": 1, "items": CALL},
    }
)
