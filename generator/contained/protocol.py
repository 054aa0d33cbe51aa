"""The contained worker's wire format: length-prefixed JSON frames, both ways, never pickle.

A frame is a 4-byte big-endian length, then that many bytes of UTF-8 JSON (one object).

worker -> parent, once at start: ``{"hello": {protections}, "env": {description}}`` when the
package loaded, ``{"hello": {...}, "problems": ["...", ...]}`` when it did not (the worker then
exits), or ``{"fatal": "why"}`` when the worker could not harden itself.

parent -> worker, then one reply each (``{"ok": false, "error": "why"}`` when it cannot be done):

- ``{"op": "open", "state": rows | "state-file name", "clock": iso, "seed": n}`` ->
  ``{"ok": true, "episode": n, "view": initial view}``: a fresh episode;
- ``{"op": "call", "episode": n, "tool": name, "arguments": {...}, "seconds": s, "view": bool}`` ->
  ``{"ok": true, "result": {tool, ok, value, error, rule, crashed}, "hash": sha256, "view"?: view}``;
- ``{"op": "view", "episode": n}`` -> ``{"ok": true, "view": view}``;
- ``{"op": "close", "episode": n}`` -> ``{"ok": true}``;
- ``{"op": "check_calls", "calls": [{"tool", "arguments"}, ...]}`` -> ``{"ok": true, "errors": [why | null]}``:
  each call's arguments against its tool's JSON Schema, without running it.

Everything the worker sends is untrusted: the parent reads it with a size cap and checks each
field's type (:func:`expect`) before using it.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

HEADER = struct.Struct(">I")
MAX_FRAME = 64 * 2**20  # a reply this large is a broken (or hostile) worker


class ProtocolError(Exception):
    """A frame that is not what the protocol says (too large, not JSON, a field of the wrong type)."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame: the length, then compact JSON."""
    payload = json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return HEADER.pack(len(payload)) + payload


def decode(payload: bytes) -> dict[str, Any]:
    try:
        message = json.loads(payload)
    except ValueError as e:
        raise ProtocolError(f"a frame that is not JSON ({e})") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a frame that is a JSON {type(message).__name__}, not an object")
    return message


# --- the worker's end: blocking reads and writes on its two file descriptors ---------------------


def read_frame(fd: int) -> dict[str, Any] | None:
    """The next request, or None when the parent closed the pipe."""
    header = _read_exact(fd, HEADER.size)
    if header is None:
        return None
    (size,) = HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"a request of {size} bytes")
    payload = _read_exact(fd, size)
    if payload is None:
        return None
    return decode(payload)


def write_frame(fd: int, message: dict[str, Any]) -> None:
    view = memoryview(encode(message))
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, n: int) -> bytes | None:
    parts: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            return None
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


# --- the parent's end: checking what came back ---------------------------------------------------


def expect(message: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``message[key]`` if it is of ``kind``, else ProtocolError (the worker broke the protocol)."""
    value = message.get(key)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"field {key!r} is {type(value).__name__}, expected {_names(kind)}")
    return value


def expect_view(value: Any) -> dict[str, list[dict[str, Any]]]:
    """A canonical state view: ``{table: [row objects]}``."""
    if not isinstance(value, dict) or not all(
        isinstance(t, str) and isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
        for t, rows in value.items()
    ):
        raise ProtocolError("a state view that is not {table: [rows]}")
    return value


def _names(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)
