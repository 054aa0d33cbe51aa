"""envfarm on Ray: farm nodes as Ray actors, and a batch of rollouts spread over them from the driver.

An optional extra (``pip install 'envfarm[ray]'``), for trainers that already run on Ray (verl,
SkyRL, OpenRLHF, ROLL)::

    import asyncio
    import ray
    from envfarm.ray import rollout_batch, start_farms, stop_farms

    ray.init()                                              # or the trainer's cluster
    farms = start_farms(4, envs=["library", "airline"])    # 4 actors, nodes ray-farm-0 ... ray-farm-3
    jobs = [("library", "return-and-pay")] * 64
    done = asyncio.run(rollout_batch(farms, jobs, policy))  # policy: openai_policy(...) or a function
    rewards = [d.reward for d in done]
    stop_farms(farms)

Each actor (:class:`FarmNode`) is a whole farm in the actor's process: ``envfarm serve --node
NAME`` as a library (the control API, every episode's MCP endpoint and scoring, served by uvicorn
on a thread of the actor), bound to its Ray node's IP address on a free port. Ray places the
actors (one CPU each by default, spread over the cluster's machines); their episode ids name
their node, as any node's do. An episode lives and dies with its actor: a killed actor's farm is
gone, and its episodes with it.

:func:`rollout_batch` runs :func:`envfarm.agents.rollout.rollout` for every (env, scenario) job,
concurrently, each on the farm with the fewest episodes in flight (at most ``per_farm`` each),
straight at the farm's URL: no proxy in between. The policy runs where the batch runs (the
driver, or whatever Ray task or actor calls it), as an OpenAI-compatible endpoint (the trainer's
vLLM server) or a Python function.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

try:
    import ray
except ImportError as e:  # the extra is not installed
    raise ImportError("envfarm.ray needs Ray: pip install 'envfarm[ray]'") from e

from envfarm.core.nodes import check_node_name

if TYPE_CHECKING:
    from envfarm.agents.prompts import Mode
    from envfarm.agents.rollout import Rollout, UserSpec

STARTUP_SECONDS = 120.0


class FarmNode:
    """A farm node in this process: what each Ray actor of :func:`start_farms` is.

    Serves ``envs`` (every bundled environment when None, plus those on ``ENVFARM_ENV_PATH``) as node
    ``node`` on ``host`` (the Ray node's IP address when None) and ``port`` (a free one when 0), with
    scoring (``sandbox_workers`` check processes) and the farm's limits.
    """

    def __init__(
        self,
        node: str,
        envs: Sequence[str] | None = None,
        host: str | None = None,
        port: int = 0,
        token: str | None = None,
        max_episodes: int = 10_000,
        idle_timeout: float = 3600.0,
        sandbox_workers: int = 1,
    ) -> None:
        import uvicorn

        from envfarm.core.environments import load_catalog
        from envfarm.serve.app import create_app
        from envfarm.serve.settings import FarmSettings
        from envfarm.validators.service import ScoringService, farm_extension

        self.node = check_node_name(node)
        host = host or ray.util.get_node_ip_address()
        catalog = load_catalog(list(envs) if envs else None)
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        bound = listener.getsockname()[1]
        settings = FarmSettings(host=host, port=bound, token=token, max_episodes=max_episodes)
        settings.idle_timeout, settings.node = idle_timeout, self.node
        app = create_app(catalog, settings, [farm_extension(ScoringService(workers=sandbox_workers))])
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=10, lifespan="on")
        self._server = uvicorn.Server(config)
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._serve, args=(listener,), name=f"envfarm-{node}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"farm node {node} did not start on {host}:{bound}: {self._failed!r}")
            time.sleep(0.02)
        self._url = f"http://{f'[{host}]' if ':' in host else host}:{bound}"

    def _serve(self, listener: socket.socket) -> None:
        try:
            self._server.run(sockets=[listener])
        except BaseException as e:  # noqa: BLE001 - reported by __init__ or stop(), never lost
            self._failed = e

    def url(self) -> str:
        """The farm's base URL (control API at /v1, MCP at /episodes/{id}/mcp)."""
        return self._url

    def stop(self) -> None:
        """Stop serving: requests in flight finish (up to 10 s), then every episode ends."""
        self._server.should_exit = True
        self._thread.join(timeout=30)


@dataclass(frozen=True)
class FarmHandle:
    """A running farm actor: its node name, its base URL, and the Ray actor itself."""

    node: str
    url: str
    actor: Any


def start_farms(
    count: int,
    envs: Sequence[str] | None = None,
    *,
    prefix: str = "ray-farm",
    token: str | None = None,
    num_cpus: float = 1,
    max_episodes: int = 10_000,
    idle_timeout: float = 3600.0,
    sandbox_workers: int = 1,
    spread: bool = True,
) -> list[FarmHandle]:
    """Start ``count`` farm actors, nodes ``PREFIX-0`` ... (needs ``ray.init()`` first); returns once all serve.

    ``spread`` asks Ray to place them on as many machines as it can. ``token``, when given, is the
    bearer token every farm requires (pass it to :func:`rollout_batch` too).
    """
    if count < 1:
        raise ValueError(f"count must be at least 1, not {count}")
    names = [check_node_name(f"{prefix}-{i}") for i in range(count)]
    options: dict[str, Any] = {"num_cpus": num_cpus}
    if spread:
        options["scheduling_strategy"] = "SPREAD"
    actor_class = ray.remote(FarmNode)
    actors: list[Any] = [
        actor_class.options(**options).remote(  # type: ignore[attr-defined]
            name,
            list(envs) if envs else None,
            token=token,
            max_episodes=max_episodes,
            idle_timeout=idle_timeout,
            sandbox_workers=sandbox_workers,
        )
        for name in names
    ]
    urls = ray.get([a.url.remote() for a in actors])
    return [FarmHandle(name, url, actor) for name, url, actor in zip(names, urls, actors, strict=True)]


def stop_farms(farms: Sequence[FarmHandle]) -> None:
    """Stop every farm (their episodes end) and its actor."""
    ray.wait([f.actor.stop.remote() for f in farms], num_returns=len(farms), timeout=60)  # then killed regardless
    for farm in farms:
        ray.kill(farm.actor)


async def rollout_batch(
    farms: Sequence[FarmHandle],
    jobs: Sequence[tuple[str, str]],
    policy: Any,
    *,
    per_farm: int = 32,
    token: str | None = None,
    mode: Mode = "task",
    user: UserSpec = None,
    max_turns: int = 30,
    on_done: Callable[[int, Rollout], None] | None = None,
) -> list[Rollout]:
    """One rollout per ``(env, scenario)`` job, spread over ``farms``; the results in the jobs' order.

    Each job runs :func:`envfarm.agents.rollout.rollout` (``policy``, ``mode``, ``user`` and
    ``max_turns`` are its own) on the farm with the fewest episodes in flight, ``per_farm`` at most
    on each; ``sample`` tells repeats of a job apart. ``on_done(index, rollout)`` is called as each
    one ends. The node that ran a rollout is in its ``episode_id`` (:func:`envfarm.core.nodes.node_of`).
    A job whose episode cannot be opened (an unknown scenario, a lost farm) raises, as ``rollout`` does.
    """
    from envfarm.agents.rollout import rollout
    from envfarm.client import AsyncFarm

    if not farms:
        raise ValueError("rollout_batch needs at least one farm (start_farms)")
    if per_farm < 1:
        raise ValueError(f"per_farm must be at least 1, not {per_farm}")
    in_flight = [0] * len(farms)
    room = asyncio.Condition()
    seen: dict[tuple[str, str], int] = {}
    samples = []
    for job in jobs:
        samples.append(seen.get(job, 0))
        seen[job] = samples[-1] + 1
    clients = [AsyncFarm(f.url, token) for f in farms]

    async def run(index: int, env: str, scenario: str) -> Rollout:
        async with room:
            await room.wait_for(lambda: min(in_flight) < per_farm)
            where = min(range(len(farms)), key=in_flight.__getitem__)
            in_flight[where] += 1
        try:
            done = await rollout(
                clients[where],
                env,
                scenario,
                policy,
                mode=mode,
                user=user,
                max_turns=max_turns,
                sample=samples[index],
            )
        finally:
            async with room:
                in_flight[where] -= 1
                room.notify_all()
        if on_done is not None:
            on_done(index, done)
        return done

    try:
        return list(await asyncio.gather(*(run(i, env, scenario) for i, (env, scenario) in enumerate(jobs))))
    finally:
        for client in clients:
            await client.aclose()
