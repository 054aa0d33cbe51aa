"""Tool calls per second and latency: in process, over stdio, and over HTTP with 1..64 episodes.

Every measurement runs the same 50/50 mix of the workload's query and mutation tools
(see ``WORKLOADS`` in workloads.py) and is set side by side with the baseline: the same tool
functions served "the ordinary way", by a decorator-based ``MCPServer`` over one SQLite file
(benchmarks/_baseline_server.py), which all clients share since it has no episodes.

Parts:

- ``inproc``: ``Episode.call`` (no MCP at all); the SDK's in-memory ``mcp.Client(server)``
  on envfarm's low-level server and on the baseline ``MCPServer``; ``MCPServer.call_tool``.
- ``stdio``: one ``mcp.Client(StdioServerParameters(...))`` calling ``envfarm stdio`` or the
  baseline over stdio, one call at a time.
- ``http``: the server in a subprocess (``envfarm serve`` / the baseline under uvicorn), this
  process as the load generator. N episodes (envfarm) or N clients of the one database
  (baseline), each driven by its own client, all concurrently:
  - closed loop: every client sends its next call as soon as the last one answers, so the
    server is saturated and latency = N / throughput (Little's law);
  - paced: N clients together offer a fixed rate (default 500 calls/s), like agents that
    think between calls; latency is counted from each call's scheduled send time, so a
    backed-up server is charged for the wait (no coordinated omission).
  Clients: ``sdk`` = one official ``mcp.Client(url)`` per episode (protocol 2026-07-28);
  ``httpx`` = a lean client posting the same JSON-RPC ``tools/call`` bodies and headers the
  SDK sends (one ``httpx.AsyncClient`` per episode, keep-alive); ``raw`` = the same requests
  written by hand on asyncio streams (HTTP/1.1 keep-alive), so the load generator uses as
  little CPU as possible and the server's own capacity shows.

CPU columns: server CPU per call (from /proc/PID/stat) and this load generator's CPU per
call; with 2 cores, whichever side nears 1 core (1000 ms/s) is the bottleneck.

Usage: python benchmarks/bench_calls.py [--quick] [--env ENV] [--seconds 5] [--concurrency 1,8,64]
           [--rate 500] [--parts inproc,stdio,http] [--clients sdk,httpx,raw]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_generator import drive, http_clients  # noqa: E402
from processes import Server, baseline_args, children, start_baseline, start_farm  # noqa: E402
from report import machine, percentile, table, target_line  # noqa: E402
from workloads import Workload, pick_env, use_fixture_envs  # noqa: E402

from envfarm.core.environments import Environment  # noqa: E402
from envfarm.core.episodes import Episode  # noqa: E402

TARGET_RATE = 500  # calls/s with 64 concurrent episodes over HTTP
TARGET_P50_MS = 5.0


@dataclass
class Result:
    part: str
    server: str
    client: str
    n: int
    calls: int
    seconds: float
    latencies: list[float]  # seconds, sorted
    errors: int
    server_cpu: float | None  # seconds used by the server process during the run
    client_cpu: float  # seconds used by this process during the run
    offered: float | None = None  # paced runs: the offered rate

    @property
    def rate(self) -> float:
        return self.calls / self.seconds

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1e3

    def row(self) -> list[Any]:
        def per_call(cpu: float | None) -> float:
            return cpu / self.calls * 1e3 if self.calls and cpu is not None else float("nan")

        return [
            self.part,
            self.server,
            self.client,
            self.n,
            "closed" if self.offered is None else f"{self.offered:g}/s",
            self.calls,
            self.rate,
            self.p(50),
            self.p(99),
            self.errors,
            per_call(self.server_cpu),
            per_call(self.client_cpu),
        ]


HEADERS = [
    "part",
    "server",
    "client",
    "N",
    "load",
    "calls",
    "calls/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "server CPU ms/call",
    "client CPU ms/call",
]


# ---------------------------------------------------------------------------------------------
# In process


async def part_inproc(env: Environment, workload: Workload, seconds: float, db_dir: Path) -> list[Result]:
    import mcp
    from _baseline_server import build as build_baseline

    from envfarm.serve.mcp_server import build_server, current_episode

    results = []
    scenario = env.scenarios[workload.scenario]

    # Episode.call, no MCP. Query and mutation separately, then the mix.
    for label, pick in (
        ("query", lambda i: workload.query(0, i)),
        ("mutation", lambda i: workload.mutation(0, i)),
        ("mix", lambda i: workload.call(0, i)),
    ):
        episode = Episode(env, scenario, f"bench-{label}")

        async def call(i: int, episode: Episode = episode, pick=pick) -> bool:  # noqa: ANN001
            tool, args = pick(i)
            return episode.call(tool, args).ok

        n, el, lat, err, _, ccpu = await drive([call], seconds, None)
        results.append(Result("inproc", "envfarm", f"Episode.call ({label})", 1, n, el, lat, err, None, ccpu))
        episode.close()

    # The SDK's in-memory client on envfarm's server (protocol layers, no transport).
    episode = Episode(env, scenario, "bench-sdk-inproc")
    token = current_episode.set(episode)
    try:
        async with mcp.Client(build_server()) as client:
            r = await _sdk_run(client, workload, seconds, None, "inproc", "envfarm", "mcp.Client(server)")
            results.append(r)
    finally:
        current_episode.reset(token)
        episode.close()

    db = _fresh_db(env, workload, db_dir, "inproc.sqlite")
    baseline = build_baseline(env.id, workload.scenario, str(db))

    async def direct(i: int) -> bool:
        tool, args = workload.call(0, i)
        try:
            result = await baseline.call_tool(tool, args)
        except Exception:  # MCPServer.call_tool raises what the tool raised: counted as an error call
            return False
        return not getattr(result, "is_error", False)

    n, el, lat, err, _, ccpu = await drive([direct], seconds, None)
    results.append(Result("inproc", "baseline", "MCPServer.call_tool", 1, n, el, lat, err, None, ccpu))
    async with mcp.Client(baseline) as client:
        results.append(
            await _sdk_run(client, workload, seconds, None, "inproc", "baseline", "mcp.Client(server)", cid=1)
        )
    return results


async def _sdk_run(
    client: Any,
    workload: Workload,
    seconds: float,
    pid: int | None,
    part: str,
    server: str,
    label: str,
    cid: int = 0,
) -> Result:
    async def call(i: int) -> bool:
        tool, args = workload.call(cid, i)
        return not (await client.call_tool(tool, args)).is_error

    n, el, lat, err, scpu, ccpu = await drive([call], seconds, pid)
    return Result(part, server, label, 1, n, el, lat, err, scpu, ccpu)


def _fresh_db(env: Environment, workload: Workload, db_dir: Path, name: str) -> Path:
    """The scenario's initial state as an SQLite file, for the baseline server."""
    path = db_dir / name
    path.write_bytes(env.snapshot(workload.scenario))
    return path


# ---------------------------------------------------------------------------------------------
# stdio


async def part_stdio(env: Environment, workload: Workload, seconds: float, db_dir: Path) -> list[Result]:
    from mcp import Client, StdioServerParameters

    commands = {
        "envfarm": ["-m", "envfarm.cli", "stdio", env.id, "--scenario", workload.scenario],
        "baseline": baseline_args(env.id, workload.scenario, _fresh_db(env, workload, db_dir, "stdio.sqlite"), "stdio"),
    }
    results = []
    for server, args in commands.items():
        before = set(children())
        params = StdioServerParameters(command=sys.executable, args=args, env={**os.environ})
        async with Client(params) as client:
            pids = [p for p in children() if p not in before]
            pid = pids[0] if len(pids) == 1 else None
            results.append(await _sdk_run(client, workload, seconds, pid, "stdio", server, "sdk"))
    return results


# ---------------------------------------------------------------------------------------------
# HTTP


async def part_http(
    env: Environment,
    workload: Workload,
    seconds: float,
    levels: list[int],
    rate: float,
    client_kinds: list[str],
    db_dir: Path,
) -> list[Result]:
    import httpx

    results: list[Result] = []
    run_id = 0
    for server_name in ("envfarm", "baseline"):
        if server_name == "envfarm":
            server: Server = start_farm(env.id)
        else:
            db = _fresh_db(env, workload, db_dir, "http.sqlite")
            server = start_baseline(env.id, workload.scenario, db)
        try:
            async with httpx.AsyncClient(base_url=server.url, timeout=60) as control:
                plans = [(n, None) for n in levels] + [(max(levels), rate)]
                for kind in client_kinds:
                    for n, offered in plans:
                        run_id += 1
                        ids = [run_id * 1000 + k for k in range(n)]  # unique titles etc. per run
                        if server_name == "envfarm":
                            episodes = []
                            for _ in range(n):
                                r = await control.post(
                                    "/v1/episodes", json={"env": env.id, "scenario": workload.scenario}
                                )
                                r.raise_for_status()
                                episodes.append(r.json())
                            urls = [e["mcp_url"] for e in episodes]
                        else:
                            urls = [server.url + "/mcp"] * n
                        async with http_clients(kind, urls, workload, ids) as fns:
                            count, el, lat, err, scpu, ccpu = await drive(fns, seconds, server.pid, rate=offered)
                        results.append(Result("http", server_name, kind, n, count, el, lat, err, scpu, ccpu, offered))
                        print(table(HEADERS, [results[-1].row()]).splitlines()[-1], file=sys.stderr, flush=True)
                        if server_name == "envfarm":
                            for e in episodes:
                                await control.delete(f"/v1/episodes/{e['episode_id']}")
        finally:
            server.stop()
    return results


# ---------------------------------------------------------------------------------------------


def ratios(results: list[Result]) -> list[list[Any]]:
    """envfarm versus baseline for each (part, client, N, load) measured on both."""
    by_key: dict[tuple[str, str, int, float | None], dict[str, Result]] = {}
    for r in results:
        by_key.setdefault((r.part, r.client, r.n, r.offered), {})[r.server] = r
    rows = []
    for (part, client, n, offered), pair in by_key.items():
        if "envfarm" in pair and "baseline" in pair:
            e, b = pair["envfarm"], pair["baseline"]
            rows.append(
                [
                    part,
                    client,
                    n,
                    "closed" if offered is None else f"{offered:g}/s",
                    e.rate / b.rate,
                    b.p(50) / e.p(50),
                    b.p(99) / e.p(99),
                ]
            )
    return rows


async def amain(args: argparse.Namespace) -> int:
    env, workload = pick_env(args.env)
    print(f"# bench_calls: {env.id}/{workload.scenario}\n\nmachine: {machine()}\n")
    q, m = workload.query(0, 0), workload.mutation(0, 0)
    print(f"workload: 50/50 mix of {q[0]}({json.dumps(q[1])}) and {m[0]}({json.dumps(m[1])}), ...\n")
    parts = args.parts.split(",")
    levels = [int(x) for x in args.concurrency.split(",")]
    db_dir = Path(tempfile.mkdtemp(prefix="envfarm-bench-"))
    results: list[Result] = []
    try:
        if "inproc" in parts:
            results += await part_inproc(env, workload, args.seconds, db_dir)
        if "stdio" in parts:
            results += await part_stdio(env, workload, args.seconds, db_dir)
        if "http" in parts:
            results += await part_http(env, workload, args.seconds, levels, args.rate, args.clients.split(","), db_dir)
    finally:
        shutil.rmtree(db_dir, ignore_errors=True)

    print("## Calls\n")
    print(table(HEADERS, [r.row() for r in results]))
    print("\n## envfarm / baseline (higher is better for envfarm)\n")
    print(
        table(
            ["part", "client", "N", "load", "throughput ratio", "p50 ratio (baseline/envfarm)", "p99 ratio"],
            ratios(results),
        )
    )
    print()
    targets = []
    top = max(levels)
    at_target = top == 64 and args.rate == TARGET_RATE
    for r in results:
        if not at_target or r.part != "http" or r.server != "envfarm" or r.n != top:
            continue
        if r.offered is None:
            targets.append(
                target_line(
                    f">= {TARGET_RATE} calls/s with {top} concurrent episodes ({r.client} client, closed loop)",
                    r.rate >= TARGET_RATE,
                    f"{r.rate:,.0f} calls/s, p50 {r.p(50):.1f} ms",
                )
            )
        else:
            targets.append(
                target_line(
                    f"p50 < {TARGET_P50_MS:g} ms at {r.offered:g} calls/s offered by {top} episodes "
                    f"({r.client} client)",
                    r.p(50) < TARGET_P50_MS and r.rate >= 0.95 * r.offered,
                    f"{r.rate:,.0f} calls/s done, p50 {r.p(50):.2f} ms, p99 {r.p(99):.1f} ms",
                )
            )
    if "http" in parts and not at_target:
        targets.append("TARGET not checked: the targets are for 64 episodes at 500 calls/s (run without --quick)")
    for line in targets or ["TARGET (no HTTP run; no target checked)"]:
        print(line)
    errors = sum(r.errors for r in results)
    if errors:
        print(f"\nwarning: {errors} calls returned errors; see the errors column", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="auto", help="environment id (default: library, else notes)")
    parser.add_argument("--seconds", type=float, default=None, help="measured time per run (default 5)")
    parser.add_argument("--concurrency", default=None, help="closed-loop client counts (default 1,8,64)")
    parser.add_argument("--rate", type=float, default=None, help="paced run: calls/s offered (default 500)")
    parser.add_argument("--parts", default="inproc,stdio,http")
    parser.add_argument("--clients", default="sdk,httpx,raw", help="HTTP client kinds: sdk, httpx, raw")
    parser.add_argument("--quick", action="store_true", help="0.05 s runs, 2 clients (CI smoke)")
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 0.05 if args.quick else 5.0
    if args.concurrency is None:
        args.concurrency = "2" if args.quick else "1,8,64"
    if args.rate is None:
        args.rate = 100.0 if args.quick else float(TARGET_RATE)
    random.seed(0)
    use_fixture_envs()
    return asyncio.run(amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
