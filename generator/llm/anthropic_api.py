"""Claude through the official ``anthropic`` SDK: structured answers by forced tool use, prompt caching.

The SDK's own retries are off (``max_retries=0``): ``LLM`` retries, so that every retry is
counted in the ledger and honours the run's backoff settings.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
from typing import TYPE_CHECKING, Any

from envfarm.generator.llm.answers import cut_off, from_text, from_tool_input
from envfarm.generator.llm.errors import LLMError, MissingCredentials, RetryableError
from envfarm.generator.llm.pricing import Price, anthropic_price
from envfarm.generator.llm.provider import parse_retry_after
from envfarm.generator.llm.request import Request, Response, Usage

if TYPE_CHECKING:
    import anthropic

# Not claude-sonnet-4-5: the SDK's deprecation table (anthropic 2.14) gives it end-of-life on 2026-11-30.
# Sonnet 4.6 is the newest Sonnet that takes a forced tool call and temperature 0 with no thinking by default.
DEFAULT_MODEL = "claude-sonnet-4-6"

# Prompt caching: Anthropic caches a prompt prefix (tools, then system) only from a minimum length:
# 1024 tokens for the Sonnet 4.x / Opus 4.1 family (more for some models, fewer for others). Below a model's
# minimum the marker is silently ignored and costs nothing, so we mark the system block when tools + system
# come to about 1024 tokens, estimated at ~4 characters a token. A cache write costs 1.25x input and a read
# 0.1x, so the mark pays from the second call with the same system prompt within 5 minutes, and each generator
# stage sends many. Conversation turns are not marked: they differ per call, and repairs are rare.
CACHE_MIN_TOKENS = 1024
CHARS_PER_TOKEN = 4

RETRY_STATUSES = {408, 409, 429}  # and every 5xx, 529 "overloaded" included
_MODEL = re.compile(r"^claude-(opus|sonnet|haiku|fable|mythos)-(\d+)(?:-(\d))?(?:-|$)")


def _generation(model: str) -> tuple[str, tuple[int, int]] | None:
    """``("sonnet", (4, 5))`` for claude-sonnet-4-5[-date]; None for ids of another shape."""
    m = _MODEL.match(model)
    if m is None:
        return None
    return m.group(1), (int(m.group(2)), int(m.group(3) or 0))


def thinks_by_default(model: str) -> bool:
    """Whether the model is of the Claude 5 generation (adaptive thinking on by default).

    Those reject sampling parameters (a non-default ``temperature`` is a 400, Sonnet 5 on) and, from Sonnet /
    Opus 5.5 and Fable 5.1 on, a forced ``tool_choice``; forcing a tool never went with thinking anyway. So
    they get ``tool_choice: auto`` with the answer tool alone and an instruction to call it, and no temperature.
    Earlier models (and ids we cannot read) get the forced tool call and the temperature.
    """
    gen = _generation(model)
    return gen is not None and gen[1] >= (5, 0)


def cacheable(request: Request) -> bool:
    """Whether the system prompt (with the tool schema before it) is long enough to be worth a cache mark."""
    chars = len(request.system) + len(json.dumps(request.schema))
    return chars / CHARS_PER_TOKEN >= CACHE_MIN_TOKENS


class AnthropicProvider:
    """Claude via the Messages API. Needs ``ANTHROPIC_API_KEY`` (or ``api_key``); ``base_url`` for a proxy or a fake."""

    name = "anthropic"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        api_key: str | None = None,
        base_url: str | None = None,
        *,
        price: Price | None = None,
        timeout: float = 600.0,
    ) -> None:
        key = api_key or os.environ.get("ANTHROPIC_API_KEY")
        token = None if key else os.environ.get("ANTHROPIC_AUTH_TOKEN")
        if not key and not token:
            raise MissingCredentials(
                "set ANTHROPIC_API_KEY to use the anthropic provider "
                "(or use --provider openai with an OpenAI-compatible server, or --provider replay with a recording)"
            )
        self.model = model
        self.price = price or anthropic_price(model)
        self._credentials: dict[str, Any] = {"api_key": key} if key else {"auth_token": token}
        self._base_url = base_url or os.environ.get("ANTHROPIC_BASE_URL")
        self._timeout = timeout
        # The SDK takes ~1.5 s to import: only when a provider is made (not on ``import envfarm.generator.llm``), not
        # inside the first call, where it would count as call time.
        try:
            importlib.import_module("anthropic")
        except ModuleNotFoundError:
            raise LLMError(
                "the anthropic provider needs the Anthropic SDK, which `pip install envfarm` leaves out: "
                "pip install 'envfarm[llm]'"
            ) from None
        self._client: anthropic.AsyncAnthropic | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _sdk(self) -> anthropic.AsyncAnthropic:
        """One SDK client per event loop (its connection pool belongs to the loop that opened it)."""
        import anthropic

        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = anthropic.AsyncAnthropic(
                **self._credentials, base_url=self._base_url, max_retries=0, timeout=self._timeout
            )
            self._loop = loop
        return self._client

    def params(self, request: Request) -> dict[str, Any]:
        """The Messages API request body for ``request``."""
        system: list[dict[str, Any]] = []
        if request.system:
            system.append({"type": "text", "text": request.system})
            if cacheable(request):
                system[0]["cache_control"] = {"type": "ephemeral"}
        tool = {
            "name": request.schema_name,
            "description": request.schema.get("description")
            or f"Submit the answer: call {request.schema_name} once, with the whole answer as its input.",
            "input_schema": request.schema,
        }
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "messages": [{"role": m["role"], "content": m["content"]} for m in request.messages],
            "tools": [tool],
        }
        if not thinks_by_default(self.model):
            params["tool_choice"] = {"type": "tool", "name": request.schema_name}
        else:
            params["tool_choice"] = {"type": "auto"}
            system.append({"type": "text", "text": f"Answer only by calling the tool {request.schema_name}, once."})
        if system:
            params["system"] = system
        if not thinks_by_default(self.model):
            # The 2.x SDK has no temperature argument any more (Claude 5 models reject sampling parameters);
            # the models before them still honour it, so it goes in the body as such.
            params["extra_body"] = {"temperature": request.temperature}
        return params

    async def complete(self, request: Request) -> Response:
        import anthropic

        try:
            message = await self._sdk().messages.create(**self.params(request))
        except anthropic.APIStatusError as e:
            raise _status_error(e) from e
        except anthropic.APIConnectionError as e:  # APITimeoutError included
            raise RetryableError(None, None, f"{type(e).__name__}: {e.message}") from e
        return self._response(request, message)

    def _response(self, request: Request, message: Any) -> Response:
        u = message.usage
        usage = Usage(
            input_tokens=u.input_tokens or 0,
            output_tokens=u.output_tokens or 0,
            cache_read_tokens=getattr(u, "cache_read_input_tokens", None) or 0,
            cache_write_tokens=getattr(u, "cache_creation_input_tokens", None) or 0,
        )
        stop = message.stop_reason
        blocks = list(message.content)
        call = next((b for b in blocks if b.type == "tool_use" and b.name == request.schema_name), None)
        data: dict[str, Any] | None
        problem: str | None
        if call is not None:
            text = json.dumps(call.input, ensure_ascii=False)
            if stop == "max_tokens":
                data, problem = None, cut_off(request)
            else:
                data, problem = from_tool_input(call.input, request)
        else:
            text = "".join(b.text for b in blocks if b.type == "text")
            if stop == "max_tokens":
                data, problem = None, f"the model did not call {request.schema_name} (stop_reason: max_tokens)"
            else:
                data, problem = from_text(text, request, f"stop_reason: {stop}")
        return Response(data=data, text=text, problem=problem, usage=usage, cost_usd=self.price.cost(usage))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = None


def _status_error(e: anthropic.APIStatusError) -> LLMError:
    status = e.status_code
    kind = e.type or "error"
    message = e.api_message or e.message
    if status in RETRY_STATUSES or status >= 500:
        headers = e.response.headers
        retry_after = parse_retry_after(headers.get("retry-after"))
        if retry_after is None and headers.get("retry-after-ms"):
            retry_after = (parse_retry_after(headers.get("retry-after-ms")) or 0.0) / 1000
        return RetryableError(status, retry_after, f"{kind}: {message}")
    if status == 401:
        return LLMError(f"Anthropic rejected the API key (401 {kind}): {message}; check ANTHROPIC_API_KEY")
    return LLMError(f"Anthropic answered {status} ({kind}): {message}")
