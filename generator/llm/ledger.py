"""What a run asked and paid, per stage, for the run report and the budget."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from envfarm.generator.llm.request import Response


@dataclass
class StageTotals:
    """One stage's answers. ``calls`` counts every answer used, ``cached`` those of them served without a call.

    Tokens and ``cost_usd`` include cached answers at their original usage (what the answers cost when made);
    ``spent_usd`` is what this run paid; ``seconds`` is time in live calls, retries and backoff included.
    """

    calls: int = 0
    cached: int = 0
    retries: int = 0
    errors: int = 0  # asks that failed for good (retries used up, request rejected)
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float = 0.0
    spent_usd: float = 0.0
    seconds: float = 0.0

    def add(self, other: StageTotals) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for k in ("cost_usd", "spent_usd"):
            out[k] = round(out[k], 6)
        out["seconds"] = round(out["seconds"], 3)
        return out


@dataclass
class Ledger:
    """Per-stage totals of one ``LLM``."""

    stages: dict[str, StageTotals] = field(default_factory=dict)

    def stage(self, name: str) -> StageTotals:
        return self.stages.setdefault(name, StageTotals())

    def answer(self, stage: str, response: Response, seconds: float = 0.0) -> None:
        """Count one answer used by the run, live or cached."""
        t = self.stage(stage)
        t.calls += 1
        t.cached += int(response.cached)
        u = response.usage
        t.input_tokens += u.input_tokens
        t.output_tokens += u.output_tokens
        t.cache_read_tokens += u.cache_read_tokens
        t.cache_write_tokens += u.cache_write_tokens
        t.cost_usd += response.cost_usd
        if not response.cached:
            t.spent_usd += response.cost_usd
        t.seconds += seconds

    def retry(self, stage: str) -> None:
        self.stage(stage).retries += 1

    def error(self, stage: str, seconds: float = 0.0) -> None:
        t = self.stage(stage)
        t.errors += 1
        t.seconds += seconds

    @property
    def spent_usd(self) -> float:
        """What live calls of this run cost (the budget counts this)."""
        return sum(t.spent_usd for t in self.stages.values())

    @property
    def cost_usd(self) -> float:
        """What every answer used cost, cached ones at their original price."""
        return sum(t.cost_usd for t in self.stages.values())

    def totals(self) -> StageTotals:
        out = StageTotals()
        for t in self.stages.values():
            out.add(t)
        return out

    def as_dict(self) -> dict[str, Any]:
        """``{"stages": {name: totals}, "totals": ..., "spent_usd": ..., "cost_usd": ...}`` for the JSON report."""
        return {
            "stages": {name: t.as_dict() for name, t in sorted(self.stages.items())},
            "totals": self.totals().as_dict(),
            "spent_usd": round(self.spent_usd, 6),
            "cost_usd": round(self.cost_usd, 6),
        }
