"""tau2-bench's retail and airline domains: tau2's own environment versus envfarm's, side by side.

The same gold trajectories (every task's gold actions) on this machine, one core each:

- **resets/s**: a fresh state for a new episode. tau2: ``get_environment()``, what its
  orchestrator calls for every simulation (the domain's ``db.json`` read and validated into
  models). envfarm: ``Episode.reset()`` (the SQLite image deserialized) and ``new Episode``.
- **tool calls/s**: every gold call of every task, each task on a fresh state (the resets
  between tasks not counted). tau2: ``Environment.get_response(ToolCall)``; envfarm:
  ``Episode.call``.
- **trajectories scored/s**: a gold trajectory judged from scratch. tau2: its evaluator
  (``evaluate_simulation``; retail ENV, as its NL assertions need an LLM; airline ALL:
  DB times COMMUNICATE), which builds the gold and the predicted environments and compares
  their database hashes. envfarm: ``replay`` on a fresh episode then ``score`` (the oracle's
  final state is cached per scenario, as the farm does; these scenarios have no code check,
  so the sandbox is not involved).

tau2 is measured in its own interpreter (it needs Python 3.12+ and its dependencies):
``--tau2 PATH`` is a tau2-bench checkout, ``--tau2-python`` the interpreter where it is installed
(default: this one). Without ``--tau2`` only envfarm is measured, and the output says so.

Usage: python benchmarks/bench_tau2.py [--quick] [--tau2 PATH [--tau2-python PY]] [--domain D] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import machine, table, target_line  # noqa: E402

from envfarm.core.environments import Environment, load_environment  # noqa: E402
from envfarm.core.episodes import Episode  # noqa: E402
from envfarm.core.state import StateView  # noqa: E402
from envfarm.validators.checks import CheckOutcome  # noqa: E402
from envfarm.validators.replay import oracle_footprint, replay  # noqa: E402
from envfarm.validators.scoring import score  # noqa: E402


def rate(fn: Callable[[], int], seconds: float, min_rounds: int = 1) -> float:
    """Units per second: run ``fn`` (which returns how many units it did) for ``seconds``."""
    fn()  # warm up
    done, rounds, start = 0, 0, time.perf_counter()
    while rounds < min_rounds or time.perf_counter() - start < seconds:
        done += fn()
        rounds += 1
    return done / (time.perf_counter() - start)


class NoCodeChecks:
    """tau2's scenarios are judged without code checks: nothing goes to the sandbox."""

    async def run_checks(
        self, checks: list[tuple[str, str]], initial: StateView, final: StateView
    ) -> list[CheckOutcome]:
        raise AssertionError("a tau2 scenario has code checks")


def measure_envfarm(domain: str, tasks: list[str] | None, seconds: float) -> dict[str, float]:
    env: Environment = load_environment(f"tau2_{domain}")
    ids = tasks or sorted(env.scenarios, key=int)
    scenarios = [env.scenarios[i] for i in ids]
    episode = Episode(env, scenarios[0], "bench")

    def resets() -> int:
        for _ in range(100):
            episode.reset()
        return 100

    def creations() -> int:
        for _ in range(20):
            Episode(env, scenarios[0], "bench").close()
        return 20

    episodes = {s.id: Episode(env, s, f"bench-{s.id}") for s in scenarios}
    calls_per_round = sum(len(s.oracle) for s in scenarios)

    def calls() -> int:
        for s in scenarios:
            episodes[s.id].reset()
        start = time.perf_counter()
        for s in scenarios:
            e = episodes[s.id]
            for call in s.oracle:
                e.call(call.tool, call.arguments)
        calls.elapsed += time.perf_counter() - start  # type: ignore[attr-defined]
        return calls_per_round

    calls.elapsed = 0.0  # type: ignore[attr-defined]
    runner = NoCodeChecks()
    for s in scenarios:
        oracle_footprint(env, s)  # the oracle's final state, once per scenario (cached, as the farm does)

    def scored() -> int:
        async def all_of_them() -> None:
            for s in scenarios:
                done = replay(env, s, list(s.oracle))
                result = await score(env, s, done, runner, messages=[])
                assert result.checks[0].passed, s.id

        asyncio.run(all_of_them())
        return len(scenarios)

    out = {"resets": rate(resets, seconds), "new episodes": rate(creations, seconds)}
    rounds_start = time.perf_counter()
    done = 0
    while done == 0 or time.perf_counter() - rounds_start < seconds:
        done += calls()
    out["tool calls"] = done / calls.elapsed  # type: ignore[attr-defined]
    out["trajectories scored"] = rate(scored, seconds)
    out["calls"] = calls_per_round
    out["tasks"] = len(scenarios)
    return out


TAU2_SIDE = r"""
import json, os, sys, time, logging
tau2, domain, seconds, tasks = sys.argv[1], sys.argv[2], float(sys.argv[3]), json.loads(sys.argv[4])
sys.path.insert(0, os.path.join(tau2, "src"))
os.environ.setdefault("TAU2_DATA_DIR", os.path.join(tau2, "data"))
from loguru import logger
logger.remove()
logging.disable(logging.WARNING)
from tau2.data_model.message import AssistantMessage, ToolCall
from tau2.data_model.simulation import SimulationRun, TerminationReason
from tau2.evaluator.evaluator import EvaluationType, evaluate_simulation
module = __import__(f"tau2.domains.{domain}.environment", fromlist=["get_environment"])
all_tasks = module.get_tasks(None)
chosen = [t for t in all_tasks if not tasks or t.id in tasks]

def rate(fn, seconds):
    fn()
    done, start = 0, time.perf_counter()
    while done == 0 or time.perf_counter() - start < seconds:
        done += fn()
    return done / (time.perf_counter() - start)

def resets():
    module.get_environment()
    return 1

calls_elapsed = [0.0]
def calls():
    envs = [module.get_environment() for _ in chosen]
    start, n = time.perf_counter(), 0
    for env, task in zip(envs, chosen):
        for i, a in enumerate(task.evaluation_criteria.actions or []):
            env.get_response(ToolCall(id=f"c{i}", name=a.name, arguments=a.arguments))
            n += 1
    calls_elapsed[0] += time.perf_counter() - start
    return n

def messages(task):
    env = module.get_environment()
    out = []
    for i, a in enumerate(task.evaluation_criteria.actions or []):
        call = ToolCall(id=f"c{i}", name=a.name, arguments=a.arguments)
        out += [AssistantMessage(role="assistant", content=None, tool_calls=[call]), env.get_response(call)]
    return out

runs = [(t, SimulationRun(id="b", task_id=t.id, start_time="", end_time="", duration=0.0,
                          termination_reason=TerminationReason.AGENT_STOP, messages=messages(t))) for t in chosen]
kind = EvaluationType.ALL if domain == "airline" else EvaluationType.ENV
def scored():
    for task, run in runs:
        info = evaluate_simulation(run, task, kind, solo_mode=False, domain=domain)
        assert info.db_check.db_match, task.id
    return len(runs)

out = {"resets": rate(resets, seconds)}
total, start = 0, time.perf_counter()
while total == 0 or time.perf_counter() - start < seconds:
    total += calls()
out["tool calls"] = total / calls_elapsed[0]
out["trajectories scored"] = rate(scored, seconds)
print("RESULT " + json.dumps(out))
"""


def measure_tau2(python: str, tau2: Path, domain: str, tasks: list[str] | None, seconds: float) -> dict[str, float]:
    done = subprocess.run(
        [python, "-c", TAU2_SIDE, str(tau2), domain, str(seconds), json.dumps(tasks or [])],
        capture_output=True,
        text=True,
        check=False,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if done.returncode != 0 or line is None:
        raise SystemExit(f"tau2 side failed ({python}):\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(line[len("RESULT ") :])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a few tasks, a short time: a smoke run")
    parser.add_argument("--tau2", type=Path, help="a tau2-bench checkout (its data must include the airline db.json)")
    parser.add_argument("--tau2-python", default=sys.executable, help="the interpreter where tau2 is installed")
    parser.add_argument("--domain", choices=["retail", "airline"], action="append")
    parser.add_argument("--seconds", type=float, default=None, help="time per measure (default 3, --quick 0.2)")
    args = parser.parse_args()
    seconds = args.seconds if args.seconds is not None else (0.2 if args.quick else 3.0)
    tasks = ["0", "1", "2", "5", "7"] if args.quick else None
    print(machine())
    print(f"tasks: {'a few (--quick)' if tasks else 'all'}; {seconds:g} s per measure; one core each")
    if args.tau2 is None:
        print("tau2-bench: not given (--tau2 PATH): envfarm measured alone")
    rows, ratios = [], []
    for domain in args.domain or ["retail", "airline"]:
        ours = measure_envfarm(domain, tasks, seconds)
        theirs = measure_tau2(args.tau2_python, args.tau2, domain, tasks, seconds) if args.tau2 else {}
        label = f"{domain} ({int(ours['tasks'])} tasks, {int(ours['calls'])} calls)"
        for measure in ("resets", "tool calls", "trajectories scored"):
            tau2_rate = theirs.get(measure, float("nan"))
            ratio = ours[measure] / tau2_rate if theirs else float("nan")
            rows.append([label, f"{measure}/s", tau2_rate, ours[measure], ratio])
            if theirs:
                ratios.append(ratio)
        rows.append([label, "new episodes/s", float("nan"), ours["new episodes"], float("nan")])
    print()
    print(table(["domain", "measure", "tau2-bench", "envfarm", "ratio"], rows))
    print()
    resets = [r[3] for r in rows if r[1] == "resets/s"]
    print(target_line("a reset in under a millisecond", min(resets) >= 1000, f"{min(resets):,.0f} resets/s at worst"))
    if ratios:
        scoring = [r[4] for r in rows if r[1] == "trajectories scored/s"]
        detail = (
            f"{min(scoring):.1f}x at worst (tool calls alone: {min(r[4] for r in rows if r[1] == 'tool calls/s'):.2f}x)"
        )
        print(target_line("scoring faster than tau2-bench's own", min(scoring) >= 1, detail))
    return 0


if __name__ == "__main__":
    sys.exit(main())
