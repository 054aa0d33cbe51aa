"""The scoring API: ``POST /v1/score``, ``POST /v1/score/batch``, ``POST /v1/episodes/{id}/score``.

Mounted in ``envfarm serve`` (live episodes are read from the same process) and
served alone by ``envfarm validator --farm URL`` (live episodes are fetched from
the farm over HTTP). Either way checks run in the sandbox pool.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

import httpx
from fastapi import APIRouter, FastAPI, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.types import ASGIApp

from envfarm import __version__
from envfarm.core.environments import Environment
from envfarm.core.episodes import ToolResult
from envfarm.core.errors import Conflict, NotFound
from envfarm.core.scenarios import Scenario
from envfarm.core.state import diff, state_hash
from envfarm.serve import metrics
from envfarm.serve.app import Extension
from envfarm.serve.errors import FieldError, UpstreamFailed, install_error_handlers
from envfarm.serve.farm import Farm
from envfarm.serve.inputs import MAX_JSON_DEPTH, brief, find_problem
from envfarm.serve.security import guard
from envfarm.serve.settings import FarmSettings
from envfarm.validators.replay import Replay, outcome, replay
from envfarm.validators.replay_pool import ReplayPool
from envfarm.validators.sandbox import SandboxLimits, SandboxPool
from envfarm.validators.scoring import CheckRunner, ScoreResponse, score
from envfarm.validators.trajectories import Trajectory, TrajectoryError, read_trajectory


@dataclass(frozen=True)
class ScoringLimits:
    """Bounds on what one request may ask for; each has a flag and an ``ENVFARM_*`` variable."""

    max_calls: int = 1000
    max_batch: int = 256


class ScoreRequest(BaseModel):
    """A trajectory to replay and score against a scenario."""

    model_config = ConfigDict(extra="forbid")

    env: str = Field(min_length=1, description="environment id", examples=["library"])
    scenario: str = Field(min_length=1, description="scenario id", examples=["return-and-pay"])
    trajectory: list[Any] | dict[str, Any] = Field(
        description="calls [{tool, arguments}], OpenAI or Anthropic messages, or an EnvScaler run record",
        examples=[[{"tool": "find_member", "arguments": {"query": "Ada Okafor"}}]],
    )
    seed: int | None = Field(None, description="seed for the tools' randomness; the scenario's own if left out")


class LiveScoreRequest(BaseModel):
    """What scoring a live episode may add: the conversation, which the farm does not see (``said`` checks)."""

    model_config = ConfigDict(extra="forbid")

    messages: list[dict[str, Any]] | None = Field(
        None,
        description="the conversation, oldest first, as {role, content}; only the agent's (assistant) words count",
        max_length=10_000,
    )


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[ScoreRequest] = Field(min_length=1)


class BatchResponse(BaseModel):
    results: list[ScoreResponse]


class LiveEpisodes(Protocol):
    """Where live episodes are read from: this process, or a farm over HTTP."""

    async def outcome(self, episode_id: str) -> tuple[Environment, Scenario, Replay]: ...


def prepare(
    envs: dict[str, Environment], request: ScoreRequest, limits: ScoringLimits, loc: list[str | int]
) -> tuple[Environment, Scenario, Trajectory]:
    """Resolve a request's env and scenario and read its trajectory (its calls, and its messages for
    ``said`` checks).

    Raises :class:`~envfarm.core.errors.NotFound` (an unknown env or scenario) or
    :class:`~envfarm.serve.errors.FieldError` (a bad trajectory), naming where in the request.
    """
    env = envs.get(request.env)
    if env is None:
        raise NotFound(f"{_at([*loc, 'env'])}no environment {brief(request.env)}; known: {sorted(envs)}")
    scenario = env.scenarios.get(request.scenario)
    if scenario is None:
        raise NotFound(f"{_at([*loc, 'scenario'])}no scenario {brief(request.scenario)} in {env.id!r}")
    try:
        trajectory = read_trajectory(request.trajectory)
    except TrajectoryError as e:
        raise FieldError([*loc, "trajectory"], str(e)) from None
    except (ValueError, RecursionError):  # a call's arguments string (OpenAI) that json reads no further
        message = (
            f"a tool call's arguments string is not JSON this service reads (nested deeper than {MAX_JSON_DEPTH} "
            "levels, or a number of more than 4300 digits)"
        )
        raise FieldError([*loc, "trajectory"], message) from None
    calls = trajectory.calls
    if len(calls) > limits.max_calls:
        message = f"trajectory has {len(calls)} calls; the limit is {limits.max_calls} (ENVFARM_MAX_CALLS)"
        raise FieldError([*loc, "trajectory"], message)
    for i, call in enumerate(calls):
        # The body was checked where it entered; arguments sent as a JSON string (OpenAI) are read only now.
        problem = find_problem(call.arguments, MAX_JSON_DEPTH - 4)
        if problem is not None:
            where = ".".join(["arguments", *(f"[{p}]" if isinstance(p, int) else p for p in problem.loc)])
            message = f"call {i} ({brief(call.tool)}): {where.replace('.[', '[')}: {problem.msg}"
            raise FieldError([*loc, "trajectory"], message)
    return env, scenario, trajectory


async def score_request(
    envs: dict[str, Environment],
    request: ScoreRequest,
    limits: ScoringLimits,
    runner: CheckRunner,
    loc: list[str | int] | None = None,
    replayer: ReplayPool | None = None,
) -> ScoreResponse:
    """Replay the request's trajectory on a fresh episode (in ``replayer``'s processes, when given)
    and score it."""
    env, scenario, trajectory = prepare(envs, request, limits, loc or [])
    return await score_trajectory(env, scenario, trajectory, request.seed, runner, replayer)


async def score_trajectory(
    env: Environment,
    scenario: Scenario,
    trajectory: Trajectory,
    seed: int | None,
    runner: CheckRunner,
    replayer: ReplayPool | None = None,
) -> ScoreResponse:
    """Replay a trajectory already read (:func:`prepare`) and score it."""
    if replayer is None:
        done = replay(env, scenario, trajectory.calls, seed)
    else:
        done = await replayer.replay(env, scenario, trajectory.calls, seed)
    return await score(env, scenario, done, runner, messages=trajectory.messages)


def scoring_router(
    envs: dict[str, Environment],
    runner: CheckRunner,
    live: LiveEpisodes,
    limits: ScoringLimits,
    replayer: ReplayPool | None = None,
) -> APIRouter:
    """The scoring routes over these environments, running checks with ``runner`` (and replays in
    ``replayer``'s processes, when given)."""
    router = APIRouter(tags=["scoring"])

    @router.post("/v1/score", response_model=ScoreResponse)
    async def score_one(body: ScoreRequest) -> ScoreResponse:
        """Replay a trajectory on a fresh episode of the scenario and score the final state."""
        with metrics.SCORING.track_inprogress():
            return await score_request(envs, body, limits, runner, replayer=replayer)

    @router.post("/v1/score/batch", response_model=BatchResponse)
    async def score_batch(body: BatchRequest) -> BatchResponse:
        """Score many trajectories; results come back in request order. One bad item fails the batch, naming it."""
        if len(body.items) > limits.max_batch:
            message = f"batch has {len(body.items)} items; the limit is {limits.max_batch} (ENVFARM_MAX_BATCH)"
            raise FieldError(["items"], message)
        prepared = [prepare(envs, item, limits, ["items", i]) for i, item in enumerate(body.items)]
        runs = (
            score_trajectory(env, scenario, trajectory, item.seed, runner, replayer)
            for (env, scenario, trajectory), item in zip(prepared, body.items, strict=True)
        )
        metrics.SCORING.inc(len(prepared))
        try:
            return BatchResponse(results=list(await asyncio.gather(*runs)))
        finally:
            metrics.SCORING.dec(len(prepared))

    @router.post("/v1/episodes/{episode_id}/score", response_model=ScoreResponse)
    async def score_episode(episode_id: str, body: LiveScoreRequest | None = None) -> ScoreResponse:
        """Score the live state of an episode (the calls made so far are listed, not replayed); send the
        conversation's messages for ``said`` checks."""
        env, scenario, done = await live.outcome(episode_id)
        messages = body.messages if body is not None else None
        with metrics.SCORING.track_inprogress():
            return await score(env, scenario, done, runner, kind="live", messages=messages)

    return router


def _at(loc: list[str | int]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".") + ": " if loc else ""


class LocalEpisodes:
    """Live episodes of the farm in this process."""

    def __init__(self, farm: Farm) -> None:
        self.farm = farm

    async def outcome(self, episode_id: str) -> tuple[Environment, Scenario, Replay]:
        episode = self.farm.episode(episode_id)
        return episode.env, episode.scenario, outcome(episode)


class ScoringService:
    """The scoring routes plus the sandbox pool they run checks in (started and closed with the app)."""

    def __init__(
        self,
        limits: ScoringLimits | None = None,
        sandbox: SandboxLimits | None = None,
        workers: int | None = None,
        replay_workers: int | None = 0,
    ) -> None:
        """``replay_workers``: 0 replays in this process, None in one process per CPU."""
        self.limits = limits or ScoringLimits()
        self.pool = SandboxPool(workers, sandbox or SandboxLimits())
        self.replayer = None if replay_workers == 0 else ReplayPool(replay_workers)

    def install(self, api: FastAPI, envs: dict[str, Environment], live: LiveEpisodes) -> None:
        """Add the scoring routes and the request-size limit to ``api``."""
        api.include_router(scoring_router(envs, self.pool, live, self.limits, self.replayer))

    async def __aenter__(self) -> ScoringService:
        await self.pool.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.pool.close()
        if self.replayer is not None:
            await self.replayer.close()


def farm_extension(service: ScoringService) -> Extension:
    """Mount scoring in ``envfarm serve``: live episodes are read from the farm itself."""

    def install(api: FastAPI, farm: Farm) -> AbstractAsyncContextManager[Any]:
        service.install(api, farm.envs, LocalEpisodes(farm))
        return service

    return install


def create_validator_app(
    envs: dict[str, Environment], farm_url: str | None, settings: FarmSettings, service: ScoringService
) -> ASGIApp:
    """``envfarm validator``: scoring alone; live episodes are fetched from the farm at ``farm_url``."""
    remote = RemoteFarm(farm_url, envs, settings.token) if farm_url else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with service:
            yield
        if remote is not None:
            await remote.close()

    api = FastAPI(
        title="envfarm validator",
        version=__version__,
        lifespan=lifespan,
        summary="Replays trajectories and scores them with sandboxed rule checks.",
    )

    @api.get("/metrics", tags=["ops"], response_class=Response)
    def prometheus() -> Response:
        """Prometheus metrics: trajectories and live episodes scored, by env."""
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @api.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        """Liveness, with the environments this validator can score and the farm it reads episodes from."""
        return {"status": "ok", "version": __version__, "envs": sorted(envs), "farm": farm_url}

    install_error_handlers(api)
    service.install(api, envs, remote or NoFarm())
    return guard(api, settings)


class NoFarm:
    """Stands in for the farm when the validator was started without ``--farm``."""

    async def outcome(self, episode_id: str) -> tuple[Environment, Scenario, Replay]:
        raise Conflict("this validator was started without --farm, so it cannot read live episodes")


def _detail(answer: httpx.Response) -> str | None:
    """The ``detail`` of a farm's error answer, if it has one."""
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) else None


class RemoteFarm:
    """Live episodes of a farm at ``url``, read over its control API."""

    def __init__(self, url: str, envs: dict[str, Environment], token: str | None = None) -> None:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.AsyncClient(base_url=url.rstrip("/"), headers=headers, timeout=30)
        self.envs = envs

    async def outcome(self, episode_id: str) -> tuple[Environment, Scenario, Replay]:
        path = f"/v1/episodes/{quote(episode_id, safe='')}"
        try:
            info = await self.client.get(path)
            if info.status_code == 404:
                raise NotFound(_detail(info) or f"episode {brief(episode_id)} not found")
            info.raise_for_status()
            state = await self.client.get(f"{path}/state")
            state.raise_for_status()
            meta, final = info.json(), state.json()["state"]
            env_id, scenario_id, log = meta["env"], meta["scenario"], meta.get("log", [])
            results = [ToolResult.from_dict(r) for r in log]
        except (httpx.HTTPError, httpx.InvalidURL) as e:
            raise UpstreamFailed(f"could not read episode {brief(episode_id)} from the farm: {e}") from None
        except (ValueError, LookupError, TypeError, AttributeError) as e:
            message = f"the farm's answer about episode {brief(episode_id)} is not a farm's ({type(e).__name__})"
            raise UpstreamFailed(message) from None
        env = self.envs.get(env_id) if isinstance(env_id, str) else None
        if env is None or not isinstance(scenario_id, str) or scenario_id not in env.scenarios:
            raise Conflict(f"the farm's episode is of {brief(env_id)}/{brief(scenario_id)}, unknown here")
        scenario = env.scenarios[scenario_id]
        initial = env.initial_view(scenario.id)
        done = Replay(results, initial, final, state_hash(final), diff(initial, final, env.keys()), env.keys())
        return env, scenario, done

    async def close(self) -> None:
        await self.client.aclose()
