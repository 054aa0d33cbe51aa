"""One rollout of (env, scenario) with a policy: the library call an RL trainer makes.

::

    from envfarm.agents import openai_policy
    from envfarm.agents.rollout import rollout
    from envfarm.client import AsyncFarm

    policy = openai_policy("http://127.0.0.1:8001/v1", "my-policy")   # the trainer's vLLM server
    async with AsyncFarm("http://127.0.0.1:8000") as farm:
        done = await rollout(farm, "library", "return-and-pay", policy)
        done.reward, done.success, done.messages, done.calls

The policy may also be any Python function ``(messages, tools) -> turn``
(:func:`envfarm.agents.policy.turn_from` lists what a turn may look like). The episode is opened on the farm,
the agent reaches its tools over the episode's MCP endpoint, and the live state is scored when the episode
ends; the episode is deleted afterwards.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from envfarm.agents.loop import Trace, play
from envfarm.agents.policy import Policy, as_policy
from envfarm.agents.prompts import MODES, Mode, agent_system_prompt
from envfarm.agents.user import CallableUser, SimulatedUser, User, UserBrief
from envfarm.client import AsyncFarm
from envfarm.generator.llm.chat import ChatLLM, Message, ToolDef
from envfarm.generator.llm.request import Usage

UserSpec: TypeAlias = ChatLLM | Callable[[list[Message], UserBrief], Any] | None
"""Who plays the user in conversation mode: an LLM (simulated from the scenario's brief) or a function
``(messages as the user sees them, brief) -> what the user says``."""


@dataclass
class Rollout:
    """One finished episode: the conversation, the tool calls, the score, and what it took."""

    env: str
    scenario: str
    mode: Mode
    episode_id: str
    messages: list[Message]
    tools: list[ToolDef]
    calls: list[dict[str, Any]]
    score: dict[str, Any] | None  # the validator's answer; None when the episode could not be scored
    turns: int
    ended: str
    truncated: bool
    error: str | None
    tool_errors: dict[str, int]
    refusals: dict[str, int]
    tokens: Usage = field(default_factory=Usage)
    user_tokens: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    seconds: float = 0.0

    @property
    def reward(self) -> float:
        return float(self.score["reward"]) if self.score else 0.0

    @property
    def success(self) -> bool:
        return bool(self.score and self.score["success"])


async def rollout(
    farm: AsyncFarm | str,
    env: str,
    scenario: str,
    policy: Policy | Callable[..., Any],
    *,
    mode: Mode = "task",
    user: UserSpec = None,
    max_turns: int = 30,
    sample: int = 0,
    token: str | None = None,
) -> Rollout:
    """Run ``policy`` in a fresh episode of ``scenario`` and score it.

    ``farm`` is a client or a farm's URL (``token`` for its bearer token). In conversation mode ``user``
    plays the person: a :class:`~envfarm.generator.llm.ChatLLM` (told only the scenario's task and user
    section) or a function. ``sample`` tells apart repeated rollouts of one scenario in an LLM cache.
    Once the episode is open, failures of the model or the farm end it with ``ended == "error"`` instead of
    raising; a farm that refuses to open it (an unknown environment or scenario, a full farm) raises
    :class:`~envfarm.client.FarmError`.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if max_turns < 1:
        raise ValueError("max_turns must be at least 1")
    if isinstance(farm, str):
        async with AsyncFarm(farm, token) as client:
            return await rollout(
                client, env, scenario, policy, mode=mode, user=user, max_turns=max_turns, sample=sample
            )
    the_policy = as_policy(policy)
    if sample and hasattr(the_policy, "for_sample"):
        the_policy = the_policy.for_sample(sample)
    simulated: User | None = None
    if mode == "conversation":
        simulated = await make_user(farm, env, scenario, user, sample)
    system = agent_system_prompt(await farm.manifest(env), mode)
    began = time.monotonic()
    async with farm.episode(env, scenario) as episode:
        tools: list[ToolDef] = [
            {"name": t["name"], "description": t["description"], "input_schema": t["input_schema"]}
            for t in await episode.tools("anthropic")
        ]
        trace = await play(
            episode, the_policy, tools, system, mode=mode, task=episode.task, user=simulated, max_turns=max_turns
        )
        score = await score_trace(episode, trace)
        episode_id = episode.id
    return Rollout(
        env=env,
        scenario=scenario,
        mode=mode,
        episode_id=episode_id,
        messages=trace.messages,
        tools=tools,
        calls=trace.calls,
        score=score,
        turns=trace.turns,
        ended=trace.ended,
        truncated=trace.truncated,
        error=trace.error,
        tool_errors=trace.tool_errors(),
        refusals=trace.refusals(),
        tokens=trace.tokens,
        user_tokens=trace.user_tokens,
        cost_usd=trace.cost_usd,
        seconds=time.monotonic() - began,
    )


async def make_user(farm: AsyncFarm, env: str, scenario: str, user: UserSpec, sample: int = 0) -> User:
    """The user of a conversation: the scenario's brief (task and user section only) given to an LLM or a script."""
    if user is None:
        raise ValueError("conversation mode needs a user: a ChatLLM to simulate one, or a function")
    brief = UserBrief.from_scenario(await farm.scenario(env, scenario))
    if isinstance(user, ChatLLM):
        return SimulatedUser(brief, user, sample=sample)
    return CallableUser(user, brief)


async def score_trace(episode: Any, trace: Trace) -> dict[str, Any] | None:
    """Score the live episode (with the conversation, for checks on what the agent said) and note on each
    call the rule that refused it, from the farm's log. None, with the trace's error set, if scoring fails."""
    sent = [c for c in trace.calls if c.pop("sent", False)]
    try:
        score: dict[str, Any] = await episode.score(messages=_for_scoring(trace.messages))
    except Exception as e:  # the farm or the validator failed: the episode is recorded unscored
        trace.ended = "error"
        trace.error = (trace.error + "; " if trace.error else "") + f"scoring: {type(e).__name__}: {e}"
        return None
    logged = score.get("calls") or []
    if len(logged) == len(sent):
        for record, farm_side in zip(sent, logged, strict=True):
            if farm_side.get("rule"):
                record["rule"] = farm_side["rule"]
    return score


def _for_scoring(messages: list[Message]) -> list[dict[str, Any]]:
    """The conversation the scorer reads: roles and texts (tool calls and results are in the farm's own log)."""
    return [{"role": m["role"], "content": m.get("content")} for m in messages if m["role"] in ("user", "assistant")]
