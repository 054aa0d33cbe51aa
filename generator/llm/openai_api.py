"""Any OpenAI-compatible chat completions server (OpenAI, vLLM as the EnvScaler paper used, SGLang ...).

Plain ``httpx``, no SDK: the request is one POST, and servers differ in the details an SDK
would insist on (vLLM needs no key; some servers answer in ``content`` instead of a tool call).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any
from urllib.parse import urlparse

import httpx

from envfarm.generator.llm.answers import cut_off, from_arguments, from_text
from envfarm.generator.llm.errors import LLMError, MissingCredentials, RetryableError
from envfarm.generator.llm.pricing import flat_price
from envfarm.generator.llm.provider import parse_retry_after
from envfarm.generator.llm.request import Request, Response, Usage

log = logging.getLogger("envfarm.generator.llm")

DEFAULT_BASE_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4.1-mini"
RETRY_STATUSES = {408, 409, 425, 429}  # and every 5xx


def _hosted(base_url: str) -> bool:
    return urlparse(base_url).hostname == "api.openai.com"


class OpenAIProvider:
    """Chat completions with a forced function call. A key is required only by api.openai.com itself."""

    name = "openai"

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        base_url: str | None = None,
        api_key: str | None = None,
        price_in: float = 0.0,
        price_out: float = 0.0,
        *,
        timeout: float = 600.0,
    ) -> None:
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.api_key = api_key or os.environ.get("OPENAI_API_KEY")
        if not self.api_key and _hosted(self.base_url):
            raise MissingCredentials(
                "set OPENAI_API_KEY to use api.openai.com (or set --base-url / OPENAI_BASE_URL to your own server)"
            )
        if _hosted(self.base_url) and not (price_in or price_out):
            log.warning("no price given for %s on api.openai.com: costs are reported as 0 (see --price-in/out)", model)
        self.price = flat_price(price_in, price_out)
        self._timeout = httpx.Timeout(timeout, connect=15.0)
        self._client: httpx.AsyncClient | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _http(self) -> httpx.AsyncClient:
        """One client per event loop (its connection pool belongs to the loop that opened it)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client = httpx.AsyncClient(timeout=self._timeout)
            self._loop = loop
        return self._client

    def body(self, request: Request) -> dict[str, Any]:
        """The chat completions request body for ``request``."""
        messages = [{"role": "system", "content": request.system}] if request.system else []
        messages += [{"role": m["role"], "content": m["content"]} for m in request.messages]
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": request.schema_name,
                        "description": request.schema.get("description")
                        or f"Submit the answer: call {request.schema_name} once, with the whole answer as its input.",
                        "parameters": request.schema,
                    },
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": request.schema_name}},
            "temperature": request.temperature,
        }
        # api.openai.com's newer models only take max_completion_tokens; other servers all know max_tokens.
        body["max_completion_tokens" if _hosted(self.base_url) else "max_tokens"] = request.max_tokens
        return body

    async def complete(self, request: Request) -> Response:
        headers = {"authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        url = f"{self.base_url}/chat/completions"
        try:
            r = await self._http().post(url, json=self.body(request), headers=headers)
        except httpx.TransportError as e:  # connect errors, timeouts, a dropped connection
            raise RetryableError(None, None, f"{type(e).__name__} talking to {url}: {e}") from e
        if r.status_code >= 400:
            raise _status_error(r, url)
        try:
            payload = r.json()
            return self._response(request, payload)
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as e:
            raise LLMError(f"{url} answered 200 with something that is not a chat completion: {r.text[:300]!r}") from e

    def _response(self, request: Request, payload: dict[str, Any]) -> Response:
        choice = payload["choices"][0]
        message = choice["message"]
        finish = choice.get("finish_reason")
        u = payload.get("usage") or {}
        cached = int((u.get("prompt_tokens_details") or {}).get("cached_tokens") or 0)
        usage = Usage(
            input_tokens=max(0, int(u.get("prompt_tokens") or 0) - cached),
            output_tokens=int(u.get("completion_tokens") or 0),
            cache_read_tokens=cached,
        )
        calls = message.get("tool_calls") or []
        call = next((c for c in calls if c.get("function", {}).get("name") == request.schema_name), None)
        call = call or (calls[0] if calls else None)
        data: dict[str, Any] | None
        problem: str | None
        if call is not None:
            arguments = call["function"].get("arguments")
            text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
            if finish == "length":
                data, problem = None, cut_off(request)
            else:
                data, problem = from_arguments(text, request)
        else:
            text = message.get("content") or ""
            if finish == "length":
                data, problem = None, f"the model did not call {request.schema_name} (finish_reason: length)"
            else:
                data, problem = from_text(text, request, f"finish_reason: {finish}")
        return Response(data=data, text=text, problem=problem, usage=usage, cost_usd=self.price.cost(usage))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _status_error(r: httpx.Response, url: str) -> LLMError:
    try:
        body = r.json()
    except ValueError:
        body = None
    message = None
    if isinstance(body, dict):
        error = body.get("error")
        message = error.get("message") if isinstance(error, dict) else error
        message = message or body.get("message") or body.get("detail")
    message = str(message or r.text[:500] or r.reason_phrase)
    if r.status_code in RETRY_STATUSES or r.status_code >= 500:
        return RetryableError(r.status_code, parse_retry_after(r.headers.get("retry-after")), message)
    if r.status_code == 401:
        return LLMError(f"{url} rejected the API key (401): {message}; check OPENAI_API_KEY")
    return LLMError(f"{url} answered {r.status_code}: {message}")
