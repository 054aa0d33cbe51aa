"""A rollout loop: many episodes driven concurrently through envfarm's client, then scored.

The "policy" here replays each scenario's oracle (fetched from the operator API),
standing in for a model that emits tool calls; swap `policy` for your model. Run
against a farm (`envfarm serve`):

    python examples/rollout.py --farm http://127.0.0.1:8000 --env library --episodes 32
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from envfarm.client import AsyncFarm, GymEpisode


async def policy(farm: AsyncFarm, env: str, scenario: str) -> list[dict[str, Any]]:
    """The tool calls to make, as a model would emit them ({name, arguments as a JSON string})."""
    full = await farm.request("GET", f"/v1/envs/{env}/scenarios/{scenario}")
    return [{"name": c["tool"], "arguments": json.dumps(c["arguments"])} for c in full["oracle"]]


async def rollout(farm: AsyncFarm, env: str, scenario: str) -> float:
    episode = GymEpisode(farm, env, scenario)
    try:
        task, info = await episode.reset()
        for call in await policy(farm, env, scenario):
            observation, _, terminated, _, step_info = await episode.step(call)
            if terminated:
                break
        return await episode.score()
    finally:
        await episode.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--farm", default="http://127.0.0.1:8000")
    parser.add_argument("--env", default="library")
    parser.add_argument("--episodes", type=int, default=32)
    args = parser.parse_args()
    async with AsyncFarm(args.farm) as farm:
        scenarios = [s["id"] for s in await farm.request("GET", f"/v1/envs/{args.env}/scenarios")]
        picks = [scenarios[i % len(scenarios)] for i in range(args.episodes)]
        start = time.perf_counter()
        rewards = await asyncio.gather(*(rollout(farm, args.env, s) for s in picks))
        elapsed = time.perf_counter() - start
    print(
        f"{len(rewards)} episodes in {elapsed:.1f} s ({len(rewards) / elapsed:.1f}/s), "
        f"mean reward {sum(rewards) / len(rewards):.3f}"
    )


if __name__ == "__main__":
    asyncio.run(main())
