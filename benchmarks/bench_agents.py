"""The agent harness's own cost: agent turns and episodes per second with 1, 16 and 128 episodes in flight,
and the harness's time per turn, with a model that takes no time.

The farm is a real ``envfarm serve library`` subprocess on 127.0.0.1. This process is the harness: the loop
of ``envfarm run`` (``envfarm.agents.rollout``) opening episodes, reaching tools over each episode's MCP
endpoint with the MCP SDK client, scoring the live state and recording everything. The model is
zero-latency:

- ``function``: a Python function playing each scenario's oracle, one tool call a turn, then a final
  message: what the harness costs with no model at all;
- ``llm layer``: the same answers from the fake OpenAI-compatible server (tests/fakes/llm_server.py) in its
  own process, through the LLM layer (``ChatLLM``, ``httpx``): what ``envfarm run --provider openai`` costs
  besides the model's own time;
- ``bare client``: the same tool calls made directly with ``envfarm.client`` (no loop, no messages), to
  tell the loop's own cost from the MCP SDK client's and HTTP's.

"Harness CPU" is this process's CPU time per agent turn (``time.process_time``): everything the harness
does, the MCP and HTTP clients included, the model's time excluded (the function takes none; the fake
server's CPU is in its own process). "Farm CPU" is the farm process's, its sandbox workers included.

Usage: python benchmarks/bench_agents.py [--quick] [--seconds 10] [--concurrency 1,16,128]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # the fake model server lives under tests/
sys.path.insert(0, str(REPO / "benchmarks"))

from processes import Server, children, cpu_seconds, free_port, start_farm, start_server  # noqa: E402
from report import machine, percentile, table, target_line  # noqa: E402

from envfarm.agents.policy import LLMPolicy, openai_llm  # noqa: E402
from envfarm.agents.rollout import Rollout, rollout  # noqa: E402
from envfarm.client import AsyncFarm  # noqa: E402
from envfarm.core.environments import Environment, load_environment  # noqa: E402
from envfarm.core.scenarios import Scenario  # noqa: E402
from tests.fakes.agent_scripts import oracle_agent  # noqa: E402

ENV = "library"
TARGET_MS = 2.0


@dataclass
class Level:
    mode: str
    in_flight: int
    episodes: int
    turns: int
    seconds: float
    harness_cpu: float
    farm_cpu: float
    latencies: list[float]
    success: int
    errors: int

    def row(self) -> list[Any]:
        return [
            self.mode,
            self.in_flight,
            self.episodes,
            self.turns,
            self.episodes / self.seconds,
            self.turns / self.seconds,
            1000 * self.harness_cpu / max(1, self.turns),
            1000 * self.farm_cpu / max(1, self.turns),
            1000 * percentile(sorted(self.latencies), 50),
            f"{self.success}/{self.episodes}",
        ]


def oracle_function(scenario: Scenario) -> Callable[[list[Any], list[Any]], Any]:
    """A zero-latency policy: the oracle, one call a turn, then a final message."""
    calls = [{"name": c.tool, "arguments": c.arguments} for c in scenario.oracle]

    def policy(messages: list[Any], tools: list[Any]) -> Any:
        done = sum(1 for m in messages if m["role"] == "assistant")
        return [calls[done]] if done < len(calls) else "Done."

    return policy


def farm_cpu(server: Server) -> float:
    total = cpu_seconds(server.pid)
    for pid in children(server.pid):
        with contextlib.suppress(OSError):  # a sandbox worker replaced meanwhile
            total += cpu_seconds(pid)
    return total


async def bare(farm: AsyncFarm, scenario: Scenario) -> tuple[int, bool]:
    """The same requests with no agent loop: open, list tools, the oracle's calls, score, delete."""
    async with farm.episode(ENV, scenario.id) as episode:
        await episode.tools("anthropic")
        for call in scenario.oracle:
            await episode.call(call.tool, call.arguments)
        score = await episode.score(messages=[])
    return len(scenario.oracle) + 1, bool(score["success"])


async def measure(
    mode: str, env: Environment, server: Server, in_flight: int, seconds: float, llm_url: str | None
) -> Level:
    scenarios = list(env.scenarios.values())
    llm_policy = LLMPolicy(openai_llm(llm_url, "fake", concurrency=1024)) if llm_url else None
    latencies: list[float] = []
    counts = {"episodes": 0, "turns": 0, "success": 0, "errors": 0}
    async with AsyncFarm(server.url, timeout=600) as farm:
        await farm.manifest(ENV)
        deadline = time.perf_counter() + seconds

        async def worker(n: int) -> None:
            i = n
            while time.perf_counter() < deadline:
                scenario = scenarios[i % len(scenarios)]
                i += in_flight
                began = time.perf_counter()
                if mode == "bare client":
                    turns, ok = await bare(farm, scenario)
                    errors = 0
                else:
                    policy = llm_policy if llm_policy is not None else oracle_function(scenario)
                    done: Rollout = await rollout(farm, ENV, scenario.id, policy)
                    turns, ok, errors = done.turns, done.success, int(done.ended == "error")
                latencies.append(time.perf_counter() - began)
                counts["episodes"] += 1
                counts["turns"] += turns
                counts["success"] += ok
                counts["errors"] += errors

        cpu, farm_before, began = time.process_time(), farm_cpu(server), time.perf_counter()
        await asyncio.gather(*(worker(n) for n in range(in_flight)))
        elapsed = time.perf_counter() - began
        harness, farm_used = time.process_time() - cpu, farm_cpu(server) - farm_before
    if llm_policy is not None:
        await llm_policy.aclose()
    return Level(mode, in_flight, counts["episodes"], counts["turns"], elapsed, harness, farm_used, latencies,
                 counts["success"], counts["errors"])  # fmt: skip


def start_fake_model(env: Environment, folder: Path) -> Server:
    """The fake OpenAI-compatible server in its own process, playing every scenario's oracle."""
    script = folder / "script.json"
    script.write_text(json.dumps({"entries": oracle_agent(env.scenarios.values(), per_turn=1)}))
    port = free_port()
    cmd = [sys.executable, "-m", "tests.fakes.llm_server", "--script", str(script), "--port", str(port)]
    return start_server("fake model", cmd, port, "/healthz")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="2 in flight, 0.5 s a level (CI smoke)")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", default="1,16,128")
    args = parser.parse_args()
    levels = [2] if args.quick else [int(c) for c in args.concurrency.split(",")]
    seconds = 0.5 if args.quick else args.seconds
    print(f"# bench_agents: the agent harness on {ENV}, a zero-latency model\n\n{machine()}\n")
    env = load_environment(ENV)
    rows: list[Level] = []
    with tempfile.TemporaryDirectory(prefix="bench-agents-") as tmp:
        server = start_farm(ENV)
        model = start_fake_model(env, Path(tmp))
        try:
            asyncio.run(measure("function", env, server, 1, 0.2, None))  # warm up: imports, first connections
            for in_flight in levels:
                for mode in ("function", "llm layer", "bare client"):
                    llm_url = f"{model.url}/v1" if mode == "llm layer" else None
                    rows.append(asyncio.run(measure(mode, env, server, in_flight, seconds, llm_url)))
        finally:
            model.stop()
            server.stop()
    headers = ["model", "in flight", "episodes", "turns", "episodes/s", "turns/s", "harness CPU ms/turn",
               "farm CPU ms/turn", "p50 episode ms", "success"]  # fmt: skip
    print(table(headers, [r.row() for r in rows]))
    print()
    by = {(r.mode, r.in_flight): r for r in rows}
    low = levels[0]
    ms = {mode: 1000 * by[mode, low].harness_cpu / max(1, by[mode, low].turns) for mode in ("function", "llm layer")}
    own = ms["function"] - 1000 * by["bare client", low].harness_cpu / max(1, by["bare client", low].turns)
    print(
        f"At {low} in flight, per agent turn: the harness {ms['function']:.2f} ms of CPU with a function as the "
        f"model, {ms['llm layer']:.2f} ms through the LLM layer; the loop's own share (over the bare client doing "
        f"the same calls) {own:.2f} ms."
    )
    print()
    most = levels[-1]
    full = by["function", most]
    print(
        target_line(
            f"harness time per turn under {TARGET_MS:g} ms (the model excluded)",
            ms["function"] < TARGET_MS,
            f"{ms['function']:.2f} ms of CPU at {low} in flight, of which the loop's own {own:.2f} ms and the "
            f"MCP SDK and HTTP clients the rest",
        )
    )
    print(
        target_line(
            f"{most} episodes in flight on {machine().split(' ')[0]} cores, every one scored, none broken",
            full.errors == 0 and full.episodes >= most and full.success == full.episodes,
            f"{full.episodes} episodes, {full.success} successes, {full.errors} errors, "
            f"{full.episodes / full.seconds:.1f} episodes/s, {full.turns / full.seconds:.0f} turns/s",
        )
    )


if __name__ == "__main__":
    main()
