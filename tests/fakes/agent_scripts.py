"""Scripts for the fake LLM server (``tests/fakes/llm_server.py``) that play agents and simulated users.

An agent entry answers every chat request (with tools) whose conversation holds a scenario's task, turn by
turn: the scenario's oracle, ``per_turn`` calls at a time, then a final text. A user entry (requests without
tools) says the task, then stops. Entries are keyed by the task text, so one script plays every scenario of
several environments at once, with any concurrency, trials or resumption.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from envfarm.core.environments import Environment
from envfarm.core.scenarios import Scenario

FINAL = "All done: everything you asked for is taken care of."
STOP_TEXT = "Thank you, that is all. ###STOP###"


def oracle_turns(scenario: Scenario, per_turn: int = 3, final: str | None = FINAL) -> list[dict[str, Any]]:
    """The oracle as agent turns: ``per_turn`` tool calls each (a turn may hold several), then ``final``."""
    calls = [{"name": c.tool, "arguments": c.arguments} for c in scenario.oracle]
    turns: list[dict[str, Any]] = [{"tool_calls": calls[i : i + per_turn]} for i in range(0, len(calls), per_turn)]
    if final is not None:
        turns.append({"text": final})
    return turns


def scenarios_of(envs: Iterable[Environment]) -> list[Scenario]:
    return [s for env in envs for s in env.scenarios.values()]


def by_task_length(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Longest task first: a task that is part of a longer one never catches the longer one's requests."""
    return sorted(entries, key=lambda e: -len(e["match"][0]))


def oracle_agent(scenarios: Iterable[Scenario], per_turn: int = 3) -> list[dict[str, Any]]:
    """An agent that plays each scenario's oracle and then says it is done."""
    return by_task_length([{"side": "agent", "match": [s.task], "turns": oracle_turns(s, per_turn)} for s in scenarios])


def stopping_user(scenarios: Iterable[Scenario]) -> list[dict[str, Any]]:
    """A user who says the task, then stops once the agent answers."""
    return by_task_length(
        [{"side": "user", "match": [s.task], "turns": [{"text": s.task}, {"text": STOP_TEXT}]} for s in scenarios]
    )
