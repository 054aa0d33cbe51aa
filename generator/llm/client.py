"""``LLM``: what the generator calls. A provider plus the on-disk cache, retries, a concurrency cap and a budget."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

from envfarm.generator.llm.answers import validator_for
from envfarm.generator.llm.cache import make_entry, read_entry, write_entry
from envfarm.generator.llm.errors import BudgetExceeded, LLMError, RetryableError
from envfarm.generator.llm.ledger import Ledger
from envfarm.generator.llm.provider import Provider
from envfarm.generator.llm.request import Request, Response

log = logging.getLogger("envfarm.generator.llm")


class LLM:
    """Ask structured questions; every answer is cached by content hash, every call and retry is counted.

    ``concurrency`` caps calls in flight (rate limits hurt more than waiting); ``budget_usd`` stops the run
    before a call once live calls have cost that much; failed calls are retried ``max_retries`` times with
    exponential backoff (``backoff_seconds`` doubling, with jitter), or after the server's ``retry-after``,
    never longer than ``max_backoff_seconds``.
    """

    def __init__(
        self,
        provider: Provider,
        *,
        cache_dir: Path | None,
        concurrency: int = 4,
        budget_usd: float | None = None,
        max_retries: int = 6,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 60.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self.provider = provider
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.concurrency = concurrency
        self.budget_usd = budget_usd
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.ledger = Ledger()
        self._slots = asyncio.Semaphore(concurrency)
        self._pending: dict[str, asyncio.Future[Response]] = {}
        # How backoff waits; tests swap it to record the delays instead of sleeping.
        self.sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    async def ask(self, request: Request) -> Response:
        """The answer to ``request``: from the cache if it was asked before, else from one live call (retried)."""
        validator_for(request.schema)  # a broken schema fails here, before anything is spent
        key = request.key(self.provider.name, self.provider.model)
        if self.cache_dir is not None:
            entry = read_entry(self.cache_dir, key)
            if entry is not None:
                response = Response.from_dict(entry["response"], cached=True)
                self.ledger.answer(request.stage, response)
                return response
        pending = self._pending.get(key)
        if pending is not None:  # the same request is in flight: share its answer instead of paying twice
            response = replace(await asyncio.shield(pending), cached=True)
            self.ledger.answer(request.stage, response)
            return response
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
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

    def _check_budget(self, request: Request) -> None:
        if self.budget_usd is not None and self.ledger.spent_usd >= self.budget_usd:
            raise BudgetExceeded(self.ledger.spent_usd, self.budget_usd, request.stage)

    async def _live(self, request: Request, key: str) -> Response:
        self._check_budget(request)
        async with self._slots:
            self._check_budget(request)  # calls that finished while this one waited for a slot count too
            began = time.monotonic()
            try:
                response = await self._call_with_retries(request)
            except BaseException:
                self.ledger.error(request.stage, time.monotonic() - began)
                raise
            seconds = time.monotonic() - began
        if self.cache_dir is not None:
            write_entry(self.cache_dir, make_entry(key, request, self.provider.name, self.provider.model, response))
        self.ledger.answer(request.stage, response, seconds)
        return response

    async def _call_with_retries(self, request: Request) -> Response:
        attempt = 0
        while True:
            try:
                return await self.provider.complete(request)
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
        """Close the provider's connections (when it has any)."""
        close = getattr(self.provider, "aclose", None)
        if close is not None:
            await close()
