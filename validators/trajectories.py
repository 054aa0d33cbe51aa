"""Trajectories: what an agent did, in the shapes trainers already have, as one list of calls.

Accepted shapes (examples in docs/scoring.md):

- a plain list of ``{"tool": name, "arguments": {...}}``;
- OpenAI chat messages: assistant messages with ``tool_calls`` whose
  ``function.arguments`` is a JSON string (tau2-bench's own messages too, whose tool calls
  carry ``name`` and ``arguments`` without ``function``);
- Anthropic messages: assistant messages whose ``content`` has ``tool_use`` blocks;
- an EnvScaler run record: ``{"trajectory": [{"step": 0, ...}, {"action": {"name", "arguments"}}, ...]}``.

Each call keeps its position in the input, so an error names exactly where the bad
call is (``trajectory[3].tool_calls[0].function.arguments``).

:func:`read_trajectory` also gives what was said, provider-neutral: ``{"role", "content"}``
with the text of each message (its text parts or blocks joined by newlines; tool results as
role ``tool``), which ``said`` checks judge. Plain calls say nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from envfarm.core.scenarios import Call

# EnvScaler's pseudo-actions that talk to the simulated user rather than call a tool.
ENVSCALER_NON_TOOL_ACTIONS = frozenset({"chat_with_user"})


class TrajectoryError(ValueError):
    """A trajectory that cannot be read; ``where`` is the path to the bad part."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


@dataclass
class Trajectory:
    """What an agent did (``calls``) and what was said (``messages``: ``{"role", "content"}``, oldest first)."""

    calls: list[Call]
    messages: list[dict[str, Any]] = field(default_factory=list)


def parse_trajectory(data: Any, where: str = "trajectory") -> list[Call]:
    """Read any accepted shape into calls; raise TrajectoryError naming the bad part."""
    return read_trajectory(data, where).calls


def read_trajectory(data: Any, where: str = "trajectory") -> Trajectory:
    """Read any accepted shape into calls and messages; raise TrajectoryError naming the bad part."""
    if isinstance(data, dict):
        if "trajectory" in data and isinstance(data["trajectory"], list):
            return _envscaler(data["trajectory"], f"{where}.trajectory")
        raise TrajectoryError(where, "expected a list of calls or messages, or an EnvScaler record with 'trajectory'")
    if not isinstance(data, list):
        raise TrajectoryError(where, f"expected a list, got {type(data).__name__}")
    if not data:
        return Trajectory([])
    if all(isinstance(item, dict) and "role" in item for item in data):
        return _messages(data, where)
    if all(isinstance(item, dict) and ("action" in item or item.get("step") == 0) for item in data):
        return _envscaler(data, where)
    return Trajectory([_plain(item, f"{where}[{i}]") for i, item in enumerate(data)])


def _plain(item: Any, where: str) -> Call:
    if not isinstance(item, dict):
        raise TrajectoryError(where, f"a call must be an object with 'tool' and 'arguments', got {type(item).__name__}")
    if "role" in item:
        raise TrajectoryError(where, "a chat message among plain calls; send either messages or calls")
    unknown = sorted(set(item) - {"tool", "arguments", "result", "id"})
    if unknown:
        raise TrajectoryError(where, f"unknown field(s) {unknown}; a call has 'tool' and 'arguments'")
    return _call(item.get("tool"), item.get("arguments", {}), where)


def _call(tool: Any, arguments: Any, where: str, tool_field: str = "tool", args_field: str = "arguments") -> Call:
    if not isinstance(tool, str) or not tool:
        raise TrajectoryError(f"{where}.{tool_field}", "the tool name must be a non-empty string")
    if arguments is None:
        arguments = {}
    if not isinstance(arguments, dict):
        raise TrajectoryError(f"{where}.{args_field}", f"arguments must be an object, got {type(arguments).__name__}")
    return Call(tool=tool, arguments=arguments)


def _messages(messages: list[dict[str, Any]], where: str) -> Trajectory:
    calls: list[Call] = []
    said: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        role = message.get("role")
        said.extend(_said(role, message.get("content")))
        if role != "assistant":
            continue
        here = f"{where}[{i}]"
        for j, tool_call in enumerate(message.get("tool_calls") or []):
            calls.append(_openai_call(tool_call, f"{here}.tool_calls[{j}]"))
        content = message.get("content")
        if isinstance(content, list):
            for j, block in enumerate(content):
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    calls.append(_call(block.get("name"), block.get("input"), f"{here}.content[{j}]", "name", "input"))
    return Trajectory(calls, said)


def _said(role: Any, content: Any) -> list[dict[str, Any]]:
    """A message's text as provider-neutral messages: its own text, and (Anthropic) each tool result's."""
    if not isinstance(role, str):
        return []
    if isinstance(content, str):
        return [{"role": role, "content": content}] if content else []
    if not isinstance(content, list):
        return []
    texts, results = [], []
    for block in content:
        if isinstance(block, str):
            texts.append(block)
        elif isinstance(block, dict) and block.get("type") == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])  # OpenAI text parts and Anthropic text blocks alike
        elif isinstance(block, dict) and block.get("type") == "tool_result":
            results.extend(_said("tool", block.get("content")))
    own = [{"role": role, "content": "\n".join(texts)}] if texts else []
    return own + results


def _openai_call(tool_call: Any, where: str) -> Call:
    if isinstance(tool_call, dict) and "function" not in tool_call and isinstance(tool_call.get("name"), str):
        return _tau2_call(tool_call, where)  # tau2-bench's messages: {"id", "name", "arguments": {...}}
    if not isinstance(tool_call, dict) or not isinstance(tool_call.get("function"), dict):
        raise TrajectoryError(where, "a tool call needs a 'function' object with 'name' and 'arguments'")
    function = tool_call["function"]
    raw = function.get("arguments", "{}")
    if isinstance(raw, str):
        try:
            arguments = json.loads(raw) if raw.strip() else {}
        except json.JSONDecodeError as e:
            raise TrajectoryError(f"{where}.function.arguments", f"not valid JSON ({e.msg} at {e.pos})") from None
    else:
        arguments = raw
    return _call(function.get("name"), arguments, f"{where}.function", "name", "arguments")


def _tau2_call(tool_call: dict[str, Any], where: str) -> Call:
    arguments = tool_call.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as e:
            raise TrajectoryError(f"{where}.arguments", f"not valid JSON ({e.msg} at {e.pos})") from None
    return _call(tool_call["name"], arguments, where, "name", "arguments")


def _envscaler(steps: list[Any], where: str) -> Trajectory:
    calls: list[Call] = []
    said: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        here = f"{where}[{i}]"
        if not isinstance(step, dict):
            raise TrajectoryError(here, f"a step must be an object, got {type(step).__name__}")
        action = step.get("action")
        if action is None:
            continue  # step 0 holds only the initial state snapshot
        if not isinstance(action, dict):
            raise TrajectoryError(f"{here}.action", "must be an object with 'name' and 'arguments'")
        if action.get("name") in ENVSCALER_NON_TOOL_ACTIONS:  # the agent talks to the user, who answers
            arguments = action.get("arguments")
            text = (
                next((arguments[k] for k in ("content", "message", "text") if k in arguments), None)
                if isinstance(arguments, dict)
                else None
            )
            said.extend(_said("assistant", text))
            observation = step.get("observation")
            if isinstance(observation, dict):
                said.extend(_said("user", observation.get("content")))
            continue
        calls.append(_call(action.get("name"), action.get("arguments"), f"{here}.action", "name", "arguments"))
    return Trajectory(calls, said)
