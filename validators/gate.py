"""The scenario quality gate: a scenario ships only if its checks reward exactly what the task asks.

A scenario passes when:

1. every check is false on the initial state, or is a preservation check (true on
   the initial state, and it must stay true); an ``oracle_state`` check is true there
   exactly when the oracle changes nothing (the task's right outcome is no change);
2. the oracle runs without an error result (but for the calls it marks ``refused``, which
   must be refused) and every check is true after it;
3. every row the oracle changes is verified: with that row's change undone (and
   everything else the oracle did kept) at least one check fails. So the oracle
   touches nothing the task does not need, and the checks see all it does;
4. every mutated oracle is caught: with one mutation step dropped, or one argument
   of one mutation step changed to another valid value, at least one check fails. A
   step the oracle makes knowing it is refused is not mutated, and a mutant that leaves
   exactly the oracle's final state is the same outcome by another path (it is not
   counted): so an oracle that changes nothing has no mutants, as it has no changes.

The gate's numbers are returned (and written into the scenario by ``envfarm check
--write``) so anyone can see how strongly a scenario is verified. Checks run in the
sandbox like every other check. The oracle and its mutants are replayed through a
:class:`~envfarm.validators.replay.Replayer`: in this process for a loaded
``Environment``, or wherever the caller's replayer runs the code (the generator's is a
contained worker process).
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from envfarm.core.environments import Environment
from envfarm.core.scenarios import Call, Scenario
from envfarm.core.state import StateView, row_key
from envfarm.validators.replay import InProcess, Replay, Replayer, ToolShape
from envfarm.validators.scoring import CheckRunner, judge

MAX_ALTERNATIVES = 2  # other values tried per argument of each mutation step
MUTANTS_AT_ONCE = 16  # mutated oracles replayed, then judged together (their checks run in parallel)


@dataclass
class GateReport:
    """Whether a scenario passed the gate, why not, and the numbers behind it."""

    env: str
    scenario: str
    reasons: list[str] = field(default_factory=list)
    numbers: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.reasons


async def gate_scenario(env: Environment | Replayer, scenario: Scenario, runner: CheckRunner) -> GateReport:
    """Run the four tests of the gate on one scenario (``env``: a loaded environment, replayed in this
    process, or any :class:`~envfarm.validators.replay.Replayer`)."""
    replayer: Replayer = InProcess(env) if isinstance(env, Environment) else env
    report = GateReport(replayer.id, scenario.id)
    # `said` checks judge what the agent tells the user: the oracle says nothing, so the gate cannot judge them.
    judged = scenario.model_copy(update={"checks": [c for c in scenario.checks if c.kind != "said"]})
    checks = judged.checks
    preserve = {c.id for c in checks if c.preserve}

    done = await replayer.replay(scenario, scenario.oracle)
    initial = done.initial
    loaded = env if isinstance(env, Environment) else None

    async def failing(initial: StateView, final: StateView, final_hash: str | None = None) -> list[str]:
        """Ids of the checks that do not pass (an error counts as not passing)."""
        outcomes = await judge(
            loaded, judged, initial, final, runner, final_hash=final_hash, oracle_hash=done.final_state_hash
        )
        return [o.id for o in outcomes if not o.passed]

    start = {o.id: o for o in await judge(loaded, judged, initial, initial, runner, oracle_hash=done.final_state_hash)}
    for check in checks:
        outcome = start[check.id]
        if outcome.error:
            report.reasons.append(f"check {check.id!r} fails to run: {outcome.error}")
        elif check.kind == "oracle_state":  # true at the start exactly when the oracle changes nothing
            if check.preserve and done.changes:
                report.reasons.append(f"check {check.id!r} is marked preserve, but the oracle changes the state")
        elif check.preserve and not outcome.passed:
            report.reasons.append(f"preservation check {check.id!r} is false on the initial state")
        elif not check.preserve and outcome.passed:
            report.reasons.append(f"check {check.id!r} is already true on the initial state")

    refused = {i for i, call in enumerate(scenario.oracle) if getattr(call, "refused", False)}
    errors = [(i, r) for i, r in enumerate(done.results) if not r.ok and i not in refused]
    for i, result in errors:
        report.reasons.append(f"oracle step {i} ({result.tool}) returns an error: {result.error}")
    for i in sorted(refused):
        if done.results[i].ok:
            report.reasons.append(f"oracle step {i} ({done.results[i].tool}) is marked refused, but it succeeds")
    after = await failing(initial, done.final)
    for check_id in after:
        report.reasons.append(f"check {check_id!r} is false after the oracle")

    reverts = list(_reverted_finals(done))
    state_checked = [c.id for c in checks if c.kind == "oracle_state"]
    if state_checked:  # a change undone is a state other than the oracle's: the oracle_state check fails on it
        revert_failures = [state_checked for _ in reverts]
    else:
        revert_failures = await asyncio.gather(*(failing(initial, final) for _, final in reverts))
    for (what, _), failed in zip(reverts, revert_failures, strict=True):
        if not failed:
            report.reasons.append(f"the oracle's change to {what} is verified by no check (undoing it passes them all)")

    mutants = []
    mutant_failures: list[list[str]] = []
    candidates = _mutants(replayer.tools, scenario, initial)
    for at in range(0, len(candidates), MUTANTS_AT_ONCE):  # a few final states in memory at a time
        judging = []
        for what, calls in candidates[at : at + MUTANTS_AT_ONCE]:
            mutant = await replayer.replay(scenario, calls)
            if mutant.final_state_hash != done.final_state_hash:  # else: the oracle's outcome by another path
                mutants.append((what, calls))
                judging.append(failing(initial, mutant.final, mutant.final_state_hash))
        mutant_failures += await asyncio.gather(*judging)
    for (what, _), failed in zip(mutants, mutant_failures, strict=True):
        if not failed:
            report.reasons.append(f"{what} still passes every check")

    report.numbers = {
        "checks": len(checks),
        "preservation_checks": len(preserve),
        "false_at_start": sum(not start[c].passed for c in start if c not in preserve),
        "oracle_steps": len(scenario.oracle),
        "oracle_errors": len(errors),
        "changed_rows": len(reverts),
        "verified_rows": sum(bool(f) for f in revert_failures),
        "mutants": len(mutants),
        "mutants_caught": sum(bool(f) for f in mutant_failures),
    }
    return report


def _reverted_finals(done: Replay) -> list[tuple[str, StateView]]:
    """For each row the oracle changed, the oracle's final state with just that change undone."""
    out: list[tuple[str, StateView]] = []
    for table, change in done.changes.items():
        keys = done.keys[table]
        for row in change["changed"]:
            final = _copy_table(done.final, table)
            for r in final[table]:
                if row_key(r, keys) == row["key"]:
                    r.update(row["before"])
            out.append((f"{table} row {row['key']}", final))
        for row in change["added"]:
            final = _copy_table(done.final, table)
            final[table] = [r for r in final[table] if r != row]
            out.append((f"the {table} row it adds ({row_key(row, keys)})", final))
        for row in change["removed"]:
            final = _copy_table(done.final, table)
            final[table] = [*final[table], row]
            out.append((f"the {table} row it removes ({row_key(row, keys)})", final))
    return out


def _copy_table(view: StateView, table: str) -> StateView:
    """A view sharing every table but ``table``, which is copied row by row."""
    return {**view, table: [dict(r) for r in view[table]]}


def _mutants(tools: Mapping[str, ToolShape], scenario: Scenario, initial: StateView) -> list[tuple[str, list[Call]]]:
    """Oracles with one mutation step dropped, or one argument of one mutation step changed."""
    oracle = scenario.oracle
    out: list[tuple[str, list[Call]]] = []
    for i, call in enumerate(oracle):
        spec = tools.get(call.tool)
        if spec is None or spec.kind != "mutation" or getattr(call, "refused", False):
            continue
        out.append((f"the oracle without step {i} ({call.tool})", [*oracle[:i], *oracle[i + 1 :]]))
        properties = spec.input_schema.get("properties", {})
        for name, value in call.arguments.items():
            for other in alternatives(name, value, properties.get(name, {}), initial)[:MAX_ALTERNATIVES]:
                changed = Call(tool=call.tool, arguments={**copy.deepcopy(call.arguments), name: other})
                what = f"changing oracle step {i} ({call.tool}) argument {name!r} from {value!r} to {other!r}"
                out.append((what, [*oracle[:i], changed, *oracle[i + 1 :]]))
    return out


def alternatives(name: str, value: Any, schema: dict[str, Any], initial: StateView) -> list[Any]:
    """Other valid values for argument ``name``: other enum members, a day later, neighbours in the
    column of the initial state that holds such values (another member, another barcode), one more.
    Free text that names nothing in the state has none."""
    enum = schema.get("enum") or next((s["enum"] for s in schema.get("anyOf", []) if "enum" in s), None)
    if enum:
        return [v for v in enum if v != value]
    if isinstance(value, bool):
        return [not value]
    if isinstance(value, str):
        shifted = _shift_date(value)
        if shifted is not None:
            return [shifted]
    if isinstance(value, int | str) and not isinstance(value, bool):
        same_column = _column_neighbours(name, value, initial)
        if same_column:
            return same_column
    if isinstance(value, int | float) and not isinstance(value, bool):
        return [value + 1]
    return []  # free text (a note, a reason): a reworded value is not another value


def _shift_date(value: str) -> str | None:
    try:
        if len(value) == 10:
            return (date.fromisoformat(value) + timedelta(days=1)).isoformat()
        return (datetime.fromisoformat(value) + timedelta(hours=1)).isoformat()
    except ValueError:
        return None


def _column_neighbours(name: str, value: int | str, initial: StateView) -> list[Any]:
    """The values next to ``value`` in the column most likely to hold it: one named like the
    argument (``barcode``; ``member_id`` -> ``members.id``), else any column that holds it."""
    entity = name[:-3] if name.endswith("_id") else None
    columns = [(t, c) for t, rows in initial.items() if rows for c in rows[0]]

    def rank(table_column: tuple[str, str]) -> int:
        table, column = table_column
        if entity and column == "id" and table in (entity, entity + "s", entity + "es"):
            return 0
        return 1 if column == name else 2

    for table, column in sorted(columns, key=rank):
        values = sorted({r[column] for r in initial[table] if type(r[column]) is type(value)})
        if value in values and len(values) > 1:
            at = values.index(value)
            return list(dict.fromkeys([values[(at + 1) % len(values)], values[at - 1]]))
    return []


async def gate_environment(env: Environment, runner: CheckRunner) -> list[GateReport]:
    """The gate on every scenario of an environment, in scenario-id order."""
    return [await gate_scenario(env, env.scenarios[sid], runner) for sid in sorted(env.scenarios)]


def record_numbers(env: Environment, reports: list[GateReport]) -> int:
    """Write each passing scenario's gate numbers into its file (``"gate"``); returns how many changed."""
    written = 0
    for report in reports:
        file = env.path / "scenarios" / f"{report.scenario}.json"
        data = json.loads(file.read_text(encoding="utf-8"))
        if report.passed and data.get("gate") != report.numbers:
            data["gate"] = report.numbers
            file.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            written += 1
    return written
