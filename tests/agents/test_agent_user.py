"""The simulated user knows the scenario's task and user section, nothing else; the agent sees only what the
user says; the conversation goes to the scorer for checks on what the agent said."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fakes.llm_server import FakeLLMServer

from envfarm.agents.prompts import STOP
from envfarm.agents.run import RunConfig, run
from envfarm.core.environments import Environment, load_catalog
from envfarm.core.scenarios import Scenario

TASK = "How many notes do I have in my 'home' folder? And please file a note 'dentist' there."
USER = {
    "persona": "Rosa Diaz, a nurse between two shifts: short, friendly messages.",
    "instructions": "Ask about the count first, then about the new note.",
    "knows": "The folder is called 'home'.",
    "only_when_asked": "The note's text: 'call at 9'.",
    "does_not_know": "How many notes the folder holds.",
}
CHECKS = [
    {
        "id": "dentist-filed",
        "description": "a note titled dentist sits in the home folder",
        "code": "def check(initial, final):\n    return any(n['title'] == 'dentist' and n['folder_id'] == 2"
        " for n in final['notes'])",
    },
    {"id": "told-count", "description": "the agent told the user the count", "kind": "said", "text": "1 note"},
]
FINAL = "You had 1 note in 'home'; 'dentist' is filed there now."


def scenario() -> Scenario:
    base = load_catalog(["notes"])["notes"].scenarios["file-two"]
    return Scenario.model_validate(
        {
            "id": "count-and-file",
            "task": TASK,
            "state": base.state,
            "clock": base.clock,
            "seed": 5,
            "checks": CHECKS,
            "oracle": [
                {"tool": "list_notes", "arguments": {"folder": "home"}},
                {"tool": "add_note", "arguments": {"folder": "home", "title": "dentist", "body": "call at 9"}},
            ],
            "user": USER,
        }
    )


@pytest.fixture(scope="module")
def conversation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """One conversation-mode episode of the scenario above (in-process farm), and every model request made."""
    notes: Environment = load_catalog(["notes"])["notes"]
    notes.add_scenario(scenario())
    oracle = scenario().oracle
    agent = [
        {"tool_calls": [{"name": oracle[0].tool, "arguments": oracle[0].arguments}]},
        {"text": "What should the note say?"},
        {"tool_calls": [{"name": oracle[1].tool, "arguments": oracle[1].arguments}]},
        {"text": FINAL},
    ]
    user = [{"text": TASK}, {"text": "It should say: call at 9."}, {"text": f"Great, thanks! {STOP}"}]
    script = [
        {"side": "agent", "match": [TASK], "turns": agent},
        {"side": "user", "match": [TASK], "turns": user},
    ]
    out = tmp_path_factory.mktemp("user-run")
    with FakeLLMServer(script) as fake, pytest.MonkeyPatch.context() as mp:
        mp.setenv("ANTHROPIC_API_KEY", "test-key")
        config = RunConfig(
            out=out,
            envs=["notes"],
            scenarios=["count-and-file"],
            model="scripted-agent",
            provider="openai",
            base_url=fake.openai_url,
            mode="conversation",
            user_provider="anthropic",
            user_model="scripted-user",
            user_base_url=fake.url,
            sandbox_workers=1,
        )
        asyncio.run(run(config, catalog={"notes": notes}))
        requests = fake.requests()
    [line] = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    yield line, requests


def test_the_user_is_told_the_task_and_user_section_and_nothing_else(
    conversation: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    line, requests = conversation
    user_side = [json.dumps(r["body"]) for r in requests if not r["body"].get("tools")]
    agent_side = [json.dumps(r["body"]) for r in requests if r["body"].get("tools")]
    assert len(user_side) == 3 and len(agent_side) == 4
    for body in user_side:
        for text in [TASK, *USER.values(), STOP]:
            assert json.dumps(text)[1:-1] in body
        for secret in ["dentist-filed", "told-count", "folder_id", "oracle", CHECKS[0]["description"], "1 note"]:
            assert secret not in body or (secret == "1 note" and FINAL in body)  # the agent's last words reach it
        assert "list_notes" not in body and "add_note" not in body  # no tool calls, no tool results
    for body in agent_side:  # the agent sees what the user says, never who they are told to be
        assert USER["persona"] not in body and USER["only_when_asked"] not in body
    said = [m["content"] for m in line["messages"] if m["role"] == "user"]
    assert said == [TASK, "It should say: call at 9.", f"Great, thanks! {STOP}"]
    assert (line["ended"], line["turns"], line["user_model"]) == ("user_done", 4, "scripted-user")
    assert line["score"]["checks"][0] == {"id": "dentist-filed", "passed": True, "error": None}


def test_a_said_check_passes_when_the_agent_said_it(
    conversation: tuple[dict[str, Any], list[dict[str, Any]]],
) -> None:
    line, _ = conversation
    assert FINAL in [m["content"] for m in line["messages"]]
    assert line["score"]["checks"][1] == {"id": "told-count", "passed": True, "error": None}
    assert line["score"]["success"] is True
