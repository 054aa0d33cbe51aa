"""Reading a run directory: its settings (``run.json``) and its finished episodes (``results.jsonl``).

``envfarm run`` appends one JSON object per finished episode to ``RUN_DIR/results.jsonl``. A run
killed mid-write leaves a torn last line; such a line (or any line that is not a JSON object naming
its environment and scenario) is skipped with a warning naming the file and the line, never fatal.
Every optional field of an episode may be missing: the accessors here fall back to what the
episode's messages and calls say, or to zero.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envfarm.core.errors import InvalidInput

RESULTS = "results.jsonl"
SETTINGS = "run.json"
TOKEN_KINDS = ("input", "output", "cache_read", "cache_write")


class RunError(InvalidInput):
    """A run directory that cannot be read: missing, without results, or with no finished episode."""


def _number(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return default
    return float(value)


def _counts(value: Any) -> Counter[str]:
    out: Counter[str] = Counter()
    if isinstance(value, dict):
        for key, n in value.items():
            if isinstance(n, int) and not isinstance(n, bool) and n > 0:
                out[str(key)] += n
    return out


@dataclass(frozen=True)
class Episode:
    """One finished episode, as one line of ``results.jsonl`` holds it."""

    data: dict[str, Any]
    where: str  # "RUN_DIR/results.jsonl:LINE", to name the record in messages

    @property
    def env(self) -> str:
        return str(self.data["env"])

    @property
    def scenario(self) -> str:
        return str(self.data["scenario"])

    @property
    def split(self) -> str:
        return str(self.data.get("split") or "")

    @property
    def trial(self) -> int:
        trial = self.data.get("trial")
        return trial if isinstance(trial, int) and not isinstance(trial, bool) else 0

    @property
    def task(self) -> tuple[str, str, str]:
        """What pass^k groups trials by: the same scenario of the same environment (and split)."""
        return (self.env, self.split, self.scenario)

    @property
    def episode_id(self) -> str:
        return str(self.data.get("episode_id") or "")

    @property
    def score(self) -> dict[str, Any]:
        score = self.data.get("score")
        return score if isinstance(score, dict) else {}

    @property
    def success(self) -> bool:
        return self.score.get("success") is True

    @property
    def reward(self) -> float:
        return min(1.0, max(0.0, _number(self.score.get("reward"))))

    @property
    def ended(self) -> str:
        return str(self.data.get("ended") or "unknown")

    @property
    def messages(self) -> list[dict[str, Any]]:
        messages = self.data.get("messages")
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    @property
    def tools(self) -> list[dict[str, Any]]:
        tools = self.data.get("tools")
        return [t for t in tools if isinstance(t, dict) and t.get("name")] if isinstance(tools, list) else []

    @property
    def calls(self) -> list[dict[str, Any]]:
        calls = self.data.get("calls")
        return [c for c in calls if isinstance(c, dict)] if isinstance(calls, list) else []

    @property
    def turns(self) -> int:
        turns = self.data.get("turns")
        if isinstance(turns, int) and not isinstance(turns, bool):
            return turns
        return sum(1 for m in self.messages if m.get("role") == "assistant")

    @property
    def tool_calls(self) -> int:
        if "calls" in self.data:
            return len(self.calls)
        return sum(len(m.get("tool_calls") or []) for m in self.messages if m.get("role") == "assistant")

    @property
    def tool_errors(self) -> Counter[str]:
        """Failed tool calls by kind (unknown_tool, bad_json, schema, refused, crashed)."""
        if "tool_errors" in self.data:
            return _counts(self.data["tool_errors"])
        return Counter(str(c.get("error_kind") or "error") for c in self.calls if c.get("ok") is False)

    @property
    def refusals(self) -> Counter[str]:
        """Calls an environment rule refused, by rule id."""
        if "refusals" in self.data:
            return _counts(self.data["refusals"])
        return Counter(str(c.get("rule") or "?") for c in self.calls if c.get("error_kind") == "refused")

    def _tokens(self, key: str) -> dict[str, int]:
        tokens = self.data.get(key)
        tokens = tokens if isinstance(tokens, dict) else {}
        return {kind: int(_number(tokens.get(kind))) for kind in TOKEN_KINDS}

    @property
    def tokens(self) -> dict[str, int]:
        return self._tokens("tokens")

    @property
    def user_tokens(self) -> dict[str, int]:
        return self._tokens("user_tokens")

    @property
    def cost_usd(self) -> float:
        return _number(self.data.get("cost_usd"))

    @property
    def seconds(self) -> float:
        return _number(self.data.get("seconds"))


@dataclass
class Run:
    """A run directory: its settings and its finished episodes, in file order."""

    path: Path
    settings: dict[str, Any]
    episodes: list[Episode]
    warnings: list[str] = field(default_factory=list)

    def setting(self, key: str) -> Any:
        """A setting from run.json, else the value every episode agrees on (else None)."""
        if self.settings.get(key) is not None:
            return self.settings[key]
        values = {json.dumps(e.data.get(key), sort_keys=True) for e in self.episodes}
        return json.loads(values.pop()) if len(values) == 1 else None

    @property
    def model(self) -> str:
        return str(self.setting("model") or self.path.name)


def _read_lines(path: Path) -> list[tuple[int, str]]:
    with path.open("rb") as f:
        raw = f.read()
    # Undecodable bytes stay visible as replacement characters; the line then fails to parse and is skipped.
    text = raw.decode("utf-8", errors="replace")
    return [(n, line) for n, line in enumerate(text.split("\n"), start=1) if line.strip()]


def load_run(run_dir: Path) -> Run:
    """Read ``run_dir``: raise :class:`RunError` if it has no readable finished episode."""
    if not run_dir.exists():
        raise RunError(f"{run_dir}: no such run directory")
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: not a directory (give the RUN_DIR that `envfarm run` wrote)")
    results = run_dir / RESULTS
    if not results.is_file():
        raise RunError(f"{run_dir}: no {RESULTS} (has `envfarm run` finished any episode there?)")
    warnings: list[str] = []
    settings: dict[str, Any] = {}
    settings_file = run_dir / SETTINGS
    if settings_file.is_file():
        try:
            loaded = json.loads(settings_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as e:
            warnings.append(f"{settings_file}: not valid JSON ({e}); the run's settings come from its episodes")
        else:
            if isinstance(loaded, dict):
                settings = loaded
            else:
                warnings.append(f"{settings_file}: not a JSON object; the run's settings come from its episodes")
    else:
        warnings.append(f"{settings_file}: missing; the run's settings come from its episodes")

    by_key: dict[tuple[str, str, str, int], Episode] = {}
    for number, line in _read_lines(results):
        where = f"{results}:{number}"
        try:
            data = json.loads(line)
        except ValueError:
            warnings.append(f"{results} line {number}: not valid JSON (a run killed mid-write?), skipped")
            continue
        if not isinstance(data, dict):
            warnings.append(f"{results} line {number}: not a JSON object, skipped")
            continue
        missing = [k for k in ("env", "scenario") if not isinstance(data.get(k), str) or not data[k]]
        if missing:
            warnings.append(f"{results} line {number}: no {' or '.join(missing)}, skipped")
            continue
        episode = Episode(data, where)
        key = (*episode.task, episode.trial)
        if key in by_key:
            warnings.append(
                f"{results} line {number}: {episode.env}/{episode.scenario} trial {episode.trial} again; "
                f"the later line counts (line {by_key[key].where.rsplit(':', 1)[1]} is ignored)"
            )
            del by_key[key]  # re-inserted below, so file order follows the line that counts
        by_key[key] = episode
    if not by_key:
        skipped = [w for w in warnings if w.startswith(str(results))]
        why = f" ({'; '.join(skipped[:3])}{'; ...' if len(skipped) > 3 else ''})" if skipped else ""
        raise RunError(f"{results}: no finished episode in it{why}")
    return Run(run_dir, settings, list(by_key.values()), warnings)
