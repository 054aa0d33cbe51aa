"""What every request passes before an app sees it: who may talk, how big a body may be, what JSON it may hold.

:func:`guard` wraps each app envfarm serves (farm, validator, router) in the same
layers, outermost first, so there is one place that decides for the control API
and every MCP endpoint alike:

- :class:`Abandoned`: a request the server gives up on before answering it (cancelled
  when the shutdown's grace period ends) is answered ``503`` + ``Retry-After``, not a
  bare 500;
- :class:`AccessGuard`: Host/Origin allow-lists against DNS rebinding (a browser page
  on another origin that resolves its own name to 127.0.0.1 sends that name as Host,
  refused 421, or its origin as Origin, refused 403), and an optional bearer token (401);
- :class:`BodyLimit`: bodies over ``ENVFARM_MAX_BODY_BYTES`` are refused (413);
- :class:`JsonInput`: JSON bodies holding lone surrogates, NaN or Infinity, or nesting
  past :data:`~envfarm.serve.inputs.MAX_JSON_DEPTH` are refused naming the place (422).

Every refusal is JSON in the path's shape (:func:`envfarm.serve.errors.refuse`).
"""

from __future__ import annotations

import asyncio
import hmac

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from envfarm.serve.errors import RETRY_AFTER_SECONDS, refuse, refuse_input
from envfarm.serve.inputs import MAX_JSON_DEPTH, Inspected, brief, inspect_body, is_json, request_id
from envfarm.serve.settings import FarmSettings

REQUEST_BODY = "envfarm.request_body"
"""Scope key where an MCP endpoint leaves the body it serves, so an answer made outside it can carry its id."""

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def default_allowed_hosts(bind_host: str) -> list[str]:
    """Loopback names always; the bound address too when it is a specific one."""
    hosts = list(LOOPBACK_HOSTS)
    if bind_host not in ("0.0.0.0", "::", "", *LOOPBACK_HOSTS, "::1"):
        hosts.append(f"[{bind_host}]" if ":" in bind_host else bind_host)
    return hosts


def _host_allowed(host: str, allowed: list[str]) -> bool:
    """Whether a Host value (name, optionally ``:port``; IPv6 in brackets) names an allowed host."""
    name = host[: host.find("]") + 1] if host.startswith("[") else host.split(":", 1)[0]
    return bool(name) and name.lower() in allowed


def _origin_allowed(origin: str, allowed_hosts: list[str]) -> bool:
    scheme, _, rest = origin.partition("://")
    return scheme in ("http", "https") and _host_allowed(rest.rstrip("/"), allowed_hosts)


class AccessGuard:
    """ASGI middleware: refuse requests whose Host or Origin is not allowed, or that lack the token."""

    def __init__(
        self,
        app: ASGIApp,
        allowed_hosts: list[str],
        token: str | None = None,
        open_paths: tuple[str, ...] = ("/healthz",),
    ) -> None:
        self.app = app
        self.allowed_hosts = allowed_hosts
        self.token = token
        self.open_paths = open_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        if not _host_allowed(host, self.allowed_hosts):
            await refuse(
                scope,
                send,
                421,
                f"Host {brief(host)} is not allowed (DNS rebinding protection); "
                f"allowed: {', '.join(self.allowed_hosts)}; add one with --allow-host",
            )
            return
        origin = headers.get("origin")
        if origin and not _origin_allowed(origin, self.allowed_hosts):
            await refuse(scope, send, 403, f"Origin {brief(origin)} is not allowed (DNS rebinding protection)")
            return
        if self.token and scope["path"] not in self.open_paths:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                await refuse(
                    scope,
                    send,
                    401,
                    "missing or wrong bearer token (Authorization: Bearer ...)",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        await self.app(scope, receive, send)


class BodyLimit:
    """ASGI middleware: answer 413 saying the limit when a request body exceeds it (any path, MCP too).

    Counts the bytes as they arrive, so a body sent without Content-Length is
    cut off too, before it is held in memory whole. The body is passed on in one piece.
    """

    def __init__(self, app: ASGIApp, limit: int, setting: str = "ENVFARM_MAX_BODY_BYTES") -> None:
        self.app = app
        self.limit = limit
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        message = f"request body is over the limit of {self.limit} bytes ({self.setting})"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await refuse(scope, send, 413, message)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            event = await receive()
            if event["type"] != "http.request":
                break
            chunks.append(event.get("body", b""))
            size += len(chunks[-1])
            if size > self.limit:
                await refuse(scope, send, 413, message)
                return
            if not event.get("more_body", False):
                break
        body = b"".join(chunks)
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class JsonInput:
    """ASGI middleware: refuse a JSON body holding what :func:`envfarm.serve.inputs.find_problem` finds, naming where.

    Sits inside :class:`BodyLimit`, which has read the body whole: it arrives here in one
    message and is passed on unchanged. Bodies that are not JSON are left to the app.
    """

    def __init__(self, app: ASGIApp, max_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_json(scope["headers"]):
            await self.app(scope, receive, send)
            return
        first = await receive()
        if first["type"] != "http.request" or not first.get("body") or first.get("more_body", False):
            verdict = Inspected(None)  # no body (or a stream, which BodyLimit never passes on)
        else:
            verdict = inspect_body(first["body"], self.max_depth)
        if verdict.problem is not None:
            await refuse_input(scope, send, verdict.problem, request_id(first["body"], verdict.parsed))
            return
        replayed = False

        async def receive_again() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        await self.app(scope, receive_again, send)


class Abandoned:
    """ASGI middleware: a request cancelled before it was answered gets ``503`` + ``Retry-After``.

    The server cancels the requests still running when the shutdown's grace period ends
    (scores still queued for the sandbox, a slow worker behind the router); uvicorn would
    answer each with a bare 500. The answer here says to retry, in the path's shape. A
    request whose answer had already started is left to end as it does.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except asyncio.CancelledError:
            if started:
                raise
            message = "the server is shutting down and stopped this request before it was done; send it again"
            retry = [(b"retry-after", str(RETRY_AFTER_SECONDS).encode())]
            body = scope.get(REQUEST_BODY)
            await refuse(scope, send, 503, message, retry, request_id(body) if body else None)


def guard(app: ASGIApp, settings: FarmSettings) -> ASGIApp:
    """Wrap an app in the layers every request passes (see the module docstring), outermost first."""
    checked = JsonInput(app)
    limited = BodyLimit(checked, settings.max_body_bytes)
    allowed = default_allowed_hosts(settings.host) + [h.lower() for h in settings.allowed_hosts]
    return Abandoned(AccessGuard(limited, allowed_hosts=allowed, token=settings.token))
