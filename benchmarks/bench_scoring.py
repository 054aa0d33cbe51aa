"""End-to-end scoring rate: a 10-call trajectory with 15 checks, replayed and judged.

What ``POST /v1/score`` does, in process and without HTTP: read the trajectory,
replay its 10 calls on a fresh episode of a ``library`` scenario, run the 15 checks,
compute collateral against the oracle. Two ways, same trajectory, same checks:

- ``sandboxed``: ``envfarm.validators.service.score_request`` with a 2-worker
  :class:`SandboxPool`, ``--concurrency`` requests in flight, replaying in this process and
  then in a 2-process :class:`ReplayPool` (the scenario, made here, is sent to its workers);
- ``in-process exec``: EnvScaler's way: the same replay, then for every check a
  ``copy.deepcopy`` of the initial and final state and ``exec`` of its source, in
  this process, no isolation.

The 15 checks are the scenario's own plus generic ones over the library state,
as generated checklists have (row counts kept, no negative balances, ...).

Usage: python benchmarks/bench_scoring.py [--quick] [--seconds 5] [--concurrency 64]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import machine, table, target_line  # noqa: E402

from envfarm.core.environments import load_environment  # noqa: E402
from envfarm.core.scenarios import Call, Check  # noqa: E402
from envfarm.validators.replay import replay  # noqa: E402
from envfarm.validators.sandbox import SandboxPool  # noqa: E402
from envfarm.validators.service import ScoreRequest, ScoringLimits, score_request  # noqa: E402

TARGET_PER_S = 300
TARGET_RATIO = 1 / 3
SCENARIO = "return-and-pay"

GENERIC = {
    "members-kept": "len(final['members']) == len(initial['members'])",
    "books-kept": "len(final['books']) == len(initial['books'])",
    "copies-kept": "sorted(c['barcode'] for c in final['copies']) == sorted(c['barcode'] for c in initial['copies'])",
    "no-negative-fines": "all(f['amount_cents'] >= 0 for f in final['fines'])",
    "loans-have-copies": "{l['copy_id'] for l in final['loans']} <= {c['id'] for c in final['copies']}",
    "holds-have-members": "{h['member_id'] for h in final['holds']} <= {m['id'] for m in final['members']}",
    "branches-same": "final['branches'] == initial['branches']",
    "payments-positive": "all(p['amount_cents'] > 0 for p in final['payments'])",
    "due-after-loaned": "all(l['due'] >= l['loaned'] for l in final['loans'])",
    "emails-unique": "len({m['email'] for m in final['members'] if m['email']}) "
    "== sum(1 for m in final['members'] if m['email'])",
}


def workload() -> tuple[Any, Any, list[Call]]:
    env = load_environment("library")
    base = env.scenarios[SCENARIO]
    checks = list(base.checks)
    for check_id, expr in GENERIC.items():
        if len(checks) == 15:
            break
        code = f"def check(initial, final):\n    return {expr}\n"
        checks.append(Check(id=check_id, description=check_id, code=code, preserve=True))
    scenario = base.model_copy(update={"id": "bench-scoring", "checks": checks})
    env.scenarios[scenario.id] = scenario
    # As a trajectory has them: plain calls (an oracle's calls carry more fields, e.g. ``refused``).
    calls = [Call(tool=c.tool, arguments=c.arguments) for c in base.oracle]
    lookups = [Call(tool="search_books", arguments={"query": q}) for q in ("Dune", "Circe", "Sapiens", "Matilda")]
    calls = (calls + lookups)[:10] if len(calls) < 10 else calls[:10]
    assert len(scenario.checks) == 15 and len(calls) == 10
    return env, scenario, calls


def in_process(env: Any, scenario: Any, calls: list[Call]) -> float:
    """One EnvScaler-style scoring: replay, then deepcopy + exec per check; returns the reward."""
    done = replay(env, scenario, calls)
    passed = 0
    for check in scenario.checks:
        initial, final = copy.deepcopy(done.initial), copy.deepcopy(done.final)
        namespace: dict[str, Any] = {}
        exec(check.code, namespace)
        passed += namespace["check"](initial, final) is True
    return passed / len(scenario.checks)


async def sandboxed(
    env: Any, scenario: Any, calls: list[Call], seconds: float, concurrency: int, replay_workers: int = 0
) -> tuple[int, float]:
    """Score the trajectory ``concurrency`` at a time for ``seconds``; replays in ``replay_workers``
    processes (a :class:`ReplayPool`) when not 0, else in this process."""
    request = ScoreRequest(env=env.id, scenario=scenario.id, trajectory=[c.model_dump() for c in calls])
    envs = {env.id: env}
    limits = ScoringLimits()
    replayer = None
    if replay_workers:
        from envfarm.validators.replay_pool import ReplayPool  # here: bench_score_sizes runs on older checkouts too

        replayer = ReplayPool(replay_workers)
    try:
        async with SandboxPool(2) as pool:
            for _ in range(2 * replay_workers + 1):  # every replay process started and warm
                first = await score_request(envs, request, limits, pool, replayer=replayer)
                assert first.reward == round(in_process(env, scenario, calls), 6) == 1.0, "both ways must agree"
            return await in_flight(envs, request, pool, replayer, concurrency, seconds)
    finally:
        if replayer is not None:
            await replayer.close()


async def in_flight(
    envs: dict[str, Any], request: ScoreRequest, pool: Any, replayer: Any, concurrency: int, seconds: float
) -> tuple[int, float]:
    """Trajectories scored and seconds taken, ``concurrency`` requests at a time for ``seconds``
    (every request started finishes). ``replayer`` None replays in this process (and works on
    checkouts from before replay processes: bench_score_sizes --baseline)."""
    limits = ScoringLimits()
    extra = {"replayer": replayer} if replayer is not None else {}
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await score_request(envs, request, limits, pool, **extra)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="0.1 s per method, 4 in flight (CI smoke)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=None, help="requests in flight (default 64)")
    args = parser.parse_args()
    seconds = 0.1 if args.quick else args.seconds
    args.concurrency = args.concurrency or (4 if args.quick else 64)

    env, scenario, calls = workload()
    print(f"# bench_scoring: library/{SCENARIO}, a 10-call trajectory with 15 checks\n\n{machine()}\n")

    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        in_process(env, scenario, calls)
        n += 1
    plain_rate = n / (time.perf_counter() - start)
    done, elapsed = asyncio.run(sandboxed(env, scenario, calls, seconds, args.concurrency))
    here_rate = done / elapsed
    pooled, pooled_elapsed = asyncio.run(sandboxed(env, scenario, calls, seconds, args.concurrency, 2))
    pooled_rate = pooled / pooled_elapsed
    sandbox_rate = max(here_rate, pooled_rate)

    rows = [
        [
            "sandboxed, replay in this process (2 check workers)",
            f"{args.concurrency}",
            f"{done:,}",
            f"{here_rate:,.0f}",
        ],
        ["sandboxed, replay in 2 processes (ReplayPool)", f"{args.concurrency}", f"{pooled:,}", f"{pooled_rate:,.0f}"],
        ["in-process exec on deep copies (EnvScaler)", "1", f"{n:,}", f"{plain_rate:,.0f}"],
    ]
    print(table(["method", "in flight", "trajectories", "trajectories/s"], rows))
    ratio = sandbox_rate / plain_rate
    print(f"\nratio: sandboxed (the faster way) is {ratio:.2f}x the in-process rate")
    print(f"replay in processes vs here: {pooled_rate / here_rate:.2f}x\n")
    print(
        target_line(
            f">= {TARGET_PER_S} trajectories/s sandboxed", sandbox_rate >= TARGET_PER_S, f"{sandbox_rate:,.0f}/s"
        )
    )
    print(target_line(">= 1/3 of the in-process rate", ratio >= TARGET_RATIO, f"{ratio:.2f}x"))


if __name__ == "__main__":
    main()
