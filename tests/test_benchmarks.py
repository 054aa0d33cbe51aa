"""Keep the benchmark scripts from rotting: run each with --quick and check it reports.

Never asserts timings (this machine, and CI's, are noisy); only that each script exits 0
and prints its tables and its target lines. The numbers live in docs/benchmarks.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("bench_reset.py", [], ["| method |", "deserialize + pragma", "rebuild: DDL + executemany", "ratio:"]),
        (
            "bench_calls.py",
            ["--seconds", "0.2"],
            ["| part |", "Episode.call", "| stdio |", "| http | envfarm | raw |", "| http | baseline | sdk |"],
        ),
        ("bench_memory.py", ["--episodes", "20", "--calls", "40"], ["per episode KB", "p50 vs 1 live"]),
        ("bench_sandbox.py", [], ["| method |", "sandbox (2 workers", "in-process, deepcopy + exec", "ratio:"]),
        (
            "bench_scoring.py",
            [],
            ["| method |", "sandboxed (score_request", "in-process exec on deep copies", "ratio:"],
        ),
        ("bench_catalog.py", ["--env", "library"], ["| env | tables |", "pass the gate", "scenarios/s"]),
        ("bench_rollout.py", [], ["| in flight | episodes |", "episodes/s"]),
        ("bench_router.py", [], ["| client | N | path |", "| raw | 4 | router |", "throughput ratio"]),
        (
            "bench_generate.py",
            [],
            ["| stage | calls |", "environment (skeleton)", "every answer from the cache", "ratio:"],
        ),
    ],
)
def test_benchmark_runs(script: str, args: list[str], expected: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--quick", *args],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ},
    )
    assert proc.returncode == 0, f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    for text in [*expected, "TARGET"]:
        assert text in proc.stdout, f"{script} did not print {text!r}:\n{proc.stdout[-3000:]}"
