"""Asking an LLM for an answer that must survive execution: ask, test, send the error back, ask again.

Every generator stage works this way. The answer is validated against the
stage's schema by the LLM layer; ``accept`` then executes it (compiles the code,
builds the state, runs the oracle, gates the scenario ...) and raises
``Problem`` saying what is wrong. The problem goes back to the model as a new
user turn, a bounded number of times, and then the whole thing is rejected with
every reason on record. Nothing is written until ``accept`` returns.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from envfarm.generator.llm import LLM, BudgetExceeded, Ledger, LLMError, Request, Response

T = TypeVar("T")

ANSWER_CHARS = 2000  # of each rejected answer kept in the run report
ASKED_CHARS = 600  # of the question kept in the run report

REPAIR = (
    "Your answer was rejected:\n\n{problem}\n\n"
    "Fix exactly this and answer again with the whole corrected answer (not only the changed part)."
)


def at_once(check: Callable[[dict[str, Any]], T]) -> Callable[[dict[str, Any]], Awaitable[T]]:
    """An ``accept`` for ``Asker.ask`` from a check that needs no awaiting."""

    async def accept(data: dict[str, Any]) -> T:
        return check(data)

    return accept


class Problem(Exception):
    """What is wrong with an answer, said so that the model can fix it."""


def asked(request: Request) -> dict[str, Any]:
    """What was asked, for the run report: the stage, the answer tool, and the start of the last user turn."""
    last = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
    return {
        "stage": request.stage,
        "tool": request.schema_name,
        "turns": len(request.messages),
        "prompt": last if len(last) <= ASKED_CHARS else last[:ASKED_CHARS] + "...",
    }


class Rejected(Exception):
    """A stage gave up on an item after its repairs; ``problems`` holds each attempt's reason.

    ``attempts`` pairs each reason with the start of the answer it was about, and ``question``
    says what was asked: the run report shows all three.
    """

    def __init__(
        self,
        stage: str,
        problems: list[str],
        attempts: list[dict[str, str]] | None = None,
        question: dict[str, Any] | None = None,
    ) -> None:
        self.stage = stage
        self.problems = problems
        self.attempts = attempts or [{"problem": p, "answer": ""} for p in problems]
        self.question = question or {"stage": stage}
        super().__init__(f"{stage}: rejected after {len(problems)} attempt(s): {problems[-1] if problems else '?'}")

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "asked": self.question, "attempts": self.attempts}


class CallFailed(LLMError):
    """An LLM call failed for good (a rejected key, an unknown model, a server that keeps failing,
    a recording without the answer); says at which stage and what was being asked."""

    def __init__(self, stage: str, question: dict[str, Any], error: LLMError) -> None:
        self.stage = stage
        self.question = question
        self.error = error
        super().__init__(f"{stage}: the LLM call failed: {error}")


@dataclass
class Tally:
    """What one item (an environment, a scenario) cost: the answers it used, per stage, and its repairs.

    The counting is the LLM layer's ``Ledger``; the run's own ledger counts the same answers per stage.
    """

    ledger: Ledger = field(default_factory=Ledger)
    repairs: int = 0

    def add(self, request: Request, response: Response) -> None:
        self.ledger.answer(request.stage, response)

    def merge(self, other: Tally) -> None:
        for stage, totals in other.ledger.stages.items():
            self.ledger.stage(stage).add(totals)
        self.repairs += other.repairs

    def as_dict(self) -> dict[str, Any]:
        t = self.ledger.totals()
        return {
            "calls": t.calls,
            "cached": t.cached,
            "repairs": self.repairs,
            "input_tokens": t.input_tokens + t.cache_read_tokens + t.cache_write_tokens,
            "output_tokens": t.output_tokens,
            "cost_usd": round(t.cost_usd, 6),
            "by_stage": {stage: totals.calls for stage, totals in sorted(self.ledger.stages.items())},
        }


@dataclass
class Asker:
    """Ask-and-repair against one LLM, counting into a tally."""

    llm: LLM
    max_repairs: int = 2

    async def ask(
        self,
        tally: Tally,
        *,
        stage: str,
        system: str,
        prompt: str | list[dict[str, str]],
        schema: dict[str, Any],
        schema_name: str,
        accept: Callable[[dict[str, Any]], Awaitable[T]],
        max_tokens: int = 8192,
    ) -> T:
        """The accepted answer, or ``Rejected`` after ``max_repairs`` repairs.

        ``prompt`` is the user turn, or a whole conversation so far (ending with a user turn).
        """
        messages = [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)
        problems: list[str] = []
        answers: list[dict[str, str]] = []
        question: dict[str, Any] = {"stage": stage}
        for attempt in range(self.max_repairs + 1):
            request = Request(
                stage=stage,
                system=system,
                messages=tuple(messages),
                schema=schema,
                schema_name=schema_name,
                max_tokens=max_tokens,
            )
            try:
                response = await self.llm.ask(request)
            except (BudgetExceeded, CallFailed):
                raise
            except LLMError as e:
                raise CallFailed(stage, asked(request), e) from e
            tally.add(request, response)
            if attempt:
                tally.repairs += 1
            problem = response.problem
            if response.data is not None:
                try:
                    return await accept(response.data)
                except Problem as e:
                    problem = str(e)
            problems.append(problem or "no answer")
            text = response.text or ""
            answers.append(
                {
                    "problem": problem or "no answer",
                    "answer": text if len(text) <= ANSWER_CHARS else text[:ANSWER_CHARS] + "...",
                }
            )
            question = asked(request) if not attempt else question
            messages += [
                {"role": "assistant", "content": response.text or "(no answer)"},
                {"role": "user", "content": REPAIR.format(problem=problem)},
            ]
        raise Rejected(stage, problems, answers, question)
