"""Memory per live episode, and tool-call latency with 1 versus N (default 1,000) live episodes.

In process: RSS (from /proc/self/statm) before and after opening N episodes of the
scenario, and again after one query call on each (SQLite's page cache fills as pages are
read). Per episode = RSS delta / N. Then the p50 latency of the workload's query and
mutation tools with 1 live episode versus N live episodes, the calls either all on one
episode or spread round-robin over all N (every call then hits a different database, the
cache-unfriendly case), after one warm-up call on each. The first call on a fresh episode
is shown apart: it also parses the schema (SQLite does that lazily after ``deserialize``),
a once-per-open/reset cost that bench_reset.py charges to the reset. The 1-live and N-live
phases alternate for a few rounds and the median per phase is reported (noisy machine).

Over HTTP (``envfarm serve`` in a subprocess, a lean raw-HTTP client here, one call at a
time): the server's RSS per episode opened through ``POST /v1/episodes``, and the p50 of
calls with 1 versus N live episodes.

Usage: python benchmarks/bench_memory.py [--quick] [--env ENV] [--episodes 1000] [--calls 1000]
           [--rounds 5] [--no-http]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from processes import rss_bytes, start_farm  # noqa: E402
from raw_mcp import RawHttp, call_body, call_headers, response_ok  # noqa: E402
from report import machine, percentile, table, target_line  # noqa: E402
from workloads import Workload, pick_env, use_fixture_envs  # noqa: E402

from envfarm.core.environments import Environment  # noqa: E402
from envfarm.core.episodes import Episode  # noqa: E402

TARGET_SLOWDOWN = 1.20  # p50 with N live within 20% of p50 with 1 live


def mb(n: float) -> float:
    return n / 1048576


class Phases:
    """p50/p99 per (phase, tool kind) and round; ratios to the same round's "1 live" phase.

    Comparing within a round and taking the median over rounds keeps slow drifts of this
    noisy machine (neighbours, CPU frequency) out of the ratio as far as possible.
    """

    BASE = "1 live"

    def __init__(self) -> None:
        self.data: dict[tuple[str, str], list[tuple[float, float, int]]] = {}

    def record(self, phase: str, kind: str, latencies: list[float]) -> None:
        self.data.setdefault((phase, kind), []).append(
            (percentile(latencies, 50), percentile(latencies, 99), len(latencies))
        )

    def rows(self, tools: dict[str, str]) -> list[list[Any]]:
        rows: list[list[Any]] = []
        for (phase, kind), runs in self.data.items():
            base = self.data[(self.BASE, kind)]
            ratios = [r[0] / b[0] for r, b in zip(runs, base, strict=False)]
            rows.append(
                [
                    phase,
                    f"{kind} ({tools[kind]})",
                    runs[0][2],
                    statistics.median(r[0] for r in runs) * 1e3,
                    statistics.median(r[1] for r in runs) * 1e3,
                    " ".join(f"{r[0] * 1e3:.3f}" for r in runs),
                    statistics.median(ratios),
                ]
            )
        order = [self.BASE, "calls on one", "spread", "first call"]
        rows.sort(key=lambda r: (r[1], next(i for i, o in enumerate(order) if o in r[0])))
        return rows

    HEADERS = ["live episodes", "tool", "calls", "p50 ms", "p99 ms", "p50 ms per round", "p50 vs 1 live"]

    def worst(self) -> float:
        """The largest median ratio over the warm N-live phases."""
        worst = 0.0
        for row in self.rows({"query": "", "mutation": ""}):
            if row[0] != self.BASE and "first call" not in row[0]:
                worst = max(worst, row[6])
        return worst


# Call numbers never repeat in a process, so a workload whose arguments must differ from
# call to call (notes: unique titles) can be called on the same episode phase after phase.
CALL_NUMBERS = itertools.count()


def timed_calls(episodes: list[Episode], workload: Workload, calls: int, kind: str) -> list[float]:
    """``calls`` calls of one kind, round-robin over ``episodes``; sorted latencies in seconds."""
    pick = workload.query if kind == "query" else workload.mutation
    out = []
    n = len(episodes)
    for i in range(calls):
        tool, args = pick(0, next(CALL_NUMBERS))
        episode = episodes[i % n]
        t0 = time.perf_counter()
        result = episode.call(tool, args)
        out.append(time.perf_counter() - t0)
        if not result.ok:
            raise RuntimeError(f"{tool} failed: {result.error}")
    out.sort()
    return out


def in_process(env: Environment, workload: Workload, n: int, calls: int, rounds: int) -> tuple[list[str], bool]:
    scenario = env.scenarios[workload.scenario]
    snapshot_kb = len(env.snapshot(scenario.id)) / 1024
    lines: list[str] = []

    # Memory.
    gc.collect()
    first = Episode(env, scenario, "bench-0")
    first.call(*workload.query(0, 0))
    gc.collect()
    before = rss_bytes()
    t0 = time.perf_counter()
    others = [Episode(env, scenario, f"bench-{k}") for k in range(1, n + 1)]
    open_s = time.perf_counter() - t0
    gc.collect()
    opened = rss_bytes()
    for episode in others:
        episode.call(*workload.query(0, 0))
    gc.collect()
    touched = rss_bytes()
    lines.append(f"## In process: memory of {n:,} episodes ({snapshot_kb:.0f} KB snapshot each)\n")
    lines.append(
        table(
            ["stage", "RSS MB", "delta MB", "per episode KB", "per episode / snapshot"],
            [
                ["before (1 episode open)", mb(before), 0.0, float("nan"), float("nan")],
                [
                    f"{n:,} more opened ({open_s * 1e3 / n:.3f} ms each)",
                    mb(opened),
                    mb(opened - before),
                    (opened - before) / n / 1024,
                    (opened - before) / n / 1024 / snapshot_kb,
                ],
                [
                    "after one query on each",
                    mb(touched),
                    mb(touched - before),
                    (touched - before) / n / 1024,
                    (touched - before) / n / 1024 / snapshot_kb,
                ],
            ],
        )
    )

    # Latency: alternate phases; the 1-live phase closes the others and reopens them after.
    phases = Phases()
    for _ in range(rounds):
        for kind in ("query", "mutation"):
            for episode in others:
                episode.close()
            gc.collect()
            phases.record("1 live", kind, timed_calls([first], workload, calls, kind))
            others = [Episode(env, scenario, f"bench-{k}") for k in range(1, n + 1)]
            gc.collect()
            # The first call on a fresh (or just reset) episode also parses the schema.
            phases.record(f"{n:,} live, first call on each (fresh)", kind, timed_calls(others, workload, n, kind))
            phases.record(f"{n:,} live, calls on one", kind, timed_calls([first], workload, calls, kind))
            phases.record(
                f"{n:,} live, calls spread over all", kind, timed_calls([first, *others], workload, calls, kind)
            )
    for episode in [first, *others]:
        episode.close()

    tools = {"query": workload.query(0, 0)[0], "mutation": workload.mutation(0, 0)[0]}
    lines.append(f"\n## In process: tool-call latency, 1 versus {n:,} live episodes ({rounds} rounds)\n")
    lines.append(table(Phases.HEADERS, phases.rows(tools)))
    worst = phases.worst()
    met = worst <= TARGET_SLOWDOWN
    lines.append("")
    lines.append(
        target_line(
            f"in process, p50 with {n:,} live episodes within 20% of 1 live",
            met,
            f"worst median p50 ratio {worst:.2f} over warm episodes; first calls after open/reset excluded",
        )
    )
    return lines, met


async def over_http(
    env: Environment, workload: Workload, n: int, calls: int, rounds: int, warmup: int = 200
) -> list[str]:
    import httpx

    lines: list[str] = []
    phases = Phases()
    server = start_farm(env.id)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as control:

            async def open_episode() -> str:
                r = await control.post("/v1/episodes", json={"env": env.id, "scenario": workload.scenario})
                r.raise_for_status()
                return "/" + str(r.json()["mcp_url"]).split("/", 3)[3]

            first = [await open_episode()]
            conn = RawHttp(server.url + first[0])

            async def run(paths: list[str], count: int, kind: str) -> list[float]:
                pick = workload.query if kind == "query" else workload.mutation
                out = []
                for i in range(count):
                    tool, args = pick(0, next(CALL_NUMBERS))
                    t0 = time.perf_counter()
                    status, body = await conn.post(call_body(i, tool, args), call_headers(tool), paths[i % len(paths)])
                    out.append(time.perf_counter() - t0)
                    if status != 200 or not response_ok(body):
                        raise RuntimeError(f"{tool} failed over HTTP: {status} {body[:200]!r}")
                out.sort()
                return out

            await run(first, warmup, "query")
            await run(first, warmup, "mutation")
            rss_one = rss_bytes(server.pid)
            memory: list[list[Any]] = []
            for r in range(rounds):
                for kind in ("query", "mutation"):
                    phases.record("1 live", kind, await run(first, calls, kind))
                    t0 = time.perf_counter()
                    others = [await open_episode() for _ in range(n - 1)]
                    open_s = time.perf_counter() - t0
                    rss_open = rss_bytes(server.pid)
                    phases.record(f"{n:,} live, first call on each (fresh)", kind, await run(others, n - 1, kind))
                    rss_touched = rss_bytes(server.pid)
                    phases.record(f"{n:,} live, calls on one", kind, await run(first, calls, kind))
                    phases.record(f"{n:,} live, calls spread over all", kind, await run(first + others, calls, kind))
                    if r == 0 and kind == "query":
                        per = max(1, n - 1) * 1024
                        memory = [
                            ["1 episode, warmed up", mb(rss_one), float("nan")],
                            [
                                f"{n:,} episodes opened ({open_s * 1e3 / max(1, n - 1):.2f} ms per POST)",
                                mb(rss_open),
                                (rss_open - rss_one) / per,
                            ],
                            ["after one call on each", mb(rss_touched), (rss_touched - rss_one) / per],
                        ]
                    for path in others:
                        await control.delete("/v1/episodes/" + path.split("/")[2])
            conn.close()
    finally:
        server.stop()

    lines.append(f"\n## Over HTTP: `envfarm serve` memory per episode ({n:,} episodes)\n")
    lines.append(table(["server stage", "RSS MB", "per episode KB"], memory))
    tools = {"query": workload.query(0, 0)[0], "mutation": workload.mutation(0, 0)[0]}
    lines.append(
        f"\n## Over HTTP: tool-call latency, 1 versus {n:,} live episodes "
        f"(one sequential raw-HTTP client, {rounds} rounds)\n"
    )
    lines.append(table(Phases.HEADERS, phases.rows(tools)))
    worst = phases.worst()
    lines.append("")
    lines.append(
        target_line(
            f"over HTTP, p50 with {n:,} live episodes within 20% of 1 live",
            worst <= TARGET_SLOWDOWN,
            f"worst median p50 ratio {worst:.2f} over warm episodes; first calls after open excluded",
        )
    )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="auto", help="environment id (default: library, else notes)")
    parser.add_argument("--episodes", type=int, default=None, help="live episodes (default 1000)")
    parser.add_argument("--calls", type=int, default=None, help="timed calls per phase and kind (default 1000)")
    parser.add_argument("--rounds", type=int, default=None, help="alternating rounds (default 5 in process, 3 HTTP)")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP part")
    parser.add_argument("--quick", action="store_true", help="10 episodes, 20 calls (CI smoke)")
    args = parser.parse_args()
    n = args.episodes or (10 if args.quick else 1000)
    calls = args.calls or (20 if args.quick else 1000)
    rounds = args.rounds or (1 if args.quick else 5)
    http_rounds = args.rounds or (1 if args.quick else 3)

    use_fixture_envs()
    env, workload = pick_env(args.env)
    if args.quick:
        gc.freeze()  # the many gc.collect() calls then skip the import-time heap (0.1-0.2 s each)
    print(f"# bench_memory: {env.id}/{workload.scenario}\n\nmachine: {machine()}\n")
    lines, _ = in_process(env, workload, n, calls, rounds)
    print("\n".join(lines), flush=True)
    if not args.no_http:
        warmup = 20 if args.quick else 200
        print("\n".join(asyncio.run(over_http(env, workload, n, calls, http_rounds, warmup))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
