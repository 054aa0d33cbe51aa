"""The generator's costs: LLM calls, tokens and dollars per environment and per scenario, and its own time.

Runs ``envfarm generate``'s pipeline in process against the fake Anthropic server
(tests/fakes/llm_server.py) answering the recorded run of tests/generator/recording.py
on the 14-task corpus sample, so the model takes no time and what is timed is
envfarm's own work: executing, probing and gating every answer. Then runs it again
on the same work folder, where every answer comes from the cache (the resume path).

Tokens are the fake server's count of the prompts envfarm really sends and the
recorded answers (characters / 4, Anthropic's rule of thumb), priced at the default
model's list price; EnvScaler's published costs are the baseline.

Usage: python benchmarks/bench_generate.py [--quick] [--runs 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the fake model server and the recording live under tests/
sys.path.insert(0, str(REPO / "benchmarks"))

from report import machine, table, target_line  # noqa: E402

from envfarm.generator.dedupe import LexicalEmbedder  # noqa: E402
from envfarm.generator.llm import LLM, AnthropicProvider  # noqa: E402
from envfarm.generator.pipeline import Options, Run  # noqa: E402
from envfarm.validators.sandbox import SandboxPool  # noqa: E402
from tests.fakes.llm_server import FakeLLMServer  # noqa: E402
from tests.generator import recording  # noqa: E402

CORPUS = REPO / "tests" / "generator" / "data" / "corpus-sample.jsonl"
ENVSCALER_PER_ENV = 1.02  # USD, EnvScaler (arXiv 2601.05808): skeleton building per environment
ENVSCALER_PER_SCENARIO = 0.06  # USD, per scenario


async def one_run(fake: FakeLLMServer, work: Path, pool: SandboxPool) -> tuple[float, dict[str, Any]]:
    """One `generate all` into ``work``; returns wall seconds and the run report."""
    provider = AnthropicProvider(api_key="bench", base_url=fake.url)
    llm = LLM(provider, cache_dir=work / "cache", concurrency=4)
    options = Options(work=work, out=work / "out", corpus=CORPUS, envs=1, scenarios=2)
    run = Run(llm, options, pool, embedder=LexicalEmbedder())
    began = time.perf_counter()
    status, _ = await run.guarded(run.all)
    seconds = time.perf_counter() - began
    assert status == "complete", status
    return seconds, json.loads((work / "report.json").read_text())


async def main(runs: int) -> None:
    cold: list[float] = []
    warm: list[float] = []
    stages: dict[str, list[float]] = {}
    report: dict[str, Any] = {}
    with FakeLLMServer(recording.script()) as fake:
        async with SandboxPool() as pool:
            for _ in range(runs):
                with tempfile.TemporaryDirectory() as tmp:
                    fake.reset(recording.script())
                    seconds, report = await one_run(fake, Path(tmp), pool)
                    cold.append(seconds)
                    for stage, s in report["seconds"].items():
                        stages.setdefault(stage, []).append(s)
                    fake.reset(recording.script())
                    seconds, again = await one_run(fake, Path(tmp), pool)
                    assert fake.stats()["requests"] == 0, "the rerun asked the model again"
                    assert again["llm"]["totals"]["cached"] == again["llm"]["totals"]["calls"]
                    warm.append(seconds)

    print(machine())
    print(f"recorded run: {CORPUS.name} (14 tasks), 1 environment, 2 scenarios; {runs} run(s) each\n")
    rows = []
    for stage, t in sorted(report["llm"]["stages"].items()):
        rows.append([stage, t["calls"], t["input_tokens"], t["output_tokens"], f"{t['cost_usd']:.4f}"])
    print(table(["stage", "calls", "input tokens", "output tokens", "cost USD"], rows))
    env = report["environments"][recording.FITNESS[0]]
    skeleton, scenarios = env["skeleton"], env["scenarios"]
    made = len(scenarios["accepted"])
    per_env = skeleton["cost_usd"]
    per_scenario = scenarios["cost_usd"] / made
    print()
    print(
        table(
            ["unit", "calls", "tokens in", "tokens out", "cost USD", "EnvScaler USD", "ratio"],
            [
                [
                    "environment (skeleton)",
                    skeleton["calls"],
                    skeleton["input_tokens"],
                    skeleton["output_tokens"],
                    f"{per_env:.4f}",
                    f"{ENVSCALER_PER_ENV:.2f}",
                    f"{per_env / ENVSCALER_PER_ENV:.3f}",
                ],
                [
                    "scenario",
                    scenarios["calls"] / made,
                    scenarios["input_tokens"] // made,
                    scenarios["output_tokens"] // made,
                    f"{per_scenario:.4f}",
                    f"{ENVSCALER_PER_SCENARIO:.2f}",
                    f"{per_scenario / ENVSCALER_PER_SCENARIO:.3f}",
                ],
            ],
        )
    )
    print()
    time_rows = [[stage, f"{statistics.median(v):.2f}"] for stage, v in sorted(stages.items())]
    time_rows += [
        ["whole run, cold (model answers at once)", f"{statistics.median(cold):.2f}"],
        ["whole run, every answer from the cache", f"{statistics.median(warm):.2f}"],
    ]
    print(table(["envfarm's own work", "seconds (median)"], time_rows))
    print(f"\nratio: a resumed run takes {statistics.median(warm) / statistics.median(cold):.2f}x a cold one's time")
    print(
        target_line(
            "cost per environment and per scenario at or below EnvScaler's",
            per_env <= ENVSCALER_PER_ENV and per_scenario <= ENVSCALER_PER_SCENARIO,
            f"${per_env:.3f} vs ${ENVSCALER_PER_ENV}, ${per_scenario:.3f} vs ${ENVSCALER_PER_SCENARIO}",
        )
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one run (the CI smoke test)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(1 if args.quick else args.runs))
