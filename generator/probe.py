"""Programmatic tests of a generated environment: random calls, then what must never happen.

Arguments are drawn from each tool's JSON Schema and from the values in the
state (so most calls name real records), mixed with odd values (empty strings,
names that do not exist, negative and huge numbers). Whatever the arguments:

- no tool crashes (raises anything but ToolError, runs past its time, or kills
  the worker it runs in);
- no query changes the state;
- after every mutation that succeeds, every rule invariant still holds
  (invariants are generated code, so they run in the check sandbox).

The calls run in the environment's contained worker (``ContainedEnv``), never here;
this module only draws the arguments and reads the outcomes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from envfarm.core.state import StateView
from envfarm.validators.scoring import CheckRunner

from .contained import ContainedEnv

ODD_STRINGS = ["", "no-such-thing", "Zoë Ω 東京", "2099-12-31", "0"]
ODD_INTEGERS = [0, -1, 10**9]
ODD_NUMBERS = [-1.5, 0.0, 1e9]


@dataclass
class ProbeReport:
    """What the random calls found."""

    calls: int = 0
    succeeded: int = 0
    refused: int = 0
    mutations_checked: int = 0
    crashes: list[str] = field(default_factory=list)
    query_changes: list[str] = field(default_factory=list)
    invariant_breaks: list[str] = field(default_factory=list)

    @property
    def problems(self) -> list[str]:
        return [*self.crashes, *self.query_changes, *self.invariant_breaks]

    def as_dict(self) -> dict[str, Any]:
        return {
            "calls": self.calls,
            "succeeded": self.succeeded,
            "refused": self.refused,
            "mutations_checked": self.mutations_checked,
            "problems": self.problems,
        }


def invariant_checks(invariants: dict[str, str]) -> list[tuple[str, str]]:
    """Rule invariants as sandbox checks: ``invariant(final)``."""
    return [
        (rule, f"{code}\n\ndef check(initial, final):\n    return invariant(final)\n")
        for rule, code in invariants.items()
    ]


async def broken_invariants(
    runner: CheckRunner, invariants: dict[str, str], view: StateView
) -> list[tuple[str, str | None]]:
    """(rule, error) for each invariant that is false on ``view`` (error set when it failed to run)."""
    if not invariants:
        return []
    outcomes = await runner.run_checks(invariant_checks(invariants), view, view)
    return [(o.id, o.error) for o in outcomes if not o.passed]


async def probe(
    env: ContainedEnv,
    rows: dict[str, list[dict[str, Any]]],
    clock: Any,
    invariants: dict[str, str],
    runner: CheckRunner,
    *,
    seed: int = 0,
    calls_per_tool: int = 12,
) -> ProbeReport:
    """Random calls on one episode started from ``rows``; see the module docstring for what is checked."""
    episode = await env.episode(rows, str(clock))
    rng = random.Random(seed)
    report = ProbeReport()
    tools = sorted(env.tools)
    view = episode.initial
    try:
        for _ in range(calls_per_tool * len(tools)):
            name = rng.choice(tools)
            spec = env.tools[name]
            args = draw_arguments(spec.input_schema, view, rng)
            before = episode.last_hash
            step = await episode.call(name, args, view=True)
            assert step.view is not None
            view = step.view
            result = step.result
            report.calls += 1
            where = f"{name}({_short(args)})"
            if result.crashed:
                report.crashes.append(f"{where} crashed: {result.error}")
                continue
            if not result.ok:
                report.refused += 1
                continue
            report.succeeded += 1
            changed = step.state_hash != before
            if changed and spec.kind == "query":
                report.query_changes.append(f"{where} is a query but changed the state")
            elif changed and invariants:
                report.mutations_checked += 1
                for rule, error in await broken_invariants(runner, invariants, view):
                    why = f" (the invariant failed to run: {error})" if error else ""
                    report.invariant_breaks.append(f"after {where}, rule {rule!r} no longer holds{why}")
                    invariants = {k: v for k, v in invariants.items() if k != rule}  # one finding per rule
    finally:
        await episode.close()
    return report


def draw_arguments(schema: dict[str, Any], state: StateView, rng: random.Random) -> dict[str, Any]:
    """Arguments that pass the schema: mostly values found in the state, sometimes odd ones."""
    args: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if name not in required and rng.random() < 0.4:
            continue
        args[name] = _draw(name, prop, state, rng)
    return args


def _draw(name: str, prop: dict[str, Any], state: StateView, rng: random.Random) -> Any:
    options = prop.get("anyOf")
    if options:
        prop = rng.choice([o for o in options if o.get("type") != "null"] or options)
    if "enum" in prop:
        return rng.choice(prop["enum"])
    kind = prop.get("type", "string")
    pool = [v for v in _column_values(name, state) if _fits(kind, v)]
    if pool and rng.random() < 0.75:
        return rng.choice(pool)
    if kind == "integer":
        return rng.choice(ODD_INTEGERS)
    if kind == "number":
        return rng.choice(ODD_NUMBERS)
    if kind == "boolean":
        return rng.random() < 0.5
    if kind == "null":
        return None
    if kind in ("array", "object"):
        return [] if kind == "array" else {}
    return rng.choice(ODD_STRINGS)


def _column_values(param: str, state: StateView) -> list[Any]:
    """Values of the columns a parameter probably means: same name, or ``<table>_<column>``."""
    values: list[Any] = []
    for table, rows in state.items():
        singular = _singular(table)
        for row in rows:
            for column, value in row.items():
                if param in (column, f"{singular}_{column}", f"{table}_{column}") or (
                    column == "id" and param == f"{singular}_id"
                ):
                    values.append(value)
    return values


def _singular(table: str) -> str:
    """``classes`` -> ``class``, ``categories`` -> ``category``, ``members`` -> ``member`` (English, roughly)."""
    if table.endswith("ies"):
        return table[:-3] + "y"
    if table.endswith(("sses", "xes", "ches", "shes")):
        return table[:-2]
    return table[:-1] if table.endswith("s") else table


def _fits(kind: str, value: Any) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "boolean":
        return isinstance(value, bool)
    return isinstance(value, str)


def _short(args: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v!r}" for k, v in args.items())
    return text if len(text) <= 120 else text[:117] + "..."
