"""Replay: run a trajectory's calls on a fresh episode, through the same runtime the MCP server uses.

A call that errors is recorded and replay goes on, as the agent saw it. Tools
read the scenario's clock and seed, so the same calls always give the same
final state and ``final_state_hash``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from envfarm.core.environments import Environment
from envfarm.core.episodes import Episode, ToolResult
from envfarm.core.scenarios import Call, Scenario
from envfarm.core.state import StateView, canonical_json, diff, row_key, state_hash


@dataclass
class Replay:
    """What a replayed trajectory did: each call's result, and the states before and after."""

    results: list[ToolResult]
    initial: StateView
    final: StateView
    final_state_hash: str
    changes: dict[str, dict[str, Any]]
    keys: dict[str, list[str]]

    def removed_keys(self) -> set[tuple[str, str]]:
        return {(t, row_key(r, self.keys[t])) for t, change in self.changes.items() for r in change["removed"]}


def replay(env: Environment, scenario: Scenario, calls: list[Call], seed: int | None = None) -> Replay:
    """Apply ``calls`` in order to a fresh episode of ``scenario``."""
    episode = Episode(env, scenario, f"replay-{scenario.id}", seed)
    try:
        for call in calls:
            episode.call(call.tool, call.arguments)
        return outcome(episode)
    finally:
        episode.close()


def outcome(episode: Episode) -> Replay:
    """The episode's calls so far, its initial and current state, and what changed."""
    final = episode.view()
    initial = episode.initial_view()
    keys = episode.env.keys()
    return Replay(
        results=list(episode.log),
        initial=initial,
        final=final,
        final_state_hash=state_hash(final),
        changes=diff(initial, final, keys),
        keys=keys,
    )


@dataclass(frozen=True)
class Footprint:
    """What a scenario's oracle changes: changed or removed rows by key, and the rows it adds per table
    (their non-key columns, as canonical JSON)."""

    touched: frozenset[tuple[str, str]]
    added: dict[str, list[str]]
    final_state_hash: str  # the state the oracle leaves (what an oracle_state check compares with)


_footprints: dict[tuple[str, str, str], Footprint] = {}


def oracle_footprint(env: Environment, scenario: Scenario) -> Footprint:
    """Replay the oracle once per scenario (cached) and note what it changes."""
    key = (env.id, env.version, scenario.id)
    found = _footprints.get(key)
    if found is None:
        done = replay(env, scenario, scenario.oracle)
        changed = {(table, row["key"]) for table, change in done.changes.items() for row in change["changed"]}
        touched = changed | done.removed_keys()
        added = {t: [_content(r, done.keys[t]) for r in change["added"]] for t, change in done.changes.items()}
        found = _footprints[key] = Footprint(frozenset(touched), added, done.final_state_hash)
    return found


def collateral(env: Environment, scenario: Scenario, done: Replay) -> list[dict[str, Any]]:
    """Changes the oracle never makes: rows changed or removed that it leaves alone, and rows added
    beyond those the oracle adds to that table (rows equal to the oracle's, keys aside, are matched
    first; then any row may stand for one of the oracle's). Each entry says the table, the kind of
    change and the row."""
    footprint = oracle_footprint(env, scenario)
    out: list[dict[str, Any]] = []
    for table, change in done.changes.items():
        for row in change["changed"]:
            if (table, row["key"]) not in footprint.touched:
                out.append(
                    {
                        "table": table,
                        "change": "changed",
                        "key": row["key"],
                        "before": row["before"],
                        "after": row["after"],
                    }
                )
        for row in change["removed"]:
            if (table, row_key(row, done.keys[table])) not in footprint.touched:
                out.append({"table": table, "change": "removed", "row": row})
        expected = list(footprint.added.get(table, []))
        unmatched = []
        for row in change["added"]:
            content = _content(row, done.keys[table])
            if content in expected:
                expected.remove(content)
            else:
                unmatched.append(row)
        extra = unmatched[len(expected) :]
        out.extend({"table": table, "change": "added", "row": row} for row in extra)
    return out


def _content(row: dict[str, Any], key_cols: list[str]) -> str:
    return canonical_json({c: v for c, v in row.items() if c not in key_cols})
