"""The farm as one ASGI app: the control API (FastAPI) and every episode's MCP endpoint.

HTTP mapping only: what a route does is the :class:`~envfarm.serve.farm.Farm`'s.
Routes are listed in docs/api.md. Errors are always JSON ``{"detail": ...}``
(:mod:`envfarm.serve.errors`): 404 for an unknown environment, scenario or
episode (saying why), 409 for an id already live, 422 for a body that does not
validate (FastAPI names the field), 503 with Retry-After when full; never a 500
for bad input.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from envfarm import __version__
from envfarm.core.environments import Environment
from envfarm.core.episodes import EPISODE_ID_PATTERN, Episode, EpisodeNotFound
from envfarm.core.state import state_hash
from envfarm.serve import metrics
from envfarm.serve.errors import install_error_handlers, jsonrpc_error
from envfarm.serve.farm import Farm
from envfarm.serve.mcp_server import build_server, current_episode, session_manager
from envfarm.serve.security import guard
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


class McpEndpoint:
    """``/episodes/{episode_id}/mcp``: bind the episode, then let the SDK serve the request."""

    def __init__(self, farm: Farm, manager: Any) -> None:
        self.farm = farm
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        episode_id = scope["path_params"]["episode_id"]
        try:
            episode = self.farm.episodes.get(episode_id)
        except EpisodeNotFound as e:
            response = Response(
                content=jsonrpc_error(str(e)),
                status_code=404,
                media_type="application/json",
            )
            await response(scope, receive, send)
            return
        token = current_episode.set(episode)
        try:
            await self.manager.handle_request(scope, receive, send)
        finally:
            current_episode.reset(token)


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
            endpoint=McpEndpoint(farm, manager),
            methods=["GET", "POST", "DELETE"],
        )
    )
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
