"""Tool calls per second through `envfarm router` versus straight to the worker, on one machine.

One worker (`envfarm serve ENV`) and one router in front of it (`envfarm router --worker
URL`), both subprocesses on 127.0.0.1; N episodes opened through the router (so they are
on the worker) and driven closed-loop with the workload's 50/50 mix of tool calls, once at
the worker's own MCP URLs and once at the router's, alternating for ``--rounds`` rounds.
The ratio (router / direct) is what the extra hop costs: on a machine this small the
router, the worker and the load generator share the same cores, so the router's CPU per
call comes straight out of the worker's throughput.

Usage: python benchmarks/bench_router.py [--quick] [--env ENV] [--seconds 5] [--concurrency 1,8,64]
           [--rounds 2] [--clients raw,sdk]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_generator import drive, http_clients  # noqa: E402
from processes import cpu_seconds, start_farm, start_router  # noqa: E402
from report import machine, percentile, table, target_line  # noqa: E402
from workloads import pick_env, use_fixture_envs  # noqa: E402


async def measure(args: argparse.Namespace) -> tuple[list[list[Any]], list[list[Any]], int]:
    import httpx

    env, workload = pick_env(args.env)
    worker = start_farm(env.id)
    router = start_router([worker.url])
    rows: list[list[Any]] = []
    ratios: list[list[Any]] = []
    errors = 0
    try:
        async with httpx.AsyncClient(base_url=router.url, timeout=60) as control:
            for kind in args.clients.split(","):
                for n in [int(x) for x in args.concurrency.split(",")]:
                    episodes = []
                    for _ in range(n):
                        r = await control.post("/v1/episodes", json={"env": env.id, "scenario": workload.scenario})
                        r.raise_for_status()
                        assert r.headers["x-envfarm-worker"] == worker.url
                        episodes.append(r.json()["episode_id"])
                    totals: dict[str, list[Any]] = {}
                    for _ in range(args.rounds):
                        for path, base in (("direct", worker.url), ("router", router.url)):
                            urls = [f"{base}/episodes/{e}/mcp" for e in episodes]
                            ids = [random.randrange(10**6) for _ in episodes]
                            router_cpu0 = cpu_seconds(router.pid)
                            async with http_clients(kind, urls, workload, ids) as fns:
                                count, elapsed, lat, err, wcpu, _ = await drive(fns, args.seconds, worker.pid)
                            rcpu = cpu_seconds(router.pid) - router_cpu0
                            t = totals.setdefault(path, [0, 0.0, [], 0, 0.0, 0.0])
                            t[0] += count
                            t[1] += elapsed
                            t[2] += lat
                            t[3] += err
                            t[4] += wcpu or 0.0
                            t[5] += rcpu
                    rates = {}
                    for path, (count, elapsed, lat, err, wcpu, rcpu) in totals.items():
                        lat.sort()
                        rates[path] = (count / elapsed, percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3)
                        router_ms = rcpu / count * 1e3 if path == "router" else float("nan")
                        rows.append([kind, n, path, count, *rates[path], err, wcpu / count * 1e3, router_ms])
                        errors += err
                    ratios.append(
                        [
                            kind,
                            n,
                            rates["router"][0] / rates["direct"][0],
                            rates["router"][1] / rates["direct"][1],
                            rates["router"][1] - rates["direct"][1],
                        ]
                    )
                    for e in episodes:
                        await control.delete(f"/v1/episodes/{e}")
    finally:
        router.stop()
        worker.stop()
    return rows, ratios, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="auto", help="environment id (default: library, else notes)")
    parser.add_argument("--seconds", type=float, default=None, help="measured time per run (default 5)")
    parser.add_argument("--concurrency", default=None, help="closed-loop episode counts (default 1,8,64)")
    parser.add_argument("--rounds", type=int, default=None, help="direct/router alternations per row (default 2)")
    parser.add_argument("--clients", default="raw", help="client kinds: raw, httpx, sdk (see bench_calls.py)")
    parser.add_argument("--quick", action="store_true", help="0.05 s runs, 2 episodes (CI smoke)")
    args = parser.parse_args()
    args.seconds = args.seconds or (0.05 if args.quick else 5.0)
    args.concurrency = args.concurrency or ("2" if args.quick else "1,8,64")
    args.rounds = args.rounds or (1 if args.quick else 2)
    random.seed(0)
    use_fixture_envs()
    print(f"# bench_router: tool calls through `envfarm router` versus direct\n\nmachine: {machine()}\n")
    start = time.perf_counter()
    rows, ratios, errors = asyncio.run(measure(args))
    headers = ["client", "N", "path", "calls", "calls/s", "p50 ms", "p99 ms", "errors", "worker CPU ms/call"]
    print(table([*headers, "router CPU ms/call"], rows))
    print("\n## router / direct\n")
    print(table(["client", "N", "throughput ratio", "p50 ratio", "p50 added ms"], ratios))
    print()
    print(
        target_line(
            "every call through the router answered, from the worker holding its episode",
            errors == 0,
            f"{errors} errors; ratios {', '.join(f'{r[2]:.2f}' for r in ratios)}; {time.perf_counter() - start:.0f} s",
        )
    )


if __name__ == "__main__":
    main()
