"""The farm as one ASGI app: the control API (FastAPI) and every episode's MCP endpoint.

HTTP mapping only: what a route does is the :class:`~envfarm.serve.farm.Farm`'s.
Routes are listed in docs/api.md. Errors are always JSON (:mod:`envfarm.serve.errors`):
``{"detail": ...}`` on the control API, with 404 for an unknown environment, scenario
or episode (saying why), 409 for an id already live, 422 for a body that does not
validate (naming the field, never echoing it), 503 with Retry-After when full; a
JSON-RPC error carrying the request's id on an MCP endpoint. Never a 500 for bad input.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route
from starlette.types import Message, Receive, Scope, Send

from envfarm import __version__
from envfarm.core.environments import Environment
from envfarm.core.episodes import EPISODE_ID_PATTERN, Episode
from envfarm.core.errors import Misdirected, NotFound
from envfarm.core.state import state_hash
from envfarm.serve import metrics
from envfarm.serve.errors import install_error_handlers, jsonrpc_code, jsonrpc_error, reason, refuse, status_of
from envfarm.serve.farm import Farm
from envfarm.serve.inputs import request_id
from envfarm.serve.mcp_server import build_server, current_episode, session_manager
from envfarm.serve.openenv import openenv_extension
from envfarm.serve.security import REQUEST_BODY, guard
from envfarm.serve.settings import FarmSettings


class EpisodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    env: str = Field(min_length=1, description="environment id, as in GET /v1/envs", examples=["library"])
    scenario: str | None = Field(None, description="scenario id; the first one (or one picked by seed) if left out")
    seed: int | None = Field(None, description="seed for the tools' randomness; the scenario's own if left out")
    episode_id: str | None = Field(
        None,
        pattern=EPISODE_ID_PATTERN,
        description="the new episode's id, chosen by the caller (e.g. a router hashing it); a fresh one if left out",
        examples=["ep_0f3a9c"],
    )


class EpisodeCreated(BaseModel):
    episode_id: str
    env: str
    scenario: str
    mcp_url: str
    task: str


NO_EVENT_STREAM = (
    "this MCP endpoint takes POST only: the farm sends no server-initiated messages, so it offers no "
    "event stream to GET, and it keeps no session to DELETE (each request is served on its own)"
)


class McpEndpoint:
    """``/episodes/{episode_id}/mcp``: bind the episode, then let the SDK serve the request.

    POST only: every other method is ``405`` with ``Allow: POST``, as the Streamable HTTP
    transport allows a server that offers no SSE stream (a GET would open one that never
    sends and never ends). Every error answered here, by the SDK included, is a JSON-RPC
    error carrying the request's id when it could be read (:class:`JsonRpcErrors`).
    """

    def __init__(self, farm: Farm, manager: Any) -> None:
        self.farm = farm
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            await refuse(scope, send, 405, NO_EVENT_STREAM, [(b"allow", b"POST")])
            return
        first = await receive()  # the body in one piece: the guard's BodyLimit has read it already
        body = first.get("body", b"") if first["type"] == "http.request" else b""
        scope[REQUEST_BODY] = body
        try:
            episode = self.farm.episode(scope["path_params"]["episode_id"])
        except (NotFound, Misdirected) as e:  # gone (404), or another node's episode (421)
            await refuse(scope, send, status_of(e), str(e), request_id=request_id(body))
            return
        replayed = False

        async def receive_again() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return first
            return await receive()

        token = current_episode.set(episode)
        try:
            await self.manager.handle_request(scope, receive_again, JsonRpcErrors(send, body))
        finally:
            current_episode.reset(token)


# What the SDK answers as plain text or with no body, in words that say what to do.
_SDK_WORDS = {
    "Invalid Content-Type header": "Unsupported Media Type: send Content-Type: application/json",
    "Request body too large": "the request body is over the limit (ENVFARM_MAX_BODY_BYTES)",
}
_STATUS_WORDS = {
    405: NO_EVENT_STREAM,
    406: "Not Acceptable: send Accept: application/json (the farm answers JSON)",
}


class JsonRpcErrors:
    """The SDK's ``send``, made to answer every error (status 400 and up) as a JSON-RPC error with the request's id.

    The MCP SDK answers some refusals as plain text or with an empty body (a wrong
    Content-Type, a missing Accept, an oversized body), and answers JSON-RPC errors
    with ``"id": null`` when its transport did not read the id. Successful answers pass
    through untouched; an error's body is held until complete and rewritten.
    """

    def __init__(self, send: Send, body: bytes) -> None:
        self.send = send
        self.body = body
        self.start: Message | None = None
        self.passing = False
        self.chunks: list[bytes] = []

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            if message["status"] < 400:
                self.passing = True
                await self.send(message)
            else:
                self.start = message
            return
        if self.passing or self.start is None or message["type"] != "http.response.body":
            await self.send(message)
            return
        self.chunks.append(message.get("body", b""))
        if message.get("more_body", False):
            return
        status = self.start["status"]
        body = self.rewrite(status, b"".join(self.chunks))
        kept = [(k, v) for k, v in self.start["headers"] if k.lower() not in (b"content-type", b"content-length")]
        headers = [*kept, (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await self.send({**self.start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body})

    def rewrite(self, status: int, raw: bytes) -> bytes:
        try:
            data = json.loads(raw) if raw else None
        except (ValueError, RecursionError):
            data = None
        if isinstance(data, dict) and isinstance(data.get("error"), dict):
            if data.get("id") is None:
                data["id"] = request_id(self.body)
            message = data["error"].get("message")
            if isinstance(message, str) and message.startswith("Validation error:"):  # pydantic's, quoting input
                data["error"]["message"] = "Invalid Request: the body is not one JSON-RPC 2.0 request or notification"
            return json.dumps({"jsonrpc": "2.0", **data}, separators=(",", ":")).encode()
        text = raw.decode("utf-8", "replace").strip()
        message = _SDK_WORDS.get(text) or _STATUS_WORDS.get(status) or text[:200] or reason(status)
        return jsonrpc_error(message, request_id(self.body), jsonrpc_code(status)).encode()


Extension = Callable[[FastAPI, Farm], AbstractAsyncContextManager[Any]]
"""Adds routes to the farm's API and returns what must run while the app runs (e.g. scoring and its sandbox)."""


def create_app(
    envs: dict[str, Environment], settings: FarmSettings | None = None, extensions: Sequence[Extension] = ()
) -> Any:
    """Build the farm's ASGI app for these environments, with optional extensions mounted."""
    settings = settings or FarmSettings()
    farm = Farm(envs, settings)
    manager = session_manager(build_server(), settings.max_body_bytes)
    running: list[AbstractAsyncContextManager[Any]] = []

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await stack.enter_async_context(manager.run())
            for part in running:
                await stack.enter_async_context(part)
            reaper = asyncio.create_task(farm.reaper())
            try:
                yield
            finally:
                reaper.cancel()
        farm.close()  # graceful: every episode ends, counted, with a reason

    api = FastAPI(
        title="envfarm",
        version=__version__,
        summary="Control API of an envfarm farm: environments, scenarios and episodes.",
        lifespan=lifespan,
    )
    api.state.farm = farm
    install_error_handlers(api)

    @api.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness: the farm answers, with its environments and live episode count."""
        return {
            "status": "ok",
            "version": __version__,
            "envs": sorted(farm.envs),
            "episodes": len(farm.episodes),
            "node": settings.node,
        }

    @api.get("/metrics", tags=["ops"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus metrics: live episodes, tool calls by env, tool and outcome, call latency, resets, scores."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @api.get("/v1/envs", tags=["envs"])
    def list_envs() -> list[dict[str, Any]]:
        """Every environment: id, title, tool names, scenario count."""
        return [
            {
                "id": env.id,
                "title": env.title,
                "description": env.description,
                "version": env.version,
                "tools": list(env.tools),
                "scenario_count": len(env.scenarios),
            }
            for env in farm.envs.values()
        ]

    @api.get("/v1/envs/{env_id}", tags=["envs"])
    def get_env(env_id: str) -> dict[str, Any]:
        """The environment's manifest: rules, tables, tools with their JSON Schemas."""
        return farm.env(env_id).manifest()

    @api.get("/v1/envs/{env_id}/scenarios", tags=["envs"])
    def list_scenarios(env_id: str) -> list[dict[str, Any]]:
        """Scenario ids and tasks; checks and oracles are not shown here (agents may read this)."""
        return [s.public() for s in farm.env(env_id).scenarios.values()]

    @api.get("/v1/envs/{env_id}/scenarios/{scenario_id}", tags=["envs"])
    def get_scenario(env_id: str, scenario_id: str) -> dict[str, Any]:
        """A whole scenario with its checks and oracle: the operator's view, not the agent's."""
        env = farm.env(env_id)
        return farm.scenario(env, scenario_id).model_dump(mode="json")

    @api.post("/v1/episodes", status_code=201, response_model=EpisodeCreated, tags=["episodes"])
    def create_episode(body: EpisodeRequest, request: Request) -> EpisodeCreated:
        """Open an isolated episode of a scenario; connect an MCP client to ``mcp_url``."""
        episode = farm.open(body.env, body.scenario, body.seed, body.episode_id)
        return EpisodeCreated(
            episode_id=episode.id,
            env=episode.env.id,
            scenario=episode.scenario.id,
            mcp_url=str(request.base_url).rstrip("/") + f"/episodes/{episode.id}/mcp",
            task=episode.scenario.task,
        )

    @api.get("/v1/episodes", tags=["episodes"])
    def list_episodes() -> list[dict[str, Any]]:
        """Live episodes of this process."""
        return [_episode_info(e) for e in farm.episodes]

    @api.get("/v1/episodes/{episode_id}", tags=["episodes"])
    def get_episode(episode_id: str) -> dict[str, Any]:
        """One live episode: env, scenario, task, and the log of the calls made (with their results)."""
        episode = farm.episode(episode_id)
        return {**_episode_info(episode), "log": [r.as_dict() for r in episode.log]}

    @api.get("/v1/episodes/{episode_id}/state", tags=["episodes"])
    def get_state(episode_id: str) -> dict[str, Any]:
        """The canonical state ``{table: [rows by primary key]}`` and its hash."""
        episode = farm.episode(episode_id)
        view = episode.view()
        return {"episode_id": episode.id, "state_hash": state_hash(view), "state": view}

    @api.post("/v1/episodes/{episode_id}/reset", tags=["episodes"])
    def reset_episode(episode_id: str) -> dict[str, Any]:
        """Put the episode back to its scenario's initial state."""
        episode = farm.episode(episode_id)
        episode.reset()
        metrics.RESETS.labels(episode.env.id).inc()
        return {**_episode_info(episode), "state_hash": episode.state_hash()}

    @api.delete("/v1/episodes/{episode_id}", status_code=204, tags=["episodes"])
    def delete_episode(episode_id: str) -> Response:
        """End the episode and free its state; its id then answers 404 with the reason."""
        farm.episode(episode_id)
        farm.end(episode_id, "deleted")
        return Response(status_code=204)

    api.router.routes.append(
        Route(
            "/episodes/{episode_id}/mcp",
            endpoint=McpEndpoint(farm, manager),  # every method: it answers 405 itself, as JSON-RPC
        )
    )
    running.append(openenv_extension(api, farm))  # /openenv/{env}: OpenEnv's protocol (docs/openenv.md)
    running.extend(extend(api, farm) for extend in extensions)
    return guard(api, settings)


def _episode_info(episode: Episode) -> dict[str, Any]:
    return {
        "episode_id": episode.id,
        "env": episode.env.id,
        "scenario": episode.scenario.id,
        "task": episode.scenario.task,
        "seed": episode.seed,
        "calls": episode.calls,
    }
