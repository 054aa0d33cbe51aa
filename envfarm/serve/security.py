"""Who may talk to the farm: Host/Origin allow-lists against DNS rebinding, and an optional bearer token.

Both guard the whole app, the control API and every MCP endpoint alike, so
there is one place that decides. A browser page on another origin that
resolves its own name to 127.0.0.1 sends that name as Host (refused, 421) or
its origin as Origin (refused, 403).
"""

from __future__ import annotations

import hmac
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from envfarm.serve.settings import FarmSettings

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
            await _refuse(
                send,
                421,
                f"Host {host!r} is not allowed (DNS rebinding protection); "
                f"allowed: {', '.join(self.allowed_hosts)}; add one with --allow-host",
            )
            return
        origin = headers.get("origin")
        if origin and not _origin_allowed(origin, self.allowed_hosts):
            await _refuse(send, 403, f"Origin {origin!r} is not allowed (DNS rebinding protection)")
            return
        if self.token and scope["path"] not in self.open_paths:
            given = headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self.token}".encode()):
                await _refuse(
                    send,
                    401,
                    "missing or wrong bearer token (Authorization: Bearer ...)",
                    [(b"www-authenticate", b"Bearer")],
                )
                return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, message: str, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


class BodyLimit:
    """ASGI middleware: answer 413 saying the limit when a request body under ``prefixes`` exceeds it.

    Counts the bytes as they arrive, so a body sent without Content-Length is
    cut off too, before it is held in memory whole.
    """

    def __init__(self, app: ASGIApp, limit: int, prefixes: tuple[str, ...], setting: str) -> None:
        self.app = app
        self.limit = limit
        self.prefixes = prefixes
        self.setting = setting

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes) or scope["path"].endswith("/mcp"):
            await self.app(scope, receive, send)
            return
        message = f"request body is over the limit of {self.limit} bytes ({self.setting})"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _refuse(send, 413, message)
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
                await _refuse(send, 413, message)
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


def guard(app: ASGIApp, settings: FarmSettings) -> ASGIApp:
    """Wrap an app in the access checks and the control API's body-size limit.

    MCP endpoints are limited by the MCP SDK itself, with the same number.
    """
    limited = BodyLimit(app, settings.max_body_bytes, ("/v1/",), "ENVFARM_MAX_BODY_BYTES")
    allowed = default_allowed_hosts(settings.host) + [h.lower() for h in settings.allowed_hosts]
    return AccessGuard(limited, allowed_hosts=allowed, token=settings.token)
