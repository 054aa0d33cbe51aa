"""The generator's run: corpus -> topics -> skeletons -> scenarios -> packages, with a report.

Everything a run makes lives in its work folder (``--work``): the LLM cache, the
topics, the staged packages and each stage's results, then ``report.json`` and
``report.md``. Finished environments are copied to ``--out``. Every LLM answer
is cached by a hash of its request and every step after an answer is
deterministic, so a killed run, started again, pays for no call twice and
writes the same output.

Generated code never runs in this process: every stage that executes it asks a
contained worker (:mod:`envfarm.generator.contained`). Writing files and
publishing stay here. However a run ends, :meth:`Run.guarded` writes the report,
with a :class:`~envfarm.generator.failures.Failure` when it did not end well.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from envfarm.core.environments import PackageError
from envfarm.generator.llm import LLM
from envfarm.validators.scoring import CheckRunner

from . import report as run_report
from .asking import Asker, Tally
from .contained import ContainedEnv, ContainedError, RunnerLimits, RunnerUnavailable
from .dedupe import Embedder
from .failures import Failure, InputError, classify
from .packages import publish, write_manifest, write_scenarios
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
    limits: RunnerLimits | None = None  # of the contained workers that run generated code

    def __post_init__(self) -> None:
        self.options.work.mkdir(parents=True, exist_ok=True)
        self.asker = Asker(self.llm, max_repairs=self.options.max_repairs)
        self.started = time.monotonic()
        self.stage_seconds: dict[str, float] = {}
        self.report = run_report.read(self.options.work)
        self.report.pop("failure", None)
        self.report.pop("stopped", None)
        self.report.setdefault("environments", {})
        self.stage = "start"  # the stage running now: a failure is reported against it
        self.failure: Failure | None = None

    @property
    def staging(self) -> Path:
        return self.options.work / "staging"

    async def topics(self) -> list[Topic]:
        """Judge the corpus and write ``topics.json``."""
        self.stage = "topics"
        if self.options.corpus is None:
            raise InputError("no corpus: pass --corpus FILE.jsonl")
        from .dedupe import default_embedder

        began = time.monotonic()
        tasks = read_corpus(self.options.corpus, self.options.corpus_limit)
        tally = Tally()
        self.progress("topics", 0, 1)
        judgements = await judge(self.asker, tally, tasks)
        topics, numbers = pick_topics(judgements, tasks, self.embedder or default_embedder(), self.options.envs)
        save_topics(self.options.work / "topics.json", topics, numbers)
        self.progress("topics", 1, 1)
        self.report["topics"] = {
            "corpus": str(self.options.corpus),
            **numbers,
            "chosen_ids": [t.id for t in topics],
            **tally.as_dict(),
        }
        self.stage_seconds["topics"] = time.monotonic() - began
        return topics

    async def skeletons(self, topics: list[Topic] | None = None) -> list[Skeleton]:
        """Build and test every topic's environment concurrently; results go to ``skeletons/<env>.json``."""
        self.stage = "skeletons"
        topics = topics if topics is not None else load_topics(self.options.work / "topics.json")
        began = time.monotonic()
        done = 0
        self.progress("skeletons", 0, len(topics))

        async def one(topic: Topic) -> Skeleton:
            nonlocal done
            skeleton = await build_skeleton(self.asker, topic, self.staging, self.runner, self.limits)
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
        self.stage = "scenarios"
        check_out(self.options.out)
        skeletons = skeletons if skeletons is not None else _load_skeletons(self.options.work)
        accepted = [s for s in skeletons if s.accepted]
        began = time.monotonic()
        total = len(accepted) * self.options.scenarios
        done = 0
        self.progress("scenarios", 0, total)

        async def one(skeleton: Skeleton) -> Path | None:
            nonlocal done
            assert skeleton.path is not None
            entry = self.report["environments"].setdefault(skeleton.topic.id, {})
            try:
                async with await ContainedEnv.start(skeleton.path, limits=self.limits) as env:
                    outcomes = await write_scenarios_for(self.asker, skeleton, env, self.options.scenarios, self.runner)
            except (PackageError, ContainedError) as e:
                if isinstance(e, RunnerUnavailable):
                    raise
                entry.update({"published": None, "reasons": [*entry.get("reasons", []), f"scenarios: {e}"]})
                return None
            done += len(outcomes)
            self.progress("scenarios", done, total)
            good = [o.scenario for o in outcomes if o.scenario is not None]
            tally = Tally()
            for o in outcomes:
                tally.merge(o.tally)
            entry["scenarios"] = {
                "asked": len(outcomes),
                "accepted": [s.id for s in good],
                "rejected": [
                    {"index": o.index, "reasons": o.reasons, **o.rejected} for o in outcomes if o.scenario is None
                ],
                "per_scenario": [{"index": o.index, **o.tally.as_dict()} for o in outcomes],
                **tally.as_dict(),
            }
            if not good:
                entry["published"] = None
                return None
            write_scenarios(skeleton.path, good)
            # The finished package loads like any other (in a worker); its manifest is derived again.
            async with await ContainedEnv.start(skeleton.path, with_scenarios=True, limits=self.limits) as final:
                write_manifest(skeleton.path, final.manifest())
            target = publish(skeleton.path, self.options.out)
            entry["published"] = str(target)
            return target

        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(one(s)) for s in accepted]
        self.stage_seconds["scenarios"] = time.monotonic() - began
        return [p for t in tasks if (p := t.result()) is not None]

    async def all(self) -> list[Path]:
        """Topics, skeletons and scenarios in one go."""
        check_out(self.options.out)  # before anything is paid for
        topics = await self.topics()
        skeletons = await self.skeletons(topics)
        return await self.scenarios(skeletons)

    async def guarded(self, stage: Callable[[], Any]) -> tuple[str, Any]:
        """Run a stage and write the report however it ends; returns (status, result).

        status is ``complete`` when the stage made something, else ``budget``, ``rejected``,
        ``failed`` or ``interrupted``, with :attr:`failure` saying why. An interruption
        (Ctrl-C, a cancelled task) is re-raised once the report is written.
        """
        result: Any = None
        try:
            try:
                result = await stage()
            except BaseExceptionGroup as group:  # concurrent environments raise inside a task group
                raise _first(group) from None
            self.failure = self._nothing_made(getattr(stage, "__name__", ""), result)
        except (KeyboardInterrupt, asyncio.CancelledError):
            self.failure = Failure(
                "interrupted",
                self.stage,
                f"{self.stage}: interrupted; run the same command again to resume (answers already paid for "
                "are in the cache)",
            )
            self.write_report(self.failure.status)
            raise
        except Exception as e:  # every other way a run can end: classified, reported, never a traceback
            self.failure = classify(e, self.stage)
        status = "complete" if self.failure is None else self.failure.status
        if self.failure is not None and self.failure.kind == "budget":
            self.report["stopped"] = self.failure.message
        self.write_report(status)
        return status, result

    def _nothing_made(self, name: str, result: Any) -> Failure | None:
        """A stage that ran to its end but made nothing: every answer was rejected (or nothing was asked)."""
        if not isinstance(result, list):
            return None
        if name == "topics":
            return None if result else self._no_topics()
        if name == "skeletons":
            return None if any(s.accepted for s in result) else self._rejected("skeletons")
        if result:
            return None
        if name == "all" and not self.report.get("topics", {}).get("chosen_ids"):
            return self._no_topics()
        if not any(e.get("accepted") for e in self.report.get("environments", {}).values()):
            return self._rejected("skeletons")
        return self._rejected("scenarios")

    def _no_topics(self) -> Failure:
        numbers = self.report.get("topics", {})
        return Failure(
            "rejected",
            "topics",
            f"topics: no environment topic in the corpus ({numbers.get('tasks', 0)} tasks judged, "
            f"{numbers.get('stateful', 0)} stateful, {numbers.get('kept', 0)} rated useful and modelable enough)",
        )

    def _rejected(self, stage: str) -> Failure:
        envs = sorted(self.report.get("environments", {}).items())
        if stage == "skeletons":
            why = "; ".join(f"{k}: {(e.get('reasons') or ['?'])[-1]}" for k, e in envs if not e.get("accepted"))
            message = f"skeletons: no environment was accepted ({why or 'no topic to build'})"
        else:
            why = "; ".join(f"{k}: {_last_reason(e)}" for k, e in envs if e.get("accepted") and not e.get("published"))
            message = f"scenarios: no environment got a scenario that passed the gate ({why or 'none to write'})"
        return Failure("rejected", stage, message)

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
        if self.failure is not None:
            self.report["failure"] = self.failure.as_dict()
        run_report.write(self.options.work, self.report)


def check_out(out: Path) -> None:
    """``--out`` is a folder this process can write (made if missing), or an InputError saying why not."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".envfarm-write-test-{id(out)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise InputError(f"--out {out}: cannot write there ({e.strerror or e})") from None


def write_failure_report(work: Path, failure: Failure, provider: str, model: str | None) -> None:
    """The report of a run that failed before it could start (no provider, say): status and why."""
    data = run_report.read(work)
    data.setdefault("environments", {})
    data.update({"status": failure.status, "provider": provider, "model": model or "?", "failure": failure.as_dict()})
    data.setdefault("llm", {"stages": {}, "totals": {}, "spent_usd": 0, "cost_usd": 0})
    run_report.write(work, data)


def _last_reason(entry: dict[str, Any]) -> str:
    rejected = entry.get("scenarios", {}).get("rejected", [])
    if rejected and rejected[-1].get("reasons"):
        return str(rejected[-1]["reasons"][-1])
    return str((entry.get("reasons") or ["no scenario asked"])[-1])


def _first(group: BaseExceptionGroup) -> BaseException:
    """The error to report from a task group: an interruption or a reached budget if any, else the first error."""
    from envfarm.generator.llm import BudgetExceeded

    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        e = stack.pop(0)
        if isinstance(e, BaseExceptionGroup):
            stack = [*e.exceptions, *stack]
        else:
            leaves.append(e)
    for kind in (KeyboardInterrupt, asyncio.CancelledError, BudgetExceeded):
        found = next((e for e in leaves if isinstance(e, kind)), None)
        if found is not None:
            return found
    return leaves[0]


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
        raise InputError(f"{folder}: no skeletons yet; run `envfarm generate skeletons` first")
    out = []
    for file in files:
        try:
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
        except (ValueError, KeyError, TypeError) as e:
            raise InputError(f"{file}: not a skeleton this version can read ({type(e).__name__}: {e})") from None
    return out
