"""How a generator run ends when it does not end well: one kind per cause, one exit code per kind.

Every failure, at any stage, becomes a :class:`Failure`: a kind, the stage, a one-line message
for the terminal and details for the run report (what was asked, what came back, why it was
refused). ``envfarm generate`` prints the message, writes the report and exits with the kind's
code (:data:`EXIT_CODES`, documented in docs/generator.md).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from envfarm.core.environments import PackageError
from envfarm.generator.llm import BudgetExceeded, LLMError
from envfarm.validators.sandbox import SandboxError

from .asking import CallFailed, Rejected
from .contained import RunnerUnavailable

#: The exit code of each kind of failure (0 is a run that made something).
EXIT_CODES: dict[str, int] = {
    "internal": 1,  # a bug in envfarm: the report holds the traceback
    "input": 2,  # bad usage or input: the corpus, a folder, an earlier stage's files, a missing key
    "runner": 2,  # this machine cannot run generated code contained (or checks sandboxed)
    "budget": 3,  # --budget-usd reached
    "rejected": 4,  # the model never gave an answer that passed: nothing was made
    "provider": 5,  # the LLM provider failed for good: key, model, server errors, timeouts, no connection
    "interrupted": 130,  # Ctrl-C (SIGINT); 143 for SIGTERM
}

#: The run report's ``status`` for each kind.
STATUS: dict[str, str] = {"budget": "budget", "rejected": "rejected", "interrupted": "interrupted"}

MESSAGE_CHARS = 400


class InputError(ValueError):
    """What the user gave cannot be used: a corpus, a folder, an earlier stage's output. Says what and where."""


@dataclass
class Failure:
    """Why a run ended without what it was asked to make."""

    kind: str
    stage: str | None
    message: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]

    @property
    def status(self) -> str:
        return STATUS.get(self.kind, "failed")

    def line(self) -> str:
        """The message on one line, short enough for a terminal."""
        text = " ".join(self.message.split())
        return text if len(text) <= MESSAGE_CHARS else text[: MESSAGE_CHARS - 3] + "..."

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "stage": self.stage,
            "message": self.message,
            "exit_code": self.exit_code,
            **self.details,
        }


def classify(error: BaseException, stage: str | None) -> Failure:
    """The failure an exception that ended a run stands for."""
    if isinstance(error, BudgetExceeded):
        return Failure("budget", error.stage or stage, f"{error}; run again with a higher --budget-usd to go on")
    if isinstance(error, Rejected):
        attempts = len(error.problems)
        last = error.problems[-1] if error.problems else "?"
        message = (
            f"{error.stage}: the model's answers were rejected {attempts} time(s), nothing to go on with; last: {last}"
        )
        return Failure("rejected", error.stage, message, error.as_dict())
    if isinstance(error, CallFailed):
        return Failure("provider", error.stage, str(error), {"asked": error.question, "error": str(error.error)})
    if isinstance(error, LLMError):
        return Failure("provider", stage, f"{stage or 'generate'}: the LLM call failed: {error}")
    if isinstance(error, RunnerUnavailable):
        return Failure("runner", stage, str(error))
    if isinstance(error, InputError | PackageError):
        return Failure("input", stage, str(error))
    if isinstance(error, SandboxError):
        return Failure("runner", stage, f"the check sandbox cannot run here: {error}")
    if isinstance(error, OSError) and error.filename is not None:
        return Failure("input", stage, f"{stage or 'generate'}: cannot write {error.filename}: {error.strerror}")
    where = f"{stage}: " if stage else ""
    return Failure(
        "internal",
        stage,
        f"{where}internal error (a bug in envfarm): {type(error).__name__}: {error}",
        {"traceback": "".join(traceback.format_exception(error))[-8000:]},
    )
