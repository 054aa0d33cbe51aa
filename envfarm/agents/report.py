"""``envfarm report``: what one or more runs achieved, per environment and overall.

For each run (a column) and each environment (plus all of them together): episodes and tasks,
success rate, mean reward, pass^k for k = 1..K, turns, how episodes ended, tool calls and tool
errors by kind, refusals by rule id, tokens (agent and simulated user) and cost. The same numbers
go to the terminal (rich tables), ``report.md`` and ``report.html`` (with plots, see
:mod:`~envfarm.agents.report_html`).

pass^k is tau2-bench's (arXiv 2406.12045): for a task tried n times with c successes,
pass^k = C(c, k) / C(n, k), the chance that k trials drawn without replacement all succeed;
a run's pass^k is its mean over tasks. K is the fewest trials any task has (a warning says so
when tasks have different numbers of trials, as tau2-bench does). A task is one scenario of one
environment; success is the episode's ``score.success``.

Episodes that ended in an error count as attempts that failed (their recorded reward, else 0),
so a flaky provider lowers the numbers instead of hiding; the "ended: error" row shows how many.
"""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envfarm.agents.run_files import TOKEN_KINDS, Episode, Run

ALL = "all environments"
HISTOGRAM_BINS = 10


def pass_hat_k(trials: int, successes: int, k: int) -> float:
    """tau2-bench's pass^k for one task: C(successes, k) / C(trials, k), for 1 <= k <= trials."""
    if not 1 <= k <= trials:
        raise ValueError(f"pass^{k} needs between 1 and {trials} trials")
    if not 0 <= successes <= trials:
        raise ValueError(f"{successes} successes out of {trials} trials")
    return math.comb(successes, k) / math.comb(trials, k)


@dataclass
class Metrics:
    """The numbers for one group of episodes (one run's environment, or the whole run)."""

    episodes: int
    tasks: int
    successes: int
    success_rate: float
    mean_reward: float
    trials_min: int
    trials_max: int
    pass_hat: dict[int, float]  # k -> pass^k, for k = 1..trials_min
    mean_turns: float
    ended: Counter[str]
    tool_calls: int
    tool_errors: Counter[str]
    refusals: Counter[str]
    tokens: dict[str, int]
    user_tokens: dict[str, int]
    cost_usd: float
    mean_seconds: float
    rewards: list[float] = field(repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "episodes": self.episodes,
            "tasks": self.tasks,
            "successes": self.successes,
            "success_rate": self.success_rate,
            "mean_reward": self.mean_reward,
            "trials": {"min": self.trials_min, "max": self.trials_max},
            "pass_hat_k": {str(k): v for k, v in self.pass_hat.items()},
            "mean_turns": self.mean_turns,
            "ended": dict(sorted(self.ended.items())),
            "tool_calls": self.tool_calls,
            "tool_errors": dict(sorted(self.tool_errors.items())),
            "refusals": dict(sorted(self.refusals.items())),
            "tokens": self.tokens,
            "user_tokens": self.user_tokens,
            "cost_usd": self.cost_usd,
            "mean_seconds": self.mean_seconds,
            "reward_histogram": reward_histogram(self.rewards),
        }


def reward_histogram(rewards: Iterable[float], bins: int = HISTOGRAM_BINS) -> list[int]:
    """Episodes per reward bin [i/bins, (i+1)/bins); a reward of 1.0 falls in the last bin."""
    counts = [0] * bins
    for reward in rewards:
        counts[min(bins - 1, int(reward * bins + 1e-9))] += 1
    return counts


def compute(episodes: Sequence[Episode]) -> Metrics:
    """The metrics of a non-empty group of episodes."""
    n = len(episodes)
    by_task: dict[tuple[str, str, str], list[bool]] = defaultdict(list)
    for e in episodes:
        by_task[e.task].append(e.success)
    trials = [len(v) for v in by_task.values()]
    k_max = min(trials)
    pass_hat = {
        k: sum(pass_hat_k(len(v), sum(v), k) for v in by_task.values()) / len(by_task) for k in range(1, k_max + 1)
    }
    tool_errors: Counter[str] = Counter()
    refusals: Counter[str] = Counter()
    tokens = dict.fromkeys(TOKEN_KINDS, 0)
    user_tokens = dict.fromkeys(TOKEN_KINDS, 0)
    for e in episodes:
        tool_errors.update(e.tool_errors)
        refusals.update(e.refusals)
        for kind in TOKEN_KINDS:
            tokens[kind] += e.tokens[kind]
            user_tokens[kind] += e.user_tokens[kind]
    successes = sum(e.success for e in episodes)
    return Metrics(
        episodes=n,
        tasks=len(by_task),
        successes=successes,
        success_rate=successes / n,
        mean_reward=sum(e.reward for e in episodes) / n,
        trials_min=k_max,
        trials_max=max(trials),
        pass_hat=pass_hat,
        mean_turns=sum(e.turns for e in episodes) / n,
        ended=Counter(e.ended for e in episodes),
        tool_calls=sum(e.tool_calls for e in episodes),
        tool_errors=tool_errors,
        refusals=refusals,
        tokens=tokens,
        user_tokens=user_tokens,
        cost_usd=sum(e.cost_usd for e in episodes),
        mean_seconds=sum(e.seconds for e in episodes) / n,
        rewards=[e.reward for e in episodes],
    )


@dataclass
class RunReport:
    """One run's metrics: overall and per environment (sorted by id)."""

    run: Run
    label: str
    overall: Metrics
    by_env: dict[str, Metrics]
    warnings: list[str]

    def describe(self) -> dict[str, Any]:
        run = self.run
        return {
            "run": str(run.path),
            "label": self.label,
            "model": run.setting("model"),
            "provider": run.setting("provider"),
            "mode": run.setting("mode"),
            "user_model": run.setting("user_model"),
            "trials": run.setting("trials"),
        }


def build(runs: Sequence[Run]) -> list[RunReport]:
    """Each run's report; runs whose model names collide are told apart by their directory."""
    models = Counter(run.model for run in runs)
    reports = []
    for run in runs:
        label = run.model if models[run.model] == 1 else f"{run.model} ({run.path.name or run.path})"
        by_env_episodes: dict[str, list[Episode]] = defaultdict(list)
        for e in run.episodes:
            by_env_episodes[e.env].append(e)
        overall = compute(run.episodes)
        by_env = {env: compute(eps) for env, eps in sorted(by_env_episodes.items())}
        warnings = list(run.warnings)
        if overall.trials_min != overall.trials_max:
            warnings.append(
                f"{run.path}: tasks have between {overall.trials_min} and {overall.trials_max} trials; "
                f"pass^k is reported up to k = {overall.trials_min}"
            )
        reports.append(RunReport(run, label, overall, by_env, warnings))
    # Labels must stay unique even when two directories share a name.
    seen: Counter[str] = Counter()
    for r in reports:
        seen[r.label] += 1
        if seen[r.label] > 1:
            r.label = f"{r.label} #{seen[r.label]}"
    return reports


# -- tables: one model, rendered to the terminal, Markdown and HTML -----------------------------------------


def pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def num(x: float, places: int = 3) -> str:
    return f"{x:.{places}f}"


def count(x: int) -> str:
    return f"{x:,}"


def usd(x: float) -> str:
    return f"${x:.4f}"


@dataclass
class Table:
    """A titled table: a header row, then rows whose first cell is the row's label."""

    title: str
    header: list[str]
    rows: list[list[str]]
    numeric: bool = True  # cells after the first are numbers (right-aligned)


def _metric_rows(metrics: Sequence[Metrics | None]) -> list[list[str]]:
    """Metric-per-row lines for groups side by side; None is a run without that environment."""
    present = [m for m in metrics if m is not None]
    k_max = max((len(m.pass_hat) for m in present), default=0)
    ended = sorted({k for m in present for k in m.ended})
    kinds = sorted({k for m in present for k in m.tool_errors})
    rules = sorted({k for m in present for k in m.refusals})

    def row(label: str, cell: Any) -> list[str]:
        return [label] + ["-" if m is None else cell(m) for m in metrics]

    rows = [
        row("episodes", lambda m: count(m.episodes)),
        row("tasks", lambda m: count(m.tasks)),
        row(
            "trials per task",
            lambda m: str(m.trials_min) if m.trials_min == m.trials_max else f"{m.trials_min}-{m.trials_max}",
        ),
        row("success rate", lambda m: f"{pct(m.success_rate)} ({m.successes}/{m.episodes})"),
        row("mean reward", lambda m: num(m.mean_reward)),
    ]
    for k in range(1, k_max + 1):
        rows.append(row(f"pass^{k}", lambda m, k=k: num(m.pass_hat[k]) if k in m.pass_hat else "-"))
    rows.append(row("mean turns", lambda m: num(m.mean_turns, 1)))
    for reason in ended:
        rows.append(row(f"ended: {reason}", lambda m, r=reason: count(m.ended[r])))
    rows.append(row("tool calls", lambda m: count(m.tool_calls)))
    rows.append(row("tool errors", lambda m: count(sum(m.tool_errors.values()))))
    for kind in kinds:
        rows.append(row(f"tool errors: {kind}", lambda m, kind=kind: count(m.tool_errors[kind])))
    rows.append(row("refusals", lambda m: count(sum(m.refusals.values()))))
    for rule in rules:
        rows.append(row(f"refusals: {rule}", lambda m, rule=rule: count(m.refusals[rule])))
    for kind in TOKEN_KINDS:
        rows.append(row(f"tokens: {kind}", lambda m, kind=kind: count(m.tokens[kind])))
    if any(sum(m.user_tokens.values()) for m in present):
        for kind in TOKEN_KINDS:
            rows.append(row(f"user tokens: {kind}", lambda m, kind=kind: count(m.user_tokens[kind])))
    rows.append(row("cost", lambda m: usd(m.cost_usd)))
    rows.append(row("cost per episode", lambda m: usd(m.cost_usd / m.episodes)))
    rows.append(row("mean seconds", lambda m: num(m.mean_seconds, 1)))
    return rows


def environments(reports: Sequence[RunReport]) -> list[str]:
    return sorted({env for r in reports for env in r.by_env})


def tables(reports: Sequence[RunReport]) -> list[Table]:
    """Every table of the report, in order: runs, success by environment, overall, each environment."""
    labels = [r.label for r in reports]
    runs = Table(
        "Runs",
        ["run", "directory", "model", "provider", "mode", "user model", "episodes"],
        [
            [
                r.label,
                str(r.run.path),
                *(str(r.describe()[key] or "-") for key in ("model", "provider", "mode", "user_model")),
                count(r.overall.episodes),
            ]
            for r in reports
        ],
        numeric=False,
    )
    envs = environments(reports)

    def rate(m: Metrics | None) -> str:
        return "-" if m is None else f"{pct(m.success_rate)} ({m.successes}/{m.episodes})"

    success = Table(
        "Success by environment",
        ["environment", *labels],
        [[env] + [rate(r.by_env.get(env)) for r in reports] for env in envs]
        + [[ALL] + [rate(r.overall) for r in reports]],
    )
    out = [runs, success, Table(f"Overall ({ALL})", ["metric", *labels], _metric_rows([r.overall for r in reports]))]
    for env in envs:
        out.append(
            Table(f"Environment: {env}", ["metric", *labels], _metric_rows([r.by_env.get(env) for r in reports]))
        )
    return out


PASS_HAT_NOTE = (
    "pass^k (tau2-bench): for a task tried n times with c successes, pass^k = C(c, k) / C(n, k), "
    "the chance that k trials drawn from the n all succeed; the figure is the mean over tasks, "
    "for k up to the fewest trials any task has. Success is the episode's score.success "
    "(every check passed, no collateral change)."
)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(reports: Sequence[RunReport]) -> str:
    """report.md: every table as a GitHub-flavoured Markdown table."""
    lines = ["# envfarm report", "", PASS_HAT_NOTE, ""]
    for table in tables(reports):
        lines += [f"## {table.title}", ""]
        lines.append("| " + " | ".join(_md_cell(h) for h in table.header) + " |")
        align = "---:" if table.numeric else "---"
        lines.append("|" + "|".join(["---"] + [align] * (len(table.header) - 1)) + "|")
        for row in table.rows:
            lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
        lines.append("")
    warnings = [w for r in reports for w in r.warnings]
    if warnings:
        lines += ["## Warnings", "", *(f"- {_md_cell(w)}" for w in warnings), ""]
    return "\n".join(lines)


def as_json(reports: Sequence[RunReport]) -> dict[str, Any]:
    return {
        "runs": [
            {
                **r.describe(),
                "overall": r.overall.as_json(),
                "environments": {env: m.as_json() for env, m in r.by_env.items()},
                "warnings": r.warnings,
            }
            for r in reports
        ]
    }


def write(reports: Sequence[RunReport], out_dir: Path) -> tuple[Path, Path]:
    """Write report.md and report.html into ``out_dir``; return their paths."""
    from envfarm.agents.report_html import html_page

    out_dir.mkdir(parents=True, exist_ok=True)
    md, page = out_dir / "report.md", out_dir / "report.html"
    md.write_text(markdown(reports), encoding="utf-8")
    page.write_text(html_page(reports), encoding="utf-8")
    return md, page


def dumps(reports: Sequence[RunReport]) -> str:
    return json.dumps(as_json(reports), indent=2)
