"""tau2-bench's own answers, replayed on envfarm: every call's text and every verdict must agree.

``fixtures/tau2/<domain>.jsonl.gz`` holds what tau2-bench's own code (its environment and its
evaluator, no LLM) computed for trajectories built from every task's gold actions: the gold
actions, each write dropped in turn, one argument of one write changed to another value that still
succeeds, a read added before and after, a closing message for the tasks whose reward includes
COMMUNICATE, and hand-made trajectories aimed at tau2's quirks. ``scripts/tau2_expectations.py``
made them (``meta.json``: from which commit, with which Python); they are facts about tau2's code and
data.

Each case is replayed on an envfarm episode and scored by envfarm's scorer. It agrees when every
tool output is tau2's text, byte for byte, with the same error flag; when the final database, dumped
as tau2's ``db.json``, hashes as tau2's did; and when the verdict is tau2's: the ``db`` check passes
exactly when tau2's database matched the gold one, and ``success`` is exactly tau2's reward (airline:
DB times COMMUNICATE; retail: the DB part, its NL assertions being an LLM's to judge).
"""

from __future__ import annotations

import gzip
import json
import os
from pathlib import Path
from typing import Any

import pytest

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode
from envfarm.core.state import StateView
from envfarm.servers.tau2_airline import tau2db as airline_db
from envfarm.servers.tau2_retail import tau2db as retail_db
from envfarm.validators.checks import CheckOutcome
from envfarm.validators.replay import outcome
from envfarm.validators.scoring import score
from envfarm.validators.trajectories import read_trajectory

FIXTURES = Path(__file__).parent / "fixtures" / "tau2"
META = json.loads((FIXTURES / "meta.json").read_text(encoding="utf-8"))
DOMAINS = ["retail", "airline"]
ENVS = {d: load_environment(f"tau2_{d}") for d in DOMAINS}
TAU2DB = {"retail": retail_db, "airline": airline_db}


def cases(domain: str) -> list[dict[str, Any]]:
    with gzip.open(FIXTURES / f"{domain}.jsonl.gz", "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


CASES = {d: cases(d) for d in DOMAINS}


class NoCodeChecks:
    """tau2's scenarios have no code checks: nothing runs in the sandbox."""

    async def run_checks(
        self, checks: list[tuple[str, str]], initial: StateView, final: StateView
    ) -> list[CheckOutcome]:
        raise AssertionError(f"a tau2 scenario has code checks: {checks}")


async def disagreements(env: Environment, domain: str, case: dict[str, Any]) -> list[str]:
    """What envfarm does otherwise than tau2 did on this case (nothing, when they agree)."""
    scenario = env.scenarios[case["task"]]
    episode = Episode(env, scenario, "fidelity")
    found = []
    try:
        for i, (call, expected) in enumerate(zip(case["calls"], case["outputs"], strict=True)):
            result = episode.call(call["tool"], call["arguments"])
            if result.text() != expected["content"] or result.ok == expected["error"]:
                found.append(
                    f"step {i} {call['tool']}({json.dumps(call['arguments'])[:200]}): tau2 answered "
                    f"{'an error ' if expected['error'] else ''}{expected['content'][:300]!r}, envfarm "
                    f"{'an error ' if not result.ok else ''}{result.text()[:300]!r}"
                )
        done = outcome(episode)
    finally:
        episode.close()
    if TAU2DB[domain].db_hash(done.final) != case["db_hash"]:
        found.append("the final database is not tau2's (its db.json hash differs)")
    scored = await score(env, scenario, done, NoCodeChecks(), messages=case.get("messages", []))
    db = next(c for c in scored.checks if c.id == "db")
    if db.passed != case["db_match"]:
        found.append(f"db check {db.passed}, tau2's DB match {case['db_match']}")
    if scored.success != (case["reward"] == 1.0):
        found.append(f"success {scored.success}, tau2's reward {case['reward']}")
    return found


def replayed(domain: str) -> list[dict[str, Any]]:
    """The cases replayed: all with ENVFARM_TAU2_FIDELITY=all (about 6 minutes here), else every hand-made
    case and every case of one task in ten (all kinds of case, about half a minute); docs/benchmarks.md has the
    full run's numbers."""
    if os.environ.get("ENVFARM_TAU2_FIDELITY") == "all":
        return CASES[domain]
    tasks = sorted({c["task"] for c in CASES[domain]}, key=lambda t: (len(t), t))
    sampled = set(tasks[::10])
    return [c for c in CASES[domain] if c["task"] in sampled or c["case"].startswith("quirk:")]


@pytest.mark.parametrize("domain", DOMAINS)
async def test_every_case_agrees_with_tau2(domain: str) -> None:
    env = ENVS[domain]
    failed = {}
    cases = replayed(domain)
    for case in cases:
        problems = await disagreements(env, domain, case)
        if problems:
            failed[f"task {case['task']} {case['case']}"] = problems
    agreeing = len(cases) - len(failed)
    print(f"\n{domain}: {agreeing}/{len(cases)} cases agree with tau2-bench")
    detail = "\n".join(f"{name}: {'; '.join(p)}" for name, p in list(failed.items())[:10])
    assert not failed, f"{domain}: {agreeing}/{len(cases)} cases agree with tau2-bench\n{detail}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_cases_cover_every_task_and_every_tool(domain: str) -> None:
    env = ENVS[domain]
    assert {c["task"] for c in CASES[domain]} == set(env.scenarios)
    assert META[domain]["cases"] == len(CASES[domain])
    assert {c["tool"] for case in CASES[domain] for c in case["calls"]} == set(env.tools)
    kinds = {c["case"].split("-")[0] for c in CASES[domain]}
    assert {"gold", "drop", "change", "read", "quirk:modify" if domain == "retail" else "quirk:cancel"} <= kinds


@pytest.mark.parametrize("domain", DOMAINS)
def test_the_initial_state_is_tau2s_database(domain: str) -> None:
    env = ENVS[domain]
    assert TAU2DB[domain].db_hash(env.initial_view(sorted(env.scenarios)[0])) == META[domain]["initial_db_hash"]


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_oracle_is_the_tasks_gold_actions_with_tau2s_refusals_marked(domain: str) -> None:
    env = ENVS[domain]
    for case in CASES[domain]:
        if case["case"] != "gold":
            continue
        oracle = env.scenarios[case["task"]].oracle
        assert [{"tool": c.tool, "arguments": c.arguments} for c in oracle] == case["calls"]
        assert [c.refused for c in oracle] == [o["error"] for o in case["outputs"]], case["task"]


def as_openai(case: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": "policy"}, {"role": "user", "content": "Hi."}]
    for i, (call, out) in enumerate(zip(case["calls"], case["outputs"], strict=True)):
        function = {"name": call["tool"], "arguments": json.dumps(call["arguments"])}
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": f"c{i}", "type": "function", "function": function}],
            }
        )
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": out["content"]})
    return messages + [{"role": "assistant", "content": m["content"]} for m in case["messages"]]


def as_anthropic(case: dict[str, Any]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = [{"role": "user", "content": "Hi."}]
    for i, (call, out) in enumerate(zip(case["calls"], case["outputs"], strict=True)):
        use = {"type": "tool_use", "id": f"t{i}", "name": call["tool"], "input": call["arguments"]}
        messages.append({"role": "assistant", "content": [{"type": "text", "text": "One moment."}, use]})
        result = {"type": "tool_result", "tool_use_id": f"t{i}", "content": out["content"], "is_error": out["error"]}
        messages.append({"role": "user", "content": [result]})
    said = [{"type": "text", "text": m["content"]} for m in case["messages"]]
    return [*messages, {"role": "assistant", "content": said}]


def as_tau2(case: dict[str, Any]) -> list[dict[str, Any]]:
    """tau2-bench's own simulation messages."""
    messages: list[dict[str, Any]] = []
    for i, (call, out) in enumerate(zip(case["calls"], case["outputs"], strict=True)):
        tool_call = {"id": f"call_{i}", "name": call["tool"], "arguments": call["arguments"], "requestor": "assistant"}
        messages.append({"role": "assistant", "content": None, "tool_calls": [tool_call]})
        messages.append({"role": "tool", "id": f"call_{i}", "content": out["content"], "error": out["error"]})
    return messages + [{"role": "assistant", "content": m["content"]} for m in case["messages"]]


SAID = [(c["task"], c["case"], c) for c in CASES["airline"] if "messages" in c]


@pytest.mark.parametrize("shape", [as_openai, as_anthropic, as_tau2])
@pytest.mark.parametrize(("task", "name", "case"), SAID, ids=[f"{t}-{n}" for t, n, _ in SAID])
async def test_what_the_agent_said_is_judged_from_every_message_format(shape, task, name, case) -> None:  # type: ignore[no-untyped-def]
    env = ENVS["airline"]
    scenario = env.scenarios[task]
    read = read_trajectory(shape(case))
    assert [{"tool": c.tool, "arguments": c.arguments} for c in read.calls] == case["calls"]
    episode = Episode(env, scenario, "said")
    for call in read.calls:
        episode.call(call.tool, call.arguments)
    scored = await score(env, scenario, outcome(episode), NoCodeChecks(), messages=read.messages)
    episode.close()
    assert scored.success == (case["reward"] == 1.0)
    said = [c.passed for c in scored.checks if c.id.startswith("said-")]
    assert said and all(said) == (name == "said-all")
