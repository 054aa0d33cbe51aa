"""Replay: run a trajectory's calls on a fresh episode, through the same runtime the MCP server uses.

A call that errors is recorded and replay goes on, as the agent saw it. Tools
read the scenario's clock and seed, so the same calls always give the same
final state and ``final_state_hash``.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from envfarm.core.changes import Tracker, final_state
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


def replay(env: Environment, scenario: Scenario, calls: Sequence[Call], seed: int | None = None) -> Replay:
    """Apply ``calls`` in order to a fresh episode of ``scenario``."""
    episode = Episode(env, scenario, f"replay-{scenario.id}", seed)
    try:
        if len(env.snapshot(scenario.id)) >= REUSE_FROM_BYTES:
            episode.track_changes()
        for call in calls:
            episode.call(call.tool, call.arguments)
        return outcome(episode)
    finally:
        episode.close()


class ToolShape(Protocol):
    """What the quality gate reads of a tool: its kind and its arguments' JSON Schema."""

    @property
    def kind(self) -> str: ...

    @property
    def input_schema(self) -> dict[str, Any]: ...


class Replayer(Protocol):
    """Runs calls on fresh episodes of an environment's scenarios: what the quality gate needs.

    :class:`InProcess` replays in this process (the farm and ``envfarm check``, over bundled or
    published environments); the generator replays its candidates' code in a contained worker
    process instead (``envfarm.generator.contained``), through this same interface.
    """

    @property
    def id(self) -> str: ...

    @property
    def tools(self) -> Mapping[str, ToolShape]: ...

    async def replay(self, scenario: Scenario, calls: Sequence[Call], seed: int | None = None) -> Replay: ...


class InProcess:
    """A :class:`Replayer` over an environment loaded in this process (:func:`replay`, unchanged)."""

    def __init__(self, env: Environment) -> None:
        self.env = env

    @property
    def id(self) -> str:
        return self.env.id

    @property
    def tools(self) -> Mapping[str, ToolShape]:
        return self.env.tools

    async def replay(self, scenario: Scenario, calls: Sequence[Call], seed: int | None = None) -> Replay:
        return replay(self.env, scenario, calls, seed)


def outcome(episode: Episode) -> Replay:
    """The episode's calls so far, its initial and current state, and what changed.

    On a large state (``REUSE_FROM_BYTES`` and up: tau2-bench's airline has 26,000 rows) only what
    the calls changed is read: with change tracking (:func:`replay` turns it on), the rows written,
    patched into the scenario's initial view (:func:`_patched`); without it (a live episode), the
    tables whose pages differ from the snapshot's (:func:`_unchanged_tables`). The hash reuses the
    canonical JSON of what is the initial view's. A trajectory touches a few rows, and reading and
    hashing all of them would cost most of its scoring. The view, hash and diff are the same as
    read afresh.
    """
    initial = episode.initial_view()
    keys = episode.env.keys()
    if episode.tracker is not None:
        return _patched(episode, episode.tracker, initial, keys)
    data = episode.serialize()
    unchanged = _unchanged_tables(episode.env.snapshot(episode.scenario.id), data, keys)
    if unchanged is None:
        final = episode.view()
        final_hash = state_hash(final)
    else:
        final = episode.view([t for t in keys if t not in unchanged])
        final |= {t: initial[t] for t in unchanged}
        final = {t: final[t] for t in sorted(final)}
        final_hash = _hash(final, unchanged)
    return Replay(
        results=list(episode.log),
        initial=initial,
        final=final,
        final_state_hash=final_hash,
        changes=diff(initial, final, keys),
        keys=keys,
    )


def _patched(episode: Episode, tracker: Tracker, initial: StateView, keys: dict[str, list[str]]) -> Replay:
    """:func:`outcome` from the rows the calls wrote (:func:`envfarm.core.changes.final_state`)."""
    final, texts, changes = final_state(tracker, initial, keys, lambda table: episode.view([table])[table])
    unchanged = {t for t in final if final[t] is initial[t]}
    return Replay(
        results=list(episode.log),
        initial=initial,
        final=final,
        final_state_hash=_hash(final, unchanged, texts),
        changes=changes,
        keys=keys,
    )


REUSE_FROM_BYTES = 512 * 1024
"""States smaller than this are read whole: comparing pages costs more than reading a small database."""
_CACHED = 500  # snapshots whose page map is kept (and 20 tables each whose JSON is)
_page_maps: dict[int, tuple[bytes, dict[str, list[int]]]] = {}
_table_json: dict[int, tuple[list[dict[str, Any]], str]] = {}


def _pages(data: bytes, keep: bool) -> dict[str, list[int]] | None:
    """The pages of each table's b-tree in a database image (None when SQLite has no dbstat table)."""
    found = _page_maps.get(id(data)) if keep else None
    if found is not None and found[0] is data:
        return found[1]
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        rows = db.execute("SELECT name, pageno FROM dbstat ORDER BY name, pageno").fetchall()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    pages: dict[str, list[int]] = {}
    for name, page in rows:
        pages.setdefault(name, []).append(page)
    if keep:  # the snapshot's map, once (keeping the bytes keeps their id from being reused)
        if len(_page_maps) >= _CACHED:  # run-time scenarios (the generator's) come and go
            _page_maps.clear()
        _page_maps[id(data)] = (data, pages)
    return pages


def _unchanged_tables(snapshot: bytes, data: bytes, keys: Mapping[str, list[str]]) -> set[str] | None:
    """Tables whose every page is the snapshot's, byte for byte (so their rows are the snapshot's)."""
    if len(snapshot) < REUSE_FROM_BYTES or len(data) < 100:
        return None
    before, after = _pages(snapshot, keep=True), _pages(data, keep=False)
    if before is None or after is None:
        return None
    size = int.from_bytes(data[16:18], "big") or 65536  # the page size, from the database header
    old, new = memoryview(snapshot), memoryview(data)
    same = set()
    for table in keys:
        pages = after.get(table)
        if pages is None or pages != before.get(table):
            continue
        if all(old[(p - 1) * size : p * size] == new[(p - 1) * size : p * size] for p in pages):
            same.add(table)
    return same


def _hash(view: StateView, initial_tables: set[str], texts: dict[str, str] | None = None) -> str:
    """:func:`state_hash` of the view (the sha256 of its canonical JSON, a table at a time): the JSON
    of the tables that are the initial view's own lists computed once and kept, and of others taken
    from ``texts`` when there."""
    digest = hashlib.sha256(b"{")
    for i, table in enumerate(sorted(view)):
        rows = view[table]
        cached = _table_json.get(id(rows)) if table in initial_tables else None
        if cached is not None and cached[0] is rows:
            text = cached[1]
        elif texts is not None and table in texts:
            text = texts[table]
        else:
            text = canonical_json(rows)
            if table in initial_tables:  # keeping the rows keeps their id from being reused
                if len(_table_json) >= _CACHED * 20:
                    _table_json.clear()
                _table_json[id(rows)] = (rows, text)
        digest.update(("," if i else "").encode() + canonical_json(table).encode() + b":" + text.encode())
    digest.update(b"}")
    return digest.hexdigest()


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
