"""A run's folder: ``results.jsonl`` (one line per finished episode), ``run.json`` (the settings), ``cache/``.

A line of ``results.jsonl`` is written whole, with one ``write``, as each episode ends; a run killed
mid-line leaves a broken last line, which the next run drops. Episodes that ended in ``error`` are
dropped too when a run starts again, so they are run again (a model that was down, a farm that went
away); everything else that is recorded is done. The record (see docs/agents.md for every field)::

    {"env", "scenario", "split", "trial", "mode", "model", "provider", "user_model", "episode_id",
     "messages", "tools", "calls", "score", "turns", "ended", "truncated", "error", "tool_errors",
     "refusals", "tokens", "user_tokens", "cost_usd", "seconds"}
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

from envfarm.agents.rollout import Rollout
from envfarm.generator.llm.request import Usage

RESULTS = "results.jsonl"
RUN = "run.json"
CACHE = "cache"

Key = tuple[str, str, int]
"""An episode of a run: (env, scenario, trial)."""


def tokens(usage: Usage) -> dict[str, int]:
    return {
        "input": usage.input_tokens,
        "output": usage.output_tokens,
        "cache_read": usage.cache_read_tokens,
        "cache_write": usage.cache_write_tokens,
    }


def brief_score(score: dict[str, Any] | None) -> dict[str, Any] | None:
    """The score as a run keeps it: reward, success, each check's verdict, the collateral changes, the state hash."""
    if score is None:
        return None
    return {
        "reward": score["reward"],
        "success": score["success"],
        "checks": [{"id": c["id"], "passed": c["passed"], "error": c.get("error")} for c in score.get("checks", [])],
        "collateral": score.get("collateral", []),
        "final_state_hash": score.get("final_state_hash"),
    }


def record(
    done: Rollout,
    *,
    split: str,
    trial: int,
    model: str,
    provider: str,
    user_model: str | None,
) -> dict[str, Any]:
    """The ``results.jsonl`` line of a finished episode."""
    return {
        "env": done.env,
        "scenario": done.scenario,
        "split": split,
        "trial": trial,
        "mode": done.mode,
        "model": model,
        "provider": provider,
        "user_model": user_model,
        "episode_id": done.episode_id,
        "messages": done.messages,
        "tools": done.tools,
        "calls": done.calls,
        "score": brief_score(done.score),
        "turns": done.turns,
        "ended": done.ended,
        "truncated": done.truncated,
        "error": done.error,
        "tool_errors": done.tool_errors,
        "refusals": done.refusals,
        "tokens": tokens(done.tokens),
        "user_tokens": tokens(done.user_tokens),
        "cost_usd": round(done.cost_usd, 8),
        "seconds": round(done.seconds, 3),
    }


def key_of(line: dict[str, Any]) -> Key:
    return str(line["env"]), str(line["scenario"]), int(line["trial"])


class ResultsFile:
    """``RUN_DIR/results.jsonl``: what is done, and appending to it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[Key, dict[str, Any]]:
        """The finished episodes, by key. A broken last line (a killed run) and episodes that ended in
        ``error`` are removed from the file (rewritten whole, atomically), so they run again."""
        if not self.path.exists():
            return {}
        kept: dict[Key, dict[str, Any]] = {}
        lines = self.path.read_text(encoding="utf-8").splitlines()
        dropped = 0
        for n, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                key = key_of(data)
            except (ValueError, KeyError, TypeError):
                if n == len(lines):  # cut off by a kill
                    dropped += 1
                    continue
                raise ValueError(f"{self.path}:{n}: not a result line of envfarm run") from None
            if data.get("ended") == "error":
                dropped += 1
                continue
            kept[key] = data
        if dropped or len(kept) != sum(1 for line in lines if line.strip()):
            self._rewrite(list(kept.values()))
        return kept

    def _rewrite(self, records: list[dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".results.", suffix=".tmp", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def append(self, line: dict[str, Any]) -> None:
        """One line, written with one call and flushed: a kill leaves the file whole or one line short."""
        data = (json.dumps(line, ensure_ascii=False) + "\n").encode("utf-8")
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            while written < len(data):
                written += os.write(fd, data[written:])
        finally:
            os.close(fd)


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` atomically (a temporary file renamed over ``path``)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
