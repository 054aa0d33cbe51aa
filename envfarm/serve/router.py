"""``envfarm router``: many ``envfarm serve`` workers behind one address.

An episode is in-memory state inside one worker process and never migrates, so every
request about an episode must reach the worker that holds it. The router finds that
worker without any shared table: it hashes the episode id onto a consistent-hash ring
of the workers' URLs (:class:`HashRing`). Two routers given the same worker URLs send
the same id to the same worker, so routers can be replicated and restarted freely.

- ``POST /v1/episodes`` gets an ``episode_id`` (the caller's, or one minted here) before
  it is forwarded, so the id is known, and hashed, before the episode exists;
- ``/v1/episodes/{id}...`` and ``/episodes/{id}/mcp`` go to the id's worker, whatever its
  health: when it cannot be reached the answer is ``502`` naming the worker, never another
  worker's answer (that worker would say "no such episode" and hide what happened);
- everything else (``/v1/envs``, ``/v1/score``, ...) is stateless and goes round robin to
  a worker that answers; ``GET /v1/episodes`` merges every worker's list.

Answers come back as the worker gave them, plus ``x-envfarm-worker: URL``; the one change
is ``mcp_url`` in a new episode, which names the router (clients talk to the router only).
Host/Origin/token checks are the farm's own (:func:`envfarm.serve.security.guard`); the router
drops ``Origin`` once it has checked it, so workers need not know the router's public names.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import itertools
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx2 as httpx
from fastapi import FastAPI, HTTPException, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from starlette.types import ASGIApp, Receive, Scope, Send

from envfarm import __version__
from envfarm.core.episodes import new_episode_id
from envfarm.serve.errors import MCP_PATH, error_body, install_error_handlers
from envfarm.serve.inputs import brief, request_id
from envfarm.serve.security import guard
from envfarm.serve.settings import FarmSettings

log = logging.getLogger("envfarm.router")

VNODES = 160
"""Points per worker on the ring. Fixed, not a setting: routers that disagreed on it would disagree on owners."""

POOLS = 8  # connection pools to the workers (see Router.start)
ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
_MCP_PATH = MCP_PATH
_EPISODE_PATH = re.compile(r"^/v1/episodes/(?P<id>[^/]+)(?:/.*)?$")

# Headers that describe one connection, not the message (RFC 9110 7.6.1), and those recomputed here.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
}
_NOT_FORWARDED = _HOP_BY_HOP | {"host", "content-length", "origin"}
# httpx hands over the decoded body; the router's own server writes Date and Server.
_NOT_RETURNED = _HOP_BY_HOP | {"content-length", "content-encoding", "date", "server"}


def _point(text: str) -> int:
    """A position on the ring: the first 8 bytes of the text's sha256 (the same on every machine and run)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class HashRing:
    """Consistent hashing: each node owns the arcs before its ``vnodes`` points; a key belongs to the next point.

    Adding a node takes over only the keys on its new arcs (about 1/n of them); removing one
    hands only its own keys to the others. The mapping depends on the set of node names, not
    their order.
    """

    def __init__(self, nodes: Iterable[str], vnodes: int = VNODES) -> None:
        self.nodes = sorted(set(nodes))
        if not self.nodes:
            raise ValueError("a hash ring needs at least one node")
        self.vnodes = vnodes
        points = sorted((_point(f"{node}#{i}"), node) for node in self.nodes for i in range(vnodes))
        self._points = [p for p, _ in points]
        self._owners = [node for _, node in points]

    def node_for(self, key: str) -> str:
        """The node that owns ``key``: the first point at or after the key's hash, wrapping around."""
        i = bisect.bisect_left(self._points, _point(key))
        return self._owners[i % len(self._owners)]

    def shares(self) -> dict[str, float]:
        """The fraction of the hash space each node owns (what a uniform key lands on)."""
        space = 2**64
        owned = dict.fromkeys(self.nodes, 0)
        for i, point in enumerate(self._points):
            previous = self._points[i - 1] if i else self._points[-1] - space
            owned[self._owners[i]] += point - previous
        return {node: owned[node] / space for node in self.nodes}


def normalize_worker(url: str) -> str:
    """A worker's base URL as the ring names it: ``scheme://host[:port]`` with any trailing slash removed."""
    text = url.strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"worker {url!r} is not a base URL like http://10.0.0.5:8000")
    if parts.path or parts.query or parts.fragment:
        raise ValueError(f"worker {url!r} must be a base URL without a path (http://host:port)")
    return text


@dataclass
class Worker:
    """One worker as the router sees it: its URL and what its last health probe or request said."""

    url: str
    healthy: bool | None = None  # None: not probed yet (treated as healthy)
    error: str | None = None
    checked: float | None = None
    episodes: int | None = None

    def up(self) -> None:
        self.healthy, self.error, self.checked = True, None, time.time()

    def down(self, error: BaseException | str) -> None:
        self.healthy, self.checked = False, time.time()
        self.error = error if isinstance(error, str) else _reason(error)


class Router:
    """The ring, the workers' health, and the connection pools that forward to them."""

    def __init__(
        self,
        workers: Sequence[str],
        settings: FarmSettings,
        worker_token: str | None = None,
        health_interval: float = 2.0,
        timeout: float = 300.0,
    ) -> None:
        urls = [normalize_worker(u) for u in workers]
        if not urls:
            raise ValueError("the router needs at least one worker (--worker URL or ENVFARM_WORKERS)")
        self.ring = HashRing(urls)
        self.workers = {url: Worker(url) for url in self.ring.nodes}
        self.settings = settings
        self.worker_token = worker_token
        self.health_interval = health_interval
        self.timeout = timeout
        self._turn = itertools.count()  # round robin over workers, for stateless requests
        self._pool_turn = itertools.count()
        self.http: httpx.AsyncClient | None = None
        self.pools: list[httpx.AsyncHTTPTransport] = []
        self._timeouts = httpx.Timeout(timeout, connect=5.0).as_dict()
        self.registry = CollectorRegistry()
        self.forwarded = Counter(
            "envfarm_router_requests_total",
            "Requests forwarded, by worker and outcome (answered, unreachable).",
            ["worker", "outcome"],
            registry=self.registry,
        )
        self.worker_up = Gauge(
            "envfarm_router_worker_up",
            "1 if the worker answered its last probe or request.",
            ["worker"],
            registry=self.registry,
        )

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        # Connection pools, each keeping one keep-alive connection per request in flight. Several small
        # pools, not one: a pool probes every idle connection of its own on each request and each answer.
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self.pools = [httpx.AsyncHTTPTransport(limits=limits) for _ in range(POOLS)]
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(self.timeout, connect=5.0))
        await self.probe_all()

    async def stop(self) -> None:
        if self.http is not None:
            await self.http.aclose()
        for pool in self.pools:
            await pool.aclose()

    async def prober(self) -> None:
        """Probe every worker's /healthz forever; the health only orders round robin and fills /v1/router."""
        while True:
            await asyncio.sleep(self.health_interval)
            await self.probe_all()

    async def probe_all(self) -> None:
        await asyncio.gather(*(self.probe(w) for w in self.workers.values()))

    async def probe(self, worker: Worker) -> None:
        assert self.http is not None
        was = worker.healthy
        try:
            r = await self.http.get(f"{worker.url}/healthz", timeout=2.0)
            if r.status_code != 200:
                worker.down(f"/healthz answered {r.status_code}")
            else:
                worker.up()
                worker.episodes = r.json().get("episodes")
        except (httpx.HTTPError, ValueError) as e:
            worker.down(e)
        self._note(worker, was)

    def _note(self, worker: Worker, was: bool | None) -> None:
        self.worker_up.labels(worker.url).set(1 if worker.healthy else 0)
        if worker.healthy != was and (was is not None or not worker.healthy):
            if worker.healthy:
                log.warning("worker %s is reachable again", worker.url)
            else:
                log.warning("worker %s is unreachable: %s", worker.url, worker.error)

    # -- forwarding --------------------------------------------------------------------------

    def owner(self, episode_id: str) -> Worker:
        return self.workers[self.ring.node_for(episode_id)]

    def headers(self, request: Request) -> list[tuple[bytes, bytes]]:
        """The client's headers, less hop-by-hop ones and Origin (checked here already); the worker token if set."""
        out = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in _NOT_FORWARDED]
        if self.worker_token:
            out = [(k, v) for k, v in out if k.lower() != b"authorization"]
            out.append((b"authorization", f"Bearer {self.worker_token}".encode()))
        return out

    async def send(self, request: Request, worker: Worker, body: bytes) -> httpx.Response:
        """The request as the client made it, to ``worker``; raises httpx.TransportError if it cannot be done."""
        scope = request.scope
        url = worker.url + (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        was = worker.healthy
        # Straight to the client's transport (its connection pool): the client's own layers (auth,
        # redirects, cookies, event hooks) do nothing here and cost a sixth of the router's CPU.
        try:
            upstream = httpx.Request(
                request.method, url, headers=self.headers(request), content=body, extensions={"timeout": self._timeouts}
            )
        except (httpx.InvalidURL, ValueError) as e:  # uvicorn lets little through, but never a 500 for it
            raise HTTPException(400, f"cannot forward this request: {e}") from None
        try:
            answer = await self.pools[next(self._pool_turn) % len(self.pools)].handle_async_request(upstream)
            await answer.aread()
        except httpx.TransportError as e:
            worker.down(e)
            self._note(worker, was)
            self.forwarded.labels(worker.url, "unreachable").inc()
            raise
        if not was:
            worker.up()
            self._note(worker, was)
        self.forwarded.labels(worker.url, "answered").inc()
        return answer

    def reply(self, answer: httpx.Response, worker: Worker, content: bytes | None = None) -> Response:
        """The worker's answer, as it gave it, plus ``x-envfarm-worker``."""
        body = answer.content if content is None else content
        response = Response(content=body, status_code=answer.status_code)
        response.raw_headers = [
            (k, v) for k, v in answer.headers.raw if k.decode("latin-1").lower() not in _NOT_RETURNED
        ] + [(b"content-length", str(len(body)).encode()), (b"x-envfarm-worker", worker.url.encode())]
        return response

    async def to_owner(self, request: Request, episode_id: str) -> Response:
        """Forward a request about one episode to the worker that holds it; 502 naming it if it is unreachable.

        Errors are answered here, not raised: this runs outside FastAPI (see :func:`create_router_app`).
        On an MCP endpoint they are JSON-RPC errors carrying the request's id.
        """
        worker = self.owner(episode_id)
        headers = {"x-envfarm-worker": worker.url}
        body = await request.body()  # within the limit: the guard's BodyLimit has read it already
        try:
            answer = await self.send(request, worker, body)
        except HTTPException as e:
            status, message = e.status_code, str(e.detail)
        except httpx.TransportError as e:
            status, message = 502, lost(episode_id, worker, e)
        else:
            return self.reply(answer, worker)
        content = error_body(request.url.path, status, message, request_id(body))
        return Response(content, status, headers=headers, media_type="application/json")

    async def to_any(self, request: Request, body: bytes | None = None) -> Response:
        """A stateless request: to the next worker in turn, healthy ones first, past any that cannot be reached."""
        if body is None:
            body = await request.body()
        failures = []
        for worker in self.rotation():
            try:
                answer = await self.send(request, worker, body)
            except httpx.ConnectError as e:  # the request never reached it: another worker may serve it
                failures.append(f"{worker.url} ({type(e).__name__})")
                continue
            except httpx.TransportError as e:  # it may have reached the worker: not safe to send twice
                headers = {"x-envfarm-worker": worker.url}
                raise HTTPException(502, f"worker {worker.url} did not answer: {_reason(e)}", headers=headers) from None
            return self.reply(answer, worker)
        raise HTTPException(503, f"no worker could be reached: {', '.join(failures)}", headers={"Retry-After": "5"})

    def rotation(self) -> list[Worker]:
        """Every worker once, starting at the next turn; those known to be down last."""
        urls = self.ring.nodes
        start = next(self._turn) % len(urls)
        turn = [self.workers[u] for u in urls[start:] + urls[:start]]
        return [w for w in turn if w.healthy is not False] + [w for w in turn if w.healthy is False]

    async def open_episode(self, request: Request) -> Response:
        """``POST /v1/episodes``: fix the id first (the caller's or a fresh one), then send it to the id's worker.

        A minted id is drawn again when it falls on a worker known to be down, one that
        refuses the connection (so the episode surely was not opened there), or one at its
        episode cap (503); a caller's id has exactly one worker, reachable or not.
        """
        body = await request.body()
        try:
            data = json.loads(body)
        except (ValueError, RecursionError):  # the guard refuses deep nesting first; never a 500 for it
            data = None
        chosen = data.get("episode_id") if isinstance(data, dict) else None
        if not isinstance(data, dict) or not isinstance(chosen, str | None):
            return await self.to_any(request, body)  # the worker answers 422, naming what is wrong
        if chosen is not None:
            episode_id = chosen
            worker = self.owner(episode_id)
            try:
                answer = await self.send(request, worker, body)
            except httpx.TransportError as e:
                message = (
                    f"cannot open episode {brief(episode_id)}: its id belongs to worker {worker.url}, which is "
                    f"unreachable ({_reason(e)}); ids never move to another worker, so choose another id, "
                    "or leave episode_id out and the router picks one on a worker that answers"
                )
                raise HTTPException(502, message, headers={"x-envfarm-worker": worker.url}) from None
            return self.created(request, answer, worker)
        tried: list[str] = []
        full: tuple[httpx.Response, Worker] | None = None
        for _ in range(len(self.workers)):
            episode_id, worker = self.mint(avoid=tried)
            data["episode_id"] = episode_id
            try:
                answer = await self.send(request, worker, json.dumps(data, separators=(",", ":")).encode())
            except httpx.ConnectError:
                tried.append(worker.url)
                continue
            except httpx.TransportError as e:  # it may have been opened: do not open another one elsewhere
                message = (
                    f"worker {worker.url} did not answer while opening episode {episode_id!r} ({_reason(e)}); "
                    f"it may have been opened there: check GET /v1/episodes/{episode_id} before opening another"
                )
                raise HTTPException(502, message, headers={"x-envfarm-worker": worker.url}) from None
            if answer.status_code == 503:  # that worker is at its episode cap: a fresh id on another one may fit
                tried.append(worker.url)
                full = (answer, worker)
                continue
            return self.created(request, answer, worker)
        if full is not None:  # every worker tried was full or down: the last full one's 503 and Retry-After
            return self.reply(*full)
        raise HTTPException(503, f"no worker could be reached: {', '.join(tried)}", headers={"Retry-After": "5"})

    def mint(self, avoid: Sequence[str]) -> tuple[str, Worker]:
        """A fresh id whose worker is not known to be down (nor in ``avoid``), if one turns up in a few draws."""
        episode_id = new_episode_id()
        for _ in range(64):
            worker = self.owner(episode_id)
            if worker.healthy is not False and worker.url not in avoid:
                break
            episode_id = new_episode_id()
        return episode_id, self.owner(episode_id)

    def created(self, request: Request, answer: httpx.Response, worker: Worker) -> Response:
        """The worker's answer to ``POST /v1/episodes``, with ``mcp_url`` on the router instead of the worker."""
        if answer.status_code != 201:
            return self.reply(answer, worker)
        data = answer.json()
        base = str(request.base_url).rstrip("/")
        data["mcp_url"] = f"{base}/episodes/{data['episode_id']}/mcp"
        return self.reply(answer, worker, json.dumps(data, separators=(",", ":")).encode())

    async def list_episodes(self, request: Request) -> Response:
        """Every worker's live episodes, each with its ``worker``; 502 naming any worker that cannot be reached."""
        workers = list(self.workers.values())
        answers = await asyncio.gather(*(self.send(request, w, b"") for w in workers), return_exceptions=True)
        for answer in answers:
            if isinstance(answer, BaseException) and not isinstance(answer, httpx.TransportError):
                raise answer
        lost_ones = [
            f"{w.url} ({type(a).__name__})" for w, a in zip(workers, answers, strict=True) if isinstance(a, Exception)
        ]
        if lost_ones:
            raise HTTPException(
                502,
                f"cannot list every episode: unreachable worker(s) {', '.join(lost_ones)}; "
                "their episodes are unavailable until they come back (see GET /v1/router)",
            )
        merged: list[Any] = []
        for worker, answer in zip(workers, answers, strict=True):
            assert isinstance(answer, httpx.Response)
            if answer.status_code != 200:
                return self.reply(answer, worker)
            merged.extend({**item, "worker": worker.url} for item in answer.json())
        body = json.dumps(merged, separators=(",", ":")).encode()
        return Response(body, 200, media_type="application/json", headers={"x-envfarm-worker": ", ".join(self.workers)})

    def describe(self) -> dict[str, Any]:
        shares = self.ring.shares()
        return {
            "hash": "sha256 of the episode id, first 8 bytes, on a ring of the workers' URLs",
            "vnodes": self.ring.vnodes,
            "health_interval": self.health_interval,
            "workers": [
                {
                    "url": w.url,
                    "healthy": w.healthy,
                    "error": w.error,
                    "checked": w.checked,
                    "episodes": w.episodes,
                    "share": round(shares[w.url], 4),
                }
                for w in self.workers.values()
            ],
        }


def _reason(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}".rstrip(": ")


def lost(episode_id: str, worker: Worker, error: BaseException) -> str:
    """Why an episode cannot be served: its worker is unreachable, and episodes never move."""
    return (
        f"episode {brief(episode_id)} is held by worker {worker.url}, which is unreachable ({_reason(error)}); "
        "episodes never move to another worker, so this one is unavailable until that worker answers again "
        "(a restarted worker has lost its episodes)"
    )


def create_router_app(
    workers: Sequence[str],
    settings: FarmSettings | None = None,
    worker_token: str | None = None,
    health_interval: float = 2.0,
    timeout: float = 300.0,
) -> ASGIApp:
    """The router's ASGI app over these worker base URLs, behind the farm's own access guard."""
    settings = settings or FarmSettings(port=8080)
    router = Router(workers, settings, worker_token, health_interval, timeout)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await router.start()
        prober = asyncio.create_task(router.prober())
        try:
            yield
        finally:
            prober.cancel()
            await router.stop()

    # No docs of its own: /docs and /openapi.json go through to a worker, whose API this is.
    api = FastAPI(
        title="envfarm router",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    api.state.router = router
    install_error_handlers(api)

    @api.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness of the router itself, with how many workers answered their last probe."""
        healthy = sum(w.healthy is not False for w in router.workers.values())
        return {
            "status": "ok",
            "version": __version__,
            "role": "router",
            "workers": len(router.workers),
            "healthy": healthy,
        }

    @api.get("/v1/router")
    def describe() -> dict[str, Any]:
        """The ring: every worker, its health, its live episodes at the last probe, its share of ids."""
        return router.describe()

    @api.get("/metrics")
    def prometheus() -> Response:
        """The router's own metrics; each worker's are at its own /metrics."""
        return Response(generate_latest(router.registry), media_type=CONTENT_TYPE_LATEST)

    @api.post("/v1/episodes")
    async def open_episode(request: Request) -> Response:
        return await router.open_episode(request)

    @api.get("/v1/episodes")
    async def list_episodes(request: Request) -> Response:
        return await router.list_episodes(request)

    @api.api_route("/{path:path}", methods=ALL_METHODS)
    async def stateless(request: Request, path: str) -> Response:
        return await router.to_any(request)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        """Requests about one episode (every tool call) go straight to its worker; FastAPI routes the rest.

        The hot path skips FastAPI's routing and dependency machinery: it was a fifth of the
        router's CPU per tool call.
        """
        if scope["type"] == "http":
            found = _MCP_PATH.match(scope["path"]) or _EPISODE_PATH.match(scope["path"])
            if found:
                request = Request(scope, receive)
                response = await router.to_owner(request, found["id"])
                await response(scope, receive, send)
                return
        await api(scope, receive, send)

    return guard(app, settings)
