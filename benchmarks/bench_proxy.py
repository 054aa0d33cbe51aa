"""Tool calls through nginx (configured by `envfarm proxy nginx`) versus `envfarm router` versus straight
to the node, and episodes per second opened, played and scored through nginx with 2 and 3 nodes.

Part 1, the hop. One node (`envfarm serve ENV --node a`), nginx in front of it (the configuration
`envfarm proxy nginx --node a=URL` prints, nginx in the foreground in a temporary prefix) and
`envfarm router --worker URL` in front of the same node, all subprocesses on 127.0.0.1. N episodes
are opened on the node (through nginx), then driven closed-loop with the workload's 50/50 mix of tool
calls at the node's own MCP URLs ("direct"), at nginx's and at the router's, in turn for ``--rounds``
rounds (the order rotating), the same clients and the same episodes. The hop's CPU is read from
/proc/PID/stat (utime + stime): nginx's master and worker processes, or the router's process,
divided by the calls. (The router mints ids that name no node, which a node refuses, so it cannot
open episodes on `--node` workers; it only forwards their calls here, to its one worker.)

Part 2, whole episodes. Nodes a, b (and c) behind nginx; ``--in-flight`` clients each open an
episode (POST /v1/episodes through the proxy, which picks the node), play the scenario's oracle
over MCP through the proxy, score it (POST /v1/episodes/{id}/score) and delete it, over and over;
one node straight, with no proxy, for reference.

On a 2-core machine the node(s), the hop and the load generator share the cores, so a hop's CPU
comes straight out of the node's throughput, and more nodes do not add cores.

Usage: python benchmarks/bench_proxy.py [--quick] [--env ENV] [--seconds 5] [--concurrency 1,8,64]
           [--rounds 2] [--clients raw] [--episode-seconds 10] [--in-flight 16] [--nginx-workers 1]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_generator import drive, http_clients  # noqa: E402
from processes import REPO, Server, children, cpu_seconds, free_port, start_server  # noqa: E402
from processes import start_router as start_python_router  # noqa: E402
from raw_mcp import RawHttp, call_body, call_headers  # noqa: E402
from report import machine, percentile, table, target_line  # noqa: E402
from workloads import Workload, pick_env, use_fixture_envs  # noqa: E402

from envfarm.core.environments import Environment  # noqa: E402
from envfarm.core.nodes import node_of  # noqa: E402

HOP_GOAL_MS = 0.1  # the goal: the hop costs under 0.1 ms of CPU per call ...
RATE_GOAL = 0.9  # ... and keeps at least 0.9 of the direct rate
NODES = ("a", "b", "c")


def find_nginx() -> str | None:
    """Debian's nginx (apt-get install nginx-light), on PATH or in /usr/sbin."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


# -- the servers --------------------------------------------------------------------------------------


def start_node(env_id: str, name: str) -> Server:
    """``envfarm serve ENV --node NAME`` on a free port (one sandbox worker, access log off)."""
    port = free_port()
    cmd = [sys.executable, "-m", "envfarm.cli", "serve", env_id, "--node", name, "--port", str(port)]
    cmd += ["--log-level", "warning", "--sandbox-workers", "1"]
    return start_server(f"node {name}", cmd, port, "/healthz")


@dataclass
class Nginx:
    """nginx in the foreground in its own prefix, running what `envfarm proxy nginx` wrote."""

    server: Server
    prefix: Path

    @property
    def url(self) -> str:
        return self.server.url

    def pids(self) -> list[int]:
        """The master and its worker processes (the workers run as 'nobody' when we are root)."""
        return [self.server.pid, *children(self.server.pid)]

    def cpu(self) -> float:
        """CPU seconds of the master and its workers so far."""
        return cpu_of(self.pids())

    def stop(self) -> None:
        self.server.stop()
        shutil.rmtree(self.prefix, ignore_errors=True)


def start_nginx(nginx: str, nodes: dict[str, str], worker_processes: str) -> Nginx:
    """`envfarm proxy nginx --node NAME=URL ... --port P -o PREFIX/nginx.conf`, and nginx run on it."""
    prefix = Path(tempfile.mkdtemp(prefix="envfarm-bench-nginx-"))
    prefix.chmod(0o755)  # as root, nginx's workers run as 'nobody' and must reach the temporary folders
    port = free_port()
    conf = prefix / "nginx.conf"
    flags = [part for name, url in nodes.items() for part in ("--node", f"{name}={url}")]
    cmd = [sys.executable, "-m", "envfarm.cli", "proxy", "nginx", *flags, "--port", str(port)]
    cmd += ["--worker-processes", worker_processes, "--output", str(conf)]
    written = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    if written.returncode != 0:
        raise RuntimeError(f"envfarm proxy nginx failed:\n{written.stderr}")
    server = start_server("nginx", [nginx, "-p", str(prefix), "-c", str(conf), "-e", "stderr"], port, "/proxy/healthz")
    return Nginx(server, prefix)


def cpu_of(pids: Sequence[int]) -> float:
    """User + system CPU seconds of these processes (0 for one that is gone)."""
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):  # a process gone between the listing and the read
            total += cpu_seconds(pid)
    return total


# -- part 1: the hop ----------------------------------------------------------------------------------


async def measure_hop(
    args: argparse.Namespace, env: Environment, workload: Workload, node: Server, proxy: Nginx | None, router: Server
) -> tuple[list[list[Any]], list[list[Any]], int]:
    """Rows (client, N, path, calls, calls/s, p50, p99, errors, node CPU/call, hop CPU/call) and ratios."""
    import httpx

    hops: dict[str, tuple[str, Any]] = {
        "direct": (node.url, None),
        "router": (router.url, lambda: cpu_of([router.pid])),
    }
    if proxy is not None:
        hops["nginx"] = (proxy.url, proxy.cpu)
    paths = [p for p in ("direct", "nginx", "router") if p in hops]
    rows: list[list[Any]] = []
    ratios: list[list[Any]] = []
    errors = 0
    opener = proxy.url if proxy is not None else node.url
    async with httpx.AsyncClient(base_url=opener, timeout=60) as control:
        for kind in args.clients.split(","):
            for n in [int(x) for x in args.concurrency.split(",")]:
                episodes = []
                for _ in range(n):
                    r = await control.post("/v1/episodes", json={"env": env.id, "scenario": workload.scenario})
                    r.raise_for_status()
                    episodes.append(r.json()["episode_id"])
                    assert node_of(episodes[-1]) == "a", episodes[-1]
                totals: dict[str, list[Any]] = {}
                for round_ in range(args.rounds):
                    for path in paths[round_ % len(paths) :] + paths[: round_ % len(paths)]:
                        base, hop_cpu = hops[path]
                        urls = [f"{base}/episodes/{e}/mcp" for e in episodes]
                        ids = [random.randrange(10**6) for _ in episodes]
                        hop0 = hop_cpu() if hop_cpu else 0.0
                        async with http_clients(kind, urls, workload, ids) as fns:
                            count, elapsed, lat, err, node_cpu, _ = await drive(fns, args.seconds, node.pid)
                        hop = hop_cpu() - hop0 if hop_cpu else 0.0
                        t = totals.setdefault(path, [0, 0.0, [], 0, 0.0, 0.0])
                        t[0] += count
                        t[1] += elapsed
                        t[2] += lat
                        t[3] += err
                        t[4] += node_cpu or 0.0
                        t[5] += hop
                rates = {}
                for path in paths:
                    count, elapsed, lat, err, node_cpu, hop = totals[path]
                    lat.sort()
                    rates[path] = (count / elapsed, percentile(lat, 50) * 1e3)
                    hop_ms = hop / count * 1e3 if path != "direct" else float("nan")
                    p99 = percentile(lat, 99) * 1e3
                    rows.append([kind, n, path, count, rates[path][0], rates[path][1], p99, err])
                    rows[-1] += [node_cpu / count * 1e3, hop_ms]
                    errors += err
                for path in paths[1:]:
                    ratio = rates[path][0] / rates["direct"][0]
                    added = rates[path][1] - rates["direct"][1]
                    ratios.append([kind, n, path, ratio, added, rows[-len(paths) + paths.index(path)][9]])
                for e in episodes:
                    await control.delete(f"/v1/episodes/{e}")
    return rows, ratios, errors


# -- part 2: whole episodes ---------------------------------------------------------------------------


def tool_result(body: bytes) -> bool | None:
    """isError of a tools/call answer, or None when it is not a result at all."""
    data = json.loads(body)
    return bool(data["result"].get("isError", False)) if "result" in data else None


async def run_episodes(
    base: str,
    env: Environment,
    workload: Workload,
    in_flight: int,
    seconds: float,
    pids: Sequence[int],
    proxy: Nginx | None,
) -> dict[str, Any]:
    """``in_flight`` clients opening, playing (the oracle), scoring and deleting episodes at ``base``."""
    import httpx

    scenario = env.scenarios[workload.scenario]
    done = 0
    failed = 0
    rewards: list[float] = []
    latencies: list[float] = []
    nodes: Counter[str] = Counter()

    async def one(control: Any, mcp: RawHttp) -> None:
        nonlocal done, failed
        t0 = time.perf_counter()
        r = await control.post("/v1/episodes", json={"env": env.id, "scenario": scenario.id})
        if r.status_code != 201:
            failed += 1
            return
        episode_id = r.json()["episode_id"]
        ok = True
        for i, call in enumerate(scenario.oracle):
            path = f"/episodes/{episode_id}/mcp"
            status, body = await mcp.post(call_body(i, call.tool, call.arguments), call_headers(call.tool), path)
            ok = ok and status == 200 and tool_result(body) == call.refused
        score = await control.post(f"/v1/episodes/{episode_id}/score")
        deleted = await control.delete(f"/v1/episodes/{episode_id}")
        if not (ok and score.status_code == 200 and deleted.status_code == 204):
            failed += 1
            return
        latencies.append(time.perf_counter() - t0)
        rewards.append(score.json()["reward"])
        nodes[node_of(episode_id) or "-"] += 1
        done += 1

    async def client(k: int, start: asyncio.Event, stop_at: list[float]) -> None:
        # One keep-alive connection for the control API and one for MCP per client, as a rollout worker has.
        async with httpx.AsyncClient(base_url=base, timeout=60) as control:
            mcp = RawHttp(base)
            try:
                await one(control, mcp)  # warm-up, not counted
                await start.wait()
                while time.perf_counter() < stop_at[0]:
                    await one(control, mcp)
            finally:
                mcp.close()

    # The warm-up episodes are counted out below; start the clock once each client has done one.
    start = asyncio.Event()
    stop_at = [0.0]
    tasks = [asyncio.create_task(client(k, start, stop_at)) for k in range(in_flight)]
    while done + failed < in_flight and not all(t.done() for t in tasks):
        await asyncio.sleep(0.01)
    warm_failed = failed
    done, failed = 0, 0
    rewards.clear()
    latencies.clear()
    nodes.clear()
    every = [*pids, *(c for p in pids for c in children(p))]  # the nodes and their sandbox processes
    cpu0, client0, hop0 = cpu_of(every), time.process_time(), proxy.cpu() if proxy else 0.0
    t0 = time.perf_counter()
    stop_at[0] = t0 + seconds
    start.set()
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - t0
    cpu, client_cpu = cpu_of(every) - cpu0, time.process_time() - client0
    hop = proxy.cpu() - hop0 if proxy else float("nan")
    latencies.sort()
    return {
        "episodes": done,
        "failed": failed + warm_failed,
        "rate": done / elapsed,
        "p50": percentile(latencies, 50) * 1e3,
        "p99": percentile(latencies, 99) * 1e3,
        "reward": sum(rewards) / len(rewards) if rewards else float("nan"),
        "spread": " ".join(f"{n}:{c}" for n, c in sorted(nodes.items())),
        "cpu": cpu / max(done, 1) * 1e3,
        "hop": hop / max(done, 1) * 1e3,
        "client": client_cpu / max(done, 1) * 1e3,
    }


async def measure_episodes(
    args: argparse.Namespace, env: Environment, workload: Workload, nodes: dict[str, Server], nginx: str | None
) -> list[list[Any]]:
    """Rows (nodes, path, in flight, episodes, episodes/s, p50, p99, failed, reward, spread, CPU/episode)."""
    rows: list[list[Any]] = []
    setups: list[tuple[list[str], str]] = [(["a"], "direct")]
    if nginx is not None:
        setups += [(["a", "b"], "nginx"), (list(NODES), "nginx")]
    for names, path in setups:
        proxy = None
        if path == "nginx":
            assert nginx is not None
            proxy = start_nginx(nginx, {n: nodes[n].url for n in names}, args.nginx_workers)
        try:
            base = proxy.url if proxy is not None else nodes[names[0]].url
            pids = [nodes[n].pid for n in names]
            got = await run_episodes(base, env, workload, args.in_flight, args.episode_seconds, pids, proxy)
            rows.append(
                [len(names), path, args.in_flight, got["episodes"], got["rate"], got["p50"], got["p99"]]
                + [got["failed"], got["reward"], got["spread"], got["cpu"], got["hop"], got["client"]]
            )
        finally:
            if proxy is not None:
                proxy.stop()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="auto", help="environment id (default: library, else notes)")
    parser.add_argument("--seconds", type=float, default=None, help="measured time per tool-call run (default 5)")
    parser.add_argument("--concurrency", default=None, help="closed-loop episode counts (default 1,8,64)")
    parser.add_argument("--rounds", type=int, default=None, help="direct/nginx/router turns per row (default 2)")
    parser.add_argument("--clients", default="raw", help="client kinds: raw, httpx, sdk (see bench_calls.py)")
    parser.add_argument("--episode-seconds", type=float, default=None, help="measured time per episode run (10)")
    parser.add_argument("--in-flight", type=int, default=None, help="episodes in flight in part 2 (default 16)")
    parser.add_argument("--nginx-workers", default="1", help="nginx worker processes (default 1, as the router)")
    parser.add_argument("--quick", action="store_true", help="0.05 s runs, 2 episodes (CI smoke)")
    args = parser.parse_args()
    args.seconds = args.seconds or (0.05 if args.quick else 5.0)
    args.concurrency = args.concurrency or ("2" if args.quick else "1,8,64")
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.episode_seconds = args.episode_seconds or (0.2 if args.quick else 10.0)
    args.in_flight = args.in_flight or (2 if args.quick else 16)
    random.seed(0)
    use_fixture_envs()
    print("# bench_proxy: tool calls through nginx (`envfarm proxy nginx`) and `envfarm router` versus direct\n")
    print(f"machine: {machine()}\n")
    nginx = find_nginx()
    if nginx is None:
        print("nginx: NOT INSTALLED (apt-get install nginx-light); measuring direct and the router only\n")
    else:
        version = subprocess.run([nginx, "-v"], capture_output=True, text=True).stderr.strip()
        print(f"nginx: {nginx} ({version.removeprefix('nginx version: ')}), {args.nginx_workers} worker process(es)\n")
    start = time.perf_counter()
    env, workload = pick_env(args.env)
    # The nodes start side by side: most of a start is Python importing, which the 2 cores share anyway.
    with ThreadPoolExecutor(max_workers=3) as pool:
        names = NODES if nginx else NODES[:1]  # without nginx, nothing puts b and c to work
        nodes = dict(zip(names, pool.map(lambda n: start_node(env.id, n), names), strict=True))
    proxy: Nginx | None = None
    router: Server | None = None
    try:
        router = start_python_router([nodes["a"].url])
        proxy = start_nginx(nginx, {"a": nodes["a"].url}, args.nginx_workers) if nginx else None
        rows, ratios, errors = asyncio.run(measure_hop(args, env, workload, nodes["a"], proxy, router))
        for hop in (proxy, router):
            if hop is not None:
                hop.stop()
        proxy = router = None
        lifecycle = asyncio.run(measure_episodes(args, env, workload, nodes, nginx))
    finally:
        for server in [proxy, router, *nodes.values()]:
            if server is not None:
                server.stop()
    report(args, env, workload, nginx, rows, ratios, errors, lifecycle, time.perf_counter() - start)


def report(
    args: argparse.Namespace,
    env: Environment,
    workload: Workload,
    nginx: str | None,
    rows: list[list[Any]],
    ratios: list[list[Any]],
    errors: int,
    lifecycle: list[list[Any]],
    seconds: float,
) -> None:
    print(f"## Tool calls: one node (`envfarm serve {env.id} --node a`), direct, through nginx, through the router\n")
    print(f"{args.seconds:g} s per run, {args.rounds} round(s), summed; workload: {workload.scenario}, 50/50 mix\n")
    headers = ["client", "N", "path", "calls", "calls/s", "p50 ms", "p99 ms", "errors", "node CPU ms/call"]
    print(table([*headers, "hop CPU ms/call"], rows))
    print("\n## hop / direct, same run, same clients\n")
    print(table(["client", "N", "path", "throughput ratio", "p50 added ms", "hop CPU ms/call"], ratios))
    print(f"\n## Episodes through the proxy: opened, the oracle played over MCP, scored, deleted ({env.id})\n")
    print(
        f"{args.in_flight} clients in flight, {args.episode_seconds:g} s per run; an episode is "
        f"{len(env.scenarios[workload.scenario].oracle) + 3} requests (open, the oracle's calls, score, delete); "
        "CPU per episode: the nodes' (with their sandbox processes), the proxy's, this load generator's\n"
    )
    headers = ["nodes", "path", "in flight", "episodes", "episodes/s", "p50 ms", "p99 ms", "failed", "mean reward"]
    headers += ["spread", "nodes CPU ms/ep", "proxy CPU ms/ep", "client CPU ms/ep"]
    print(table(headers, lifecycle))
    print()
    through = [r for r in ratios if r[2] == "nginx"]
    if nginx is None:
        missing = "nginx is not installed: not measured"
        print(target_line(f"nginx's hop costs under {HOP_GOAL_MS} ms of CPU per call", False, missing))
        print(target_line(f"nginx keeps at least {RATE_GOAL} of the direct rate", False, missing))
    else:
        worst_hop = max(r[5] for r in through)
        print(
            target_line(
                f"nginx's hop costs under {HOP_GOAL_MS} ms of CPU per call",
                worst_hop < HOP_GOAL_MS,
                "ms/call by N: " + ", ".join(f"{r[1]}: {r[5]:.3f}" for r in through),
            )
        )
        worst_rate = min(r[3] for r in through)
        print(
            target_line(
                f"nginx keeps at least {RATE_GOAL} of the direct rate",
                worst_rate >= RATE_GOAL,
                "ratio by N: " + ", ".join(f"{r[1]}: {r[3]:.2f}" for r in through),
            )
        )
    routed = [r for r in ratios if r[2] == "router"]
    print(
        target_line(
            "every call answered on every path",
            errors == 0,
            f"{errors} errors; router for comparison: ratio "
            + ", ".join(f"{r[3]:.2f}" for r in routed)
            + ", CPU ms/call "
            + ", ".join(f"{r[5]:.3f}" for r in routed),
        )
    )
    proxied = [r for r in lifecycle if r[1] == "nginx"]
    print(
        target_line(
            "episodes through nginx on 2 and 3 nodes: all scored 1.0, spread over every node, none failed",
            len(proxied) == 2
            and all(r[3] > 0 and r[7] == 0 and r[8] == 1.0 and len(r[9].split()) == r[0] for r in proxied),
            ("; ".join(f"{r[0]} nodes: {r[4]:.1f}/s, {r[9]}" for r in proxied) or "nginx is not installed")
            + f"; {seconds:.0f} s",
        )
    )


if __name__ == "__main__":
    main()
