"""Where scoring one trajectory spends its time, stage by stage, at 20 KB, 1 MB and 10 MB of state.

The trajectory and checks are bench_scoring's (library/return-and-pay, 10 calls, 15 checks);
the state is the scenario's own (~20 KB) or copies of its rows grown with
``scaled_states.scaled_state`` to about 1 MB and 10 MB. Size is the canonical JSON of the
initial state view (what the sandbox is sent, and how tau2-bench's "~3 MB retail" is
counted); the SQLite image is printed beside it.

Each trajectory is scored by calling the project's own functions one stage at a time, with
``time.perf_counter`` around each: ``prepare`` (read the trajectory), a new ``Episode`` (the
snapshot deserialized; change tracking turned on from 512 KB, as ``replay`` does), the 10
tool calls, then :func:`envfarm.validators.replay.outcome` (final view and diff; its state
hash timed apart), then
:func:`envfarm.validators.scoring.score` on a 2-worker :class:`SandboxPool` whose
``_encode`` and ``run_checks`` and the module's ``collateral`` are wrapped in timers (encode
views for the sandbox; sandbox round trip = ``run_checks`` minus encoding; collateral; the
rest of judging). The staged replay is checked against :func:`replay` (same final hash).
The HTTP stage comes from a second loop of ``POST /v1/score`` through the validator's ASGI
app (``create_validator_app``, in process, no socket), 1 in flight: the request's time
minus the time inside ``score_request``. That loop also gives trajectories/s end to end.

Sub-rows marked "est." break the sandbox round trip down by running the worker's own steps
(parsing the job, copying the tables each check reads, ``run_check``) in this process.

Usage: python benchmarks/bench_score_profile.py [--quick] [--seconds 8]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scoring import workload  # noqa: E402
from report import machine, table, target_line  # noqa: E402
from scaled_states import FULL_SIZES, KB, QUICK_SIZES, json_bytes, sized_snapshot  # noqa: E402

import envfarm.validators.replay as replay_mod  # noqa: E402
import envfarm.validators.scoring as scoring_mod  # noqa: E402
import envfarm.validators.service as service_mod  # noqa: E402
from envfarm.core.episodes import Episode  # noqa: E402
from envfarm.serve.settings import FarmSettings  # noqa: E402
from envfarm.validators.checks import run_check  # noqa: E402
from envfarm.validators.replay import oracle_footprint, replay  # noqa: E402
from envfarm.validators.sandbox.worker import CompileCache, Job, _view  # noqa: E402
from envfarm.validators.service import ScoreRequest, ScoringLimits, ScoringService, prepare  # noqa: E402

STAGES = [
    "prepare (read trajectory)",
    "new episode (+ change tracking) + close",
    "replay: 10 tool calls",
    "final view + diff (outcome() less the hash)",
    "state hash",
    "encode views for the sandbox (JSON)",
    "sandbox round trip incl. checks",
    "collateral",
    "judge + results (rest of score())",
    "HTTP: request parse + response encoding",
]
ROUND_TRIP = "sandbox round trip incl. checks"
SUB_STAGES = [
    "est.: worker parses the job (initial kept)",
    "est.: worker gives each check its views (copies if it may change them)",
    "est.: the 15 checks themselves",
    "est.: pipes, framing, result lines (rest)",
]


class Timers:
    """Seconds accumulated per name, for the current trajectory."""

    def __init__(self) -> None:
        self.t: dict[str, float] = defaultdict(float)
        self.last_job: Any = None  # the pool's last job (its parts)

    def wrap_async(self, name: str, fn: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                result = await fn(*args, **kwargs)
                if name == "encode":
                    self.last_job = result
                return result
            finally:
                self.t[name] += time.perf_counter() - start

        return timed

    def wrap(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.t[name] += time.perf_counter() - start

        return timed


async def staged(env: Any, scenario: Any, request: ScoreRequest, pool: Any, timers: Timers) -> tuple[dict, Any]:
    """One trajectory scored stage by stage; returns {stage: seconds} and the ScoreResponse."""
    envs = {env.id: env}
    out: dict[str, float] = {}
    timers.t.clear()
    c0 = time.perf_counter()
    _, _, trajectory = prepare(envs, request, ScoringLimits(), [])
    c1 = time.perf_counter()
    episode = Episode(env, scenario, f"replay-{scenario.id}", request.seed)
    if len(env.snapshot(scenario.id)) >= replay_mod.REUSE_FROM_BYTES:  # as replay() does
        episode.track_changes()
    c2 = time.perf_counter()
    for call in trajectory.calls:
        episode.call(call.tool, call.arguments)
    c3 = time.perf_counter()
    done = replay_mod.outcome(episode)  # its _hash is timed (Timers.wrap_hash)
    c4 = time.perf_counter()
    episode.close()
    c9 = time.perf_counter()
    response = await scoring_mod.score(env, scenario, done, pool, messages=trajectory.messages)
    c10 = time.perf_counter()
    t = timers.t
    out["prepare (read trajectory)"] = c1 - c0
    out["new episode (+ change tracking) + close"] = (c2 - c1) + (c9 - c4)
    out["replay: 10 tool calls"] = c3 - c2
    out["final view + diff (outcome() less the hash)"] = (c4 - c3) - t["hash"]
    out["state hash"] = t["hash"]
    out["encode views for the sandbox (JSON)"] = t["encode"]
    out[ROUND_TRIP] = t["run_checks"] - t["encode"]
    out["collateral"] = t["collateral"]
    out["judge + results (rest of score())"] = (c10 - c9) - t["run_checks"] - t["collateral"]
    return out, response


def worker_side(job: bytes, reps: int) -> dict[str, float]:
    """The sandbox child's own steps on this job, run here (seconds per job): parse (the initial
    tables parsed once, as a child keeps them), per-check copies of the tables each reads, checks."""
    parse = copies = checks_s = 0.0
    compiler = CompileCache()
    kept = Job(job, None).initial
    gc.collect()
    gc.freeze()  # as the zygote does before forking: the heap so far is not what a child's collector walks
    for _ in range(reps):
        s = time.perf_counter()
        parsed = Job(job, kept)
        parse += time.perf_counter() - s
        for check_id, code, tables, copy in parsed.checks:
            s = time.perf_counter()
            ini, fin = _view(parsed.initial, tables, copy), _view(parsed.final, tables, copy)
            copies += time.perf_counter() - s
            s = time.perf_counter()
            run_check(check_id, code, ini, fin, compiler)
            checks_s += time.perf_counter() - s
            del ini, fin
        del parsed
    gc.unfreeze()
    return {SUB_STAGES[0]: parse / reps, SUB_STAGES[1]: copies / reps, SUB_STAGES[2]: checks_s / reps}


async def asgi_post(app: Any, path: str, body: bytes) -> tuple[int, bytes]:
    """One request through the ASGI app, as uvicorn would hand it over (no socket, no client library)."""
    headers = [
        (b"host", b"127.0.0.1:8000"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    answered = asyncio.Event()
    given = False
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        await answered.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                answered.set()

    await app(scope, receive, send)
    return status, b"".join(chunks)


def run_for(seconds: float, least: int, most: int) -> Callable[[int], bool]:
    deadline = time.perf_counter() + seconds
    return lambda n: n < least or (n < most and time.perf_counter() < deadline)


async def profile_size(
    env: Any, base: Any, calls: list[Any], label: str, data: bytes, service: ScoringService, args: Any
) -> dict[str, Any]:
    scenario = base.model_copy(update={"id": f"bench-profile-{label.replace(' ', '')}", "state": {}})
    env.scenarios[scenario.id] = scenario
    env._snapshots[f"scenario:{scenario.id}"] = data  # as bench_reset does: Environment.snapshot reads its cache
    try:
        s = time.perf_counter()
        view = env.initial_view(scenario.id)
        first_view = time.perf_counter() - s
        s = time.perf_counter()
        oracle_footprint(env, scenario)
        footprint = time.perf_counter() - s
        info = {
            "label": label,
            "sqlite": len(data),
            "json": json_bytes(view),
            "rows": sum(len(r) for r in view.values()),
            "once": (first_view, footprint),
        }
        request = ScoreRequest(env=env.id, scenario=scenario.id, trajectory=[c.model_dump() for c in calls])
        pool, timers = service.pool, info_timers(service)

        # The staged replay must be the real one: same final state, same hash.
        real = replay(env, scenario, calls)
        stages, response = await staged(env, scenario, request, pool, timers)
        assert response.final_state_hash == real.final_state_hash, "staged replay differs from replay()"
        info["reward"], info["collateral"] = response.reward, len(response.collateral)
        info["errors"] = sorted({c.error for c in response.checks if c.error})
        info["failed"] = [c.id for c in response.checks if not c.passed]
        await staged(env, scenario, request, pool, timers)  # warm: caches, the child for this check set

        gc.collect()
        totals: dict[str, float] = defaultdict(float)
        n = 0
        more = run_for(args.seconds, args.least, args.most)
        while more(n):
            stages, _ = await staged(env, scenario, request, pool, timers)
            for k, v in stages.items():
                totals[k] += v
            n += 1
        per = {k: v / n for k, v in totals.items()}
        info["n_staged"] = n
        job = timers.last_job.bytes(True)
        info["job_bytes"] = len(job)
        info["lean_bytes"] = len(timers.last_job.bytes(False))

        # The HTTP loop: POST /v1/score through the validator app, 1 in flight.
        app = service_app(env, service)
        body = request.model_dump_json().encode()
        status, answer = await asgi_post(app, "/v1/score", body)
        assert status == 200, f"POST /v1/score answered {status}: {answer[:300]!r}"
        info["response_bytes"] = len(answer)
        gc.collect()
        inside = http_total = 0.0
        m = 0
        more = run_for(args.seconds, args.least, args.most)
        start = time.perf_counter()
        while more(m):
            timers.t.clear()
            s = time.perf_counter()
            await asgi_post(app, "/v1/score", body)
            http_total += time.perf_counter() - s
            inside += timers.t["score_request"]
            m += 1
        elapsed = time.perf_counter() - start
        per["HTTP: request parse + response encoding"] = (http_total - inside) / m
        info["n_http"] = m
        info["rate_http"] = m / elapsed
        info["rate_score_request"] = m / inside

        sub = worker_side(job, 3 if len(job) > 1024 * KB else max(2, min(20, n)))
        sub[SUB_STAGES[3]] = max(0.0, per[ROUND_TRIP] - sum(sub.values()))
        info["per"], info["sub"] = per, sub
        return info
    finally:
        env.scenarios.pop(scenario.id, None)
        env._snapshots.pop(f"scenario:{scenario.id}", None)
        env._initial_views.pop(f"scenario:{scenario.id}", None)


_timers: dict[int, Timers] = {}
_apps: dict[int, Any] = {}


def info_timers(service: ScoringService) -> Timers:
    """The timers wrapped once around the pool's encode and run_checks, collateral and score_request."""
    found = _timers.get(id(service))
    if found is None:
        found = _timers[id(service)] = Timers()
        pool = service.pool
        pool._encode = found.wrap_async("encode", pool._encode)
        pool.run_checks = found.wrap_async("run_checks", pool.run_checks)
        scoring_mod.collateral = found.wrap("collateral", scoring_mod.collateral)
        replay_mod._hash = found.wrap("hash", replay_mod._hash)  # a large state's hash
        replay_mod.state_hash = found.wrap("hash", replay_mod.state_hash)  # a small one's
        service_mod.score_request = found.wrap_async("score_request", service_mod.score_request)
    return found


def service_app(env: Any, service: ScoringService) -> Any:
    found = _apps.get(id(service))
    if found is None:
        found = _apps[id(service)] = service_mod.create_validator_app({env.id: env}, None, FarmSettings(), service)
    return found


def ms(seconds: float) -> float:
    return seconds * 1e3


async def main_async(args: argparse.Namespace) -> None:
    env, base, calls = workload()
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    print(
        f"# bench_score_profile: library/return-and-pay, 10 calls, 15 checks, sandboxed (2 workers), 1 in flight\n\n"
        f"{machine()}\n\n"
        "Size = canonical JSON of the initial state view (what the sandbox is sent); the state is the "
        "scenario's own, or copies of its rows (scaled_states.scaled_state). Times are means over many "
        "trajectories; 'est.' rows split the sandbox round trip by running the worker's steps in this process "
        "and are not added to the total.\n"
    )
    datas = [(label, sized_snapshot(env, base.id, target, args.quick)) for label, target in sizes]
    results = []
    async with ScoringService(workers=2) as service:
        info_timers(service)
        for label, data in datas:
            results.append(await profile_size(env, base, calls, label, data, service, args))

    print(
        table(
            [
                "size",
                "JSON of the view",
                "SQLite image",
                "rows",
                "job to sandbox (first / then)",
                "response",
                "reward",
                "collateral",
                "trajectories (staged / HTTP)",
            ],
            [
                [
                    r["label"],
                    f"{r['json'] / KB:,.0f} KB",
                    f"{r['sqlite'] / KB:,.0f} KB",
                    r["rows"],
                    f"{r['job_bytes'] / KB:,.0f} / {r['lean_bytes'] / KB:,.1f} KB",
                    f"{r['response_bytes'] / KB:,.1f} KB",
                    r["reward"],
                    r["collateral"],
                    f"{r['n_staged']} / {r['n_http']}",
                ]
                for r in results
            ],
        )
    )
    for r in results:
        if r["failed"]:
            print(f"\nnote: at {r['label']} these checks fail: {', '.join(r['failed'])}", end="")
            print(f" (errors: {r['errors']})" if r["errors"] else " (no error: they return False on the copied rows)")
    print()

    rows = []
    for r in results:
        total = sum(r["per"].values())
        r["total"] = total
        for stage in STAGES:
            v = r["per"][stage]
            rows.append([r["label"], stage, ms(v), f"{100 * v / total:.1f}%"])
            if stage == ROUND_TRIP:
                for sub in SUB_STAGES:
                    rows.append([r["label"], f"↳ {sub}", ms(r["sub"][sub]), f"({100 * r['sub'][sub] / total:.1f}%)"])
        rows.append([r["label"], "**total (sum of stages)**", ms(total), "100%"])
    print(table(["size", "stage", "ms per trajectory", "share of total"], rows))

    small, big = results[0], results[-1]
    print(f"\n## {big['label']} vs {small['label']}, by stage\n")
    rows = []
    for stage in STAGES:
        a, b = small["per"][stage], big["per"][stage]
        rows.append([stage, *(ms(r["per"][stage]) for r in results), f"{b / a:,.1f}x" if a > 0 else "-"])
    rows.append(["**total**", *(ms(r["total"]) for r in results), f"{big['total'] / small['total']:,.1f}x"])
    print(table(["stage", *(f"{r['label']} ms" for r in results), f"{big['label']} / {small['label']}"], rows))

    print("\n## End to end, sandboxed, 1 in flight\n")
    print(
        table(
            ["size", "POST /v1/score (ASGI app) trajectories/s", "score_request trajectories/s", "ms per trajectory"],
            [[r["label"], r["rate_http"], r["rate_score_request"], ms(r["total"])] for r in results],
        )
    )
    ratio = big["total"] / small["total"]
    print(f"\nratio: cost per trajectory at {big['label']} is {ratio:.1f}x that at {small['label']}")
    print("\nOnce per scenario, not per trajectory (not in the table):")
    for r in results:
        view_s, oracle_s = r["once"]
        print(
            f"- {r['label']}: initial view built {ms(view_s):,.1f} ms; "
            f"oracle replayed for collateral {ms(oracle_s):,.1f} ms"
        )
    print()
    print(target_line(f"cost at {big['label']} within 2x of {small['label']}", ratio <= 2, f"{ratio:.1f}x"))
    print(
        target_line(
            f">= 1,000 trajectories/s at {small['label']} (1 in flight, HTTP)",
            small["rate_http"] >= 1000,
            f"{small['rate_http']:,.0f}/s",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 0.3 s per loop (CI smoke)")
    parser.add_argument("--seconds", type=float, default=8.0, help="per loop (staged, then HTTP) per size")
    args = parser.parse_args()
    if args.quick:
        args.seconds = 0.3
    args.least, args.most = (3, 200) if args.quick else (10, 5000)
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
