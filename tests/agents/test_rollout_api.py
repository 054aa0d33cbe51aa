"""The library an RL trainer calls: ``rollout()`` with a policy as a Python function or at an OpenAI-compatible
endpoint (how verl, SkyRL, ROLL and OpenRLHF serve the policy), in task and conversation mode."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import FarmProcess, start_farm, stop_farm
from fakes.agent_scripts import oracle_agent
from fakes.llm_server import FakeLLMServer

from envfarm.agents import AgentTurn, Rollout, openai_policy
from envfarm.agents.prompts import STOP
from envfarm.agents.rollout import rollout
from envfarm.client import AsyncFarm
from envfarm.core.environments import load_catalog
from envfarm.generator.llm.chat import Message, ToolDef

SCENARIO = load_catalog(["notes"])["notes"].scenarios["file-two"]


@pytest.fixture(scope="module")
def served() -> Iterator[FarmProcess]:
    running = start_farm("notes", "--sandbox-workers", "1")
    yield running
    stop_farm(running)


def oracle_player(messages: list[Message], tools: list[ToolDef]) -> Any:
    """A policy as a plain function: the oracle one call a turn, as OpenAI tool calls, then a final word."""
    done = sum(1 for m in messages if m["role"] == "assistant")
    if done < len(SCENARIO.oracle):
        call = SCENARIO.oracle[done]
        function = {"name": call.tool, "arguments": json.dumps(call.arguments)}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": f"c{done}", "type": "function", "function": function}],
        }
    return "Filed both."


async def test_a_function_policy_in_task_mode(served: FarmProcess) -> None:
    async with AsyncFarm(served.url) as farm:
        done = await rollout(farm, "notes", "file-two", oracle_player)
    assert isinstance(done, Rollout)
    assert (done.reward, done.success, done.ended, done.turns) == (1.0, True, "agent_done", 4)
    assert [c["tool"] for c in done.calls] == [c.tool for c in SCENARIO.oracle]
    assert done.messages[1] == {"role": "user", "content": SCENARIO.task}
    assert done.messages[-1] == {"role": "assistant", "content": "Filed both."}
    assert [t["name"] for t in done.tools] == ["list_notes", "add_note"]
    assert done.score is not None and done.score["checks"][0]["passed"]


async def test_an_async_policy_that_misbehaves_and_a_farm_given_by_url(served: FarmProcess) -> None:
    async def clumsy(messages: list[Message], tools: list[ToolDef]) -> Any:
        await asyncio.sleep(0)
        turn = sum(1 for m in messages if m["role"] == "assistant")
        if turn == 0:  # an Anthropic-style answer with a broken call and one without a name
            return {
                "content": [
                    {"type": "text", "text": "Trying."},
                    {"type": "tool_use", "id": "t1", "name": "nope", "input": {}},
                ]
            }
        if turn == 1:
            return [{"name": "add_note", "arguments": "{broken"}, {"arguments": {}}]
        return AgentTurn(text="")  # nothing more to say: the agent ends

    done = await rollout(served.url, "notes", "file-two", clumsy, max_turns=5)
    assert done.ended == "agent_done" and done.turns == 3 and not done.success
    assert done.tool_errors == {"unknown_tool": 2, "bad_json": 1}
    assert [c["error_kind"] for c in done.calls] == ["unknown_tool", "bad_json", "unknown_tool"]


async def test_a_policy_served_at_an_openai_compatible_endpoint(served: FarmProcess) -> None:
    with FakeLLMServer({"entries": oracle_agent([SCENARIO])}) as fake:
        policy = openai_policy(fake.openai_url, "policy-step-120", temperature=1.0)
        async with AsyncFarm(served.url) as farm:
            done = await asyncio.gather(*(rollout(farm, "notes", "file-two", policy) for _ in range(4)))
        await policy.aclose()
        assert [d.success for d in done] == [True] * 4
        bodies = [r["body"] for r in fake.requests()]
    assert len(bodies) == 4 * 2  # no cache, no sharing: every rollout samples the policy afresh (2 turns each)
    assert {b["model"] for b in bodies} == {"policy-step-120"} and {b["temperature"] for b in bodies} == {1.0}
    assert done[0].tokens.input_tokens > 0 and done[0].turns == 2


async def test_conversation_mode_with_a_scripted_user(served: FarmProcess) -> None:
    heard: list[list[Message]] = []

    def user(messages: list[Message], brief: Any) -> str:
        heard.append(messages)
        return brief.task if not messages else f"Thanks. {STOP}"

    def agent(messages: list[Message], tools: list[ToolDef]) -> Any:
        return oracle_player(messages[:1] + messages[2:], tools)  # the user's first words stand for the task

    async with AsyncFarm(served.url) as farm:
        done = await rollout(farm, "notes", "file-two", agent, mode="conversation", user=user)
    assert (done.ended, done.success, done.mode) == ("user_done", True, "conversation")
    assert heard[1] == [{"role": "user", "content": SCENARIO.task}, {"role": "assistant", "content": "Filed both."}]
    assert done.messages[-1] == {"role": "user", "content": f"Thanks. {STOP}"}
