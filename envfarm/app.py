"""The farm as one ASGI app: the control API (FastAPI) and every episode's MCP endpoint.

Routes are listed in docs/api.md. Errors are always JSON ``{"detail": ...}``:
404 for an unknown environment, scenario or episode (saying why), 422 for a
body that does not validate (FastAPI names the field), never a 500 for bad input.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from envfarm import __version__, metrics
from envfarm.environments import Environment
from envfarm.episodes import EPISODE_ID_PATTERN, Episode, EpisodeExists, EpisodeNotFound, EpisodeStore
from envfarm.mcp_server import build_server, current_episode, session_manager
from envfarm.scenarios import Scenario
from envfarm.security import guard
from envfarm.settings import FarmSettings
from envfarm.state import state_hash


class Farm:
    """The catalog of environments and the live episodes of this process."""

    def __init__(self, envs: dict[str, Environment], settings: FarmSettings | None = None) -> None:
        self.envs = envs
        self.settings = settings or FarmSettings()
        self.episodes = EpisodeStore()

    def env(self, env_id: str) -> Environment:
        env = self.envs.get(env_id)
        if env is None:
            raise HTTPException(404, f"no environment {env_id!r}; this farm serves {sorted(self.envs)}")
        return env

    def scenario(self, env: Environment, scenario_id: str) -> Scenario:
        scenario = env.scenarios.get(scenario_id)
        if scenario is None:
            raise HTTPException(404, f"no scenario {scenario_id!r} in {env.id!r}; see /v1/envs/{env.id}/scenarios")
        return scenario

    def episode(self, episode_id: str) -> Episode:
        try:
            episode = self.episodes.get(episode_id)
        except EpisodeNotFound as e:
            raise HTTPException(404, f"episode {episode_id!r} not found: {e.reason}") from None
        episode.touch()
        return episode

    def open(self, env_id: str, scenario_id: str | None, seed: int | None, episode_id: str | None = None) -> Episode:
        """Open an episode; ``episode_id`` is the caller's choice of id (a router's, so it can hash it first)."""
        env = self.env(env_id)
        if scenario_id is None:
            ids = sorted(env.scenarios)
            scenario_id = random.Random(seed).choice(ids) if seed is not None else ids[0]
        scenario = self.scenario(env, scenario_id)
        if len(self.episodes) >= self.settings.max_episodes:
            metrics.EPISODES_REFUSED.inc()
            raise HTTPException(
                503,
                f"this farm holds its limit of {self.settings.max_episodes} live episodes (ENVFARM_MAX_EPISODES); "
                "delete finished episodes or retry later",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        try:
            episode = self.episodes.create(env, scenario, seed, episode_id)
        except EpisodeExists:
            raise HTTPException(
                409,
                f"episode {episode_id!r} is already live on this farm; choose another id, "
                f"or end it first with DELETE /v1/episodes/{episode_id}",
            ) from None
        log.info("episode opened", extra={"episode_id": episode.id, "env": env.id, "scenario": scenario.id})
        metrics.EPISODES_OPENED.labels(env.id).inc()
        metrics.LIVE_EPISODES.set(len(self.episodes))
        return episode

    def end(self, episode_id: str, reason: str) -> None:
        self.episodes.delete(episode_id, reason)
        log.info("episode ended", extra={"episode_id": episode_id, "reason": reason})
        metrics.EPISODES_ENDED.labels(reason.split()[0]).inc()
        metrics.LIVE_EPISODES.set(len(self.episodes))

    def reap(self, now: float | None = None) -> int:
        """End the episodes idle for longer than the idle timeout; returns how many."""
        limit = self.settings.idle_timeout
        cutoff = (time.time() if now is None else now) - limit
        idle = [e.id for e in self.episodes if e.last_used < cutoff]
        for episode_id in idle:
            self.end(episode_id, f"reaped after {limit:g} s without use (ENVFARM_IDLE_TIMEOUT)")
        return len(idle)

    async def reaper(self) -> None:
        """Reap idle episodes, forever, at a quarter of the idle timeout (at most every minute)."""
        while True:
            await asyncio.sleep(min(60.0, max(0.05, self.settings.idle_timeout / 4)))
            self.reap()


log = logging.getLogger("envfarm.farm")
RETRY_AFTER_SECONDS = 5


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
                content=jsonrpc_error(f"episode {episode_id!r} not found: {e.reason}"),
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


def jsonrpc_error(message: str) -> str:
    """A JSON-RPC error body for an MCP endpoint that cannot serve the request (no such episode, lost worker)."""
    return json.dumps({"jsonrpc": "2.0", "id": None, "error": {"code": -32001, "message": message}})


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
        live = list(farm.episodes)
        for episode in live:  # graceful: every episode ends, counted, with a reason
            farm.end(episode.id, "closed at shutdown")
        log.info("ended %d live episode(s) at shutdown", len(live))

    api = FastAPI(
        title="envfarm",
        version=__version__,
        summary="Control API of an envfarm farm: environments, scenarios and episodes.",
        lifespan=lifespan,
    )
    api.state.farm = farm

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
