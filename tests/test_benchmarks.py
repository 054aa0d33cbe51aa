"""Keep the benchmark scripts from rotting: run each with --quick and check it reports.

Never asserts timings (this machine, and CI's, are noisy); only that each script exits 0
and prints its tables and its target lines. The numbers live in docs/benchmarks.md.

The scripts run a few at a time: most of a --quick run is Python starting the script
and the servers it measures, so one at a time leaves a core idle. To time each script
alone: ``ENVFARM_BENCH_AT_ONCE=1 pytest tests/test_benchmarks.py --durations=0``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
AT_ONCE = int(os.environ.get("ENVFARM_BENCH_AT_ONCE", "3"))  # scripts running together (for 2 cores)

# script -> (extra arguments, texts its output must contain besides "TARGET"), slowest first.
CASES: dict[str, tuple[list[str], list[str]]] = {
    "bench_calls.py": (
        [],
        ["| part |", "Episode.call", "| stdio |", "| http | envfarm | raw |", "| http | baseline | sdk |"],
    ),
    "bench_router.py": ([], ["| client | N | path |", "| raw | 2 | router |", "throughput ratio"]),
    "bench_proxy.py": ([], ["| client | N | path |", "| raw | 2 | router |", "hop CPU ms/call", "| nodes | path |"]),
    "bench_openenv.py": ([], ["| part | protocol | client |", "| steps | openenv | ws |", "throughput ratio"]),
    "bench_generate.py": ([], ["| stage | calls |", "environment (skeleton)", "every answer from the cache", "ratio:"]),
    "bench_rollout.py": ([], ["| in flight | episodes |", "episodes/s"]),
    "bench_agents.py": ([], ["| model | in flight |", "harness CPU ms/turn", "| bare client |", "loop's own share"]),
    "bench_memory.py": ([], ["per episode KB", "p50 vs 1 live", "Over HTTP"]),
    "bench_scoring.py": (
        [],
        ["| method |", "replay in this process", "replay in 2 processes (ReplayPool)", "in-process exec", "ratio:"],
    ),
    "bench_score_profile.py": ([], ["| size | stage | ms per trajectory |", "sandbox round trip", "ratio:"]),
    "bench_score_sizes.py": ([], ["| size | way | trajectories/s |", "replay in 2 processes", "EnvScaler's way"]),
    "bench_score_batch.py": ([], ["| way | trajectories/s |", "envfarm score --json FILE", "/v1/score/batch"]),
    "bench_catalog.py": (["--env", "library"], ["| env | tables |", "pass the gate", "scenarios/s"]),
    "bench_sandbox.py": ([], ["| method |", "sandbox (2 workers", "in-process, deepcopy + exec", "ratio:"]),
    "bench_reset.py": ([], ["| method |", "deserialize + pragma", "rebuild: DDL + executemany", "ratio:"]),
    # without --tau2 (CI has no tau2-bench): envfarm's side of the comparison alone, saying so
    "bench_tau2.py": ([], ["| domain | measure | tau2-bench | envfarm |", "trajectories scored/s", "measured alone"]),
}


def run_script(script: str) -> subprocess.CompletedProcess[str]:
    args, _ = CASES[script]
    return subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=300,  # a hang guard only: a shared 2-core machine can be many times slower
        env={**os.environ},
    )


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest) -> Iterator[dict[str, Future[subprocess.CompletedProcess[str]]]]:
    """Start the selected scripts (all of them unless -k picks some), AT_ONCE at a time."""
    selected = {
        item.callspec.params["script"]
        for item in request.session.items
        if getattr(item, "module", None) is request.module and hasattr(item, "callspec")
    }
    with ThreadPoolExecutor(max_workers=AT_ONCE) as pool:
        futures = {script: pool.submit(run_script, script) for script in CASES if script in selected}
        yield futures
        for future in futures.values():
            future.cancel()


@pytest.mark.parametrize("script", list(CASES))
def test_benchmark_runs(script: str, runs: dict[str, Future[subprocess.CompletedProcess[str]]]) -> None:
    proc = runs[script].result()
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    for text in [*CASES[script][1], "TARGET"]:
        assert text in proc.stdout, f"{script} did not print {text!r}:\n{proc.stdout[-3000:]}"
