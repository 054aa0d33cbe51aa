"""The agent loop of one episode: model -> tool calls -> results -> model, until someone ends it.

The agent's turns come from a policy (:mod:`envfarm.agents.policy`); its tool calls go to the episode's
MCP endpoint, one after another in the order the model wrote them. A malformed call never ends the
episode: it is answered with an error result the model reads, recorded with what was wrong
(``error_kind``), and counted:

| ``error_kind`` | what | sent to the farm |
|---|---|---|
| ``unknown_tool`` | a name the episode's ``tools/list`` does not have (or no name at all) | yes (no name: no) |
| ``bad_json`` | arguments that are not a JSON object | no: nothing valid to send |
| ``schema`` | arguments that break the tool's JSON Schema (the farm says ``TOOL: invalid arguments``) | yes |
| ``refused`` | the tool refused (a business rule, named in ``rule``, or a precondition) | yes |
| ``crashed`` | the tool failed on its own (``TOOL: internal error (...)``) | yes |

An episode ends when the agent answers without tool calls (task mode: ``agent_done``), when the simulated
user sends the stop signal (conversation mode: ``user_done``), after ``max_turns`` agent turns
(``max_turns``, truncated), or when a model or the farm fails for good (``error``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from envfarm.agents.policy import Policy
from envfarm.agents.prompts import Mode
from envfarm.agents.user import User
from envfarm.client import AsyncEpisode
from envfarm.generator.llm.chat import Message, ToolCall, ToolDef
from envfarm.generator.llm.errors import BudgetExceeded, LLMError
from envfarm.generator.llm.request import Usage

ERROR_KINDS = ("unknown_tool", "bad_json", "schema", "refused", "crashed")


@dataclass
class Trace:
    """What happened in one episode: the conversation, the tool calls, and how it ended."""

    messages: list[Message]
    calls: list[dict[str, Any]] = field(default_factory=list)
    turns: int = 0
    ended: str = "agent_done"  # agent_done | user_done | max_turns | error
    truncated: bool = False
    error: str | None = None
    tokens: Usage = field(default_factory=Usage)
    user_tokens: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0

    def tool_errors(self) -> dict[str, int]:
        """Calls that failed, by ``error_kind``."""
        return dict(Counter(c["error_kind"] for c in self.calls if c.get("error_kind")))

    def refusals(self) -> dict[str, int]:
        """Calls a business rule refused, by rule id."""
        return dict(Counter(c["rule"] for c in self.calls if c.get("rule")))


def add_usage(total: Usage, more: Usage) -> None:
    total.input_tokens += more.input_tokens
    total.output_tokens += more.output_tokens
    total.cache_read_tokens += more.cache_read_tokens
    total.cache_write_tokens += more.cache_write_tokens


def _value(text: str, structured: dict[str, Any] | None) -> Any:
    """A result as data: the structured content, else the text read as JSON, else the text."""
    if structured is not None:
        return structured
    try:
        return json.loads(text)
    except ValueError:
        return text


def classify(name: str, error: str, tool_names: set[str]) -> str:
    """The ``error_kind`` of a call the farm answered with an error (see the module docstring)."""
    if name not in tool_names:
        return "unknown_tool"
    if error.startswith(f"{name}: invalid arguments") or error.startswith(f"{name}: arguments must be"):
        return "schema"
    if error.startswith(f"{name}: internal error (") or error.startswith(f"{name}: the database refused"):
        return "crashed"
    return "refused"


async def call_tool(
    episode: AsyncEpisode, call: ToolCall, tool_names: set[str], turn: int
) -> tuple[Message, dict[str, Any]]:
    """Run one tool call: the tool message the model reads, and the call's record."""
    name = call["name"]
    arguments = call["arguments"]
    record: dict[str, Any] = {"tool": name, "arguments": arguments, "tool_call_id": call["id"], "turn": turn}
    if not name:
        error, kind = "a tool call needs a tool name; the tools are: " + ", ".join(sorted(tool_names)), "unknown_tool"
    elif arguments is None and name in tool_names:
        error, kind = _bad_json(name, call["raw_arguments"]), "bad_json"
    else:
        result = await episode.call(name, arguments if arguments is not None else {})
        record["sent"] = True  # in the farm's log of the episode (read back for the rule that refused it)
        if not result.is_error:
            record.update(ok=True, result=_value(result.text, result.structured), error_kind=None)
            message: Message = {"role": "tool", "tool_call_id": call["id"], "content": result.text, "is_error": False}
            return message, record
        error, kind = result.text, classify(name, result.text, tool_names)
    record.update(ok=False, error=error, error_kind=kind)
    return {"role": "tool", "tool_call_id": call["id"], "content": error, "is_error": True}, record


def _bad_json(name: str, raw: str) -> str:
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as e:
        where = f" (line {e.lineno} column {e.colno}: {e.msg})" if isinstance(e, json.JSONDecodeError) else ""
        return f"{name}: the arguments are not valid JSON{where}; send them as one JSON object"
    return f"{name}: the arguments must be a JSON object, not {type(value).__name__}"


async def play(
    episode: AsyncEpisode,
    policy: Policy,
    tools: list[ToolDef],
    system: str,
    *,
    mode: Mode,
    task: str,
    user: User | None,
    max_turns: int,
) -> Trace:
    """Run the loop on an open episode; never raises for the model's or the farm's failures (``ended: error``),
    only :class:`~envfarm.generator.llm.BudgetExceeded` (the run must stop) and cancellation."""
    trace = Trace(messages=[{"role": "system", "content": system}])
    tool_names = {t["name"] for t in tools}
    try:
        if mode == "task":
            trace.messages.append({"role": "user", "content": task})
        elif await _user_says(user, trace):
            return trace
        while True:
            if trace.turns >= max_turns:
                trace.ended, trace.truncated = "max_turns", True
                return trace
            turn = await policy(trace.messages, tools)
            trace.turns += 1
            add_usage(trace.tokens, turn.usage)
            trace.cost_usd += turn.cost_usd
            trace.messages.append(turn.message())
            if turn.tool_calls:
                for call in turn.tool_calls:
                    message, record = await call_tool(episode, call, tool_names, trace.turns)
                    trace.messages.append(message)
                    trace.calls.append(record)
                continue
            if mode == "task" or not turn.text:
                trace.ended = "agent_done"
                return trace
            if await _user_says(user, trace):
                return trace
    except BudgetExceeded:
        raise
    except LLMError as e:
        trace.ended, trace.error = "error", f"model: {e}"
    except Exception as e:  # the farm (HTTP, MCP) or a policy's own bug: this episode ends, the run goes on
        trace.ended, trace.error = "error", f"{type(e).__name__}: {e}"
    return trace


async def _user_says(user: User | None, trace: Trace) -> bool:
    """Ask the user for their next message; True when it ends the conversation."""
    if user is None:
        raise ValueError("conversation mode needs a user (a simulated user or a script)")
    said = await user(trace.messages)
    add_usage(trace.user_tokens, said.usage)
    trace.cost_usd += said.cost_usd
    trace.messages.append({"role": "user", "content": said.text})
    if said.stop:
        trace.ended = "user_done"
    return said.stop
