"""The run's progress: a live bar on a terminal, one plain line per episode elsewhere (a log, CI, a pipe).

Both say how many episodes are done of how many, how many succeeded, the tokens and the cost so far,
and what is failing: the checks that fail most, the episodes cut off or broken, the tool errors.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text


class Tally:
    """Totals over finished episodes."""

    def __init__(self) -> None:
        self.done = self.success = 0
        self.reward = 0.0
        self.tokens = 0
        self.cost = 0.0
        self.failing: Counter[str] = Counter()

    def add(self, line: dict[str, Any]) -> None:
        self.done += 1
        score = line.get("score") or {}
        self.success += bool(score.get("success"))
        self.reward += float(score.get("reward") or 0.0)
        for part in ("tokens", "user_tokens"):
            self.tokens += sum(int(v) for v in (line.get(part) or {}).values())
        self.cost += float(line.get("cost_usd") or 0.0)
        if line.get("ended") in ("max_turns", "error"):
            self.failing[f"ended {line['ended']}"] += 1
        for check in score.get("checks", []):
            if not check.get("passed"):
                self.failing[f"check {line['env']}/{check['id']}"] += 1
        if score and score.get("collateral"):
            self.failing["collateral changes"] += 1
        for kind, n in (line.get("tool_errors") or {}).items():
            self.failing[f"tool {kind}"] += int(n)

    def summary(self) -> str:
        rate = f" ({100 * self.success / self.done:.0f}%)" if self.done else ""
        return f"success {self.success}/{self.done}{rate}, {self.tokens:,} tokens, ${self.cost:.4f}"

    def failing_text(self, top: int = 4) -> str:
        if not self.failing:
            return ""
        return "failing: " + ", ".join(f"{what} x{n}" for what, n in self.failing.most_common(top))


class RunProgress:
    """Reports a run's episodes as they finish. ``live`` picks the bar (default: when ``console`` is a terminal)."""

    def __init__(self, console: Console, live: bool | None = None) -> None:
        self.console = console
        self.live = console.is_terminal if live is None else live
        self.tally = Tally()
        self.total = 0
        self._bar: Progress | None = None
        self._task: Any = None
        self._view: Live | None = None
        self._failing = Text()

    def start(self, total: int, already: list[dict[str, Any]]) -> None:
        self.total = total
        for line in already:
            self.tally.add(line)
        if self.live:
            self._bar = Progress(
                TextColumn("[bold]episodes"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("{task.fields[stats]}"),
                console=self.console,
            )
            self._task = self._bar.add_task("episodes", total=total, completed=self.tally.done, stats=self._stats())
            self._failing = Text(self.tally.failing_text(), style="yellow")
            self._view = Live(Group(self._bar, self._failing), console=self.console, refresh_per_second=8)
            self._view.start()
        else:
            resumed = f"; {self.tally.done} done before ({self.tally.summary()})" if already else ""
            self.console.print(f"{total} episodes{resumed}", highlight=False)

    def _stats(self) -> str:
        return self.tally.summary()

    def finished(self, line: dict[str, Any]) -> None:
        self.tally.add(line)
        if self._bar is not None:
            self._bar.update(self._task, completed=self.tally.done, stats=self._stats())
            self._failing.plain = self.tally.failing_text()
            return
        score = line.get("score") or {}
        verdict = "success" if score.get("success") else f"reward {float(score.get('reward') or 0):.2f}"
        if line.get("ended") == "error":
            verdict = f"error: {line.get('error')}"
        failed = [c["id"] for c in score.get("checks", []) if not c.get("passed")]
        extra = f", failed {', '.join(failed)}" if failed and line.get("ended") != "error" else ""
        self.console.print(
            f"[{self.tally.done}/{self.total}] {line['env']}/{line['scenario']} #{line['trial']}: {verdict}{extra}; "
            f"{line['turns']} turns, ended {line['ended']} | {self.tally.summary()}",
            highlight=False,
            markup=False,
        )

    def stop(self) -> None:
        if self._view is not None:
            self._view.stop()
            self._view = None
        failing = self.tally.failing_text()
        if failing and not self.live:
            self.console.print(failing, highlight=False, markup=False)
