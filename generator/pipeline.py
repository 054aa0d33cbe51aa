"""The generator's run: corpus -> topics -> skeletons -> scenarios -> packages, with a report.

Everything a run makes lives in its work folder (``--work``): the LLM cache, the
topics, the staged packages and each stage's results, then ``report.json`` and
``report.md``. Finished environments are copied to ``--out``. Every LLM answer
is cached by a hash of its request and every step after an answer is
deterministic, so a killed run, started again, pays for no call twice and
writes the same output.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envfarm.generator.llm import LLM, BudgetExceeded
from envfarm.validators.scoring import CheckRunner

from .asking import Asker, Tally
from .dedupe import Embedder
from .packages import load, publish, write_scenarios
from .scenarios import write_scenarios_for
from .skeletons import Skeleton, Topic, build_skeleton
from .topics import judge, load_topics, pick_topics, read_corpus, save_topics

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class Options:
    """What a run makes and where (the CLI's flags)."""

    work: Path
    out: Path
    corpus: Path | None = None
    corpus_limit: int | None = None
    envs: int = 3
    scenarios: int = 5
    max_repairs: int = 2


@dataclass
class Run:
    """One generator run over a work folder."""

    llm: LLM
    options: Options
    runner: CheckRunner
    embedder: Embedder | None = None
    progress: Progress = field(default=lambda what, done, total: None)
    report: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.options.work.mkdir(parents=True, exist_ok=True)
        self.asker = Asker(self.llm, max_repairs=self.options.max_repairs)
        self.started = time.monotonic()
        self.stage_seconds: dict[str, float] = {}
        path = self.options.work / "report.json"
        self.report = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
        self.report.setdefault("environments", {})

    @property
    def staging(self) -> Path:
        return self.options.work / "staging"

    async def topics(self) -> list[Topic]:
        """Judge the corpus and write ``topics.json``."""
        if self.options.corpus is None:
            raise ValueError("no corpus: pass --corpus FILE.jsonl")
        from .dedupe import default_embedder

        began = time.monotonic()
        tasks = read_corpus(self.options.corpus, self.options.corpus_limit)
        tally = Tally()
        self.progress("topics", 0, 1)
        judgements = await judge(self.asker, tally, tasks)
        topics, numbers = pick_topics(judgements, tasks, self.embedder or default_embedder(), self.options.envs)
        save_topics(self.options.work / "topics.json", topics, numbers)
        self.progress("topics", 1, 1)
        self.report["topics"] = {**numbers, "chosen_ids": [t.id for t in topics], **tally.as_dict()}
        self.stage_seconds["topics"] = time.monotonic() - began
        return topics

    async def skeletons(self, topics: list[Topic] | None = None) -> list[Skeleton]:
        """Build and test every topic's environment concurrently; results go to ``skeletons/<env>.json``."""
        topics = topics if topics is not None else load_topics(self.options.work / "topics.json")
        began = time.monotonic()
        done = 0
        self.progress("skeletons", 0, len(topics))

        async def one(topic: Topic) -> Skeleton:
            nonlocal done
            skeleton = await build_skeleton(self.asker, topic, self.staging, self.runner)
            _save_skeleton(self.options.work, skeleton)
            done += 1
            self.progress("skeletons", done, len(topics))
            return skeleton

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(t)) for t in topics]
        built = [t.result() for t in tasks]
        for skeleton in built:
            entry = self.report["environments"].setdefault(skeleton.topic.id, {})
            entry.update(
                {
                    "title": skeleton.topic.title,
                    "accepted": skeleton.accepted,
                    "reasons": skeleton.reasons,
                    "skeleton": {**skeleton.details, **skeleton.tally.as_dict()},
                }
            )
        self.stage_seconds["skeletons"] = time.monotonic() - began
        return built

    async def scenarios(self, skeletons: list[Skeleton] | None = None) -> list[Path]:
        """Write scenarios for every accepted skeleton; publish each environment with at least one."""
        skeletons = skeletons if skeletons is not None else _load_skeletons(self.options.work)
        accepted = [s for s in skeletons if s.accepted]
        began = time.monotonic()
        total = len(accepted) * self.options.scenarios
        done = 0
        self.progress("scenarios", 0, total)

        async def one(skeleton: Skeleton) -> Path | None:
            nonlocal done
            assert skeleton.path is not None
            env = load(skeleton.path, with_scenarios=False)
            outcomes = await write_scenarios_for(self.asker, skeleton, env, self.options.scenarios, self.runner)
            done += len(outcomes)
            self.progress("scenarios", done, total)
            good = [o.scenario for o in outcomes if o.scenario is not None]
            tally = Tally()
            for o in outcomes:
                tally.merge(o.tally)
            entry = self.report["environments"].setdefault(skeleton.topic.id, {})
            entry["scenarios"] = {
                "asked": len(outcomes),
                "accepted": [s.id for s in good],
                "rejected": [{"index": o.index, "reasons": o.reasons} for o in outcomes if o.scenario is None],
                "per_scenario": [{"index": o.index, **o.tally.as_dict()} for o in outcomes],
                **tally.as_dict(),
            }
            if not good:
                entry["published"] = None
                return None
            write_scenarios(skeleton.path, good)
            load(skeleton.path)  # the finished package loads like any other (manifest rewritten)
            target = publish(skeleton.path, self.options.out)
            entry["published"] = str(target)
            return target

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(s)) for s in accepted]
        self.stage_seconds["scenarios"] = time.monotonic() - began
        return [p for t in tasks if (p := t.result()) is not None]

    async def all(self) -> list[Path]:
        """Topics, skeletons and scenarios in one go."""
        topics = await self.topics()
        skeletons = await self.skeletons(topics)
        return await self.scenarios(skeletons)

    async def guarded(self, stage: Callable[[], Any]) -> tuple[str, Any]:
        """Run a stage; a reached budget ends the run cleanly (status 'budget'). Writes the report either way."""
        result, status = None, "complete"
        try:
            try:
                result = await stage()
            except BaseExceptionGroup as group:  # concurrent environments raise inside a task group
                raise _first(group) from None
        except BudgetExceeded as e:
            status = "budget"
            self.report["stopped"] = str(e)
        self.write_report(status)
        return status, result

    def write_report(self, status: str) -> None:
        """``report.json`` (everything) and ``report.md`` (the summary a person reads)."""
        ledger = self.llm.ledger
        self.report.update(
            {
                "status": status,
                "provider": getattr(self.llm.provider, "name", "?"),
                "model": getattr(self.llm.provider, "model", "?"),
                "llm": ledger.as_dict(),
                "seconds": {
                    **self.report.get("seconds", {}),
                    **{k: round(v, 2) for k, v in self.stage_seconds.items()},
                },
            }
        )
        work = self.options.work
        (work / "report.json").write_text(json.dumps(self.report, indent=2, ensure_ascii=False) + "\n", "utf-8")
        (work / "report.md").write_text(summary(self.report), encoding="utf-8")


def summary(report: dict[str, Any]) -> str:
    """The run report as Markdown: per stage and per environment, calls, tokens, cost, accepted, rejected."""
    lines = [f"# Generator run: {report.get('status', '?')}", ""]
    lines.append(f"Provider {report.get('provider')}, model {report.get('model')}.")
    if report.get("stopped"):
        lines.append(f"Stopped: {report['stopped']}.")
    lines += [
        "",
        "## Per stage",
        "",
        "| stage | calls | cached | retries | input tokens | output tokens | cost (USD) |",
    ]
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    for stage, t in sorted(report.get("llm", {}).get("stages", {}).items()):
        lines.append(
            f"| {stage} | {t['calls']} | {t['cached']} | {t['retries']} | {t['input_tokens']} | "
            f"{t['output_tokens']} | {t['cost_usd']:.4f} |"
        )
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
            lines += [f"- environment: {r}" for r in e.get("reasons", [])]
            lines += [f"- scenario {r['index']}: {r['reasons'][-1] if r['reasons'] else '?'}" for r in rejected]
    return "\n".join(lines) + "\n"


def _first(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a task group: a reached budget if any task hit it, else the first error."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        e = stack.pop(0)
        if isinstance(e, BaseExceptionGroup):
            stack = [*e.exceptions, *stack]
        else:
            leaves.append(e)
    return next((e for e in leaves if isinstance(e, BudgetExceeded)), leaves[0])


def _save_skeleton(work: Path, skeleton: Skeleton) -> None:
    folder = work / "skeletons"
    folder.mkdir(exist_ok=True)
    data = {
        "topic": asdict(skeleton.topic),
        "accepted": skeleton.accepted,
        "path": str(skeleton.path) if skeleton.path else None,
        "reasons": skeleton.reasons,
        "details": skeleton.details,
        "invariants": skeleton.invariants,
        "sample": skeleton.sample,
        "clock": skeleton.clock,
    }
    (folder / f"{skeleton.topic.id}.json").write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", "utf-8")


def _load_skeletons(work: Path) -> list[Skeleton]:
    folder = work / "skeletons"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise ValueError(f"{folder}: no skeletons yet; run `envfarm generate skeletons` first")
    out = []
    for file in files:
        data = json.loads(file.read_text(encoding="utf-8"))
        out.append(
            Skeleton(
                topic=Topic(**data["topic"]),
                accepted=data["accepted"],
                path=Path(data["path"]) if data["path"] else None,
                reasons=data["reasons"],
                details=data["details"],
                invariants=data["invariants"],
                sample=data["sample"],
                clock=data["clock"],
            )
        )
    return out
