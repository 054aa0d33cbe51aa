"""What a provider is, and ``make_provider`` to build one by name for the command line."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Protocol, runtime_checkable

from envfarm.generator.llm.errors import LLMError
from envfarm.generator.llm.request import Request, Response

PROVIDERS = ("anthropic", "openai", "replay")


@runtime_checkable
class Provider(Protocol):
    """Answers one request with one call: no cache, no retries, no budget (``LLM`` adds those).

    ``complete`` raises ``RetryableError`` on 429 / 529 / 5xx / lost connections and ``LLMError`` on
    anything a retry cannot fix (a rejected request, a bad key).
    """

    name: str  # "anthropic" | "openai" | "replay"
    model: str

    async def complete(self, request: Request) -> Response: ...


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``retry-after`` header (seconds, possibly fractional, or an HTTP date); None if absent."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def make_provider(
    name: str,
    model: str | None = None,
    base_url: str | None = None,
    recording: str | Path | None = None,
    price_in: float | None = None,
    price_out: float | None = None,
    timeout: float | None = None,
) -> Provider:
    """A provider by name, with each one's defaults.

    - ``anthropic``: model ``claude-sonnet-4-6``, key from ``ANTHROPIC_API_KEY``; ``price_in``/``price_out``
      override the price table (for a model it does not know yet).
    - ``openai``: any OpenAI-compatible server; ``base_url`` or ``OPENAI_BASE_URL`` (default api.openai.com),
      model or ``OPENAI_MODEL``; priced at ``price_in``/``price_out`` per Mtok (default 0, a self-hosted vLLM).
    - ``replay``: answers from ``recording`` (a cache directory of an earlier run, or a recording file);
      ``model`` picks one model's answers when the recording holds several.

    ``timeout`` (seconds) bounds each HTTP call of the live providers (default: 600).
    """
    limit = {} if timeout is None else {"timeout": timeout}
    if name == "anthropic":
        from envfarm.generator.llm.anthropic_api import DEFAULT_MODEL, AnthropicProvider
        from envfarm.generator.llm.pricing import Price

        price = None
        if price_in is not None or price_out is not None:
            price = Price.standard(price_in or 0.0, price_out or 0.0)
        return AnthropicProvider(model or DEFAULT_MODEL, base_url=base_url, price=price, **limit)
    if name == "openai":
        from envfarm.generator.llm.openai_api import DEFAULT_MODEL as OPENAI_DEFAULT
        from envfarm.generator.llm.openai_api import OpenAIProvider

        return OpenAIProvider(
            model or os.environ.get("OPENAI_MODEL") or OPENAI_DEFAULT,
            base_url=base_url,
            price_in=price_in or 0.0,
            price_out=price_out or 0.0,
            **limit,
        )
    if name == "replay":
        from envfarm.generator.llm.replay import ReplayProvider

        if recording is None:
            raise LLMError("the replay provider needs a recording: a cache directory of an earlier run (--recording)")
        return ReplayProvider(recording, model=model)
    raise LLMError(f"unknown LLM provider {name!r}; known: {', '.join(PROVIDERS)}")
