"""The agent's side of an episode: a policy reads the conversation and the tools and answers one turn.

A policy is anything with ``async __call__(messages, tools) -> AgentTurn``. Two ship:

- :class:`LLMPolicy`: a model behind the LLM layer (:class:`~envfarm.generator.llm.ChatLLM`: Anthropic,
  any OpenAI-compatible server such as vLLM, or a recording), with its cache, retries and ledger;
  :func:`openai_policy` builds one for a policy served at an OpenAI-compatible endpoint, as RL
  frameworks (verl, SkyRL, ROLL, OpenRLHF) serve theirs during training.
- :class:`CallablePolicy`: any Python function, sync or async, taking the same two arguments and
  returning a turn in whatever shape is handy (see :func:`turn_from`).

``messages`` are in the provider-neutral format of :mod:`envfarm.generator.llm.chat` (``messages[0]`` is
the system prompt); ``tools`` are ``{"name", "description", "input_schema"}``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from envfarm.client import read_tool_call
from envfarm.generator.llm.chat import ChatLLM, ChatRequest, Message, OpenAIChatProvider, ToolCall, ToolDef
from envfarm.generator.llm.request import Usage


@dataclass
class AgentTurn:
    """One answer of the agent: text (may be empty) and tool calls (may be none), with what it cost."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    reasoning: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> Message:
        out: Message = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            out["tool_calls"] = list(self.tool_calls)
        if self.reasoning:
            out["reasoning"] = list(self.reasoning)
        return out


class Policy(Protocol):
    async def __call__(self, messages: list[Message], tools: list[ToolDef]) -> AgentTurn: ...


class LLMPolicy:
    """A model through the LLM layer. ``sample`` tells trials of one scenario apart in the cache."""

    def __init__(
        self,
        llm: ChatLLM,
        *,
        stage: str = "agent",
        max_tokens: int = 4096,
        temperature: float = 0.0,
        sample: int = 0,
    ) -> None:
        self.llm = llm
        self.stage = stage
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.sample = sample

    def for_sample(self, sample: int) -> LLMPolicy:
        """The same policy for another trial (its answers are cached apart)."""
        return LLMPolicy(
            self.llm, stage=self.stage, max_tokens=self.max_tokens, temperature=self.temperature, sample=sample
        )

    async def __call__(self, messages: list[Message], tools: list[ToolDef]) -> AgentTurn:
        has_system = bool(messages) and messages[0]["role"] == "system"
        system = (messages[0]["content"] or "") if has_system else ""
        rest = messages[1:] if has_system else messages
        request = ChatRequest(
            stage=self.stage,
            system=system,
            messages=tuple(rest),
            tools=tuple(tools),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            sample=self.sample,
        )
        answer = await self.llm.chat(request)
        return AgentTurn(answer.text, answer.tool_calls, answer.usage, answer.cost_usd, answer.reasoning)

    async def aclose(self) -> None:
        await self.llm.aclose()


def turn_from(value: Any, turn: int = 0) -> AgentTurn:
    """An :class:`AgentTurn` from what a callable policy returned.

    - an ``AgentTurn``, as is;
    - ``None`` or ``""``: nothing more to do (the agent ends);
    - a string: a final message without tool calls;
    - a list: tool calls, each ``{"name", "arguments"}`` (arguments an object or a JSON string), an OpenAI
      tool call or an Anthropic ``tool_use`` block;
    - a dict: an assistant message: OpenAI's (``content``, ``tool_calls``), envfarm's, or Anthropic's
      (``content`` a list of ``text`` and ``tool_use`` blocks), or a single tool call.

    A call that is broken (no name, arguments that are not JSON) is kept as the model wrote it: the loop
    answers it with an error result.
    """
    if isinstance(value, AgentTurn):
        return value
    if value is None or value == "":
        return AgentTurn()
    if isinstance(value, str):
        return AgentTurn(text=value)
    if isinstance(value, list):
        return AgentTurn(tool_calls=[_call(c, turn, i) for i, c in enumerate(value)])
    if isinstance(value, dict):
        if "name" in value or "function" in value or value.get("type") == "tool_use":
            return AgentTurn(tool_calls=[_call(value, turn, 0)])
        content = value.get("content", value.get("text"))
        calls = list(value.get("tool_calls") or [])
        text = ""
        if isinstance(content, list):  # Anthropic content blocks
            text = "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")
            calls += [b for b in content if isinstance(b, dict) and b.get("type") == "tool_use"]
        elif isinstance(content, str):
            text = content
        return AgentTurn(text=text, tool_calls=[_call(c, turn, i) for i, c in enumerate(calls)])
    return AgentTurn(text=str(value))


def _call(raw: Any, turn: int, index: int) -> ToolCall:
    parsed = read_tool_call(raw)
    return {
        "id": parsed.id or f"call_{turn}_{index}",
        "name": parsed.name,
        "arguments": parsed.arguments,
        "raw_arguments": parsed.raw_arguments,
    }


class CallablePolicy:
    """Any function ``(messages, tools) -> turn`` (sync or async) as a policy; see :func:`turn_from`."""

    def __init__(self, fn: Callable[[list[Message], list[ToolDef]], Any]) -> None:
        self.fn = fn

    async def __call__(self, messages: list[Message], tools: list[ToolDef]) -> AgentTurn:
        value = self.fn(messages, tools)
        if inspect.isawaitable(value):
            value = await value
        turn = sum(1 for m in messages if m["role"] == "assistant")
        return turn_from(value, turn)


def as_policy(policy: Policy | Callable[..., Any]) -> Policy:
    """A policy as given, or a function wrapped as one."""
    if isinstance(policy, LLMPolicy | CallablePolicy):
        return policy
    return CallablePolicy(policy)


def openai_llm(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    concurrency: int = 256,
    max_retries: int = 6,
) -> ChatLLM:
    """A model served at an OpenAI-compatible endpoint (vLLM, SGLang ...), uncached: every call is a sample."""
    return ChatLLM(
        OpenAIChatProvider(model, base_url=base_url, api_key=api_key),
        cache_dir=None,
        concurrency=concurrency,
        max_retries=max_retries,
    )


def openai_policy(
    base_url: str,
    model: str,
    *,
    api_key: str | None = None,
    temperature: float = 1.0,
    max_tokens: int = 4096,
    concurrency: int = 256,
) -> LLMPolicy:
    """The policy being trained, at the OpenAI-compatible endpoint the RL framework serves it on."""
    llm = openai_llm(base_url, model, api_key=api_key, concurrency=concurrency)
    return LLMPolicy(llm, max_tokens=max_tokens, temperature=temperature)
