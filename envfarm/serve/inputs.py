"""What a JSON request body may hold, checked once where requests enter, and how input is quoted back.

Python's ``json`` reads more than the farm can give back: lone UTF-16 surrogates
(``"\\ud800"``: not Unicode text, so no UTF-8 answer can carry them), ``NaN``,
``Infinity`` and numbers too large for a double (not JSON numbers), and nesting as
deep as the stack allows (no serializer writes it back). Any of them reaching a
tool, a state or a score ends as a 500 somewhere later, so every app refuses them
at the door (:class:`envfarm.serve.security.JsonInput`), naming the place:
``422 {"detail": [{"loc", "msg", "type"}]}`` on the control API, a JSON-RPC error
on an MCP endpoint.

The check is cheap for ordinary bodies: a scan for the few byte patterns that
could hide a problem (a ``\\uD800``-``\\uDFFF`` escape, ``NaN``, ``Infinity``, a
huge exponent or digit run, more brackets than the depth limit) decides whether
the body is parsed and walked at all.

Error messages never echo input whole: :func:`brief` quotes a caller's value
(escaped, cut to :data:`QUOTE_LIMIT` characters) and :func:`tidy` bounds a whole
message and makes it encodable.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

MAX_JSON_DEPTH = 64
"""Deepest nesting of arrays and objects a request body may have (the body itself is level 1)."""

QUOTE_LIMIT = 80
"""Characters of a caller's value quoted in an error message; the rest is cut, with the full length said."""

MESSAGE_LIMIT = 2000
"""Characters of an error message at most (a message may quote several values, or a list of them)."""

# A byte pattern that may hide a value refused here; without one (and with few brackets) a body is fine as is.
_SUSPECT = re.compile(rb"\\u[dD][89a-fA-F]|NaN|Infinity|[eE][+]?[0-9]{3}|[0-9]{300}")


@dataclass(frozen=True)
class InputProblem:
    """Where a body holds something it may not (``loc`` from the body's root) and what."""

    loc: tuple[str | int, ...]
    msg: str
    type: str

    def as_error(self, root: str = "body") -> dict[str, Any]:
        """FastAPI's shape of one validation error: ``loc``, ``msg``, ``type`` (never the input)."""
        return {"loc": [root, *self.loc], "msg": self.msg, "type": self.type}

    def where(self) -> str:
        """The place as a path: ``params.arguments.title``, ``items[0].trajectory``, or ``body``."""
        return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in self.loc).lstrip(".") or "body"


def brief(value: object, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)`` for a message: at most ``limit`` characters of it, saying how long a cut string was.

    ``repr`` escapes lone surrogates and control characters, so the result is printable,
    encodable text whatever the value holds.
    """
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value)} characters)" if isinstance(value, str) else ""
    return text[:limit] + "…" + size


def tidy(message: str, limit: int = MESSAGE_LIMIT) -> str:
    """A message fit for any answer: lone surrogates escaped, at most ``limit`` characters."""
    if not message.isascii():
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
    if len(message) > limit:
        message = message[:limit] + f"… ({len(message)} characters)"
    return message


def safe_key(key: object) -> str | int:
    """A caller's object key (or a ``loc`` entry) as it may appear in an answer: printable, encodable, short."""
    if isinstance(key, int) and not isinstance(key, bool):
        return key
    if isinstance(key, str) and len(key) <= QUOTE_LIMIT and key.isprintable() and not has_surrogate(key):
        return key
    return brief(key)


def has_surrogate(text: str) -> bool:
    """Whether ``text`` holds a lone UTF-16 surrogate (which no UTF-8 answer can carry)."""
    if text.isascii():
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _surrogate_problem(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        return (
            f"holds a lone UTF-16 surrogate (\\u{ord(text[e.start]):04x}) at character {e.start}, which is not "
            "Unicode text; send valid UTF-8 (a \\uD800-\\uDFFF escape must be half of a pair)"
        )
    return "holds no surrogate"  # pragma: no cover - only called for text that failed the check


def find_problem(value: Any, max_depth: int = MAX_JSON_DEPTH) -> InputProblem | None:
    """The first place in a parsed JSON value holding what a request may not hold, or None."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        item, loc = stack.pop()
        if isinstance(item, str):
            if has_surrogate(item):
                return InputProblem(loc, "a string that " + _surrogate_problem(item), "string_unicode")
        elif isinstance(item, float):
            if not math.isfinite(item):
                message = "not a finite number: JSON has no NaN or Infinity, and this one does not fit a double"
                return InputProblem(loc, message, "finite_number")
        elif isinstance(item, dict | list):
            if len(loc) >= max_depth:
                return InputProblem(loc, f"nested deeper than {max_depth} levels of arrays and objects", "json_depth")
            if isinstance(item, dict):
                for key, child in reversed(item.items()):
                    if has_surrogate(key):
                        message = "a key that " + _surrogate_problem(key)
                        return InputProblem((*loc, safe_key(key)), message, "key_unicode")
                    stack.append((child, (*loc, safe_key(key))))
            else:
                stack.extend((child, (*loc, i)) for i, child in reversed(list(enumerate(item))))
    return None


def is_json(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request's body is read as JSON: ``application/json``, ``*+json``, or no content type at all."""
    content_type = next((v for k, v in headers if k == b"content-type"), None)
    if content_type is None:
        return True
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (media.startswith(b"application/") and media.endswith(b"+json"))


NOT_PARSED: Any = object()
"""Stands for a body that was not parsed (it needed no closer look, or it is not JSON)."""


@dataclass(frozen=True)
class Inspected:
    """A body's verdict: its problem (if any) and, when it had to be parsed, what it holds."""

    problem: InputProblem | None
    parsed: Any = NOT_PARSED


def inspect_body(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Inspected:
    """Check a JSON request body. Malformed JSON is no problem here: the route's own parser says what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        where = f"byte 0x{body[e.start]:02x} at offset {e.start}"
        return Inspected(InputProblem((), f"the body is not UTF-8 text ({where}); send JSON in UTF-8", "utf8"))
    if not _SUSPECT.search(body) and body.count(b"[") + body.count(b"{") < max_depth:
        return Inspected(None)
    try:
        data = json.loads(text)
    except RecursionError:
        message = f"the body is nested deeper than {max_depth} levels of arrays and objects"
        return Inspected(InputProblem((), message, "json_depth"))
    except json.JSONDecodeError:
        return Inspected(None)
    except ValueError:  # an integer literal of more than 4300 digits (Python's limit): JSON, but not readable here
        return Inspected(InputProblem((), "the body holds a number with more than 4300 digits", "number_too_long"))
    return Inspected(find_problem(data, max_depth), data)


def request_id(body: bytes, parsed: Any = NOT_PARSED) -> str | int | None:
    """The JSON-RPC id of a request body when it can be read (a string or an integer), else None."""
    if parsed is NOT_PARSED:
        try:
            parsed = json.loads(body)
        except (ValueError, RecursionError):
            return None
    found = parsed.get("id") if isinstance(parsed, dict) else None
    if isinstance(found, bool) or not isinstance(found, str | int):
        return None
    if isinstance(found, str) and has_surrogate(found):
        return None
    return found
