"""Skeletons (EnvScaler's SkelBuilder): a topic becomes tested environment code.

design (entities, rules, operations) -> code (models.py, tools.py; static gates,
import, every tool described as designed) -> a sample state (types and foreign
keys checked, invariants true) -> quality: programmatic probes plus a
tester/checker agent pair. Problems found by the probes or the checker go back
to the code stage, for a bounded number of rounds; an environment whose
quality stays below the threshold is rejected with its report.

The generated code is imported and run in a contained worker process
(:class:`~envfarm.generator.contained.ContainedEnv`), one per version of the code;
this process only writes the files, reads the worker's answers and asks the model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from envfarm.core.environments import PackageError
from envfarm.core.state import diff
from envfarm.validators.scoring import CheckRunner

from . import prompts, schemas
from .asking import Asker, Problem, Rejected, Tally, at_once
from .codegate import gate_source
from .contained import ContainedEnv, ContainedError, RunnerLimits, RunnerUnavailable, StateError
from .packages import write_manifest, write_skeleton, write_state
from .probe import broken_invariants, probe

log = logging.getLogger(__name__)

QUALITY_THRESHOLD = 0.75  # share of tester calls the checker passes (a warning counts half); and no fail left
TEST_ROUNDS = 3  # code versions tried against the probes and the checker


@dataclass
class Topic:
    """An environment to build, mined from the corpus."""

    id: str
    title: str
    description: str
    tasks: list[str]


@dataclass
class Skeleton:
    """The outcome of one topic: the package (when accepted) and everything the report needs."""

    topic: Topic
    accepted: bool = False
    path: Path | None = None
    reasons: list[str] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)
    details: dict[str, Any] = field(default_factory=dict)
    invariants: dict[str, str] = field(default_factory=dict)
    sample: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    clock: str = ""


async def build_skeleton(
    asker: Asker, topic: Topic, staging: Path, runner: CheckRunner, limits: RunnerLimits | None = None
) -> Skeleton:
    """Design, write and test one environment in ``staging/<topic.id>/``."""
    result = Skeleton(topic)
    tally = result.tally
    loaded: list[ContainedEnv] = []  # every worker started for this topic, stopped at the end
    try:
        design = await asker.ask(
            tally,
            stage="skeleton.design",
            system=prompts.DESIGN_SYSTEM,
            prompt=prompts.design_prompt(topic.id, topic.title, topic.description, topic.tasks),
            schema=schemas.DESIGN,
            schema_name="submit_design",
            accept=at_once(check_design),
        )
        result.details["design"] = {
            "tables": [e["table"] for e in design["entities"]],
            "rules": [r["id"] for r in design["rules"]],
            "operations": [o["name"] for o in design["operations"]],
        }
        invariants = {r["id"]: r["invariant"] for r in design["rules"] if r.get("invariant")}
        rules = {r["id"]: r["text"] for r in design["rules"]}
        code_turns: list[dict[str, str]] = [{"role": "user", "content": prompts.code_prompt(topic.id, design)}]
        sample: tuple[dict[str, list[dict[str, Any]]], str] | None = None
        rounds = []
        for round_no in range(1, TEST_ROUNDS + 1):

            async def accept_code(data: dict[str, Any]) -> tuple[ContainedEnv, dict[str, Any]]:
                env = await check_code(data, topic.id, design, rules, staging, limits)
                loaded.append(env)
                return env, data

            env, code = await asker.ask(
                tally,
                stage="skeleton.code",
                system=prompts.CODE_SYSTEM,
                prompt=code_turns,
                schema=schemas.CODE,
                schema_name="submit_code",
                accept=accept_code,
                max_tokens=16000,
            )
            for older in loaded[:-1]:  # the code that replaced them is the one tested now
                await older.close()
            if sample is None or not await _state_fits(env, sample[0]):
                sample = await asker.ask(
                    tally,
                    stage="skeleton.state",
                    system=prompts.STATE_SYSTEM,
                    prompt=prompts.state_prompt(topic.id, code["models_py"], rules),
                    schema=schemas.STATE,
                    schema_name="submit_state",
                    accept=lambda data, env=env: check_state(data, env, invariants, runner),  # type: ignore[misc]
                )
            assert sample is not None
            rows, clock = sample
            try:
                found = await probe(env, rows, clock, invariants, runner, seed=round_no)
                verdicts, runs = await _tester_checker(asker, tally, env, rows, clock)
            except (ContainedError, StateError) as e:  # the worker itself could not go on: a finding
                if isinstance(e, RunnerUnavailable):
                    raise
                problems, quality = [f"running the code failed: {e}"], 0.0
                rounds.append({"probe": {"problems": problems}, "verdicts": {}, "quality": quality})
            else:
                counts = {v: sum(1 for x in verdicts if x["verdict"] == v) for v in ("pass", "warning", "fail")}
                quality = (counts["pass"] + 0.5 * counts["warning"]) / max(1, len(verdicts))
                rounds.append({"probe": found.as_dict(), "verdicts": counts, "quality": round(quality, 3)})
                failures = [
                    f"tester call {v['index']} ({runs[v['index']]['tool']}): {v['reason']}"
                    for v in verdicts
                    if v["verdict"] == "fail" and 0 <= v["index"] < len(runs)
                ]
                problems = found.problems + failures
            if not problems and quality >= QUALITY_THRESHOLD:
                write_state(env.path, "sample", rows)
                result.accepted, result.path = True, env.path
                result.invariants, result.sample, result.clock = invariants, rows, clock
                break
            if round_no == TEST_ROUNDS:
                result.reasons = problems or [f"quality {quality:.2f} is below {QUALITY_THRESHOLD}"]
                break
            code_turns += [
                {"role": "assistant", "content": _code_text(code)},
                {"role": "user", "content": _test_feedback(problems, quality)},
            ]
        result.details["rounds"] = rounds
    except Rejected as e:
        result.reasons = [f"{e.stage}: {p}" for p in e.problems]
        result.details["rejected"] = e.as_dict()
    finally:
        for env in loaded:
            await env.close()
    return result


def check_design(design: dict[str, Any]) -> dict[str, Any]:
    """The design is consistent: unique names, primary keys, references that exist, invariants that compile."""
    problems: list[str] = []
    tables = [e["table"] for e in design["entities"]]
    for dup in sorted({t for t in tables if tables.count(t) > 1}):
        problems.append(f"table {dup!r} is designed twice")
    columns = {e["table"]: {a["name"] for a in e["attributes"]} for e in design["entities"]}
    for entity in design["entities"]:
        keys = [a["name"] for a in entity["attributes"] if a.get("primary_key")]
        if keys != ["id"]:
            problems.append(f"table {entity['table']!r} needs exactly one primary key, an integer 'id'")
        for attr in entity["attributes"]:
            ref = attr.get("references")
            if ref:
                table, _, column = ref.partition(".")
                if column not in columns.get(table, set()):
                    problems.append(f"{entity['table']}.{attr['name']} references {ref!r}, which is not designed")
    names = [o["name"] for o in design["operations"]]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"operation {dup!r} is designed twice")
    if not any(o["kind"] == "mutation" for o in design["operations"]):
        problems.append("no operation is a mutation: an environment's tasks need to change state")
    for rule in design["rules"]:
        code = rule.get("invariant")
        if code:
            issues = gate_source(code, f"invariant {rule['id']}")
            if not issues and "def invariant(" not in code:
                issues = [f"invariant {rule['id']}: must define invariant(state)"]
            problems += issues
    if problems:
        raise Problem("\n".join(f"- {p}" for p in problems))
    return design


async def check_code(
    code: dict[str, Any],
    env_id: str,
    design: dict[str, Any],
    rules: dict[str, str],
    staging: Path,
    limits: RunnerLimits | None = None,
) -> ContainedEnv:
    """Static gates, then the package is loaded in a contained worker; its tables and tools must be as designed."""
    problems = gate_source(code["models_py"], "models.py") + gate_source(code["tools_py"], "tools.py")
    if problems:
        raise Problem("\n".join(f"- {p}" for p in problems))
    path = write_skeleton(
        staging, env_id, design["title"], design["description"], rules, code["models_py"], code["tools_py"]
    )
    try:
        env = await ContainedEnv.start(path, limits=limits)
    except PackageError as e:
        raise Problem("\n".join(f"- {p}" for p in e.problems)) from None
    except ContainedError as e:
        if isinstance(e, RunnerUnavailable):
            raise
        raise Problem(f"- loading the code failed: {e}") from None
    write_manifest(path, env.manifest())
    wanted_tables = {e["table"] for e in design["entities"]}
    if set(env.tables) != wanted_tables:
        missing, extra = (
            sorted(wanted_tables - set(env.tables)),
            sorted(set(env.tables) - wanted_tables),
        )
        problems.append(f"tables differ from the design: missing {missing}, not designed {extra}")
    for op in design["operations"]:
        spec = env.tools.get(op["name"])
        if spec is None:
            problems.append(f"operation {op['name']!r} has no tool")
            continue
        if spec.kind != op["kind"]:
            problems.append(f"tool {op['name']!r} is a {spec.kind}, designed as a {op['kind']}")
        params = set(spec.input_schema.get("properties", {}))
        missing = sorted({p["name"] for p in op["parameters"]} - params)
        if missing:
            problems.append(f"tool {op['name']!r} lacks the designed parameter(s) {missing}")
    if problems:
        await env.close()
        raise Problem("\n".join(f"- {p}" for p in problems))
    return env


async def check_state(
    data: dict[str, Any], env: ContainedEnv, invariants: dict[str, str], runner: CheckRunner
) -> tuple[dict[str, list[dict[str, Any]]], str]:
    """The sample state builds (types, required columns, foreign keys) and every invariant holds on it."""
    clock = parse_clock(data["clock"])
    try:
        episode = await env.episode(data["state"], clock)
    except StateError as e:
        raise Problem(str(e)) from None
    view = episode.initial
    await episode.close()
    broken = await broken_invariants(runner, invariants, view)
    false = [rule for rule, error in broken if error is None]
    for rule, error in broken:
        if error is not None:  # the invariant itself is broken: it cannot judge anything, so it is dropped
            log.warning("%s: invariant %r dropped: %s", env.id, rule, error)
            invariants.pop(rule, None)
    if false:
        raise Problem(f"the state breaks rule(s) {false}: their invariants are false on it")
    return data["state"], clock


async def _tester_checker(
    asker: Asker, tally: Tally, env: ContainedEnv, rows: dict[str, list[dict[str, Any]]], clock: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """EnvScaler's pair: the tester plans calls, they run on the sample state, the checker judges each."""
    plan = await asker.ask(
        tally,
        stage="skeleton.tester",
        system=prompts.TESTER_SYSTEM,
        prompt=prompts.tester_prompt(env.id, env.manifest(), rows),
        schema=schemas.TEST_PLAN,
        schema_name="submit_test_plan",
        accept=at_once(lambda data: data),
    )
    episode = await env.episode(rows, clock)
    runs = []
    before = episode.initial
    keys = env.keys()
    try:
        for i, call in enumerate(plan["calls"]):
            step = await episode.call(call["tool"], call["arguments"], view=True)
            assert step.view is not None
            result = step.result
            changes = diff(before, step.view, keys)
            before = step.view
            runs.append(
                {
                    "index": i,
                    "tool": call["tool"],
                    "arguments": call["arguments"],
                    "expect": call["expect"],
                    "result": result.as_dict().get("result") if result.ok else {"error": result.error},
                    "state_changes": changes,
                }
            )
    finally:
        await episode.close()

    async def accept_verdicts(data: dict[str, Any]) -> list[dict[str, Any]]:
        judged = {v["index"] for v in data["verdicts"]}
        missing = sorted(set(range(len(runs))) - judged)
        if missing:
            raise Problem(f"no verdict for call(s) {missing}; judge every call")
        return data["verdicts"]  # type: ignore[no-any-return]

    verdicts = await asker.ask(
        tally,
        stage="skeleton.checker",
        system=prompts.CHECKER_SYSTEM,
        prompt=prompts.checker_prompt(env.id, env.manifest()["rules"], runs),
        schema=schemas.VERDICTS,
        schema_name="submit_verdicts",
        accept=accept_verdicts,
    )
    return verdicts, runs


def parse_clock(text: str) -> str:
    """An LLM's clock as ISO 8601 with its UTC offset, or a Problem saying what a clock looks like."""
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise Problem(f"clock {text!r} is not ISO 8601 (e.g. 2026-03-14T10:00:00+00:00)") from None
    if when.tzinfo is None:
        raise Problem(f"clock {text!r} needs a UTC offset, e.g. 2026-03-14T10:00:00+00:00")
    return when.isoformat()


async def _state_fits(env: ContainedEnv, rows: dict[str, list[dict[str, Any]]]) -> bool:
    """Whether the sample state still builds with this version of the models."""
    try:
        episode = await env.episode(rows, "2000-01-01T00:00:00+00:00")
    except StateError:
        return False
    await episode.close()
    return True


def _code_text(code: dict[str, Any]) -> str:
    return f"models.py:\n{code['models_py']}\n\ntools.py:\n{code['tools_py']}"


def _test_feedback(problems: list[str], quality: float) -> str:
    lines = "\n".join(f"- {p}" for p in problems) or f"- the checker's quality score {quality:.2f} is too low"
    return f"Testing the code found:\n{lines}\n\nFix the code and answer with both whole modules again."
