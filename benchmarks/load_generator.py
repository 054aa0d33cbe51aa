"""Driving N clients at once, closed loop or paced, and the three HTTP client kinds (sdk, httpx, raw).

Shared by bench_calls.py (envfarm versus the baseline) and bench_router.py (through the
router versus straight to the worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from processes import cpu_seconds
from raw_mcp import RawHttp, call_body, call_headers, response_ok
from workloads import Workload

CallFn = Callable[[int], Awaitable[bool]]  # call number -> ok


async def drive(
    fns: list[CallFn],
    seconds: float,
    server_pid: int | None,
    *,
    rate: float | None = None,
    warmup: int = 2,
) -> tuple[int, float, list[float], int, float | None, float]:
    """Run each client's calls concurrently for ``seconds``.

    Closed loop when ``rate`` is None, else the clients together offer ``rate`` calls/s
    (each one every len(fns)/rate seconds, phases spread) and latency counts from the
    scheduled send time. Returns (calls, elapsed s, sorted latencies, errors, server CPU s,
    this process's CPU s).
    """
    counters = [warmup] * len(fns)
    for i in range(warmup):
        await asyncio.gather(*(fn(i) for fn in fns))
    latencies: list[float] = []
    errors = 0
    interval = len(fns) / rate if rate else 0.0

    async def worker(k: int, fn: CallFn, start: float, stop: float) -> None:
        nonlocal errors
        due = start + (k / len(fns)) * interval
        while True:
            if rate:
                now = time.perf_counter()
                if due >= stop:
                    return
                if due > now:
                    await asyncio.sleep(due - now)
                t0 = due
                due += interval
            else:
                t0 = time.perf_counter()
                if t0 >= stop:
                    return
            ok = await fn(counters[k])
            counters[k] += 1
            latencies.append(time.perf_counter() - t0)
            if not ok:
                errors += 1

    server_cpu0 = cpu_seconds(server_pid) if server_pid else None
    client_cpu0 = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker(k, fn, start, start + seconds) for k, fn in enumerate(fns)))
    elapsed = time.perf_counter() - start
    client_cpu = time.process_time() - client_cpu0
    server_cpu = cpu_seconds(server_pid) - server_cpu0 if server_pid and server_cpu0 is not None else None
    latencies.sort()
    return len(latencies), elapsed, latencies, errors, server_cpu, client_cpu


@contextlib.asynccontextmanager
async def http_clients(kind: str, urls: list[str], workload: Workload, ids: list[int]) -> AsyncIterator[list[CallFn]]:
    """Yield one CallFn per url, for client kind ``sdk``, ``httpx`` or ``raw``.

    ``sdk`` = one official ``mcp.Client(url)`` per url; ``httpx`` = one ``httpx.AsyncClient``
    per url posting the SDK's bodies and headers; ``raw`` = the same requests on
    :class:`raw_mcp.RawHttp`. ``ids`` are the workload's client numbers, one per url.
    """
    if kind == "sdk":
        from mcp import Client

        async with contextlib.AsyncExitStack() as stack:
            # Entered one by one: anyio cancel scopes must be left by the task that entered them.
            clients = [await stack.enter_async_context(Client(u)) for u in urls]

            def make(client: Any, cid: int) -> CallFn:
                async def call(i: int) -> bool:
                    tool, args = workload.call(cid, i)
                    return not (await client.call_tool(tool, args)).is_error

                return call

            yield [make(c, cid) for c, cid in zip(clients, ids, strict=True)]
        return
    if kind == "httpx":
        import httpx

        # One AsyncClient (one keep-alive connection) per episode: a shared pool of 64
        # connections costs httpx ~10 ms of CPU per request here (its pool scan is O(n)).
        # They share one SSL context (unused on http://), which costs ~0.2 s of CPU to build.
        tls = httpx.create_ssl_context()
        async with contextlib.AsyncExitStack() as stack:
            https = [await stack.enter_async_context(httpx.AsyncClient(timeout=60, verify=tls)) for _ in urls]

            def make_httpx(http: Any, url: str, cid: int) -> CallFn:
                async def call(i: int) -> bool:
                    tool, args = workload.call(cid, i)
                    r = await http.post(url, content=call_body(i, tool, args), headers=call_headers(tool))
                    return r.status_code == 200 and response_ok(r.content)

                return call

            yield [make_httpx(h, u, cid) for h, u, cid in zip(https, urls, ids, strict=True)]
        return
    if kind != "raw":
        raise ValueError(f"unknown client kind {kind!r}")
    conns = [RawHttp(u) for u in urls]
    try:

        def make_raw(conn: RawHttp, cid: int) -> CallFn:
            async def call(i: int) -> bool:
                tool, args = workload.call(cid, i)
                status, body = await conn.post(call_body(i, tool, args), call_headers(tool))
                return status == 200 and response_ok(body)

            return call

        yield [make_raw(c, cid) for c, cid in zip(conns, ids, strict=True)]
    finally:
        for c in conns:
            c.close()
