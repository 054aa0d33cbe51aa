"""Chat turns with tools (``envfarm.generator.llm.chat``) against the fake server: the real ``anthropic`` SDK
and real ``httpx``, each API's wire format both ways, and the cache, retries, cap, ledger, budget and replay."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_server import FakeLLMServer

from envfarm.generator.llm import BudgetExceeded, LLMError, ReplayMiss
from envfarm.generator.llm.chat import (
    AnthropicChatProvider,
    ChatLLM,
    ChatReplayProvider,
    ChatRequest,
    Message,
    OpenAIChatProvider,
    ToolDef,
    anthropic_messages,
    make_chat_provider,
)

TOOLS: tuple[ToolDef, ...] = (
    {
        "name": "find_member",
        "description": "Find members by name.",
        "input_schema": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
)
CONVERSATION: tuple[Message, ...] = (
    {"role": "user", "content": "Find Ada, please."},
    {
        "role": "assistant",
        "content": "Looking.",
        "tool_calls": [
            {"id": "c1", "name": "find_member", "arguments": {"query": "Ada"}, "raw_arguments": '{"query": "Ada"}'},
            {"id": "c2", "name": "find_member", "arguments": None, "raw_arguments": '{"query": '},
        ],
    },
    {"role": "tool", "tool_call_id": "c1", "content": '[{"id": 1}]', "is_error": False},
    {
        "role": "tool",
        "tool_call_id": "c2",
        "content": "find_member: the arguments are not valid JSON",
        "is_error": True,
    },
)


def turn(messages: tuple[Message, ...] = CONVERSATION, **kw: Any) -> ChatRequest:
    return ChatRequest(stage="agent", system="You help library members.", messages=messages, tools=TOOLS, **kw)


SCRIPT = [
    {
        "side": "agent",
        "match": ["Find Ada"],
        "turns": [{"text": "Here she is.", "tool_calls": [{"name": "find_member", "arguments": {"query": "Ada O"}}]}],
        "then": {"text": "Ada is member 1."},
        "usage": {"input_tokens": 1000, "output_tokens": 100},
    }
]


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    fake_server.reset(SCRIPT)
    return fake_server


@pytest.fixture(params=["anthropic", "openai"])
async def provider(request: pytest.FixtureRequest, fake: FakeLLMServer) -> AsyncIterator[Any]:
    p: Any
    if request.param == "anthropic":
        p = AnthropicChatProvider("claude-sonnet-4-6", base_url=fake.url)
    else:
        p = OpenAIChatProvider("qwen3-32b", base_url=fake.openai_url, price_in=1, price_out=2)
    yield p
    await p.aclose()


async def test_a_turn_with_tool_calls_and_results_goes_out_and_comes_back(provider: Any, fake: FakeLLMServer) -> None:
    answer = await ChatLLM(provider, cache_dir=None).chat(turn())
    assert answer.text == "Ada is member 1." and answer.tool_calls == [] and answer.stop_reason == "end_turn"
    assert answer.usage.input_tokens + answer.usage.cache_read_tokens == 1000 and answer.cost_usd > 0
    body = fake.last()["body"]  # type: ignore[index]
    if provider.name == "anthropic":
        assert body["system"][0]["text"] == "You help library members."
        assert body["tools"][0] == {k: TOOLS[0][k] for k in ("name", "description", "input_schema")}  # type: ignore[literal-required]
        user, assistant, results = body["messages"]
        assert user == {"role": "user", "content": [{"type": "text", "text": "Find Ada, please."}]}
        assert assistant["content"] == [
            {"type": "text", "text": "Looking."},
            {"type": "tool_use", "id": "c1", "name": "find_member", "input": {"query": "Ada"}},
            {"type": "tool_use", "id": "c2", "name": "find_member", "input": {}},
        ]
        assert results["role"] == "user"  # both results in one user turn, the error flagged
        assert [(b["tool_use_id"], b.get("is_error", False)) for b in results["content"]] == [
            ("c1", False),
            ("c2", True),
        ]
        assert body["temperature"] == 0.0
    else:
        system, user, assistant, first, second = body["messages"]
        assert system == {"role": "system", "content": "You help library members."}
        assert assistant["tool_calls"][1] == {
            "id": "c2",
            "type": "function",
            "function": {"name": "find_member", "arguments": '{"query": '},  # sent back exactly as the model wrote it
        }
        assert first == {"role": "tool", "tool_call_id": "c1", "content": '[{"id": 1}]'}
        assert second["tool_call_id"] == "c2"
        assert body["tools"][0]["function"]["parameters"] == TOOLS[0]["input_schema"]
        assert body["max_tokens"] == 4096 and "tool_choice" not in body


async def test_tool_calls_come_back_in_the_neutral_format(provider: Any, fake: FakeLLMServer) -> None:
    answer = await ChatLLM(provider, cache_dir=None).chat(turn(CONVERSATION[:1]))
    assert answer.text == "Here she is." and answer.stop_reason == "tool_use"
    [call] = answer.tool_calls
    assert call["name"] == "find_member" and call["arguments"] == {"query": "Ada O"}
    assert json.loads(call["raw_arguments"]) == {"query": "Ada O"} and call["id"]
    assert answer.message() == {"role": "assistant", "content": "Here she is.", "tool_calls": [call]}


async def test_broken_json_arguments_are_kept_as_sent(fake: FakeLLMServer) -> None:
    fake.reset([{"side": "agent", "turns": [{"tool_calls": [{"name": "find_member", "raw_arguments": "{'q': 1"}]}]}])
    provider = OpenAIChatProvider("m", base_url=fake.openai_url)
    [call] = (await ChatLLM(provider, cache_dir=None).chat(turn(CONVERSATION[:1]))).tool_calls
    assert call["arguments"] is None and call["raw_arguments"] == "{'q': 1"
    await provider.aclose()


async def test_answers_are_cached_by_content_and_trials_are_cached_apart(
    provider: Any, fake: FakeLLMServer, tmp_path: Path
) -> None:
    llm = ChatLLM(provider, cache_dir=tmp_path)
    first = await llm.chat(turn())
    again = await ChatLLM(provider, cache_dir=tmp_path).chat(turn())  # a resumed run: the same folder
    assert fake.stats()["requests"] == 1 and again.cached and not first.cached
    assert (again.text, again.tool_calls, again.usage, again.cost_usd) == (
        first.text,
        first.tool_calls,
        first.usage,
        first.cost_usd,
    )
    await llm.chat(turn(sample=1))  # another trial of the same episode: its own answer
    assert fake.stats()["requests"] == 2
    totals = llm.ledger.stages["agent"]
    assert (totals.calls, totals.cached) == (2, 0)
    entry = json.loads(next(tmp_path.glob("*/*.json")).read_text())
    assert entry["request"]["kind"] == "chat" and entry["response"]["text"] == "Ada is member 1."


async def test_identical_turns_in_flight_share_one_call(fake: FakeLLMServer, tmp_path: Path) -> None:
    provider = OpenAIChatProvider("m", base_url=fake.openai_url)
    llm = ChatLLM(provider, cache_dir=tmp_path)
    answers = await asyncio.gather(*(llm.chat(turn()) for _ in range(5)))
    assert fake.stats()["requests"] == 1 and sum(a.cached for a in answers) == 4
    uncached = ChatLLM(provider, cache_dir=None)  # RL rollouts: every call is a sample
    await asyncio.gather(*(uncached.chat(turn()) for _ in range(3)))
    assert fake.stats()["requests"] == 4
    await provider.aclose()


@pytest.mark.parametrize("status", [429, 529])
async def test_overloads_are_retried_honouring_retry_after(status: int, fake: FakeLLMServer) -> None:
    fake.add_faults([{"status": status, "count": 2, "retry_after": 3}])
    provider = AnthropicChatProvider(base_url=fake.url)
    llm = ChatLLM(provider, cache_dir=None)
    delays: list[float] = []

    async def sleep(seconds: float) -> None:
        delays.append(seconds)

    llm.sleep = sleep
    answer = await llm.chat(turn())
    assert answer.text == "Ada is member 1." and delays == [3, 3]
    assert llm.ledger.stages["agent"].retries == 2 and fake.stats()["faults"] == 2
    await provider.aclose()


async def test_concurrency_is_capped(fake: FakeLLMServer) -> None:
    provider = OpenAIChatProvider("m", base_url=fake.openai_url)
    llm = ChatLLM(provider, cache_dir=None, concurrency=2)
    await asyncio.gather(*(llm.chat(turn(sample=i)) for i in range(8)))
    assert fake.stats()["answered"] == 8 and fake.stats()["max_in_flight"] <= 2
    await provider.aclose()


async def test_the_budget_stops_the_next_call(fake: FakeLLMServer, tmp_path: Path) -> None:
    provider = AnthropicChatProvider("claude-sonnet-4-6", base_url=fake.url)
    llm = ChatLLM(provider, cache_dir=tmp_path, budget_usd=0.001)
    await llm.chat(turn())
    with pytest.raises(BudgetExceeded):
        await llm.chat(turn(sample=1))
    assert (await llm.chat(turn())).cached  # a cached answer costs nothing: still served
    assert fake.stats()["requests"] == 1
    await provider.aclose()


async def test_a_recording_replays_every_turn_it_holds(fake: FakeLLMServer, tmp_path: Path) -> None:
    provider = OpenAIChatProvider("qwen", base_url=fake.openai_url)
    recorded = await ChatLLM(provider, cache_dir=tmp_path).chat(turn())
    replay = make_chat_provider("replay", recording=tmp_path)
    assert isinstance(replay, ChatReplayProvider) and len(replay) == 1 and replay.model == "qwen"
    again = await ChatLLM(replay, cache_dir=None).chat(turn())
    assert again.text == recorded.text and again.cached
    with pytest.raises(ReplayMiss):
        await replay.chat(turn(sample=3))
    await provider.aclose()


def test_providers_by_name_and_their_errors(tmp_path: Path) -> None:
    assert make_chat_provider("anthropic", "claude-haiku-4-5").model == "claude-haiku-4-5"
    assert make_chat_provider("openai", "m", base_url="http://127.0.0.1:9/v1").name == "openai"
    with pytest.raises(LLMError, match="unknown LLM provider 'grok'"):
        make_chat_provider("grok")
    with pytest.raises(LLMError, match="needs a recording"):
        make_chat_provider("replay")


def test_anthropic_turns_keep_thinking_blocks_first_and_merge_roles() -> None:
    thinking = {"type": "thinking", "thinking": "Ada first.", "signature": "sig"}
    messages: list[Message] = [
        {"role": "system", "content": "ignored: the system prompt goes apart"},
        {"role": "user", "content": "Find Ada."},
        {
            "role": "assistant",
            "content": None,
            "reasoning": [thinking],
            "tool_calls": [CONVERSATION[1]["tool_calls"][0]],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "", "is_error": False},
        {"role": "user", "content": "And Ben?"},
    ]
    user, assistant, results = anthropic_messages(messages)
    assert assistant["content"][0] == thinking and assistant["content"][1]["type"] == "tool_use"
    assert [b["type"] for b in results["content"]] == ["tool_result", "text"]  # results first, then the user's words
    assert results["content"][0]["content"] == []
    assert user["content"] == [{"type": "text", "text": "Find Ada."}]
