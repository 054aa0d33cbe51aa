"""Trajectories scored per second at 20 KB, 1 MB and 10 MB of state: 1 and 64 in flight, sandboxed,
beside EnvScaler's way, and (with ``--baseline DIR``) beside an earlier checkout, in one run.

The workload is bench_scoring's (library/return-and-pay, 10 calls, 15 checks); the state is
the scenario's own or copies of its rows (``scaled_states``), sized by the canonical JSON of
its view as in bench_score_profile. For each size:

- ``score_request``, 1 in flight and 64 in flight, replaying in this process, checks in a
  2-worker :class:`SandboxPool`;
- the same at 64 in flight with replays in a 2-process ``ReplayPool`` (when the checkout has
  one; the scenario goes to its workers with its state inline, which they build once);
- EnvScaler's way: the same replay, then ``copy.deepcopy`` of both states and ``exec`` per
  check, in this process, no isolation (bench_scoring.in_process).

``--baseline DIR`` first runs this same script with ``PYTHONPATH=DIR`` (a checkout whose
``envfarm/`` holds symlinks to its ``validators``, ``servers`` and ``generator``, as the
editable install maps them), then here, and prints both side by side: before and after,
on the same machine, minutes apart.

Usage: python benchmarks/bench_score_sizes.py [--quick] [--seconds 4] [--baseline DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scoring import in_flight, in_process, workload  # noqa: E402
from report import machine, table, target_line  # noqa: E402
from scaled_states import FULL_SIZES, QUICK_SIZES, sized_snapshot, view_of  # noqa: E402

from envfarm.validators.sandbox import SandboxPool  # noqa: E402
from envfarm.validators.service import ScoreRequest, ScoringLimits, score_request  # noqa: E402

MARK = "RESULTS-JSON "
IN_FLIGHT = 64


async def rate(
    envs: dict[str, Any], request: ScoreRequest, pool: Any, replayer: Any, concurrency: int, seconds: float
) -> float:
    done, elapsed = await in_flight(envs, request, pool, replayer, concurrency, seconds)
    return done / elapsed


async def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    try:
        from envfarm.validators.replay_pool import ReplayPool
    except ImportError:  # a checkout from before replay processes
        ReplayPool = None  # noqa: N806
    env, base, calls = workload()
    out = []
    replayer = ReplayPool(2) if ReplayPool is not None else None
    try:
        async with SandboxPool(2) as pool:
            for label, target in QUICK_SIZES if args.quick else FULL_SIZES:
                data = sized_snapshot(env, base.id, target, args.quick)
                view = view_of(data, env.keys())
                scenario = base.model_copy(update={"id": f"bench-sizes-{label.replace(' ', '')}", "state": view})
                env.scenarios[scenario.id] = scenario
                env._snapshots[f"scenario:{scenario.id}"] = data  # here; replay workers build it from the rows
                request = ScoreRequest(env=env.id, scenario=scenario.id, trajectory=[c.model_dump() for c in calls])
                envs = {env.id: env}
                first = await score_request(envs, request, ScoringLimits(), pool)
                row: dict[str, Any] = {"size": label, "reward": first.reward}
                row["1"] = await rate(envs, request, pool, None, 1, args.seconds)
                row["64"] = await rate(envs, request, pool, None, IN_FLIGHT, args.seconds)
                if replayer is not None:  # every worker gets the scenario and builds its state, before timing
                    warm = [score_request(envs, request, ScoringLimits(), pool, replayer=replayer) for _ in range(16)]
                    for got in await asyncio.gather(*warm):
                        assert got.final_state_hash == first.final_state_hash, "replay processes disagree"
                    row["64 replay processes"] = await rate(envs, request, pool, replayer, IN_FLIGHT, args.seconds)
                n, start = 0, time.perf_counter()
                while n < 1 or time.perf_counter() - start < args.seconds:
                    in_process(env, scenario, calls)
                    n += 1
                row["envscaler"] = n / (time.perf_counter() - start)
                out.append(row)
                env.scenarios.pop(scenario.id)
                env._snapshots.pop(f"scenario:{scenario.id}", None)
    finally:
        if replayer is not None:
            await replayer.close()
    return out


def baseline(folder: str, args: argparse.Namespace) -> list[dict[str, Any]]:
    """This script's results on the checkout at ``folder``, run in a child process."""
    cmd = [sys.executable, __file__, "--seconds", str(args.seconds)] + (["--quick"] if args.quick else [])
    child = {**os.environ, "PYTHONPATH": folder}
    # Files, not pipes: the child's sandbox workers inherit its stderr and may outlive a pipe's reader.
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        # In the checkout's folder: sandbox workers start with ``python -m``, which puts the working folder first.
        code = subprocess.run(cmd, stdout=out, stderr=err, env=child, cwd=folder, check=False).returncode
        out.seek(0)
        err.seek(0)
        lines = [line for line in out.read().splitlines() if line.startswith(MARK)]
        if code != 0 or not lines:
            raise RuntimeError(f"the baseline run failed ({code}):\n{err.read()[-3000:]}")
    return list(json.loads(lines[-1][len(MARK) :]))


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}" if value < 10 else f"{value:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 0.2 s per loop (CI smoke)")
    parser.add_argument("--seconds", type=float, default=4.0, help="per loop, per size")
    parser.add_argument("--baseline", help="an earlier checkout to run first, for before/after columns")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 0.2
    before = baseline(args.baseline, args) if args.baseline else None
    now = asyncio.run(measure(args))
    print(MARK + json.dumps(now))
    print(f"# bench_score_sizes: library/return-and-pay, 10 calls, 15 checks\n\n{machine()}\n")
    ways = [
        ("1", "sandboxed, 1 in flight"),
        ("64", f"sandboxed, {IN_FLIGHT} in flight"),
        ("64 replay processes", f"sandboxed, {IN_FLIGHT} in flight, replay in 2 processes"),
        ("envscaler", "EnvScaler's way (deepcopy + exec, no sandbox), 1 at a time"),
    ]
    rows = []
    for k, r in enumerate(now):
        for key, name in ways:
            then = before[k].get(key) if before else None
            cells = [r["size"], name, fmt(then), fmt(r.get(key))] if before else [r["size"], name, fmt(r.get(key))]
            if before:
                cells.append(f"{r[key] / then:,.1f}x" if then and r.get(key) else "-")
            rows.append(cells)
    headers = ["size", "way", "before: trajectories/s", "now: trajectories/s", "now / before"] if before else None
    print(table(headers or ["size", "way", "trajectories/s"], rows))
    small, big = now[0], now[-1]
    best = max(small.get("64 replay processes") or 0, small["64"])
    big_best = max(big.get("64 replay processes") or 0, big["64"])
    cost = best / big_best
    rewards = ", ".join(f"{r['size']} {r['reward']}" for r in now)
    print(f"\nreward at each size: {rewards}")
    print(
        f"ratio: cost per trajectory at {big['size']} is {cost:.1f}x that at {small['size']} ({IN_FLIGHT} in flight)\n"
    )
    print(target_line(f">= 1,000 trajectories/s at {small['size']}", best >= 1000, f"{best:,.0f}/s"))
    print(target_line(f">= 500 trajectories/s at {big['size']}", big_best >= 500, f"{big_best:,.1f}/s"))
    print(target_line(f"cost at {big['size']} within 2x of {small['size']}", cost <= 2, f"{cost:.1f}x"))


if __name__ == "__main__":
    main()
