"""envfarm.ray on a real local Ray instance: two farm actors, and a batch of rollouts spread over them.

Skipped, saying why, when Ray is not installed (it is the optional extra ``envfarm[ray]``;
.ci/run installs it, so CI runs this).
"""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'envfarm[ray]' (.ci/run does)")

from envfarm.core.environments import load_catalog  # noqa: E402
from envfarm.core.nodes import node_of  # noqa: E402
from envfarm.ray import FarmHandle, rollout_batch, start_farms, stop_farms  # noqa: E402

ENVS = ["library", "notes"]
CATALOG = load_catalog(ENVS)


def oracle_policy(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Any:
    """Play the scenario's oracle, one call a turn (the scenario is told by the task), then say it is done."""
    task = messages[1]["content"]
    scenario = next(s for env in CATALOG.values() for s in env.scenarios.values() if s.task == task)
    done = sum(1 for m in messages if m["role"] == "assistant")
    if done < len(scenario.oracle):
        call = scenario.oracle[done]
        function = {"name": call.tool, "arguments": json.dumps(call.arguments)}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": f"c{done}", "type": "function", "function": function}],
        }
    return "Done."


@pytest.fixture(scope="module")
def farms() -> Iterator[list[FarmHandle]]:
    # A local instance of this machine's CPUs; the actors inherit ENVFARM_ENV_PATH (the fixture environments).
    ray.init(num_cpus=max(2, os.cpu_count() or 2), include_dashboard=False, log_to_driver=False)
    try:
        started = start_farms(2, ENVS)
        yield started
        stop_farms(started)
    finally:
        ray.shutdown()


def test_two_farm_actors_serve_as_named_nodes(farms: list[FarmHandle]) -> None:
    assert [f.node for f in farms] == ["ray-farm-0", "ray-farm-1"]
    assert len({f.url for f in farms}) == 2
    for farm in farms:
        health = httpx.get(f"{farm.url}/healthz", timeout=30).json()
        assert health["node"] == farm.node and health["envs"] == sorted(ENVS)
        opened = httpx.post(f"{farm.url}/v1/episodes", json={"env": "notes"}, timeout=30)
        assert opened.status_code == 201 and node_of(opened.json()["episode_id"]) == farm.node
        assert opened.json()["mcp_url"].startswith(farm.url)
        other = next(f for f in farms if f is not farm)
        misrouted = httpx.get(f"{other.url}/v1/episodes/{opened.json()['episode_id']}", timeout=30)
        assert misrouted.status_code == 421 and f"belongs to node {farm.node}" in misrouted.json()["detail"]
        httpx.delete(f"{farm.url}/v1/episodes/{opened.json()['episode_id']}", timeout=30)


def test_a_batch_of_rollouts_spread_over_the_actors_scores_the_oracles_one(farms: list[FarmHandle]) -> None:
    jobs = [("library", "return-and-pay"), ("notes", "file-two")] * 4
    finished: list[int] = []
    done = asyncio.run(rollout_batch(farms, jobs, oracle_policy, per_farm=3, on_done=lambda i, _: finished.append(i)))
    assert [(d.env, d.scenario) for d in done] == jobs  # in the jobs' order
    assert sorted(finished) == list(range(len(jobs)))
    assert all((d.reward, d.success, d.ended) == (1.0, True, "agent_done") for d in done), [d.error for d in done]
    where = Counter(node_of(d.episode_id) for d in done)
    assert set(where) == {"ray-farm-0", "ray-farm-1"} and min(where.values()) >= 2, where
    for farm in farms:  # every episode was deleted once scored
        assert httpx.get(f"{farm.url}/healthz", timeout=30).json()["episodes"] == 0


def test_an_episode_lives_and_dies_with_its_actor(farms: list[FarmHandle]) -> None:  # (Ray is running)
    # num_cpus=0: the two farms of the fixture hold this instance's two CPUs, and Ray would wait for one forever
    (farm,) = start_farms(1, ["notes"], prefix="short-lived", num_cpus=0)
    episode = httpx.post(f"{farm.url}/v1/episodes", json={"env": "notes"}, timeout=30).json()
    assert node_of(episode["episode_id"]) == "short-lived-0"
    ray.kill(farm.actor)
    with pytest.raises(httpx.TransportError):
        for _ in range(100):  # the actor's process is going: its farm stops answering
            httpx.get(f"{farm.url}/v1/episodes/{episode['episode_id']}", timeout=5)
            asyncio.run(asyncio.sleep(0.1))


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        start_farms(0)
    with pytest.raises(Exception, match="DNS label"):
        start_farms(1, prefix="Ray_Farm")
    with pytest.raises(ValueError, match="at least one farm"):
        asyncio.run(rollout_batch([], [("notes", "file-two")], oracle_policy))
