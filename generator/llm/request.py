"""One question to an LLM and its answer: the values every provider, the cache and the ledger share."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Request:
    """A question whose answer must be a JSON object matching ``schema``.

    ``stage`` names the generator step ("topics", "skeleton.design", "scenario" ...) for accounting;
    it is part of the cache key too, so two stages never share answers by accident.
    """

    stage: str
    system: str
    messages: tuple[dict[str, str], ...]  # ({"role": "user" | "assistant", "content": str}, ...), plain text turns
    schema: dict[str, Any]  # JSON Schema (type object) of the answer
    schema_name: str  # the tool the model must call with the answer, e.g. "submit_design"
    max_tokens: int = 8192
    temperature: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "system": self.system,
            "messages": [{"role": m["role"], "content": m["content"]} for m in self.messages],
            "schema": self.schema,
            "schema_name": self.schema_name,
            "max_tokens": int(self.max_tokens),
            "temperature": float(self.temperature),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Request:
        return cls(
            stage=data["stage"],
            system=data["system"],
            messages=tuple({"role": m["role"], "content": m["content"]} for m in data["messages"]),
            schema=data["schema"],
            schema_name=data["schema_name"],
            max_tokens=int(data.get("max_tokens", 8192)),
            temperature=float(data.get("temperature", 0.0)),
        )

    def key(self, provider: str, model: str) -> str:
        """The cache key: sha256 of the canonical JSON of every field, the provider and the model."""
        canonical = json.dumps(
            {"request": self.as_dict(), "provider": provider, "model": model},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()

    def text(self) -> str:
        """System prompt and every turn, as one string (for token estimates and error messages)."""
        return "\n".join([self.system, *(m["content"] for m in self.messages)])


@dataclass
class Usage:
    """Tokens of one answer. ``input_tokens`` excludes the prompt-cache reads and writes, as Anthropic counts."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Usage:
        kinds = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")
        return cls(**{k: int(data.get(k, 0) or 0) for k in kinds})


@dataclass
class Response:
    """An answer. ``data`` is set only when the answer parsed and matched the schema; else ``problem`` says why.

    ``problem`` is written for the model: the generator sends it back as a repair turn.
    """

    data: dict[str, Any] | None
    text: str  # the raw answer: the JSON text of the tool input, or whatever the model said instead
    problem: str | None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    cached: bool = False  # served without a paid call (the on-disk cache, a replay); usage/cost are the original's

    def as_dict(self) -> dict[str, Any]:
        """The stored form (``cached`` is not stored: it says how this run got the answer)."""
        return {
            "data": self.data,
            "text": self.text,
            "problem": self.problem,
            "usage": self.usage.as_dict(),
            "cost_usd": self.cost_usd,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, cached: bool) -> Response:
        return cls(
            data=data.get("data"),
            text=data.get("text", ""),
            problem=data.get("problem"),
            usage=Usage.from_dict(data.get("usage", {})),
            cost_usd=float(data.get("cost_usd", 0.0)),
            cached=cached,
        )
