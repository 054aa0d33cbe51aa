"""Episodes per second, end to end over HTTP: opened, run (the oracle replayed through the
client over MCP) and scored, then deleted, with 1, 16 and 128 episodes in flight.

The farm is a real `envfarm serve` subprocess on 127.0.0.1; this script drives it with
`envfarm.client.AsyncFarm` (the official MCP SDK client underneath), each episode a
rollout of a `library` scenario's oracle (5-8 tool calls) followed by `score()`.

Usage: python benchmarks/bench_rollout.py [--quick] [--seconds 10] [--concurrency 1,16,128]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import start_farm  # noqa: E402
from report import machine, percentile, table, target_line  # noqa: E402

from envfarm.client import AsyncFarm  # noqa: E402
from envfarm.core.environments import Environment, load_environment  # noqa: E402


async def measure(
    env: Environment, url: str, concurrency: int, seconds: float
) -> tuple[int, float, list[float], float]:
    """Episodes done, seconds, sorted latencies and the mean reward with ``concurrency`` in flight."""
    scenarios = sorted(s for s in env.scenarios if not s.startswith("synth-"))
    done = 0
    latencies: list[float] = []
    rewards: list[float] = []
    deadline = time.perf_counter() + seconds
    async with AsyncFarm(url) as farm:

        async def worker(n: int) -> None:
            nonlocal done
            i = n
            while time.perf_counter() < deadline:
                scenario = env.scenarios[scenarios[i % len(scenarios)]]
                i += concurrency
                start = time.perf_counter()
                async with farm.episode("library", scenario.id) as episode:
                    for call in scenario.oracle:
                        await episode.call(call.tool, call.arguments)
                    rewards.append((await episode.score())["reward"])
                latencies.append(time.perf_counter() - start)
                done += 1

        start = time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(concurrency)))
        elapsed = time.perf_counter() - start
    return done, elapsed, sorted(latencies), sum(rewards) / max(1, len(rewards))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.3 s with 2 in flight (CI smoke)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16,128")
    args = parser.parse_args()
    levels = [2] if args.quick else [int(c) for c in args.concurrency.split(",")]
    seconds = 0.3 if args.quick else args.seconds
    print(f"# bench_rollout: library episodes opened, run and scored over HTTP\n\n{machine()}\n")
    env = load_environment("library")
    server = start_farm("library")
    rows = []
    try:
        for concurrency in levels:
            done, elapsed, latencies, mean_reward = asyncio.run(measure(env, server.url, concurrency, seconds))
            rows.append(
                [
                    concurrency,
                    done,
                    done / elapsed,
                    percentile(latencies, 50) * 1000,
                    percentile(latencies, 99) * 1000,
                    mean_reward,
                ]
            )
    finally:
        server.stop()
    print(table(["in flight", "episodes", "episodes/s", "p50 ms", "p99 ms", "mean reward"], rows))
    print()
    print(
        target_line(
            "every rollout of an oracle scores 1.0",
            all(r[5] == 1.0 for r in rows),
            ", ".join(f"{r[5]:.3f}" for r in rows),
        )
    )


if __name__ == "__main__":
    main()
