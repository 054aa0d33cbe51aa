"""Errors at the HTTP edge: one mapping from envfarm's exceptions to statuses, one body shape per kind of path.

Everything below the edge raises :mod:`envfarm.core.errors` exceptions and knows
nothing of HTTP; :func:`install_error_handlers` turns them into answers for every
FastAPI app envfarm serves (the farm, the validator, the router). Every error is
JSON, whoever answers it (a route, a middleware, FastAPI, the MCP SDK):

- the control API (and any other path) answers ``{"detail": ...}``: a message, or for
  a body that does not validate FastAPI's list of ``{"loc", "msg", "type"}`` (never
  the input itself);
- an MCP endpoint (``/episodes/{id}/mcp``) answers a JSON-RPC error carrying the
  request's id when it could be read (:func:`error_body`).

Error messages are bounded and always encodable (:func:`envfarm.serve.inputs.tidy`) and
rendered by :class:`SafeJSONResponse`, which cannot fail to encode. Successful answers
keep FastAPI's fast path (pydantic writes the JSON): what they carry is either input,
checked where it entered (:mod:`envfarm.serve.inputs`), or the environment's own data;
a check's error text, written by untrusted code, is escaped by the scoring layer. Should
one still fail to encode, the answer is a JSON ``500``, and the log has the traceback.
"""

from __future__ import annotations

import json
import logging
import math
import re
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException
from starlette.types import Scope, Send

from envfarm.core.errors import Conflict, EnvfarmError, InvalidInput, Misdirected, NotFound, Unavailable
from envfarm.serve.inputs import InputProblem, safe_key, tidy

log = logging.getLogger("envfarm.errors")

MCP_PATH = re.compile(r"^/episodes/(?P<id>[^/]+)/mcp$")
"""An episode's MCP endpoint: its errors are JSON-RPC errors."""

RETRY_AFTER_SECONDS = 5

EPISODE_UNAVAILABLE = -32001
"""The JSON-RPC error code of an MCP request whose episode is gone (never existed, deleted, reaped, lost)."""
PARSE_ERROR, INVALID_REQUEST, INVALID_PARAMS, INTERNAL_ERROR = -32700, -32600, -32602, -32603


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
    (Misdirected, 421),  # an episode of another node: the answer names it (envfarm.core.nodes)
]


def status_of(error: EnvfarmError) -> int:
    """The HTTP status for an envfarm error (500 for a kind that is not a client's doing)."""
    return next((status for kind, status in STATUS if isinstance(error, kind)), 500)


def is_mcp(path: str) -> bool:
    return MCP_PATH.match(path) is not None


# -- rendering ---------------------------------------------------------------------------------------


class SafeJSONResponse(JSONResponse):
    """JSON that always encodes: UTF-8 as usual; lone surrogates escaped and non-finite numbers made null otherwise."""

    def render(self, content: Any) -> bytes:
        return render_json(content)


def render_json(content: Any) -> bytes:
    """``content`` as compact UTF-8 JSON, whatever strings and floats it holds."""
    try:
        return json.dumps(content, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode("utf-8")
    except ValueError:  # a lone surrogate (UnicodeEncodeError), or NaN or an infinity, which JSON cannot write
        # \\udXXX escapes are valid JSON text, and a non-finite number becomes null
        return json.dumps(_finite(content), allow_nan=False, separators=(",", ":")).encode("ascii")


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def jsonrpc_error(message: str, request_id: Any = None, code: int = EPISODE_UNAVAILABLE) -> str:
    """A JSON-RPC error body for an MCP endpoint (no such episode, lost worker, refused request)."""
    error = {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": tidy(message)}}
    return json.dumps(error, separators=(",", ":"))


def jsonrpc_code(status: int) -> int:
    """The JSON-RPC code of an MCP endpoint's refusal with this HTTP status."""
    if status in (404, 502):
        return EPISODE_UNAVAILABLE
    return INTERNAL_ERROR if status >= 500 else INVALID_REQUEST


def error_body(path: str, status: int, message: str, request_id: Any = None, code: int | None = None) -> bytes:
    """The body of an error answer on ``path``: JSON-RPC on an MCP endpoint, ``{"detail": message}`` elsewhere."""
    if is_mcp(path):
        return jsonrpc_error(message, request_id, jsonrpc_code(status) if code is None else code).encode()
    return json.dumps({"detail": tidy(message)}, separators=(",", ":")).encode()


async def refuse(
    scope: Scope,
    send: Send,
    status: int,
    message: str,
    headers: list[tuple[bytes, bytes]] | None = None,
    request_id: Any = None,
    code: int | None = None,
) -> None:
    """Answer an error from ASGI middleware (before any app has run), in the path's shape."""
    body = error_body(scope.get("path", ""), status, message, request_id, code)
    start = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": start + (headers or [])})
    await send({"type": "http.response.body", "body": body})


async def refuse_input(scope: Scope, send: Send, problem: InputProblem, request_id: Any = None) -> None:
    """Refuse a body holding what it may not: 422 naming the field, or a JSON-RPC error on an MCP endpoint."""
    if is_mcp(scope.get("path", "")):
        code = INVALID_PARAMS if problem.loc[:1] == ("params",) else INVALID_REQUEST
        message = f"{problem.where()}: {problem.msg}" if problem.loc else problem.msg
        await refuse(scope, send, 400, message, request_id=request_id, code=code)
        return
    body = json.dumps({"detail": [problem.as_error()]}, separators=(",", ":")).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return f"HTTP {status}"


# -- handlers ----------------------------------------------------------------------------------------


def error_response(error: EnvfarmError) -> JSONResponse:
    """The answer for an envfarm error: its status, ``{"detail": ...}``, ``Retry-After`` when it has one."""
    headers = {"Retry-After": f"{error.retry_after:g}"} if isinstance(error, Unavailable) else None
    detail: Any = tidy(str(error))
    if isinstance(error, FieldError):
        loc = ["body", *(safe_key(p) for p in error.loc)]
        detail = [{"loc": loc, "msg": tidy(error.message), "type": "value_error"}]
    return SafeJSONResponse({"detail": detail}, status_of(error), headers=headers)


MAX_ERRORS = 20
"""Validation errors listed in one answer at most; a body with 50,000 bad keys does not get 50,000 back."""


def validation_errors(errors: Any) -> list[dict[str, Any]]:
    """FastAPI's validation errors as answered: ``loc``, ``msg``, ``type`` only; the input is never echoed.

    At most :data:`MAX_ERRORS` are listed; a last entry says how many more there were.
    """
    errors = list(errors)
    out = []
    for error in errors[:MAX_ERRORS]:
        msg = str(error.get("msg", "invalid"))
        if error.get("type") == "json_invalid" and isinstance(error.get("ctx"), dict) and "error" in error["ctx"]:
            msg = f"{msg}: {error['ctx']['error']}"  # json's own words (``Expecting value``), no input
        loc = [safe_key(p) for p in error.get("loc", ())]
        out.append({"loc": loc, "msg": tidy(msg, 500), "type": str(error.get("type", "value_error"))})
    if len(errors) > MAX_ERRORS:
        more = f"and {len(errors) - MAX_ERRORS} more errors like these (only the first {MAX_ERRORS} are listed)"
        out.append({"loc": ["body"], "msg": more, "type": "too_many_errors"})
    return out


def install_error_handlers(api: FastAPI) -> None:
    """Answer every error of ``api`` as JSON: envfarm's exceptions, bad bodies, HTTP errors, and bugs (500)."""

    async def envfarm_error(_: Request, error: Exception) -> Response:
        assert isinstance(error, EnvfarmError)
        return error_response(error)

    async def invalid_body(_: Request, error: Exception) -> Response:
        assert isinstance(error, RequestValidationError)
        return SafeJSONResponse({"detail": validation_errors(error.errors())}, 422)

    async def http_error(request: Request, error: Exception) -> Response:
        assert isinstance(error, HTTPException)
        if error.status_code in (204, 304):
            return Response(status_code=error.status_code, headers=error.headers)
        detail = error.detail if isinstance(error.detail, str) else reason(error.status_code)
        body = error_body(request.url.path, error.status_code, detail)
        return Response(body, error.status_code, headers=error.headers, media_type="application/json")

    async def bug(request: Request, error: Exception) -> Response:
        # Starlette logs the traceback after this answer; a 500 is always a bug in envfarm, never bad input.
        message = f"internal error ({type(error).__name__}); the server log has the details"
        return Response(error_body(request.url.path, 500, message), 500, media_type="application/json")

    api.add_exception_handler(EnvfarmError, envfarm_error)
    api.add_exception_handler(RequestValidationError, invalid_body)
    api.add_exception_handler(HTTPException, http_error)
    api.add_exception_handler(Exception, bug)
