"""What can go wrong when asking an LLM, as exceptions the generator can tell apart.

Everything is an ``LLMError``, so a caller that only wants "the call failed" catches one
class; the subclasses exist for the cases a caller handles differently (retry, stop the
run cleanly, tell the user to set a key, re-record a replay).
"""

from __future__ import annotations


class LLMError(Exception):
    """A call failed for good: a rejected request, a bad key, retries used up ..."""


class RetryableError(LLMError):
    """A failure worth another try (429, 529, 5xx, connection lost); raised by providers, retried by ``LLM``.

    ``retry_after`` is the server's own wait in seconds (the ``retry-after`` header) when it gave one.
    """

    def __init__(self, status: int | None, retry_after: float | None, message: str) -> None:
        self.status = status
        self.retry_after = retry_after
        self.message = message
        super().__init__(f"{status if status is not None else 'connection'}: {message}")


class BudgetExceeded(LLMError):
    """The run's budget is spent; raised before a call, so nothing more is spent."""

    def __init__(self, spent: float, budget: float, stage: str | None = None) -> None:
        self.spent = spent
        self.budget = budget
        self.stage = stage
        where = f" (next call: stage {stage})" if stage else ""
        super().__init__(f"LLM budget spent: ${spent:.4f} of ${budget:.4f}; no further calls made{where}")


class MissingCredentials(LLMError):
    """No API key where one is required; raised when the provider is made, before any work starts."""


class ReplayMiss(LLMError):
    """A replayed run asked something the recording does not hold."""

    def __init__(self, stage: str, key: str, recording: str) -> None:
        self.stage = stage
        self.key = key
        self.recording = recording
        super().__init__(
            f"the recording {recording} does not contain this request (stage {stage!r}, key {key}); "
            "record it again with a live provider (the cache directory of a live run is a recording)"
        )
