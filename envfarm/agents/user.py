"""The simulated user of conversation mode: an LLM (or a script) playing the person in the scenario.

It knows the scenario's task (its goal) and the scenario's optional ``user`` section (persona, what it
knows, what it says only when asked, what it does not know): :class:`UserBrief` holds exactly those,
taken from the operator's view of the scenario, so the checks, the oracle and the state never reach it.
It sees the agent's messages to it (never the tool calls or their results) and ends the conversation with
:data:`~envfarm.agents.prompts.STOP` when its goal is met or cannot be.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from envfarm.agents.prompts import STOP, USER_KICKOFF, user_system_prompt
from envfarm.generator.llm.chat import ChatLLM, ChatRequest, Message
from envfarm.generator.llm.request import Usage

USER_FIELDS = ("persona", "instructions", "knows", "only_when_asked", "does_not_know")


@dataclass(frozen=True)
class UserBrief:
    """What the simulated user knows: the task and the scenario's user section, nothing else."""

    task: str
    user: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_scenario(cls, scenario: dict[str, Any]) -> UserBrief:
        """From a whole scenario (``GET /v1/envs/{env}/scenarios/{id}``): only ``task`` and ``user`` are read."""
        section = scenario.get("user") or {}
        return cls(str(scenario["task"]), {k: str(section[k]) for k in USER_FIELDS if section.get(k)})

    def system_prompt(self) -> str:
        return user_system_prompt(self.task, self.user)


@dataclass
class UserTurn:
    """What the user said; ``stop`` when it holds the stop signal (the conversation ends)."""

    text: str
    stop: bool
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0


def said_to_user(messages: list[Message]) -> list[Message]:
    """The conversation as the user sees it: their own messages and the agent's messages without tool calls."""
    out: list[Message] = []
    for m in messages:
        if m["role"] == "user" or (m["role"] == "assistant" and m.get("content") and not m.get("tool_calls")):
            out.append({"role": m["role"], "content": m.get("content")})
    return out


class User(Protocol):
    async def __call__(self, messages: list[Message]) -> UserTurn: ...


class SimulatedUser:
    """An LLM playing the user. To the model, the roles are turned around: the agent is its ``user``."""

    def __init__(
        self,
        brief: UserBrief,
        llm: ChatLLM,
        *,
        sample: int = 0,
        max_tokens: int = 1024,
        temperature: float = 0.0,
        stage: str = "user",
    ) -> None:
        self.brief = brief
        self.llm = llm
        self.sample = sample
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.stage = stage
        self.system = brief.system_prompt()

    async def __call__(self, messages: list[Message]) -> UserTurn:
        turns: list[Message] = [{"role": "user", "content": USER_KICKOFF}]
        for m in said_to_user(messages):
            turns.append({"role": "assistant" if m["role"] == "user" else "user", "content": m["content"]})
        request = ChatRequest(
            stage=self.stage,
            system=self.system,
            messages=tuple(turns),
            max_tokens=self.max_tokens,
            temperature=self.temperature,
            sample=self.sample,
        )
        answer = await self.llm.chat(request)
        text = answer.text.strip()
        return UserTurn(text, STOP in text, answer.usage, answer.cost_usd)


class CallableUser:
    """A scripted user: ``fn(messages, brief) -> str`` (sync or async), ``messages`` as the user sees them."""

    def __init__(self, fn: Callable[[list[Message], UserBrief], Any], brief: UserBrief) -> None:
        self.fn = fn
        self.brief = brief

    async def __call__(self, messages: list[Message]) -> UserTurn:
        value = self.fn(said_to_user(messages), self.brief)
        if inspect.isawaitable(value):
            value = await value
        if isinstance(value, UserTurn):
            return value
        text = str(value or STOP).strip()
        return UserTurn(text, STOP in text)
