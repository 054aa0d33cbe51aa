"""Errors at the HTTP edge: one mapping from envfarm's exceptions to statuses, one body shape.

Everything below the edge raises :mod:`envfarm.core.errors` exceptions and knows
nothing of HTTP; :func:`install_error_handlers` turns them into answers for every
FastAPI app the farm serves (the farm, the validator). The control API answers
``{"detail": ...}``; an MCP endpoint answers a JSON-RPC error (:func:`jsonrpc_error`).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from envfarm.core.errors import Conflict, EnvfarmError, InvalidInput, NotFound, Unavailable


class UpstreamFailed(EnvfarmError):
    """A service this one depends on (the farm, for a standalone validator) could not be reached or read."""


class FieldError(InvalidInput):
    """Bad input at a known place in the request body; answered like FastAPI's own validation errors."""

    def __init__(self, loc: list[str | int], message: str) -> None:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        super().__init__(f"{where}: {message}" if where else message)
        self.loc = loc
        self.message = message


STATUS: list[tuple[type[EnvfarmError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (Unavailable, 503),
    (UpstreamFailed, 502),
]


def status_of(error: EnvfarmError) -> int:
    """The HTTP status for an envfarm error (500 for a kind that is not a client's doing)."""
    return next((status for kind, status in STATUS if isinstance(error, kind)), 500)


def error_response(error: EnvfarmError) -> JSONResponse:
    """The answer for an envfarm error: its status, ``{"detail": ...}``, ``Retry-After`` when it has one."""
    headers = {"Retry-After": f"{error.retry_after:g}"} if isinstance(error, Unavailable) else None
    detail: Any = str(error)
    if isinstance(error, FieldError):
        detail = [{"loc": ["body", *error.loc], "msg": error.message, "type": "value_error"}]
    return JSONResponse({"detail": detail}, status_of(error), headers=headers)


def install_error_handlers(api: FastAPI) -> None:
    """Map envfarm's exceptions to answers on ``api``."""

    async def handle(_: Request, error: Exception) -> JSONResponse:
        assert isinstance(error, EnvfarmError)
        return error_response(error)

    api.add_exception_handler(EnvfarmError, handle)


EPISODE_UNAVAILABLE = -32001
"""The JSON-RPC error code of an MCP request whose episode is gone (never existed, deleted, reaped, lost)."""


def jsonrpc_error(message: str, request_id: Any = None, code: int = EPISODE_UNAVAILABLE) -> str:
    """A JSON-RPC error body for an MCP endpoint that cannot serve the request (no such episode, lost worker)."""
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}})
