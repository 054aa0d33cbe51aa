"""The run report: ``report.json`` (everything) and ``report.md`` (what a person reads first).

Written at the end of every run, whatever ended it: what was asked of the model, what came
back, what was rejected and why, LLM calls, tokens and cost per stage and per environment,
and, when the run failed, the failure (kind, stage, message, exit code).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

ANSWER_PREVIEW = 300  # characters of a rejected answer shown in report.md (report.json keeps more)


def write(work: Path, report: dict[str, Any]) -> None:
    """Both files, each replaced atomically (a reader never sees half a report)."""
    _atomic(work / "report.json", json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    _atomic(work / "report.md", summary(report))


def read(work: Path) -> dict[str, Any]:
    """The report of an earlier run in ``work`` (stages run one by one add to it); {} if none or unreadable."""
    path = work / "report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def summary(report: dict[str, Any]) -> str:
    """The run report as Markdown: the failure if any, per stage and per environment, what was rejected."""
    lines = [f"# Generator run: {report.get('status', '?')}", ""]
    lines.append(f"Provider {report.get('provider')}, model {report.get('model')}.")
    if report.get("stopped"):
        lines.append(f"Stopped: {report['stopped']}.")
    failure = report.get("failure")
    if failure:
        lines += _failure(failure)
    lines += [
        "",
        "## Per stage",
        "",
        "| stage | calls | cached | retries | errors | input tokens | output tokens | cost (USD) |",
    ]
    lines.append("|---|---:|---:|---:|---:|---:|---:|---:|")
    for stage, t in sorted(report.get("llm", {}).get("stages", {}).items()):
        lines.append(
            f"| {stage} | {t['calls']} | {t['cached']} | {t['retries']} | {t.get('errors', 0)} | {t['input_tokens']} | "
            f"{t['output_tokens']} | {t['cost_usd']:.4f} |"
        )
    totals = report.get("llm", {}).get("totals")
    if totals:
        lines.append(
            f"| **all** | {totals['calls']} | {totals['cached']} | {totals['retries']} | {totals.get('errors', 0)} | "
            f"{totals['input_tokens']} | {totals['output_tokens']} | {totals['cost_usd']:.4f} |"
        )
        lines += ["", f"Paid by this run: ${report.get('llm', {}).get('spent_usd', 0):.4f}."]
    lines += ["", "## Per environment", ""]
    lines.append("| env | accepted | calls | tokens in/out | cost (USD) | scenarios | per scenario (USD) |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for env_id, e in sorted(report.get("environments", {}).items()):
        sk, sc = e.get("skeleton", {}), e.get("scenarios", {})
        n = len(sc.get("accepted", []))
        per = f"{sc.get('cost_usd', 0) / n:.4f}" if n else "-"
        lines.append(
            f"| {env_id} | {'yes' if e.get('accepted') else 'no'} | {sk.get('calls', 0)} | "
            f"{sk.get('input_tokens', 0)}/{sk.get('output_tokens', 0)} | {sk.get('cost_usd', 0):.4f} | "
            f"{n}/{sc.get('asked', 0)} | {per} |"
        )
    for env_id, e in sorted(report.get("environments", {}).items()):
        rejected = e.get("scenarios", {}).get("rejected", [])
        if e.get("reasons") or rejected:
            lines += ["", f"### {env_id}: what was rejected", ""]
            lines += [f"- environment: {_one_line(r)}" for r in e.get("reasons", [])]
            lines += [
                f"- scenario {r['index']}: {_one_line(r['reasons'][-1]) if r['reasons'] else '?'}" for r in rejected
            ]
    return "\n".join(lines) + "\n"


def _failure(failure: dict[str, Any]) -> list[str]:
    lines = ["", "## Failure", ""]
    lines.append(f"- kind: {failure.get('kind')} (exit code {failure.get('exit_code')})")
    if failure.get("stage"):
        lines.append(f"- stage: {failure['stage']}")
    lines.append(f"- message: {_one_line(str(failure.get('message', '')))}")
    asked = failure.get("asked")
    if isinstance(asked, dict) and asked.get("prompt"):
        lines.append(f"- asked ({asked.get('tool')}): {_one_line(str(asked['prompt']), 300)}")
    for i, attempt in enumerate(failure.get("attempts", []), 1):
        answer = _one_line(str(attempt.get("answer", "")), ANSWER_PREVIEW) or "(nothing)"
        lines.append(f"- answer {i}: {answer}")
        lines.append(f"  - rejected because: {_one_line(str(attempt.get('problem', '')))}")
    if failure.get("error"):
        lines.append(f"- provider said: {_one_line(str(failure['error']))}")
    if failure.get("traceback"):
        lines += ["", "```", str(failure["traceback"]).rstrip(), "```"]
    return lines


def _one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
