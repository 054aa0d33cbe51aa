"""The three SFT shapes ``envfarm export`` writes, their JSON Schemas, and the checks a schema cannot say.

An episode's messages are first brought to one neutral form (:class:`Dialogue`): the system
prompt apart; empty messages dropped; anything before the first user message (an agent's greeting)
and after the last assistant message (the simulated user's closing line, results nobody answered)
trimmed, since neither is learned from; tool results paired with the calls they answer; tool-call
ids kept when they are plain (``[A-Za-z0-9_-]{1,64}``, unique) and renumbered ``call_N`` otherwise.
Each format is then a straight rendering of that form:

- ``openai``: OpenAI's chat fine-tuning line, ``{"messages", "tools"}``; assistant ``tool_calls`` with
  ``function.arguments`` as a JSON string; results as ``tool`` messages with ``tool_call_id``.
- ``anthropic``: the Messages API shape, ``{"system", "messages", "tools"}``; content blocks ``text``,
  ``tool_use`` (``input`` an object) and ``tool_result`` (in the next user message, ``is_error`` kept);
  tools with ``input_schema``; roles alternate, starting with the user.
- ``sharegpt``: LLaMA-Factory's ShareGPT layout with tools, ``{"conversations", "system", "tools"}``:
  ``from`` is human / gpt / function_call / observation, human and observation at odd positions (1st,
  3rd, ...), gpt and function_call at even ones, an even count; ``function_call``'s value is the JSON
  ``{"name", "arguments"}`` (a list for parallel calls), parallel results are one observation, and
  ``tools`` is a JSON string of ``{"name", "description", "parameters"}``. The shape has no place for
  text an assistant writes beside its tool calls: that text is left out of this format only.

Every line is checked against its format's JSON Schema (draft 2020-12) and then by
:func:`structure_problems` (ids that answer earlier calls, alternation, JSON inside strings) before
it is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from jsonschema import Draft202012Validator

FORMATS = ("openai", "anthropic", "sharegpt")
PLAIN_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # what OpenAI and Anthropic both accept as a function name


class Unrepresentable(ValueError):
    """An episode whose messages cannot be made into a training example (the reason says why)."""


@dataclass
class Call:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Result:
    call_id: str
    content: str
    is_error: bool


@dataclass
class Turn:
    role: Literal["user", "assistant"]
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)  # on a user turn: results of the previous turn's calls


@dataclass
class Dialogue:
    """An episode's conversation, format-neutral: user and assistant turns alternate, user first."""

    system: str
    turns: list[Turn]
    tools: list[dict[str, Any]]  # {"name", "description", "input_schema"}

    def key(self) -> str:
        """What makes two examples the same: everything but the call ids (random per run)."""
        ids: dict[str, int] = {}
        turns = []
        for t in self.turns:
            calls = [[c.name, c.arguments] for c in t.calls]
            for c in t.calls:
                ids.setdefault(c.id, len(ids))
            results = [[ids.get(r.call_id, -1), r.content, r.is_error] for r in t.results]
            turns.append([t.role, t.text, calls, results])
        return json.dumps([self.system, turns, self.tools], sort_keys=True, ensure_ascii=False)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content.strip()
    if isinstance(content, list):  # content blocks, if a recorder kept them
        parts = [b.get("text", "") for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)]
        return "\n\n".join(p.strip() for p in parts if p.strip())
    return ""


def _raw_text(content: Any) -> str:
    """A tool result's text, kept as it is (whitespace may matter in data)."""
    if isinstance(content, str):
        return content
    return _text(content) if content is not None else ""


def _arguments(call: dict[str, Any]) -> dict[str, Any]:
    args = call.get("arguments")
    if isinstance(args, dict):
        return args
    raw = call.get("raw_arguments")
    if args is None and isinstance(raw, str):
        try:
            parsed = json.loads(raw) if raw.strip() else {}
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            return parsed
    raise Unrepresentable(f"tool call {call.get('name')!r} has arguments that are not a JSON object")


def dialogue(messages: list[dict[str, Any]], tools: list[dict[str, Any]]) -> Dialogue:
    """Bring an episode's messages to the neutral form; raise :class:`Unrepresentable` if they cannot be."""
    system = "\n\n".join(part for m in messages if m.get("role") == "system" and (part := _text(m.get("content"))))
    turns: list[Turn] = []
    pending: dict[str, str] = {}  # original id -> new id, for calls of the last assistant turn still unanswered
    used: set[str] = set()
    numbered = 0
    seen_user = False
    for i, m in enumerate(messages):
        role = m.get("role")
        if role == "system":
            continue
        if role == "user":
            text = _text(m.get("content"))
            if not text:
                continue
            seen_user = True
            if pending:
                raise Unrepresentable(f"message {i}: a user message while tool calls await their results")
            if turns and turns[-1].role == "user":
                last = turns[-1]
                last.text = f"{last.text}\n\n{text}" if last.text else text
            else:
                turns.append(Turn("user", text))
        elif role == "assistant":
            text = _text(m.get("content"))
            raw_calls = [c for c in (m.get("tool_calls") or []) if isinstance(c, dict)]
            if not seen_user or (not text and not raw_calls):
                continue  # before the first user message (a greeting), or empty
            if pending:
                raise Unrepresentable(f"message {i}: an assistant message while tool calls await their results")
            calls = []
            for c in raw_calls:
                name = c.get("name")
                if not isinstance(name, str) or not TOOL_NAME.match(name):
                    raise Unrepresentable(f"message {i}: a tool call named {name!r}, which is no valid function name")
                original = str(c.get("id") or "")
                new = original
                while not PLAIN_ID.match(new) or new in used:
                    new, numbered = f"call_{numbered}", numbered + 1
                used.add(new)
                if original in pending:
                    raise Unrepresentable(f"message {i}: two tool calls with the id {original!r}")
                if original:
                    pending[original] = new
                calls.append(Call(new, name, _arguments(c)))
            if turns and turns[-1].role == "assistant":  # two assistant messages in a row: one turn
                last = turns[-1]
                last.text = "\n\n".join(t for t in (last.text, text) if t)
                last.calls = calls
            else:
                turns.append(Turn("assistant", text, calls))
        elif role == "tool":
            if not seen_user:
                continue
            call_id = str(m.get("tool_call_id") or "")
            if call_id not in pending:
                raise Unrepresentable(f"message {i}: a tool result for {call_id!r}, which no call awaits")
            result = Result(pending.pop(call_id), _raw_text(m.get("content")), m.get("is_error") is True)
            if turns[-1].role == "assistant":
                turns.append(Turn("user"))
            turns[-1].results.append(result)
        else:
            raise Unrepresentable(f"message {i}: unknown role {role!r}")
    # Trim after the last assistant turn; calls left unanswered are fine only there.
    while turns and turns[-1].role != "assistant":
        turns.pop()
    for j, t in enumerate(turns[:-1]):
        if t.role == "assistant" and t.calls:
            answered = {r.call_id for r in turns[j + 1].results}
            missing = [c.name for c in t.calls if c.id not in answered]
            if missing:
                raise Unrepresentable(f"tool calls without results: {', '.join(missing)}")
    if not turns:
        raise Unrepresentable("no assistant message after a user message")
    clean_tools = []
    for tool in tools:
        if not TOOL_NAME.match(str(tool["name"])):
            raise Unrepresentable(f"a tool named {tool['name']!r}, which is no valid function name")
        schema = tool.get("input_schema")
        clean_tools.append(
            {
                "name": str(tool["name"]),
                "description": str(tool.get("description") or ""),
                "input_schema": schema if isinstance(schema, dict) else {"type": "object", "properties": {}},
            }
        )
    return Dialogue(system, turns, clean_tools)


# -- rendering ------------------------------------------------------------------------------------------


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def to_openai(d: Dialogue) -> dict[str, Any]:
    messages: list[dict[str, Any]] = [{"role": "system", "content": d.system}] if d.system else []
    for t in d.turns:
        if t.role == "user":
            messages += [{"role": "tool", "tool_call_id": r.call_id, "content": r.content} for r in t.results]
            if t.text:
                messages.append({"role": "user", "content": t.text})
            continue
        message: dict[str, Any] = {"role": "assistant"}
        if t.text or not t.calls:
            message["content"] = t.text
        if t.calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": _dumps(c.arguments)}}
                for c in t.calls
            ]
        messages.append(message)
    tools = [
        {
            "type": "function",
            "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]},
        }
        for t in d.tools
    ]
    return {"messages": messages, "tools": tools}


def to_anthropic(d: Dialogue) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []
    for t in d.turns:
        blocks: list[dict[str, Any]] = []
        if t.role == "user":
            for r in t.results:
                block: dict[str, Any] = {"type": "tool_result", "tool_use_id": r.call_id}
                if r.content:
                    block["content"] = r.content
                if r.is_error:
                    block["is_error"] = True
                blocks.append(block)
            if t.text:
                blocks.append({"type": "text", "text": t.text})
        else:
            if t.text:
                blocks.append({"type": "text", "text": t.text})
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in t.calls]
        messages.append({"role": t.role, "content": blocks})
    line: dict[str, Any] = {"system": d.system} if d.system else {}
    line["messages"] = messages
    line["tools"] = [dict(t) for t in d.tools]
    return line


def to_sharegpt(d: Dialogue) -> dict[str, Any]:
    conversations: list[dict[str, str]] = []
    for t in d.turns:
        if t.role == "user":
            if t.results:
                # Parallel results become one observation, in the order of the calls.
                conversations.append({"from": "observation", "value": "\n\n".join(r.content for r in t.results)})
                if t.text:  # a user message right after results: never made by the loop, kept as its own turn
                    raise Unrepresentable("a user message in the same turn as tool results")
            else:
                conversations.append({"from": "human", "value": t.text})
        elif t.calls:
            calls = [{"name": c.name, "arguments": c.arguments} for c in t.calls]
            conversations.append({"from": "function_call", "value": _dumps(calls[0] if len(calls) == 1 else calls)})
        else:
            conversations.append({"from": "gpt", "value": t.text})
    line: dict[str, Any] = {"conversations": conversations}
    if d.system:
        line["system"] = d.system
    line["tools"] = _dumps(
        [{"name": t["name"], "description": t["description"], "parameters": t["input_schema"]} for t in d.tools]
    )
    return line


RENDER = {"openai": to_openai, "anthropic": to_anthropic, "sharegpt": to_sharegpt}


# -- schemas ------------------------------------------------------------------------------------------

_JSON_SCHEMA_OBJECT = {"type": "object", "required": ["type"], "properties": {"type": {"const": "object"}}}
_TOOL_NAME = {"type": "string", "pattern": "^[a-zA-Z0-9_-]{1,64}$"}
_ID = {"type": "string", "pattern": "^[a-zA-Z0-9_-]+$"}


def _closed(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": required, "additionalProperties": False, "properties": properties}


OPENAI_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "OpenAI chat fine-tuning example with tools",
    **_closed(
        ["messages"],
        {
            "messages": {
                "type": "array",
                "minItems": 2,
                "items": {"$ref": "#/$defs/message"},
                "contains": {"properties": {"role": {"const": "assistant"}}, "required": ["role"]},
            },
            "tools": {"type": "array", "items": {"$ref": "#/$defs/tool"}},
            "parallel_tool_calls": {"type": "boolean"},
        },
    ),
    "$defs": {
        "message": {
            "oneOf": [
                _closed(
                    ["role", "content"], {"role": {"const": "system"}, "content": {"type": "string", "minLength": 1}}
                ),
                _closed(
                    ["role", "content"], {"role": {"const": "user"}, "content": {"type": "string", "minLength": 1}}
                ),
                {
                    **_closed(
                        ["role"],
                        {
                            "role": {"const": "assistant"},
                            "content": {"type": ["string", "null"]},
                            "tool_calls": {"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/tool_call"}},
                            "weight": {"enum": [0, 1]},
                        },
                    ),
                    "anyOf": [{"required": ["content"]}, {"required": ["tool_calls"]}],
                },
                _closed(
                    ["role", "tool_call_id", "content"],
                    {
                        "role": {"const": "tool"},
                        "tool_call_id": {"type": "string", "minLength": 1},
                        "content": {"type": "string"},
                    },
                ),
            ]
        },
        "tool_call": _closed(
            ["id", "type", "function"],
            {
                "id": {"type": "string", "minLength": 1},
                "type": {"const": "function"},
                "function": _closed(["name", "arguments"], {"name": _TOOL_NAME, "arguments": {"type": "string"}}),
            },
        ),
        "tool": _closed(
            ["type", "function"],
            {
                "type": {"const": "function"},
                "function": _closed(
                    ["name", "parameters"],
                    {"name": _TOOL_NAME, "description": {"type": "string"}, "parameters": _JSON_SCHEMA_OBJECT},
                ),
            },
        ),
    },
}

_TEXT_BLOCK = _closed(["type", "text"], {"type": {"const": "text"}, "text": {"type": "string", "minLength": 1}})

ANTHROPIC_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Anthropic Messages API request shape (system, messages, tools)",
    **_closed(
        ["messages"],
        {
            "system": {"type": "string", "minLength": 1},
            "messages": {
                "type": "array",
                "minItems": 2,
                "items": {"oneOf": [{"$ref": "#/$defs/user"}, {"$ref": "#/$defs/assistant"}]},
            },
            "tools": {"type": "array", "items": {"$ref": "#/$defs/tool"}},
        },
    ),
    "$defs": {
        "user": _closed(
            ["role", "content"],
            {
                "role": {"const": "user"},
                "content": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": {"oneOf": [_TEXT_BLOCK, {"$ref": "#/$defs/tool_result"}]},
                        },
                    ]
                },
            },
        ),
        "assistant": _closed(
            ["role", "content"],
            {
                "role": {"const": "assistant"},
                "content": {
                    "oneOf": [
                        {"type": "string", "minLength": 1},
                        {
                            "type": "array",
                            "minItems": 1,
                            "items": {"oneOf": [_TEXT_BLOCK, {"$ref": "#/$defs/tool_use"}]},
                        },
                    ]
                },
            },
        ),
        "tool_use": _closed(
            ["type", "id", "name", "input"],
            {"type": {"const": "tool_use"}, "id": _ID, "name": _TOOL_NAME, "input": {"type": "object"}},
        ),
        "tool_result": _closed(
            ["type", "tool_use_id"],
            {
                "type": {"const": "tool_result"},
                "tool_use_id": _ID,
                "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": _TEXT_BLOCK}]},
                "is_error": {"type": "boolean"},
            },
        ),
        "tool": _closed(
            ["name", "input_schema"],
            {"name": _TOOL_NAME, "description": {"type": "string"}, "input_schema": _JSON_SCHEMA_OBJECT},
        ),
    },
}

SHAREGPT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "LLaMA-Factory ShareGPT example with tools (columns: conversations, system, tools)",
    **_closed(
        ["conversations"],
        {
            "conversations": {
                "type": "array",
                "minItems": 2,
                "items": _closed(
                    ["from", "value"],
                    {"from": {"enum": ["human", "gpt", "function_call", "observation"]}, "value": {"type": "string"}},
                ),
            },
            "system": {"type": "string", "minLength": 1},
            "tools": {"type": "string", "contentMediaType": "application/json"},
        },
    ),
}

SCHEMAS = {"openai": OPENAI_SCHEMA, "anthropic": ANTHROPIC_SCHEMA, "sharegpt": SHAREGPT_SCHEMA}
_VALIDATORS = {name: Draft202012Validator(schema) for name, schema in SCHEMAS.items()}
for _schema in SCHEMAS.values():
    Draft202012Validator.check_schema(_schema)


def _json(value: str, what: str, problems: list[str]) -> Any:
    try:
        return json.loads(value)
    except ValueError as e:
        problems.append(f"{what} is not JSON ({e})")
        return None


def _openai_structure(line: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    open_ids: set[str] = set()
    for i, m in enumerate(line["messages"]):
        where = f"messages[{i}]"
        if m["role"] == "assistant":
            open_ids = set()
            for j, call in enumerate(m.get("tool_calls", [])):
                what = f"{where}.tool_calls[{j}].function.arguments"
                arguments = _json(call["function"]["arguments"], what, problems)
                if arguments is not None and not isinstance(arguments, dict):
                    problems.append(f"{what} is not a JSON object")
                open_ids.add(call["id"])
        elif m["role"] == "tool":
            if m["tool_call_id"] not in open_ids:
                problems.append(
                    f"{where}.tool_call_id {m['tool_call_id']!r} answers no call of the assistant before it"
                )
            open_ids.discard(m["tool_call_id"])
        elif m["role"] == "system" and i != 0:
            problems.append(f"{where}: a system message after the first message")
    if line["messages"][-1]["role"] != "assistant":
        problems.append("the last message is not the assistant's")
    return problems


def _anthropic_structure(line: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    messages = line["messages"]
    if messages[0]["role"] != "user":
        problems.append("messages[0] is not the user's")
    uses: set[str] = set()
    for i, m in enumerate(messages):
        if i and m["role"] == messages[i - 1]["role"]:
            problems.append(f"messages[{i}]: two {m['role']} messages in a row")
        blocks = m["content"] if isinstance(m["content"], list) else []
        if m["role"] == "user":
            results = [b for b in blocks if b["type"] == "tool_result"]
            if [b["type"] for b in blocks[: len(results)]] != ["tool_result"] * len(results):
                problems.append(f"messages[{i}]: tool_result blocks must come before text")
            for b in results:
                if b["tool_use_id"] not in uses:
                    problems.append(
                        f"messages[{i}]: tool_result for {b['tool_use_id']!r} answers no tool_use before it"
                    )
            if uses - {b["tool_use_id"] for b in results}:
                problems.append(f"messages[{i}]: tool_use {sorted(uses)} of the previous message left without a result")
            uses = set()
        else:
            uses = {b["id"] for b in blocks if b["type"] == "tool_use"}
    if messages[-1]["role"] != "assistant":
        problems.append("the last message is not the assistant's")
    return problems


def _sharegpt_structure(line: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    conversations = line["conversations"]
    for i, turn in enumerate(conversations):
        allowed = ("human", "observation") if i % 2 == 0 else ("gpt", "function_call")
        if turn["from"] not in allowed:
            problems.append(f"conversations[{i}] is {turn['from']!r}; position {i + 1} must be {' or '.join(allowed)}")
        if turn["from"] == "function_call":
            calls = _json(turn["value"], f"conversations[{i}].value", problems)
            for call in calls if isinstance(calls, list) else [calls]:
                if calls is not None and not (
                    isinstance(call, dict)
                    and isinstance(call.get("name"), str)
                    and isinstance(call.get("arguments"), dict)
                ):
                    problems.append(f"conversations[{i}].value is not {{name, arguments}} (or a list of them)")
        if turn["from"] == "observation" and (i == 0 or conversations[i - 1]["from"] != "function_call"):
            problems.append(f"conversations[{i}]: an observation not after a function_call")
    if len(conversations) % 2:
        problems.append(f"{len(conversations)} turns: LLaMA-Factory needs an even number (prompt, response pairs)")
    if "tools" in line:
        tools = _json(line["tools"], "tools", problems)
        if tools is not None and not (
            isinstance(tools, list)
            and all(
                isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("parameters"), dict)
                for t in tools
            )
        ):
            problems.append("tools is not a JSON list of {name, description, parameters}")
    return problems


_STRUCTURE = {"openai": _openai_structure, "anthropic": _anthropic_structure, "sharegpt": _sharegpt_structure}


def structure_problems(fmt: str, line: dict[str, Any]) -> list[str]:
    """Everything wrong with ``line`` as a ``fmt`` example: its schema first, then what a schema cannot say."""
    errors = sorted(_VALIDATORS[fmt].iter_errors(line), key=lambda e: list(e.absolute_path))
    if errors:
        return [f"{'/'.join(str(p) for p in e.absolute_path) or '(line)'}: {e.message}" for e in errors[:5]]
    return _STRUCTURE[fmt](line)
