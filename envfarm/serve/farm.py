"""The farm: the catalog of environments and the live episodes of one process.

This is the domain object behind every edge (HTTP control API, MCP endpoints,
scoring). It raises :mod:`envfarm.core.errors` exceptions that say what was
wrong; :mod:`envfarm.serve.errors` turns them into HTTP answers.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time

from envfarm.core.environments import Environment
from envfarm.core.episodes import EPISODE_ID_PATTERN, Episode, EpisodeStore
from envfarm.core.errors import Misdirected, NotFound, Unavailable
from envfarm.core.nodes import misdirected, new_node_episode_id, node_of
from envfarm.core.scenarios import Scenario
from envfarm.serve import metrics
from envfarm.serve.errors import FieldError
from envfarm.serve.inputs import brief
from envfarm.serve.settings import FarmSettings

log = logging.getLogger("envfarm.farm")
RETRY_AFTER_SECONDS = 5


class FarmFull(Unavailable):
    """The farm holds as many live episodes as it may (``ENVFARM_MAX_EPISODES``)."""


class Farm:
    """The catalog of environments and the live episodes of this process."""

    def __init__(self, envs: dict[str, Environment], settings: FarmSettings | None = None) -> None:
        self.envs = envs
        self.settings = settings or FarmSettings()
        self.episodes = EpisodeStore()

    def env(self, env_id: str) -> Environment:
        env = self.envs.get(env_id)
        if env is None:
            raise NotFound(f"no environment {brief(env_id)}; this farm serves {sorted(self.envs)}")
        return env

    def scenario(self, env: Environment, scenario_id: str) -> Scenario:
        scenario = env.scenarios.get(scenario_id)
        if scenario is None:
            raise NotFound(f"no scenario {brief(scenario_id)} in {env.id!r}; see /v1/envs/{env.id}/scenarios")
        return scenario

    def episode(self, episode_id: str) -> Episode:
        """A live episode, marked as in use; :class:`~envfarm.core.episodes.EpisodeNotFound` says why not."""
        if not re.fullmatch(EPISODE_ID_PATTERN, episode_id):  # never an episode's id: say so, quoting it briefly
            raise NotFound(f"episode {brief(episode_id)} not found: episode ids match {EPISODE_ID_PATTERN}")
        self._on_this_node(episode_id)
        episode = self.episodes.get(episode_id)
        episode.touch()
        return episode

    def open(self, env_id: str, scenario_id: str | None, seed: int | None, episode_id: str | None = None) -> Episode:
        """Open an episode; ``episode_id`` is the caller's choice of id (a router's, so it can hash it first)."""
        if self.settings.node is not None:  # a node's ids name it (envfarm.core.nodes): mint one, or check the caller's
            episode_id = self._node_id(episode_id)
        env = self.env(env_id)
        if scenario_id is None:
            ids = sorted(env.scenarios)
            scenario_id = random.Random(seed).choice(ids) if seed is not None else ids[0]
        scenario = self.scenario(env, scenario_id)
        if len(self.episodes) >= self.settings.max_episodes:
            metrics.EPISODES_REFUSED.inc()
            raise FarmFull(
                f"this farm holds its limit of {self.settings.max_episodes} live episodes (ENVFARM_MAX_EPISODES); "
                "delete finished episodes or retry later",
                RETRY_AFTER_SECONDS,
            )
        episode = self.episodes.create(env, scenario, seed, episode_id)
        log.info("episode opened", extra={"episode_id": episode.id, "env": env.id, "scenario": scenario.id})
        metrics.EPISODES_OPENED.labels(env.id).inc()
        metrics.LIVE_EPISODES.set(len(self.episodes))
        return episode

    def _on_this_node(self, episode_id: str) -> None:
        """Refuse (421) a request about an episode whose id names another node: it reached the wrong worker."""
        if self.settings.node is not None and (why := misdirected(episode_id, self.settings.node)):
            raise Misdirected(why)

    def _node_id(self, episode_id: str | None) -> str:
        """A fresh id naming this node, or the caller's id once it is seen to name this node."""
        node = self.settings.node
        assert node is not None
        if episode_id is None:
            return new_node_episode_id(node)
        self._on_this_node(episode_id)
        if node_of(episode_id) is None:
            raise FieldError(
                ["episode_id"], f"on node {node} an episode id must name the node: ep_{node}_ and then your own part"
            )
        return episode_id

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

    def close(self) -> None:
        """End every live episode, counted, with a reason (at shutdown)."""
        live = list(self.episodes)
        for episode in live:
            self.end(episode.id, "closed at shutdown")
        log.info("ended %d live episode(s) at shutdown", len(live))
