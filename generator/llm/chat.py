"""Chat turns with tools, for agents: the provider-neutral message format, and each provider's side of it.

The generator asks for JSON answers (:class:`~envfarm.generator.llm.request.Request`); an agent has a
conversation. A :class:`ChatRequest` is a system prompt, the messages so far and the tool definitions;
its :class:`ChatResponse` is text and/or tool calls, with usage and cost. :class:`ChatLLM` adds what
``LLM`` adds to the generator's requests: the on-disk cache by content hash, retries of 429 / 529 /
5xx honouring ``retry-after``, a concurrency cap, the per-stage ledger and a budget.

The message format (what ``envfarm run`` stores in ``results.jsonl``), oldest first::

    {"role": "system", "content": "You are the circulation desk assistant ..."}
    {"role": "user", "content": "I returned 'Dune' today ..."}
    {"role": "assistant", "content": "Let me look you up." | None,
     "tool_calls": [{"id": "toolu_1", "name": "find_member",
                     "arguments": {"query": "Ada"},        # the parsed object; None when not a JSON object
                     "raw_arguments": "{\"query\": \"Ada\"}"}]}   # exactly what the model sent
    {"role": "tool", "tool_call_id": "toolu_1", "content": "[{\"id\": 1, ...}]", "is_error": False}

An assistant message may also carry ``reasoning``: opaque blocks a provider needs back on the next turn
(Anthropic's ``thinking`` blocks, with their signatures) or sent along (vLLM's ``reasoning_content``).
A tool is ``{"name", "description", "input_schema"}`` (MCP's ``tools/list``, JSON Schema).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Required, TypedDict, runtime_checkable

from envfarm.generator.llm.anthropic_api import CACHE_MIN_TOKENS, CHARS_PER_TOKEN, AnthropicProvider, thinks_by_default
from envfarm.generator.llm.anthropic_api import _status_error as _anthropic_status_error
from envfarm.generator.llm.cache import FORMAT, iter_entries, read_entry, write_entry
from envfarm.generator.llm.errors import BudgetExceeded, LLMError, ReplayMiss, RetryableError
from envfarm.generator.llm.ledger import Ledger
from envfarm.generator.llm.openai_api import OpenAIProvider, _hosted
from envfarm.generator.llm.openai_api import _status_error as _openai_status_error
from envfarm.generator.llm.request import Response, Usage

log = logging.getLogger("envfarm.generator.llm")

ANTHROPIC_THINKING = ("thinking", "redacted_thinking")  # reasoning blocks Anthropic wants back, unchanged


class ToolCall(TypedDict):
    """One tool call the model made. ``arguments`` is None when ``raw_arguments`` is not a JSON object."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str


class Message(TypedDict, total=False):
    """One message of a conversation (see the module docstring)."""

    role: Required[str]  # "system" | "user" | "assistant" | "tool"
    content: Required[str | None]
    tool_calls: list[ToolCall]  # assistant only
    tool_call_id: str  # tool only
    is_error: bool  # tool only
    reasoning: list[dict[str, Any]]  # assistant only, when the provider gave any


class ToolDef(TypedDict):
    name: str
    description: str
    input_schema: dict[str, Any]


def tool_call(call_id: str, name: str, raw: Any) -> ToolCall:
    """A tool call from what a model sent: arguments as a JSON string (OpenAI) or an object (Anthropic)."""
    if isinstance(raw, str):
        text = raw
        try:
            value = json.loads(raw) if raw.strip() else {}
        except ValueError:
            value = None
    else:
        value = raw
        text = json.dumps(raw, ensure_ascii=False)
    return {"id": call_id, "name": name, "arguments": value if isinstance(value, dict) else None, "raw_arguments": text}


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class ChatRequest:
    """One turn of a conversation: answer the last message, possibly with tool calls.

    ``stage`` names who is speaking ("agent", "user" for a simulated user) for the ledger. ``sample`` tells
    apart answers to the same prompt that must not share the cache (trial 0, 1, ... of an episode); it is part
    of the cache key and never sent.
    """

    stage: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolDef, ...] = ()
    max_tokens: int = 4096
    temperature: float = 0.0
    sample: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": "chat",
            "stage": self.stage,
            "system": self.system,
            "messages": list(self.messages),
            "tools": list(self.tools),
            "max_tokens": int(self.max_tokens),
            "temperature": float(self.temperature),
            "sample": int(self.sample),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ChatRequest:
        return cls(
            stage=data["stage"],
            system=data["system"],
            messages=tuple(data["messages"]),
            tools=tuple(data.get("tools", ())),
            max_tokens=int(data.get("max_tokens", 4096)),
            temperature=float(data.get("temperature", 0.0)),
            sample=int(data.get("sample", 0)),
        )

    def key(self, provider: str, model: str) -> str:
        """The cache key: sha256 of the canonical JSON of every field, the provider and the model."""
        canonical = _canonical({"request": self.as_dict(), "provider": provider, "model": model})
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def chars(self) -> int:
        """Characters of the whole prompt (for token estimates)."""
        return len(self.system) + len(_canonical(list(self.tools))) + len(_canonical(list(self.messages)))


@dataclass
class ChatResponse(Response):
    """The model's turn: ``text`` (may be empty) and ``tool_calls`` (may be empty); ``data`` is unused (None).

    ``stop_reason`` is Anthropic's word for why the turn ended: ``end_turn``, ``tool_use``, ``max_tokens`` ...
    (OpenAI's ``stop`` / ``tool_calls`` / ``length`` are mapped to those).
    """

    tool_calls: list[ToolCall] = field(default_factory=list)
    stop_reason: str | None = None
    reasoning: list[dict[str, Any]] = field(default_factory=list)

    def message(self) -> Message:
        """The turn as an assistant message of the neutral format."""
        out: Message = {"role": "assistant", "content": self.text or None}
        if self.tool_calls:
            out["tool_calls"] = list(self.tool_calls)
        if self.reasoning:
            out["reasoning"] = list(self.reasoning)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "tool_calls": self.tool_calls,
            "stop_reason": self.stop_reason,
            "reasoning": self.reasoning,
            "usage": self.usage.as_dict(),
            "cost_usd": self.cost_usd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, cached: bool) -> ChatResponse:
        return cls(
            data=None,
            text=data.get("text") or "",
            problem=None,
            usage=Usage.from_dict(data.get("usage", {})),
            cost_usd=float(data.get("cost_usd", 0.0)),
            cached=cached,
            tool_calls=list(data.get("tool_calls") or []),
            stop_reason=data.get("stop_reason"),
            reasoning=list(data.get("reasoning") or []),
        )


@runtime_checkable
class ChatProvider(Protocol):
    """Answers one chat turn with one call: no cache, no retries (``ChatLLM`` adds those).

    ``chat`` raises ``RetryableError`` on 429 / 529 / 5xx / lost connections, ``LLMError`` otherwise.
    """

    name: str
    model: str

    async def chat(self, request: ChatRequest) -> ChatResponse: ...


# --- Anthropic -------------------------------------------------------------------------------------------


def anthropic_messages(messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral messages as Messages API turns: tool results become ``tool_result`` blocks of a user turn,
    consecutive turns of one role are merged (the API wants them alternating), system messages are left out."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m["role"]
        blocks: list[dict[str, Any]] = []
        if role == "system":
            continue
        if role == "tool":
            result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.get("tool_call_id", ""), "content": []}
            if m.get("content"):
                result["content"] = [{"type": "text", "text": m["content"]}]
            if m.get("is_error"):
                result["is_error"] = True
            blocks.append(result)
            role = "user"
        elif role == "assistant":
            blocks += [b for b in m.get("reasoning", []) if b.get("type") in ANTHROPIC_THINKING]
            if m.get("content"):
                blocks.append({"type": "text", "text": m["content"]})
            for call in m.get("tool_calls", []):
                arguments = call["arguments"] if isinstance(call.get("arguments"), dict) else {}
                blocks.append({"type": "tool_use", "id": call["id"], "name": call["name"], "input": arguments})
        else:
            blocks.append({"type": "text", "text": m.get("content") or "(empty message)"})
        if not blocks:
            blocks.append({"type": "text", "text": "(empty message)"})
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


class AnthropicChatProvider(AnthropicProvider):
    """Claude's Messages API with tools, through the official SDK (prompt caching on long prompts)."""

    def chat_params(self, request: ChatRequest) -> dict[str, Any]:
        """The Messages API request body for a chat turn."""
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": anthropic_messages(request.messages),
        }
        if request.tools:
            params["tools"] = [
                {"name": t["name"], "description": t.get("description") or "", "input_schema": t["input_schema"]}
                for t in request.tools
            ]
        # Prompt caching: tools + system are the same on every turn of every episode of an environment, and each
        # turn repeats the conversation before it; mark both once the prompt is long enough to be cached at all.
        prefix_chars = len(request.system) + len(_canonical(params.get("tools", [])))
        if request.system:
            block: dict[str, Any] = {"type": "text", "text": request.system}
            if prefix_chars / CHARS_PER_TOKEN >= CACHE_MIN_TOKENS:
                block["cache_control"] = {"type": "ephemeral"}
            params["system"] = [block]
        if request.chars() / CHARS_PER_TOKEN >= CACHE_MIN_TOKENS and params["messages"]:
            last = params["messages"][-1]["content"][-1]
            if last.get("type") not in ANTHROPIC_THINKING:
                last["cache_control"] = {"type": "ephemeral"}
        if not thinks_by_default(self.model):
            params["extra_body"] = {"temperature": request.temperature}
        return params

    async def chat(self, request: ChatRequest) -> ChatResponse:
        import anthropic

        try:
            message = await self._sdk().messages.create(**self.chat_params(request))
        except anthropic.APIStatusError as e:
            raise _anthropic_status_error(e) from e
        except anthropic.APIConnectionError as e:
            raise RetryableError(None, None, f"{type(e).__name__}: {e.message}") from e
        return self._chat_response(message)

    def _chat_response(self, message: Any) -> ChatResponse:
        u = message.usage
        usage = Usage(
            input_tokens=u.input_tokens or 0,
            output_tokens=u.output_tokens or 0,
            cache_read_tokens=getattr(u, "cache_read_input_tokens", None) or 0,
            cache_write_tokens=getattr(u, "cache_creation_input_tokens", None) or 0,
        )
        texts: list[str] = []
        calls: list[ToolCall] = []
        reasoning: list[dict[str, Any]] = []
        for block in message.content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                calls.append(tool_call(block.id, block.name, block.input))
            elif block.type in ANTHROPIC_THINKING:
                reasoning.append(block.model_dump(mode="json", exclude_none=True))
        return ChatResponse(
            data=None,
            text="".join(texts),
            problem=None,
            usage=usage,
            cost_usd=self.price.cost(usage),
            tool_calls=calls,
            stop_reason=message.stop_reason,
            reasoning=reasoning,
        )


# --- OpenAI-compatible -----------------------------------------------------------------------------------

_FINISH = {"stop": "end_turn", "tool_calls": "tool_use", "function_call": "tool_use", "length": "max_tokens"}


def openai_messages(system: str, messages: Sequence[Message]) -> list[dict[str, Any]]:
    """Neutral messages as chat completions messages (what vLLM, SGLang and OpenAI take)."""
    out: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for m in messages:
        role = m["role"]
        if role == "system":
            continue
        if role == "assistant":
            message: dict[str, Any] = {"role": "assistant", "content": m.get("content")}
            if m.get("tool_calls"):
                message["tool_calls"] = [
                    {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": raw}}
                    for c in m["tool_calls"]
                    for raw in [c["raw_arguments"]]
                ]
            out.append(message)
        elif role == "tool":
            out.append({"role": "tool", "tool_call_id": m.get("tool_call_id", ""), "content": m.get("content") or ""})
        else:
            out.append({"role": role, "content": m.get("content") or ""})
    return out


def openai_tools(tools: Sequence[ToolDef]) -> list[dict[str, Any]]:
    """Tool definitions as chat completions ``tools``."""
    return [
        {
            "type": "function",
            "function": {"name": t["name"], "description": t.get("description") or "", "parameters": t["input_schema"]},
        }
        for t in tools
    ]


def openai_turn(
    message: dict[str, Any], finish: str | None, fallback_id: str
) -> tuple[str, list[ToolCall], str | None]:
    """Text, tool calls and the stop reason of a chat completions answer's message.

    A call without an id gets ``fallback_id`` and its index (some servers leave ids out).
    """
    calls: list[ToolCall] = []
    for i, raw in enumerate(message.get("tool_calls") or []):
        function = raw.get("function") or {}
        arguments = function.get("arguments")
        calls.append(tool_call(str(raw.get("id") or f"{fallback_id}_{i}"), str(function.get("name") or ""), arguments))
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    return text, calls, _FINISH.get(finish or "", finish)


class OpenAIChatProvider(OpenAIProvider):
    """Chat completions with tools over plain httpx: OpenAI, vLLM (``--enable-auto-tool-choice``), SGLang ..."""

    def chat_body(self, request: ChatRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": openai_messages(request.system, request.messages),
            "temperature": request.temperature,
        }
        if request.tools:
            body["tools"] = openai_tools(request.tools)
        body["max_completion_tokens" if _hosted(self.base_url) else "max_tokens"] = request.max_tokens
        return body

    async def chat(self, request: ChatRequest) -> ChatResponse:
        import httpx

        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = f"{self.base_url}/chat/completions"
        try:
            r = await self._http().post(url, json=self.chat_body(request), headers=headers)
        except httpx.TransportError as e:
            raise RetryableError(None, None, f"{type(e).__name__} talking to {url}: {e}") from e
        if r.status_code >= 400:
            raise _openai_status_error(r, url)
        try:
            payload = r.json()
            choice = payload["choices"][0]
            message = choice["message"]
            ids = all(c.get("id") for c in message.get("tool_calls") or [])
            fallback = "" if ids else "call_" + request.key("", "")[:12]  # ids from the conversation: stable on resume
            text, calls, stop = openai_turn(message, choice.get("finish_reason"), fallback)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise LLMError(f"{url} answered 200 with something that is not a chat completion: {r.text[:300]!r}") from e
        u = payload.get("usage") or {}
        cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        usage = Usage(
            input_tokens=max(0, int(u.get("prompt_tokens") or 0) - cached),
            output_tokens=int(u.get("completion_tokens") or 0),
            cache_read_tokens=cached,
        )
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        return ChatResponse(
            data=None,
            text=text,
            problem=None,
            usage=usage,
            cost_usd=self.price.cost(usage),
            tool_calls=calls,
            stop_reason=stop,
            reasoning=[{"type": "reasoning_content", "text": reasoning}] if isinstance(reasoning, str) else [],
        )


# --- Replay ----------------------------------------------------------------------------------------------


class ChatReplayProvider:
    """Chat turns from a recording: the cache directory of an earlier run (``RUN_DIR/cache``).

    Looked up by the request alone, whatever provider and model answered it (as ``ReplayProvider`` does).
    """

    name = "replay"

    def __init__(self, recording_dir: str | Path, model: str | None = None) -> None:
        self.recording = Path(recording_dir)
        if not self.recording.is_dir():
            raise LLMError(f"recording {self.recording} is not a directory (expected the cache folder of a run)")
        self._entries: dict[str, dict[str, Any]] = {}
        models: set[str] = set()
        for entry in sorted(iter_entries(self.recording), key=lambda e: str(e.get("created", ""))):
            if entry["request"].get("kind") != "chat" or (model is not None and entry.get("model") != model):
                continue
            models.add(str(entry.get("model")))
            self._entries[ChatRequest.from_dict(entry["request"]).key("", "")] = entry
        self.model = model or (models.pop() if len(models) == 1 else "recorded")

    def __len__(self) -> int:
        return len(self._entries)

    async def chat(self, request: ChatRequest) -> ChatResponse:
        entry = self._entries.get(request.key("", ""))
        if entry is None:
            raise ReplayMiss(request.stage, request.key(self.name, self.model), str(self.recording))
        return ChatResponse.from_dict(entry["response"], cached=True)


def make_chat_provider(
    name: str,
    model: str | None = None,
    base_url: str | None = None,
    recording: str | Path | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
) -> ChatProvider:
    """A chat provider by name, with the defaults of :func:`~envfarm.generator.llm.provider.make_provider`."""
    if name == "anthropic":
        from envfarm.generator.llm.anthropic_api import DEFAULT_MODEL
        from envfarm.generator.llm.pricing import Price

        price = None
        if price_in is not None or price_out is not None:
            price = Price.standard(price_in or 0.0, price_out or 0.0)
        return AnthropicChatProvider(model or DEFAULT_MODEL, base_url=base_url, price=price)
    if name == "openai":
        import os

        from envfarm.generator.llm.openai_api import DEFAULT_MODEL as OPENAI_DEFAULT

        return OpenAIChatProvider(
            model or os.environ.get("OPENAI_MODEL") or OPENAI_DEFAULT,
            base_url=base_url,
            price_in=price_in or 0.0,
            price_out=price_out or 0.0,
        )
    if name == "replay":
        if recording is None:
            raise LLMError("the replay provider needs a recording: the cache folder of an earlier run (--recording)")
        return ChatReplayProvider(recording, model=model)
    raise LLMError(f"unknown LLM provider {name!r}; known: anthropic, openai, replay")


# --- The client ------------------------------------------------------------------------------------------


class ChatLLM:
    """Chat turns with the cache, retries, concurrency cap, ledger and budget of ``LLM``.

    With ``cache_dir`` set, every answer is stored by content hash and a repeated request (a resumed run) is
    answered from disk; identical requests in flight at once share one call. Without it (RL rollouts, where
    every sample must be drawn afresh) nothing is stored or shared.
    """

    def __init__(
        self,
        provider: ChatProvider,
        *,
        cache_dir: Path | None,
        concurrency: int = 4,
        budget_usd: float | None = None,
        max_retries: int = 6,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
        ledger: Ledger | None = None,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.provider = provider
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.budget_usd = budget_usd
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.ledger = ledger if ledger is not None else Ledger()  # shared by an agent and its simulated user
        self._slots = asyncio.Semaphore(concurrency)
        self._pending: dict[str, asyncio.Future[ChatResponse]] = {}
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def chat(self, request: ChatRequest) -> ChatResponse:
        """The answer to ``request``: from the cache if asked before, else from one live call (retried)."""
        if self.cache_dir is None:
            return await self._live(request, None)
        key = request.key(self.provider.name, self.provider.model)
        entry = read_entry(self.cache_dir, key)
        if entry is not None:
            response = ChatResponse.from_dict(entry["response"], cached=True)
            self.ledger.answer(request.stage, response)
            return response
        pending = self._pending.get(key)
        if pending is not None:  # the same request is in flight: share its answer instead of paying twice
            response = ChatResponse.from_dict((await asyncio.shield(pending)).as_dict(), cached=True)
            self.ledger.answer(request.stage, response)
            return response
        future: asyncio.Future[ChatResponse] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # no "never retrieved" warning
        self._pending[key] = future
        try:
            response = await self._live(request, key)
        except BaseException as e:
            future.set_exception(e if isinstance(e, Exception) else LLMError(f"{request.stage}: call interrupted"))
            raise
        else:
            future.set_result(response)
        finally:
            del self._pending[key]
        return response

    def _check_budget(self, request: ChatRequest) -> None:
        if self.budget_usd is not None and self.ledger.spent_usd >= self.budget_usd:
            raise BudgetExceeded(self.ledger.spent_usd, self.budget_usd, request.stage)

    async def _live(self, request: ChatRequest, key: str | None) -> ChatResponse:
        self._check_budget(request)
        async with self._slots:
            self._check_budget(request)
            began = time.monotonic()
            try:
                response = await self._with_retries(request)
            except BaseException:
                self.ledger.error(request.stage, time.monotonic() - began)
                raise
            seconds = time.monotonic() - began
        if key is not None and self.cache_dir is not None:
            entry = {
                "format": FORMAT,
                "key": key,
                "provider": self.provider.name,
                "model": self.provider.model,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "request": request.as_dict(),
                "response": response.as_dict(),
            }
            # Written (and fsynced) off the event loop: hundreds of episodes in flight must not wait on the disk.
            await asyncio.to_thread(write_entry, self.cache_dir, entry)
        self.ledger.answer(request.stage, response, seconds)
        return response

    async def _with_retries(self, request: ChatRequest) -> ChatResponse:
        attempt = 0
        while True:
            try:
                return await self.provider.chat(request)
            except RetryableError as e:
                if attempt >= self.max_retries:
                    raise LLMError(
                        f"{request.stage}: {self.provider.name} still failing after {attempt + 1} attempts: {e}"
                    ) from e
                attempt += 1
                self.ledger.retry(request.stage)
                delay = self.delay(attempt, e.retry_after)
                log.warning(
                    "%s: %s failed (%s); retry %d/%d in %.1f s",
                    request.stage,
                    self.provider.name,
                    e,
                    attempt,
                    self.max_retries,
                    delay,
                )
                await self.sleep(delay)

    def delay(self, attempt: int, retry_after: float | None) -> float:
        """Seconds before retry ``attempt`` (1-based): the server's wish if it said, else backoff with jitter."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff_seconds)
        base = self.backoff_seconds * 2 ** (attempt - 1)
        return min(base * (0.5 + random.random() / 2), self.max_backoff_seconds)

    async def aclose(self) -> None:
        close = getattr(self.provider, "aclose", None)
        if close is not None:
            await close()
