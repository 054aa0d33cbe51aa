"""Procedural scenarios: random valid tool walks become oracles, their state diffs become checks.

No LLM is involved. An environment opts in with a ``synth.py`` module holding
``STEPS``: for each mutation tool, a :data:`~envfarm.core.synth.StepMaker` that
picks valid arguments from the current state and says the request as a user would
(see :mod:`envfarm.core.synth`, which is all an environment imports for it).
"""

from __future__ import annotations

import importlib
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envfarm.core.environments import Environment
from envfarm.core.episodes import Episode
from envfarm.core.scenarios import Call, Check, Scenario
from envfarm.core.state import canonical_json
from envfarm.core.synth import StepMaker
from envfarm.validators.gate import gate_scenario
from envfarm.validators.scoring import CheckRunner


@dataclass(frozen=True)
class Knobs:
    """How hard the made scenarios are: mutations per task, and how many rows they may change."""

    mutations: tuple[int, int] = (2, 3)
    changed_rows: tuple[int, int] = (1, 12)


def load_steps(env: Environment) -> dict[str, StepMaker]:
    """The environment's ``synth.STEPS``; ValueError saying what is missing."""
    try:
        module = importlib.import_module(f"envfarm.servers.{env.id}.synth")
    except ModuleNotFoundError:
        raise ValueError(f"{env.id!r} has no synth.py, so it cannot make procedural scenarios") from None
    steps = getattr(module, "STEPS", None)
    if not isinstance(steps, dict) or not steps:
        raise ValueError(f"{env.id}/synth.py: STEPS must map mutation tool names to step makers")
    unknown = sorted(t for t in steps if env.tools.get(t) is None or env.tools[t].kind != "mutation")
    if unknown:
        raise ValueError(f"{env.id}/synth.py: STEPS names {unknown}, which are not mutation tools")
    return dict(steps)


def walk(
    env: Environment, template: Scenario, rng: random.Random, knobs: Knobs, steps: dict[str, StepMaker]
) -> tuple[list[Call], list[str], Episode] | None:
    """One random walk of valid mutations (each preceded by its lookups) on a fresh episode.

    Returns the oracle, the requests in order and the episode (for its final state),
    or None when the walk found too few mutations that change the state.
    """
    episode = Episode(env, template, "synth", template.seed)
    wanted = rng.randint(*knobs.mutations)
    oracle: list[Call] = []
    requests: list[str] = []
    tools = sorted(steps)
    for _ in range(wanted * 6):
        if len(requests) == wanted:
            break
        tool = rng.choice(tools)
        step = steps[tool](episode.view(), rng)
        if step is None:
            continue
        if not all(episode.call(c.tool, c.arguments).ok for c in step.lookups):
            continue
        before = episode.state_hash()
        if not episode.call(tool, dict(step.arguments)).ok or episode.state_hash() == before:
            continue
        oracle.extend(step.lookups)
        oracle.append(Call(tool=tool, arguments=dict(step.arguments)))
        requests.append(step.request)
    if len(requests) < wanted:
        episode.close()
        return None
    return oracle, requests, episode


def checks_from_changes(changes: dict[str, dict[str, Any]], keys: dict[str, list[str]]) -> list[Check]:
    """One check per changed, added or removed row, pinning the values the walk left there."""
    checks: list[Check] = []
    for table, change in sorted(changes.items()):
        key_cols = keys[table]
        for row in change["changed"]:
            after = row["after"]
            match = _match(key_cols, row["key"])
            pinned = " and ".join(f"row[{c!r}] == {after[c]!r}" for c in sorted(after))
            code = (
                f"def check(initial, final):\n    row = next((r for r in final[{table!r}] if {match}), None)\n"
                f"    return row is not None and {pinned}\n"
            )
            said = ", ".join(f"{c} = {after[c]!r}" for c in sorted(after))
            checks.append(
                Check(
                    id=_check_id(checks, f"{table}-{row['key']}"),
                    description=f"{table} {row['key']}: {said}",
                    code=code,
                )
            )
        for row in change["added"]:
            values = {c: v for c, v in row.items() if c not in key_cols}
            pinned = " and ".join(f"r[{c!r}] == {v!r}" for c, v in sorted(values.items())) or "True"
            code = f"def check(initial, final):\n    return any({pinned} for r in final[{table!r}])\n"
            said = ", ".join(f"{c} = {v!r}" for c, v in sorted(values.items()))
            checks.append(
                Check(id=_check_id(checks, f"{table}-new"), description=f"a new {table} row: {said}", code=code)
            )
        for row in change["removed"]:
            pinned = " and ".join(f"r[{c!r}] == {row[c]!r}" for c in key_cols)
            code = f"def check(initial, final):\n    return not any({pinned} for r in final[{table!r}])\n"
            key = "|".join(str(row[c]) for c in key_cols)
            checks.append(
                Check(id=_check_id(checks, f"{table}-{key}-gone"), description=f"{table} {key} is removed", code=code)
            )
    return checks


def _match(key_cols: list[str], key: str) -> str:
    parts = key.split("|")
    return " and ".join(f"r[{c!r}] == {_literal(p)!r}" for c, p in zip(key_cols, parts, strict=True))


def _literal(text: str) -> object:
    return int(text) if text.lstrip("-").isdigit() else text


def _check_id(existing: list[Check], base: str) -> str:
    slug = "".join(ch if ch.isalnum() else "-" for ch in base.lower()).strip("-")[:56] or "row"
    taken = {c.id for c in existing}
    candidate, n = slug, 2
    while candidate in taken:
        candidate, n = f"{slug}-{n}", n + 1
    return candidate


TASK_SHAPES = [
    ("Please {0}.", " Then {0}.", " Finally, {0}."),
    ("Hi! Could you {0}?", " After that, {0}.", " And {0}, please."),
    ("I need a few things done: first {0}.", " Next, {0}.", " Last, {0}."),
]


def task_text(requests: list[str], rng: random.Random) -> str:
    """The requests as one message: fragments ("renew Ada's loan") go into a shape; when a step
    wrote whole sentences ("This is Maria: please approve ..."), every request is a sentence."""
    if any(r[:1].isupper() and r.rstrip().endswith((".", "?", "!")) for r in requests):
        sentences = [r.strip() for r in requests]
        return " ".join(s[0].upper() + s[1:] + ("" if s.endswith((".", "?", "!")) else ".") for s in sentences)
    first, middle, last = rng.choice(TASK_SHAPES)
    parts = [first.format(requests[0])]
    parts += [middle.format(r) for r in requests[1:-1]]
    if len(requests) > 1:
        parts.append(last.format(requests[-1]))
    return "".join(parts)


async def synthesize(
    env: Environment,
    template: Scenario,
    count: int,
    seed: int,
    knobs: Knobs,
    runner: CheckRunner,
    max_attempts: int | None = None,
) -> tuple[list[Scenario], dict[str, int]]:
    """Up to ``count`` scenarios that pass the quality gate, and counts of what was tried and why dropped.

    Deterministic: the same environment, template, seed and knobs give the same scenarios.
    """
    steps = load_steps(env)
    made: list[Scenario] = []
    seen: set[str] = set()
    stats = {"attempts": 0, "too_few_mutations": 0, "rows_out_of_range": 0, "duplicates": 0, "gate_failed": 0}
    attempt = 0
    while len(made) < count and attempt < (max_attempts or count * 25):
        attempt += 1
        stats["attempts"] += 1
        rng = random.Random(f"{env.id}:{template.id}:{seed}:{attempt}")
        walked = walk(env, template, rng, knobs, steps)
        if walked is None:
            stats["too_few_mutations"] += 1
            continue
        oracle, requests, episode = walked
        changes = episode.diff_from_initial()
        episode.close()
        rows = sum(len(c["changed"]) + len(c["added"]) + len(c["removed"]) for c in changes.values())
        if not knobs.changed_rows[0] <= rows <= knobs.changed_rows[1]:
            stats["rows_out_of_range"] += 1
            continue
        fingerprint = canonical_json([c.model_dump() for c in oracle])
        if fingerprint in seen:
            stats["duplicates"] += 1
            continue
        seen.add(fingerprint)
        scenario = Scenario.model_validate(
            {
                "id": f"synth-{seed}-{len(made) + 1:03d}",
                "task": task_text(requests, rng),
                "state": template.state,
                "clock": template.clock,
                "seed": template.seed,
                "checks": checks_from_changes(changes, env.keys()),
                "oracle": [c.model_dump() for c in oracle],  # validated as the scenario's own oracle-call model
            }
        )
        env.add_scenario(scenario)  # the gate replays it like any scenario of the env
        report = await gate_scenario(env, scenario, runner)
        if not report.passed:
            env.remove_scenario(scenario.id)
            stats["gate_failed"] += 1
            continue
        scenario.gate = report.numbers
        made.append(scenario)
    return made, stats


def write_scenarios(env: Environment, scenarios: list[Scenario]) -> list[Path]:
    """Write each scenario as ``scenarios/<id>.json`` in the package (same layout as authored ones)."""
    paths = []
    for scenario in scenarios:
        path = env.path / "scenarios" / f"{scenario.id}.json"
        data = scenario.model_dump(mode="json", exclude_none=True)
        path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths
