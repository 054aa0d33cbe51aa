"""The catalog's numbers: environments, tools and scenarios per env, the quality gate's pass rate
for authored and procedural scenarios, and procedural scenarios made per second.

- counts come from loading every bundled environment;
- the gate runs on every bundled scenario (authored: any id not starting with ``synth-``);
- synthesis speed: ``synthesize`` makes ``--count`` new scenarios per env that has a
  ``synth.py`` (in memory, with a seed not used by the bundled ones), gate included,
  and reports scenarios kept per second and the share of walks the gate kept.

Usage: python benchmarks/bench_catalog.py [--quick] [--count 20] [--env ENV ...]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import machine, table, target_line  # noqa: E402

from envfarm.core.environments import Environment, bundled, load_environment  # noqa: E402
from envfarm.generator.procedural import Knobs, load_steps, synthesize  # noqa: E402
from envfarm.validators.gate import gate_environment  # noqa: E402
from envfarm.validators.sandbox import SandboxPool  # noqa: E402

BENCH_SEED = 9001


def gate_sample(env: Environment, per_kind: int) -> Environment:
    """The env with only its first ``per_kind`` authored and procedural scenarios (a quick gate run)."""
    ids = sorted(env.scenarios)
    authored = [s for s in ids if not s.startswith("synth-")][:per_kind]
    procedural = [s for s in ids if s.startswith("synth-")][:per_kind]
    return dataclasses.replace(env, scenarios={s: env.scenarios[s] for s in authored + procedural})


async def run(count: int, env_ids: list[str], sample: int | None) -> None:
    """``sample``: gate only that many authored and procedural scenarios per env (None: all)."""
    envs = {env_id: load_environment(env_id) for env_id in env_ids}
    counts: list[list[Any]] = []
    gates: list[list[object]] = []
    speed: list[list[object]] = []
    failed_gate = 0
    async with SandboxPool() as pool:
        for env_id, env in envs.items():
            tools = env.tools.values()
            authored = [s for s in env.scenarios if not s.startswith("synth-")]
            counts.append(
                [
                    env_id,
                    len(env.metadata.tables),
                    len(env.tools),
                    sum(t.kind == "query" for t in tools),
                    sum(t.kind == "mutation" for t in tools),
                    len(env.rules),
                    len(authored),
                    len(env.scenarios) - len(authored),
                ]
            )
            reports = await gate_environment(env if sample is None else gate_sample(env, sample), pool)
            failed_gate += sum(not r.passed for r in reports)
            a = [r for r in reports if not r.scenario.startswith("synth-")]
            p = [r for r in reports if r.scenario.startswith("synth-")]
            gates.append(
                [
                    env_id,
                    f"{sum(r.passed for r in a)}/{len(a)}",
                    f"{sum(r.passed for r in p)}/{len(p)}",
                    f"{sum(r.numbers['mutants_caught'] for r in reports)}/{sum(r.numbers['mutants'] for r in reports)}",
                ]
            )
            try:
                load_steps(env)
            except ValueError:
                continue
            template = env.scenarios[sorted(authored)[0]]
            start = time.perf_counter()
            made, stats = await synthesize(env, template, count, BENCH_SEED, Knobs(), pool)
            elapsed = time.perf_counter() - start
            kept = len(made) / max(1, stats["attempts"])
            speed.append([env_id, len(made), stats["attempts"], f"{kept:.0%}", f"{len(made) / elapsed:.1f}"])
    print(table(["env", "tables", "tools", "queries", "mutations", "rules", "authored", "procedural"], counts))
    print()
    print(table(["env", "authored pass the gate", "procedural pass the gate", "mutants caught"], gates))
    print()
    print(table(["env", "made", "walks", "kept by the gate", "scenarios/s"], speed))
    print()
    gated = (
        "every bundled scenario passes the gate"
        if sample is None
        else f"the first {sample} authored and {sample} procedural scenario(s) of each env pass the gate"
    )
    print(target_line(gated, failed_gate == 0, f"{failed_gate} failing"))
    small = [str(r[0]) for r in counts if not (r[2] >= 15 and r[5] >= 5 and r[6] >= 10 and r[7] >= 40 and r[1] >= 4)]
    print(
        target_line(
            ">= 4 tables, 15 tools, 5 rules, 10 authored and 40 procedural scenarios per env",
            not small,
            f"short: {', '.join(small) or 'none'}; {len(counts)} envs",
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick", action="store_true", help="one env, 2 scenarios made, 1+1 scenarios gated (CI smoke)"
    )
    parser.add_argument("--count", type=int, default=20, help="procedural scenarios to make per env")
    parser.add_argument("--env", action="append", help="only these envs (default: every bundled one)")
    args = parser.parse_args()
    env_ids = args.env or bundled()
    if args.quick:
        env_ids = env_ids[:1]
    print(f"# bench_catalog\n\n{machine()}\n")
    asyncio.run(run(2 if args.quick else args.count, env_ids, 1 if args.quick else None))


if __name__ == "__main__":
    main()
