"""A file of 10,000 trajectories scored through ``envfarm score`` and through ``POST /v1/score/batch``.

The trajectory is bench_scoring's 10 calls on library/return-and-pay (the scenario's own 5
checks, as a served validator has them), repeated ``--count`` times in one JSONL file:

- ``envfarm score --json FILE``: the CLI as a user runs it, in its own process (progress bar
  on standard error, at most 64 records at once, one sandbox worker per core);
- ``POST /v1/score/batch``: ``envfarm validator`` on 127.0.0.1 (uvicorn, its own process),
  the file sent in batches of ``--batch`` items, ``--in-flight`` batches at a time.

Each way reports trajectories per second over the whole file (wall clock, reading the file
and starting the process included for the CLI) and checks that every result has the same
reward and final state hash as one scored in this process.

Usage: python benchmarks/bench_score_batch.py [--quick] [--count 10000] [--batch 256] [--in-flight 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scoring import SCENARIO, workload  # noqa: E402
from processes import free_port, start_server  # noqa: E402
from report import machine, table, target_line  # noqa: E402

from envfarm.validators.replay import replay  # noqa: E402


def records(count: int) -> tuple[list[dict[str, Any]], str]:
    """``count`` copies of the trajectory as score requests, and the final state hash they must give."""
    env, _, calls = workload()
    scenario = env.scenarios[SCENARIO]
    expected = replay(env, scenario, calls).final_state_hash
    trajectory = [{"tool": c.tool, "arguments": c.arguments} for c in calls]
    return [{"env": env.id, "scenario": SCENARIO, "trajectory": trajectory} for _ in range(count)], expected


def check(results: list[dict[str, Any]], count: int, expected: str) -> float:
    """The results' one reward, after checking there are ``count`` of them, all alike."""
    assert len(results) == count, f"{len(results)} results for {count} trajectories"
    hashes = {r["final_state_hash"] for r in results}
    rewards = {r["reward"] for r in results}
    assert hashes == {expected}, f"final state hashes differ: {sorted(hashes)[:3]}"
    assert len(rewards) == 1, f"rewards differ: {sorted(rewards)}"
    return rewards.pop()


def through_cli(path: Path, count: int, expected: str) -> tuple[float, float]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "score", "--json", str(path)],
        capture_output=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"envfarm score exited {done.returncode}: {done.stderr.decode()[-2000:]}")
    results = [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]
    return seconds, check(results, count, expected)


async def through_batches(
    url: str, items: list[dict[str, Any]], batch: int, in_flight: int, expected: str
) -> tuple[float, float]:
    import httpx

    chunks = [items[i : i + batch] for i in range(0, len(items), batch)]
    answers: list[list[dict[str, Any]]] = [[] for _ in chunks]
    room = asyncio.Semaphore(in_flight)

    async with httpx.AsyncClient(base_url=url, timeout=600) as client:

        async def send(k: int) -> None:
            async with room:
                response = await client.post("/v1/score/batch", json={"items": chunks[k]})
            response.raise_for_status()
            answers[k] = response.json()["results"]

        start = time.perf_counter()
        await asyncio.gather(*(send(k) for k in range(len(chunks))))
        seconds = time.perf_counter() - start
    return seconds, check([r for answer in answers for r in answer], len(items), expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 trajectories, batches of 16 (CI smoke)")
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--in-flight", type=int, default=2, help="batches sent at a time")
    args = parser.parse_args()
    if args.quick:
        args.count, args.batch = 40, 16
    items, expected = records(args.count)
    print(machine())
    print(f"\n{args.count:,} trajectories (library/{SCENARIO}, 10 calls, 5 checks)\n")
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "trajectories.jsonl"
        path.write_text("".join(json.dumps(item) + "\n" for item in items))
        seconds, reward = through_cli(path, args.count, expected)
        rate = f"{args.count / seconds:,.0f}"
        rows.append(["envfarm score --json FILE (CLI process)", rate, f"{seconds:.1f}", reward])
    port = free_port()
    cmd = [sys.executable, "-m", "envfarm.cli", "validator", "--port", str(port), "--log-level", "warning"]
    cmd += ["--max-batch", str(args.batch)]
    server = start_server("validator", cmd, port, "/healthz")
    try:
        seconds, reward = asyncio.run(through_batches(server.url, items, args.batch, args.in_flight, expected))
    finally:
        server.stop()
    label = f"POST /v1/score/batch ({args.batch} per batch, {args.in_flight} in flight)"
    rows.append([label, f"{args.count / seconds:,.0f}", f"{seconds:.1f}", reward])
    print(table(["way", "trajectories/s", "seconds", "reward (all alike)"], rows))
    best = args.count / seconds
    print(target_line(">= 1,000 trajectories/s through POST /v1/score/batch", best >= 1000, f"{best:,.0f}/s"))


if __name__ == "__main__":
    main()
