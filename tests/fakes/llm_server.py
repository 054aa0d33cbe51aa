"""A fake LLM server speaking the Anthropic Messages API and OpenAI chat completions, answering from a script.

Tests run the real ``anthropic`` SDK and real ``httpx`` against it on 127.0.0.1: no network, no key.

In a test (a thread in the test process)::

    with FakeLLMServer({"entries": [{"tool": "submit_design", "answer": {...}}]}) as fake:
        provider = AnthropicProvider(base_url=fake.url)          # or OpenAIProvider(base_url=fake.openai_url)
        ...
        assert fake.stats()["answered"] == 1

As a process (for tests that kill a client, or a whole generator run)::

    python -m tests.fakes.llm_server --script script.json --port 8123 [--api-key KEY]

or ``start_fake_llm_process(script)`` / ``stop_fake_llm_process(proc)`` from here.

The script: ``{"entries": [...], "faults": [...]}`` (a bare list is the entries). An entry answers the first
request whose forced tool is ``tool`` (any tool when absent), whose text (system + turns) contains every
``match`` string, while it has ``uses`` left (unlimited when absent). It answers ``answer`` (the tool input), or
``raw`` (OpenAI: the arguments text as given; Anthropic: a text block and stop_reason end_turn), or ``content``
(plain text with no tool call, on either API). ``usage`` overrides the token counts (Anthropic names:
input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens); ``stop_reason`` overrides
the stop reason ("max_tokens" maps to OpenAI's "length"). ``faults`` (``{"status", "count", "retry_after"?,
"message"?}``) answer the first requests with errors, in order. No entry: HTTP 400 naming the tool and the
start of the last user message, so a failing test says what was asked.

Playing an agent (or a simulated user) turn by turn: an entry with ``turns`` answers a chat request by the
number of assistant messages already in it (turn 0 is the first answer), so one entry keyed by ``match`` (e.g.
a scenario's task) plays a whole episode, statelessly: concurrent episodes, trials and a resumed run all get
the same answers. A turn is ``{"text"?: str, "tool_calls"?: [{"name", "arguments"?: object,
"raw_arguments"?: str}]}`` (``raw_arguments`` is sent as given: broken JSON on the OpenAI API); ``then`` is the
turn for every index past ``turns`` (a model that never stops). ``side`` picks requests with tools
(``"agent"``) or without (``"user"``, a simulated user). Tool call ids are derived from the conversation, so a
run and its rerun see the same ids.

Control endpoints: ``GET /_fake/stats``, ``GET /_fake/last`` (the last request: path, headers, body),
``GET /_fake/requests`` (all of them), ``POST /_fake/hold`` (requests wait until ``POST /_fake/release``),
``POST /_fake/faults`` (more faults, same shape), ``POST /_fake/script`` (replace the script), ``POST /_fake/reset``
(a new script and zeroed counters: one server serves a module's tests), ``GET /healthz``. A held request whose
client went away (a killed run) is dropped, counted as ``abandoned``, never answered.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REPO = Path(__file__).resolve().parents[2]
ANTHROPIC_ERRORS = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}
OPENAI_ERRORS = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", "service_unavailable"),
}


@dataclass
class Entry:
    """One scripted answer."""

    tool: str | None = None
    match: list[str] = field(default_factory=list)
    uses: int | None = None
    answer: Any = None
    raw: str | None = None
    content: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None
    turns: list[dict[str, Any]] | None = None
    then: dict[str, Any] | None = None
    side: str | None = None
    used: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Entry:
        known = {"tool", "match", "uses", "answer", "raw", "content", "usage", "stop_reason", "turns", "then", "side"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"script entry has unknown keys {sorted(unknown)}: {data}")
        if sum(k in data for k in ("answer", "raw", "content", "turns")) != 1:
            raise ValueError(f"script entry needs exactly one of answer / raw / content / turns: {data}")
        if "then" in data and "turns" not in data:
            raise ValueError(f"script entry has 'then' without 'turns': {data}")
        if data.get("side") not in (None, "agent", "user"):
            raise ValueError(f"script entry's side must be 'agent' or 'user': {data}")
        return cls(**data)

    def turn(self, index: int) -> dict[str, Any] | None:
        """The scripted answer to the ``index``-th turn (None when the script has none)."""
        assert self.turns is not None
        return self.turns[index] if index < len(self.turns) else self.then


def load_script(script: dict[str, Any] | list[Any] | str | Path | None) -> dict[str, Any]:
    """A script from a dict, a bare list of entries, or a JSON file."""
    if script is None:
        return {"entries": [], "faults": []}
    data: Any = json.loads(Path(script).read_text(encoding="utf-8")) if isinstance(script, str | Path) else script
    if isinstance(data, list):
        data = {"entries": data}
    return {"entries": list(data.get("entries", [])), "faults": list(data.get("faults", []))}


class FakeState:
    """Everything the fake knows: the script, the faults still to serve, and what it was asked."""

    def __init__(self, script: dict[str, Any] | list[Any] | str | Path | None, api_key: str | None) -> None:
        self.api_key = api_key
        self.released = threading.Event()  # a threading.Event: hold/release may come from any thread
        self.released.set()
        self.hold_after: int | None = None  # hold once this many requests have been answered
        self.ids = itertools.count(1)
        self.cached_prefixes: set[str] = set()
        self.log: list[dict[str, Any]] = []
        self.set_script(script)
        self.reset_stats()

    def reset(self, script: dict[str, Any] | list[Any] | str | Path | None) -> None:
        """A fresh start with a new script: counters, log, holds and the prompt cache forgotten."""
        self.set_script(script)
        self.reset_stats()
        self.log.clear()
        self.cached_prefixes.clear()
        self.released.set()
        self.hold_after = None

    def set_script(self, script: dict[str, Any] | list[Any] | str | Path | None) -> None:
        loaded = load_script(script)
        self.entries = [Entry.from_dict(e) for e in loaded["entries"]]
        self.faults: list[dict[str, Any]] = []
        self.add_faults(loaded["faults"])

    def add_faults(self, faults: list[dict[str, Any]]) -> None:
        for fault in faults:
            self.faults += [fault] * int(fault.get("count", 1))

    def reset_stats(self) -> None:
        self.requests = self.answered = self.fault_count = self.unmatched = self.rejected = self.abandoned = 0
        self.in_flight = self.max_in_flight = 0
        self.by_tool: dict[str, int] = {}

    def stats(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "answered": self.answered,
            "faults": self.fault_count,
            "unmatched": self.unmatched,
            "rejected": self.rejected,
            "abandoned": self.abandoned,
            "by_tool": dict(self.by_tool),
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "held": not self.released.is_set(),
            "faults_left": len(self.faults),
        }

    def select(self, tool: str | None, text: str, has_tools: bool = False, turn: int = 0) -> Entry | None:
        for entry in self.entries:
            if entry.tool is not None and entry.tool != tool:
                continue
            if entry.side is not None and (entry.side == "agent") != has_tools:
                continue
            if not all(m in text for m in entry.match):
                continue
            if entry.turns is not None and entry.turn(turn) is None:
                continue
            if entry.uses is not None and entry.used >= entry.uses:
                continue
            entry.used += 1
            return entry
        return None


def _text_of(content: Any) -> str:
    """The text of a message content: a string, or a list of blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(str(b.get("text", "")) for b in content if isinstance(b, dict))
    return ""


def _last_user(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if m.get("role") == "user"]
    return _text_of(users[-1].get("content")) if users else ""


def _tool_asked(body: dict[str, Any], api: str) -> str | None:
    """The forced tool's name; with tool_choice auto and one tool, that tool."""
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if api == "anthropic":
        if isinstance(choice, dict) and choice.get("type") == "tool":
            return str(choice.get("name"))
        return str(tools[0].get("name")) if len(tools) == 1 else None
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return str(choice["function"].get("name"))
    return str(tools[0].get("function", {}).get("name")) if len(tools) == 1 else None


def _estimate(text: str) -> int:
    return max(1, len(text) // 4)


def create_app(
    script: dict[str, Any] | list[Any] | str | Path | None = None, *, api_key: str | None = None
) -> tuple[Starlette, FakeState]:
    """The ASGI app and its state (a test may read the state directly)."""
    state = FakeState(script, api_key)

    def anthropic_error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
        body = {"type": "error", "error": {"type": ANTHROPIC_ERRORS.get(status, "api_error"), "message": message}}
        headers = {"request-id": f"req_fake_{next(state.ids)}"}
        if retry_after is not None:
            headers["retry-after"] = str(retry_after)
        return JSONResponse(body, status_code=status, headers=headers)

    def openai_error(status: int, message: str, retry_after: float | None = None) -> JSONResponse:
        kind, code = OPENAI_ERRORS.get(status, ("server_error", None))
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return JSONResponse(body, status_code=status, headers=headers)

    async def model_request(request: Request, api: str) -> JSONResponse:
        error = anthropic_error if api == "anthropic" else openai_error
        state.requests += 1
        state.in_flight += 1
        state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            try:
                body = await request.json()
            except ValueError:
                return error(400, "request body is not JSON")
            headers = dict(request.headers)
            state.log.append({"api": api, "path": request.url.path, "headers": headers, "body": body})
            while not state.released.is_set():  # held: wait for /_fake/release (or the process to die)
                if await request.is_disconnected():  # its client is gone (a killed run): never answered
                    state.abandoned += 1
                    return error(499, "client went away while the request was held")
                await asyncio.sleep(0.005)
            problem = _auth_problem(api, headers, state.api_key)
            if problem is not None:
                state.rejected += 1
                status, message = problem
                return error(status, message)
            if state.faults:
                fault = state.faults.pop(0)
                state.fault_count += 1
                status = int(fault["status"])
                retry_after = fault.get("retry_after", 0 if status == 429 else None)
                return error(status, fault.get("message", f"fake fault {status}"), retry_after)
            if api == "anthropic":
                system = _text_of(body.get("system"))
                text = "\n".join([system, *(_text_of(m.get("content")) for m in body.get("messages", []))])
            else:
                text = "\n".join(_text_of(m.get("content")) for m in body.get("messages", []))
            tool = _tool_asked(body, api)
            messages = body.get("messages") or []
            turn = sum(1 for m in messages if isinstance(m, dict) and m.get("role") == "assistant")
            entry = state.select(tool, text, bool(body.get("tools")), turn)
            if entry is None:
                state.unmatched += 1
                asked = _last_user(body.get("messages", []))[:200]
                return error(400, f"fake LLM server: no script entry for tool {tool!r}; last user message: {asked!r}")
            state.answered += 1
            state.by_tool[str(tool)] = state.by_tool.get(str(tool), 0) + 1
            if state.hold_after is not None and state.answered >= state.hold_after:
                state.released.clear()  # this answer goes out; the requests after it wait
                state.hold_after = None
            if entry.turns is not None:
                spec = entry.turn(turn) or {}
                if api == "anthropic":
                    return JSONResponse(_anthropic_turn(state, body, entry, spec, text))
                return JSONResponse(_openai_turn(body, entry, spec, text))
            if api == "anthropic":
                return JSONResponse(_anthropic_answer(state, body, entry, tool, text))
            return JSONResponse(_openai_answer(state, body, entry, tool, text))
        finally:
            state.in_flight -= 1

    async def messages(request: Request) -> JSONResponse:
        return await model_request(request, "anthropic")

    async def chat_completions(request: Request) -> JSONResponse:
        return await model_request(request, "openai")

    async def stats(_: Request) -> JSONResponse:
        return JSONResponse(state.stats())

    async def last(_: Request) -> JSONResponse:
        return JSONResponse(state.log[-1] if state.log else None)

    async def requests(_: Request) -> JSONResponse:
        return JSONResponse(state.log)

    async def hold(request: Request) -> JSONResponse:
        body = await request.body()
        after = (json.loads(body) or {}).get("after") if body else None
        if after is None:
            state.released.clear()
        else:  # hold once `after` requests have been answered in all (a test kills a client at a known point)
            state.hold_after = int(after)
        return JSONResponse({"held": after is None, "hold_after": after})

    async def release(_: Request) -> JSONResponse:
        state.released.set()
        return JSONResponse({"held": False})

    async def faults(request: Request) -> JSONResponse:
        body = await request.json()
        state.add_faults(body["faults"] if isinstance(body, dict) else body)
        return JSONResponse({"faults_left": len(state.faults)})

    async def set_script(request: Request) -> JSONResponse:
        state.set_script(await request.json())
        return JSONResponse({"entries": len(state.entries), "faults_left": len(state.faults)})

    async def reset(request: Request) -> JSONResponse:
        raw = await request.body()
        state.reset(json.loads(raw) if raw else None)
        return JSONResponse(state.stats())

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"ok": True})

    routes = [
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/_fake/stats", stats),
        Route("/_fake/last", last),
        Route("/_fake/requests", requests),
        Route("/_fake/hold", hold, methods=["POST"]),
        Route("/_fake/release", release, methods=["POST"]),
        Route("/_fake/faults", faults, methods=["POST"]),
        Route("/_fake/script", set_script, methods=["POST"]),
        Route("/_fake/reset", reset, methods=["POST"]),
        Route("/healthz", healthz),
    ]
    return Starlette(routes=routes), state


def _auth_problem(api: str, headers: dict[str, str], api_key: str | None) -> tuple[int, str] | None:
    """Anthropic: a key (x-api-key, or Authorization: Bearer as the SDK sends it) and anthropic-version.
    OpenAI: only when the fake was given a key (vLLM needs none)."""
    given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip() or None
    if api == "anthropic":
        if "anthropic-version" not in headers:
            return 400, "anthropic-version: header is required"
        if given is None:
            return 401, "x-api-key header is required"
        if api_key is not None and given != api_key:
            return 401, "invalid x-api-key"
        return None
    if api_key is not None and given != api_key:
        return (
            401,
            "Incorrect API key provided. You can find your API key at https://platform.openai.com/account/api-keys.",
        )
    return None


def _answer_usage(entry: Entry, prompt_tokens: int, answer_text: str) -> dict[str, int]:
    u = entry.usage
    return {
        "input_tokens": int(u.get("input_tokens", prompt_tokens)),
        "output_tokens": int(u.get("output_tokens", _estimate(answer_text))),
        "cache_creation_input_tokens": int(u.get("cache_creation_input_tokens", 0)),
        "cache_read_input_tokens": int(u.get("cache_read_input_tokens", 0)),
    }


def _anthropic_usage(state: FakeState, body: dict[str, Any], entry: Entry, text: str, answer_text: str) -> dict:
    usage = _answer_usage(entry, _estimate(text), answer_text)
    # Prompt caching as the API does it: a marked system prompt is written to the cache once, then read.
    system = body.get("system")
    blocks: list[Any] = system if isinstance(system, list) else []
    marked = [b for b in blocks if isinstance(b, dict) and b.get("cache_control")]
    if marked and not {"input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens"} & set(entry.usage):
        prefix = json.dumps(body.get("tools")) + "".join(str(b.get("text", "")) for b in marked)
        cached = _estimate(prefix)
        usage["input_tokens"] = max(1, usage["input_tokens"] - cached)
        usage["cache_read_input_tokens" if prefix in state.cached_prefixes else "cache_creation_input_tokens"] = cached
        state.cached_prefixes.add(prefix)
    return usage


def _call_ids(body: dict[str, Any], prefix: str, count: int) -> list[str]:
    """Tool call ids that depend on the conversation only: a rerun of a run sees the same ones."""
    digest = hashlib.sha256(json.dumps(body.get("messages"), sort_keys=True).encode()).hexdigest()[:16]
    return [f"{prefix}{digest}_{i}" for i in range(count)]


def _arguments_text(call: dict[str, Any]) -> str:
    raw = call.get("raw_arguments")
    return raw if isinstance(raw, str) else json.dumps(call.get("arguments") or {})


def _anthropic_turn(state: FakeState, body: dict[str, Any], entry: Entry, spec: dict[str, Any], text: str) -> dict:
    """A scripted agent (or user) turn on the Messages API: text and tool_use blocks."""
    calls = spec.get("tool_calls") or []
    content: list[dict[str, Any]] = [{"type": "text", "text": spec["text"]}] if spec.get("text") else []
    for call_id, call in zip(_call_ids(body, "toolu_", len(calls)), calls, strict=True):
        raw = call.get("raw_arguments")
        value: Any = call.get("arguments") or {}
        if isinstance(raw, str):  # the Messages API always sends an object; a broken server might not
            try:
                value = json.loads(raw)
            except ValueError:
                value = raw
        content.append({"type": "tool_use", "id": call_id, "name": call["name"], "input": value})
    answer_text = (spec.get("text") or "") + "".join(_arguments_text(c) for c in calls)
    return {
        "id": f"msg_fake_{next(state.ids)}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": entry.stop_reason or ("tool_use" if calls else "end_turn"),
        "stop_sequence": None,
        "usage": _anthropic_usage(state, body, entry, text, answer_text),
    }


def _openai_turn(body: dict[str, Any], entry: Entry, spec: dict[str, Any], text: str) -> dict:
    """A scripted agent (or user) turn on chat completions: content and tool_calls."""
    calls = spec.get("tool_calls") or []
    message: dict[str, Any] = {"role": "assistant", "content": spec.get("text")}
    if calls:
        message["tool_calls"] = [
            {"id": call_id, "type": "function", "function": {"name": call["name"], "arguments": _arguments_text(call)}}
            for call_id, call in zip(_call_ids(body, "call_", len(calls)), calls, strict=True)
        ]
    answer_text = (spec.get("text") or "") + "".join(_arguments_text(c) for c in calls)
    u = _answer_usage(entry, _estimate(text), answer_text)
    finish = {"max_tokens": "length", "end_turn": "stop", "tool_use": "tool_calls"}.get(entry.stop_reason or "", "")
    return {
        "id": "chatcmpl-fake-" + _call_ids(body, "", 1)[0],
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": finish or ("tool_calls" if calls else "stop"),
            }
        ],
        "usage": {
            "prompt_tokens": u["input_tokens"],
            "completion_tokens": u["output_tokens"],
            "total_tokens": u["input_tokens"] + u["output_tokens"],
        },
    }


def _anthropic_answer(state: FakeState, body: dict[str, Any], entry: Entry, tool: str | None, text: str) -> dict:
    n = next(state.ids)
    content: list[dict[str, Any]]
    if entry.answer is not None:
        content = [{"type": "tool_use", "id": f"toolu_fake_{n}", "name": tool, "input": entry.answer}]
        answer_text, stop = json.dumps(entry.answer), "tool_use"
    else:
        answer_text = entry.raw if entry.raw is not None else entry.content or ""
        content, stop = [{"type": "text", "text": answer_text}], "end_turn"
    usage = _anthropic_usage(state, body, entry, text, answer_text)
    return {
        "id": f"msg_fake_{n}",
        "type": "message",
        "role": "assistant",
        "model": body.get("model"),
        "content": content,
        "stop_reason": entry.stop_reason or stop,
        "stop_sequence": None,
        "usage": usage,
    }


def _openai_answer(state: FakeState, body: dict[str, Any], entry: Entry, tool: str | None, text: str) -> dict:
    n = next(state.ids)
    message: dict[str, Any] = {"role": "assistant", "content": None}
    if entry.content is not None:
        answer_text, finish = entry.content, "stop"
        message["content"] = entry.content
    else:
        answer_text = entry.raw if entry.raw is not None else json.dumps(entry.answer)
        finish = "tool_calls"
        call = {"id": f"call_fake_{n}", "type": "function", "function": {"name": tool, "arguments": answer_text}}
        message["tool_calls"] = [call]
    if entry.stop_reason is not None:
        finish = {"max_tokens": "length", "end_turn": "stop", "tool_use": "tool_calls"}.get(
            entry.stop_reason, entry.stop_reason
        )
    u = _answer_usage(entry, _estimate(text), answer_text)
    cached = u["cache_read_input_tokens"]
    prompt = u["input_tokens"] + cached + u["cache_creation_input_tokens"]
    usage: dict[str, Any] = {
        "prompt_tokens": prompt,
        "completion_tokens": u["output_tokens"],
        "total_tokens": prompt + u["output_tokens"],
    }
    if cached:
        usage["prompt_tokens_details"] = {"cached_tokens": cached}
    return {
        "id": f"chatcmpl-fake-{n}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model"),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


class FakeLLMServer:
    """The fake served by uvicorn in a thread of the test process, on a free 127.0.0.1 port."""

    def __init__(
        self, script: dict[str, Any] | list[Any] | str | Path | None = None, *, api_key: str | None = None
    ) -> None:
        self.app, self.state = create_app(script, api_key=api_key)
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def anthropic_url(self) -> str:
        """``base_url`` for the Anthropic SDK (it adds /v1/messages)."""
        return self.url

    @property
    def openai_url(self) -> str:
        """``base_url`` for an OpenAI-compatible client (it adds /chat/completions)."""
        return f"{self.url}/v1"

    def start(self) -> FakeLLMServer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", loop="asyncio")
        config.timeout_graceful_shutdown = 1
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the fake LLM server did not start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.state.released.set()  # held requests finish, so the server can shut down
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _get(self, path: str) -> Any:
        return httpx.get(f"{self.url}{path}", timeout=10).json()

    def _post(self, path: str, body: Any = None) -> Any:
        return httpx.post(f"{self.url}{path}", json=body, timeout=10).json()

    def stats(self) -> dict[str, Any]:
        return self._get("/_fake/stats")

    def last(self) -> dict[str, Any] | None:
        """The last model request: ``{"api", "path", "headers", "body"}``."""
        return self._get("/_fake/last")

    def requests(self) -> list[dict[str, Any]]:
        return self._get("/_fake/requests")

    def hold(self, after: int | None = None) -> None:
        """Hold requests now, or once ``after`` requests have been answered in all."""
        self._post("/_fake/hold", None if after is None else {"after": after})

    def release(self) -> None:
        self._post("/_fake/release")

    def add_faults(self, faults: list[dict[str, Any]]) -> None:
        self._post("/_fake/faults", {"faults": faults})

    def set_script(self, script: dict[str, Any] | list[Any]) -> None:
        """Replace the script (entries and faults); counters and the request log stay."""
        self._post("/_fake/script", script)

    def reset(self, script: dict[str, Any] | list[Any] | None = None) -> None:
        """Start over with ``script``: counters, request log, hold and prompt cache cleared (one server, many tests)."""
        self._post("/_fake/reset", script)


@dataclass
class FakeLLMProcess:
    """The fake as its own process (``python -m tests.fakes.llm_server``)."""

    url: str
    process: subprocess.Popen[bytes]

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def stats(self) -> dict[str, Any]:
        return httpx.get(f"{self.url}/_fake/stats", timeout=10).json()


def start_fake_llm_process(
    script: dict[str, Any] | list[Any] | str | Path, *, api_key: str | None = None, workdir: Path | None = None
) -> FakeLLMProcess:
    """Start the fake as a subprocess on a free port; wait until /healthz answers.

    A dict or list script is written to ``workdir`` (default: a temporary folder) first.
    """
    if not isinstance(script, str | Path):
        import tempfile

        folder = workdir or Path(tempfile.mkdtemp(prefix="fake-llm-"))
        path = folder / "fake-llm-script.json"
        path.write_text(json.dumps(load_script(script)), encoding="utf-8")
        script = path
    from conftest import free_port, wait_until_healthy  # test-side only: the server itself never needs it

    port = free_port()
    cmd = [sys.executable, "-m", "tests.fakes.llm_server", "--script", str(script), "--port", str(port)]
    if api_key is not None:
        cmd += ["--api-key", api_key]
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(process, url, "fake LLM server")
    return FakeLLMProcess(url, process)


def stop_fake_llm_process(fake: FakeLLMProcess) -> None:
    fake.process.terminate()
    try:
        fake.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        fake.process.kill()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake Anthropic / OpenAI-compatible LLM server for tests.")
    parser.add_argument("--script", type=Path, help="JSON script: {entries: [...], faults: [...]}")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: a free port")
    parser.add_argument("--api-key", help="require this key (Anthropic: any key when not given)")
    args = parser.parse_args(argv)
    app, _ = create_app(args.script, api_key=args.api_key)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"fake LLM server on http://{args.host}:{sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="off", loop="asyncio", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
