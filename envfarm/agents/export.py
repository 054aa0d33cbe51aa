"""``envfarm export``: finished episodes as supervised fine-tuning data, one JSON line per kept trajectory.

The filter follows EnvScaler's recipe for its SFT data (keep what worked, drop what flailed, drop
repeats), with envfarm's real scores in place of EnvScaler's self-judged completion:

1. episodes that ended in an error (``ended: "error"``) are dropped: their messages stop mid-way;
2. ``--success-only``: drop episodes whose ``score.success`` is false;
3. ``--min-reward R``: drop episodes whose reward is below R;
4. ``--max-tool-errors N`` (default :data:`DEFAULT_MAX_TOOL_ERRORS`): drop episodes with more than N
   failed tool calls, of any kind (unknown tool, bad JSON, schema, refused by a rule, crashed). EnvScaler's
   paper and code state no number for this; 3 keeps trajectories where the agent recovered from a slip or
   two (useful to learn from) and drops those where it kept failing; a negative N lifts the limit;
5. episodes with a tool call whose arguments are not a JSON object (``bad_json``) are always dropped, as
   EnvScaler's ``traj_filter.py`` drops every trajectory with an unparseable call: such a call cannot be
   written as a ``tool_use`` or ``function_call`` at all, and should not be learned in any format;
6. episodes without tool schemas, or whose messages cannot form an example (see
   :func:`~envfarm.agents.export_formats.dialogue`), are dropped with a warning naming the record;
7. exact duplicates (the same system prompt, tools and messages once call ids are set aside) keep
   their first occurrence.

Every line is checked against its format (:func:`~envfarm.agents.export_formats.structure_problems`)
before it is written; a line that fails stops the export with an error naming the record, and the
output file is left as it was (lines go to a temporary file, renamed into place at the end).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envfarm.agents.export_formats import FORMATS, RENDER, Unrepresentable, dialogue, structure_problems
from envfarm.agents.run_files import Episode, Run
from envfarm.core.errors import EnvfarmError, InvalidInput

DEFAULT_MAX_TOOL_ERRORS = 3

ERRORED = "episode ended in an error"
NOT_SUCCESSFUL = "not successful"
BAD_ARGUMENTS = "a tool call with unparseable arguments"
NO_TOOLS = "no tool schemas recorded"
MALFORMED = "messages do not form an example"
DUPLICATE = "exact duplicate"


class ExportError(EnvfarmError):
    """An exported line failed its format's check: a bug to report, with the record it came from."""


@dataclass(frozen=True)
class Filters:
    success_only: bool = False
    min_reward: float | None = None
    max_tool_errors: int | None = DEFAULT_MAX_TOOL_ERRORS  # None: no limit

    def reason_to_drop(self, e: Episode) -> str | None:
        """Why ``e`` is dropped before its messages are looked at (None: it goes on)."""
        if e.ended == "error":
            return ERRORED
        if self.success_only and not e.success:
            return NOT_SUCCESSFUL
        if self.min_reward is not None and e.reward < self.min_reward:
            return f"reward below {self.min_reward:g}"
        errors = sum(e.tool_errors.values())
        if self.max_tool_errors is not None and errors > self.max_tool_errors:
            return f"more than {self.max_tool_errors} tool error{'s' if self.max_tool_errors != 1 else ''}"
        if e.tool_errors.get("bad_json") or any(c.get("error_kind") == "bad_json" for c in e.calls):
            return BAD_ARGUMENTS
        if not e.tools:
            return NO_TOOLS
        return None


@dataclass
class Summary:
    """What an export read, kept and dropped (by reason), and the records it could not use."""

    fmt: str
    read: int = 0
    kept: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [f"kept {self.kept} of {self.read} episodes ({self.fmt})"]
        if self.dropped:
            reasons = ", ".join(f"{reason}: {n}" for reason, n in self.dropped.most_common())
            out.append(f"dropped {sum(self.dropped.values())}: {reasons}")
        return out


def name(e: Episode) -> str:
    """A record as a message names it: where it is, and which episode it was."""
    return f"{e.where} ({e.env}/{e.scenario} trial {e.trial}{', ' + e.episode_id if e.episode_id else ''})"


def convert(e: Episode, fmt: str) -> tuple[str, dict[str, Any]]:
    """(duplicate key, line) for one episode; raises Unrepresentable."""
    d = dialogue(e.messages, e.tools)
    return d.key(), RENDER[fmt](d)


def export(runs: Sequence[Run], fmt: str, out: Path, filters: Filters) -> Summary:
    """Write the kept episodes of ``runs`` to ``out`` as ``fmt`` lines; return what happened."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if out.is_dir():
        raise InvalidInput(f"{out} is a directory: --out names the .jsonl file to write")
    summary = Summary(fmt)
    seen: set[str] = set()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as f:
            for run in runs:
                for e in run.episodes:
                    summary.read += 1
                    reason = filters.reason_to_drop(e)
                    if reason is None:
                        try:
                            key, line = convert(e, fmt)
                        except Unrepresentable as problem:
                            reason = MALFORMED
                            summary.notes.append(f"{name(e)}: {problem}")
                        else:
                            if key in seen:
                                reason = DUPLICATE
                            seen.add(key)
                    if reason is not None:
                        summary.dropped[reason] += 1
                        continue
                    problems = structure_problems(fmt, line)
                    if problems:
                        raise ExportError(
                            f"{name(e)}: its {fmt} line does not validate, nothing was written: " + "; ".join(problems)
                        )
                    f.write(json.dumps(line, ensure_ascii=False) + "\n")
                    summary.kept += 1
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return summary
