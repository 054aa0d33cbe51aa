"""OpenEnv over the WebSocket beside the same work over MCP: steps/s and reset+score/s at 1, 16 and 64 sessions.

The farm is a real ``envfarm serve ENV`` subprocess on 127.0.0.1; this process is the load generator.
N sessions (OpenEnv) or N episodes (MCP) run at once, closed loop: each sends its next request as soon
as the last one is answered.

- ``steps``: the workload's 50/50 mix of a query and a mutation (workloads.py), as ``call_tool`` steps
  on an OpenEnv session, or as MCP ``tools/call`` on an episode's endpoint.
- ``reset+score``: one operation is a fresh episode of the workload's scenario, scored and ended: over
  OpenEnv a ``reset`` then a ``done`` step; over the control API ``POST /v1/episodes``, ``POST
  /v1/episodes/{id}/score`` and ``DELETE``. Scoring runs the scenario's checks in the check sandbox.

Clients: ``openenv-core`` = openenv-core's own ``MCPToolClient`` (one per session, as a trainer runs
it); ``ws`` = a lean client writing the same JSON messages on one ``websockets`` connection per session;
``httpx`` = one ``httpx.AsyncClient`` per episode posting the MCP SDK's bodies (or the control API's);
``raw`` = MCP over hand-written HTTP/1.1 (benchmarks/raw_mcp.py). The lean clients use little CPU, so
the server's capacity shows; the server's CPU per operation is read from /proc.

Usage: python benchmarks/bench_openenv.py [--quick] [--env ENV] [--seconds 5] [--concurrency 1,16,64]
           [--parts steps,reset] [--clients openenv-core,ws,httpx,raw]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load_generator import CallFn, drive, http_clients  # noqa: E402
from processes import Server, start_farm  # noqa: E402
from report import machine, percentile, table, target_line  # noqa: E402
from workloads import Workload, pick_env, use_fixture_envs  # noqa: E402

TARGET_RATIO = 1.0
"""At 64 sessions, OpenEnv steps/s (lean client) at least the MCP endpoint's (lean client)."""

OPENENV_KINDS = ("openenv-core", "ws")


@dataclass
class Result:
    part: str
    protocol: str
    client: str
    n: int
    ops: int
    seconds: float
    latencies: list[float]
    errors: int
    server_cpu: float | None
    client_cpu: float

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def row(self) -> list[Any]:
        def per_op(cpu: float | None) -> float:
            return cpu / self.ops * 1e3 if self.ops and cpu is not None else float("nan")

        return [
            self.part,
            self.protocol,
            self.client,
            self.n,
            self.ops,
            self.rate,
            percentile(self.latencies, 50) * 1e3,
            percentile(self.latencies, 99) * 1e3,
            self.errors,
            per_op(self.server_cpu),
            per_op(self.client_cpu),
        ]


HEADERS = [
    "part",
    "protocol",
    "client",
    "N",
    "ops",
    "ops/s",
    "p50 ms",
    "p99 ms",
    "errors",
    "server CPU ms/op",
    "client CPU ms/op",
]


class LeanSession:
    """One OpenEnv session on a bare ``websockets`` connection: the messages openenv-core's client sends."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None

    async def open(self) -> LeanSession:
        from websockets.asyncio.client import connect

        self.ws = await connect(self.url, max_size=None)
        return self

    async def ask(self, message: dict[str, Any]) -> dict[str, Any]:
        await self.ws.send(json.dumps(message, separators=(",", ":")))
        answer: dict[str, Any] = json.loads(await self.ws.recv())
        return answer

    async def close(self) -> None:
        await self.ws.close()


@contextlib.asynccontextmanager
async def openenv_sessions(kind: str, url: str, n: int) -> AsyncIterator[list[Any]]:
    """``n`` connected sessions of client kind ``openenv-core`` or ``ws``."""
    async with contextlib.AsyncExitStack() as stack:
        if kind == "openenv-core":
            from openenv.core.mcp_client import MCPToolClient

            # Entered one by one, by this task (the client's connection is bound to it).
            yield [
                await stack.enter_async_context(MCPToolClient(base_url=url, message_timeout_s=300)) for _ in range(n)
            ]
            return
        sessions = [await LeanSession(url.replace("http://", "ws://") + "/ws").open() for _ in range(n)]
        stack.push_async_callback(lambda: asyncio.gather(*(s.close() for s in sessions)))
        yield sessions


async def run_steps(server: Server, workload: Workload, n: int, kind: str, seconds: float, run_id: int) -> Result:
    url = f"{server.url}/openenv/{workload.env}"
    if kind in OPENENV_KINDS:
        async with openenv_sessions(kind, url, n) as sessions:
            fns = [await _step_fn(kind, s, workload, run_id * 1000 + k) for k, s in enumerate(sessions)]
            count, el, lat, err, scpu, ccpu = await drive(fns, seconds, server.pid)
        return Result("steps", "openenv", kind, n, count, el, lat, err, scpu, ccpu)
    import httpx

    async with httpx.AsyncClient(base_url=server.url, timeout=60) as control:
        episodes = []
        for _ in range(n):
            r = await control.post("/v1/episodes", json={"env": workload.env, "scenario": workload.scenario})
            episodes.append(r.raise_for_status().json())
        ids = [run_id * 1000 + k for k in range(n)]
        async with http_clients(kind, [e["mcp_url"] for e in episodes], workload, ids) as fns:
            count, el, lat, err, scpu, ccpu = await drive(fns, seconds, server.pid)
        for e in episodes:
            await control.delete(f"/v1/episodes/{e['episode_id']}")
    return Result("steps", "mcp", kind, n, count, el, lat, err, scpu, ccpu)


async def _step_fn(kind: str, session: Any, workload: Workload, cid: int) -> CallFn:
    if kind == "openenv-core":
        from openenv.core.env_server.mcp_types import CallToolAction

        await session.reset(scenario=workload.scenario)

        async def core_step(i: int) -> bool:
            tool, args = workload.call(cid, i)
            step = await session.step(CallToolAction(tool_name=tool, arguments=args))
            return step.observation.error is None

        return core_step
    await session.ask({"type": "reset", "data": {"scenario": workload.scenario}})

    async def lean_step(i: int) -> bool:
        tool, args = workload.call(cid, i)
        answer = await session.ask(
            {"type": "step", "data": {"type": "call_tool", "tool_name": tool, "arguments": args}}
        )
        return answer["type"] == "observation" and answer["data"]["observation"]["error"] is None

    return lean_step


async def run_resets(server: Server, workload: Workload, n: int, kind: str, seconds: float) -> Result:
    url = f"{server.url}/openenv/{workload.env}"
    if kind in OPENENV_KINDS:
        async with openenv_sessions(kind, url, n) as sessions:
            fns = [_reset_fn(kind, s, workload) for s in sessions]
            count, el, lat, err, scpu, ccpu = await drive(fns, seconds, server.pid, warmup=1)
        return Result("reset+score", "openenv", kind, n, count, el, lat, err, scpu, ccpu)
    import httpx

    tls = httpx.create_ssl_context()
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(httpx.AsyncClient(base_url=server.url, timeout=300, verify=tls))
            for _ in range(n)
        ]

        def make(http: Any) -> CallFn:
            async def control(i: int) -> bool:
                opened = await http.post("/v1/episodes", json={"env": workload.env, "scenario": workload.scenario})
                episode_id = opened.json()["episode_id"]
                scored = await http.post(f"/v1/episodes/{episode_id}/score")
                await http.delete(f"/v1/episodes/{episode_id}")
                return scored.status_code == 200

            return control

        count, el, lat, err, scpu, ccpu = await drive([make(c) for c in clients], seconds, server.pid, warmup=1)
    return Result("reset+score", "control API", kind, n, count, el, lat, err, scpu, ccpu)


def _reset_fn(kind: str, session: Any, workload: Workload) -> CallFn:
    if kind == "openenv-core":
        from openenv.core.env_server.mcp_types import CallToolAction

        async def core_op(i: int) -> bool:
            await session.reset(scenario=workload.scenario)
            end = await session.step(CallToolAction(tool_name="done"))
            return bool(end.done)

        return core_op

    async def lean_op(i: int) -> bool:
        await session.ask({"type": "reset", "data": {"scenario": workload.scenario}})
        end = await session.ask({"type": "step", "data": {"type": "done"}})
        return end["type"] == "observation" and end["data"]["done"] is True

    return lean_op


async def amain(args: argparse.Namespace) -> int:
    env, workload = pick_env(args.env)
    print(f"# bench_openenv: {env.id}/{workload.scenario}\n\nmachine: {machine()}\n")
    q, m = workload.query(0, 0), workload.mutation(0, 0)
    print(f"steps: 50/50 mix of {q[0]}({json.dumps(q[1])}) and {m[0]}({json.dumps(m[1])}), ...")
    print(
        f"reset+score: a fresh episode of {workload.scenario} ({len(env.scenarios[workload.scenario].checks)} checks)\n"
    )
    levels = [int(x) for x in args.concurrency.split(",")]
    kinds = args.clients.split(",")
    parts = args.parts.split(",")
    results: list[Result] = []
    server = start_farm(env.id)
    run_id = 0
    try:
        for n in levels:
            for kind in kinds:
                if "steps" in parts:
                    run_id += 1
                    results.append(await run_steps(server, workload, n, kind, args.seconds, run_id))
                    print(table(HEADERS, [results[-1].row()]).splitlines()[-1], file=sys.stderr, flush=True)
                if "reset" in parts and kind != "raw":
                    results.append(await run_resets(server, workload, n, kind, args.seconds))
                    print(table(HEADERS, [results[-1].row()]).splitlines()[-1], file=sys.stderr, flush=True)
    finally:
        server.stop()

    print("## OpenEnv and MCP\n")
    print(table(HEADERS, [r.row() for r in results]))
    print("\n## OpenEnv / MCP (higher is better for OpenEnv)\n")
    rows = []
    for part in ("steps", "reset+score"):
        for n in levels:
            at = {(r.protocol, r.client): r for r in results if r.part == part and r.n == n}
            mcp = at.get(("mcp", "raw")) or at.get(("mcp", "httpx")) or at.get(("control API", "httpx"))
            for kind in OPENENV_KINDS:
                mine = at.get(("openenv", kind))
                if mine is not None and mcp is not None:
                    rows.append([part, n, kind, f"{mcp.protocol} {mcp.client}", mine.rate / mcp.rate])
    print(table(["part", "N", "OpenEnv client", "versus", "throughput ratio"], rows))
    print()
    top = max(levels)
    checked = False
    if top == 64:
        at_top = {(r.part, r.protocol, r.client): r for r in results if r.n == 64}
        ws, raw = at_top.get(("steps", "openenv", "ws")), at_top.get(("steps", "mcp", "raw"))
        if ws is not None and raw is not None:
            checked = True
            print(
                target_line(
                    f"OpenEnv steps/s at 64 sessions >= {TARGET_RATIO:g}x MCP tools/call at 64 episodes (lean clients)",
                    ws.rate >= TARGET_RATIO * raw.rate,
                    f"{ws.rate:,.0f} vs {raw.rate:,.0f} steps/s, server CPU {ws.row()[9]:.2f} vs {raw.row()[9]:.2f} ms",
                )
            )
    if not checked:
        print("TARGET not checked: the target compares ws and raw clients at 64 sessions (run without --quick)")
    errors = sum(r.errors for r in results)
    if errors:
        print(f"\nwarning: {errors} operations failed; see the errors column", file=sys.stderr)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="auto", help="environment id (default: library, else notes)")
    parser.add_argument("--seconds", type=float, default=None, help="measured time per run (default 5)")
    parser.add_argument("--concurrency", default=None, help="sessions at once (default 1,16,64)")
    parser.add_argument("--parts", default="steps,reset", help="steps, reset")
    parser.add_argument("--clients", default="openenv-core,ws,httpx,raw", help="openenv-core, ws, httpx, raw")
    parser.add_argument("--quick", action="store_true", help="0.05 s runs, 2 sessions (CI smoke)")
    args = parser.parse_args()
    if args.seconds is None:
        args.seconds = 0.05 if args.quick else 5.0
    if args.concurrency is None:
        args.concurrency = "2" if args.quick else "1,16,64"
    use_fixture_envs()
    return asyncio.run(amain(args))


if __name__ == "__main__":
    raise SystemExit(main())
