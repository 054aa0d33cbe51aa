"""Change tracking: which rows an episode's calls wrote, so its final view costs what changed.

Scoring a trajectory needs the final state view, its hash and its diff from the initial
state. Read whole, they cost the size of the state (a 10 MB state: ~0.3 s), although a
trajectory writes a handful of rows. :class:`Tracker` puts temporary triggers on every
table with a primary key; they note the key of each row inserted, updated or deleted
(cascades and ``REPLACE`` included: recursive triggers are on). :func:`patch` then builds
the final table from the initial one and the rows read back by key, with the row JSON
the hash needs and the table's diff, in time that follows the rows changed.

It gives the same view, hash and diff as reading everything: rows are placed where
SQLite's ``ORDER BY`` puts them only when that is Python's order too (keys of one type,
integers or text, no collation); otherwise the table is read whole, as before.
"""

from __future__ import annotations

import bisect
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envfarm.core.cache import ByIdentity
from envfarm.core.state import StateView, canonical_json, canonical_row, diff, row_key

_PREFIX = "_envfarm_changed_"


class Tracker:
    """Triggers on an episode's connection noting the key of every row written."""

    def __init__(self, db: sqlite3.Connection, keys: dict[str, list[str]]) -> None:
        self.db = db
        self.tables = {t: k for t, k in keys.items() if k and _orderable(db, t)}
        self._logs = {table: f"{_PREFIX}{n}" for n, table in enumerate(self.tables)}  # temp table per table
        script = ["PRAGMA recursive_triggers = ON;"]  # so rows REPLACE deletes fire DELETE triggers
        for table, cols in self.tables.items():
            log = self._logs[table]
            script.append(f'CREATE TEMP TABLE "{log}" ({", ".join(f"k{i}" for i in range(len(cols)))});')
            for event, rows in (("INSERT", ("NEW",)), ("UPDATE", ("OLD", "NEW")), ("DELETE", ("OLD",))):
                body = "".join(
                    f'INSERT INTO "{log}" VALUES ({", ".join(f"{row}.{_quoted(c)}" for c in cols)});' for row in rows
                )
                script.append(
                    f'CREATE TEMP TRIGGER "{log}_{event.lower()}" AFTER {event} ON main.{_quoted(table)} '
                    f"BEGIN {body} END;"
                )
        db.executescript("".join(script))

    def changed(self) -> dict[str, list[tuple[Any, ...]]]:
        """The keys of the rows written per tracked table (tables not written are left out)."""
        out = {}
        for table, log in self._logs.items():
            found = self.db.execute(f'SELECT DISTINCT * FROM temp."{log}"').fetchall()
            if found:
                out[table] = found
        return out

    def rows(self, table: str) -> dict[tuple[Any, ...], dict[str, Any]]:
        """The table's current rows among those written, by key (rows since deleted are absent)."""
        cols = self.tables[table]
        names = ", ".join(_quoted(c) for c in cols)
        cur = self.db.execute(
            f'SELECT * FROM main.{_quoted(table)} WHERE ({names}) IN (SELECT * FROM temp."{self._logs[table]}")'
        )
        columns = [c[0] for c in cur.description]
        positions = [columns.index(c) for c in cols]
        return {tuple(r[p] for p in positions): canonical_row(columns, r) for r in cur.fetchall()}


@dataclass
class Baseline:
    """A table of the initial view, indexed for patching: built once per scenario and table."""

    rows: list[dict[str, Any]]
    keys: list[tuple[Any, ...]]  # each row's key, in the view's order
    index: dict[tuple[Any, ...], int]
    texts: list[str]  # each row's canonical JSON
    kinds: tuple[type, ...]  # the one Python type of each key column

    @classmethod
    def of(cls, rows: list[dict[str, Any]], cols: list[str]) -> Baseline | None:
        """None when the keys' order cannot be told in Python (mixed types, NULLs, floats, blobs...)."""
        keys = [tuple(r[c] for c in cols) for r in rows]
        kinds = tuple(type(k) for k in keys[0]) if keys else ()
        if any(kind not in (int, str) for kind in kinds):
            return None
        if any(tuple(map(type, k)) != kinds for k in keys) or any(a >= b for a, b in zip(keys, keys[1:], strict=False)):
            return None
        return cls(rows, keys, {k: i for i, k in enumerate(keys)}, [canonical_json(r) for r in rows], kinds)


@dataclass
class Patched:
    rows: list[dict[str, Any]]
    text: str  # the table's canonical JSON
    change: dict[str, Any] | None  # the table's entry in :func:`envfarm.core.state.diff`, None when unchanged


def patch(
    base: Baseline, cols: list[str], written: list[tuple[Any, ...]], now: dict[tuple[Any, ...], dict[str, Any]]
) -> Patched | None:
    """The final table: the initial one with the ``written`` keys' rows as they are ``now``.

    None when a new key's place in the order cannot be told in Python (a key of another type).
    """
    kinds: tuple[type, ...] | None = base.kinds or None
    edits: list[tuple[int, int, tuple[Any, ...], dict[str, Any] | None]] = []  # (place, 0 insert | 1 replace, ...)
    added: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
    removed: list[int] = []
    changed: list[dict[str, Any]] = []
    for key in written:  # distinct already (Tracker.changed)
        at = base.index.get(key)
        row = now.get(key)
        if at is None:
            if row is None:
                continue  # added, then deleted
            types = tuple(map(type, key))
            if any(t not in (int, str) for t in types) or (kinds is not None and types != kinds):
                return None
            kinds = types
            added.append((key, row))
            edits.append((bisect.bisect_left(base.keys, key), 0, key, row))
        elif row is None:
            removed.append(at)
            edits.append((at, 1, (), None))
        elif row != base.rows[at]:
            edits.append((at, 1, (), row))
            before = base.rows[at]
            diffs = sorted(c for c in set(before) | set(row) if before.get(c) != row.get(c))
            changed.append(
                {
                    "key": row_key(row, cols),
                    "before": {c: before.get(c) for c in diffs},
                    "after": {c: row.get(c) for c in diffs},
                }
            )
    if not edits:
        return Patched(base.rows, "", None)
    edits.sort(key=lambda e: (e[0], e[1], e[2]))  # new rows before the row at their place, by key
    rows: list[dict[str, Any]] = []
    texts: list[str] = []
    start = 0
    for place, kind, _, row in edits:
        rows += base.rows[start:place]
        texts += base.texts[start:place]
        start = place + kind  # a replaced or removed row is skipped
        if row is not None:
            rows.append(row)
            texts.append(canonical_json(row))
    rows += base.rows[start:]
    texts += base.texts[start:]
    added.sort(key=lambda pair: pair[0])
    changed.sort(key=lambda c: c["key"])
    change = {
        "added": [row for _, row in added],
        "removed": [base.rows[i] for i in sorted(removed)],
        "changed": changed,
    }
    return Patched(rows, "[" + ",".join(texts) + "]", change)


_baselines: ByIdentity[Baseline | None] = ByIdentity(10_000)


def final_state(
    tracker: Tracker,
    initial: StateView,
    keys: dict[str, list[str]],
    read_whole: Callable[[str], list[dict[str, Any]]],
) -> tuple[StateView, dict[str, str], dict[str, dict[str, Any]]]:
    """The final view, the canonical JSON of its patched tables, and the diff from ``initial``.

    Each written table is the initial one with the written rows read back and spliced in
    (:func:`patch`; the initial table indexed once per scenario); a table that cannot be patched
    is read whole (``read_whole(table)``) and diffed. Unwritten tables are the initial's own lists.
    """
    written = tracker.changed()
    final = dict(initial)
    texts: dict[str, str] = {}
    changes: dict[str, dict[str, Any]] = {}
    for table in sorted(keys):
        if table in tracker.tables and table not in written:
            continue
        done = None
        if table in tracker.tables:
            rows, cols = initial[table], keys[table]
            base = _baselines.get(rows, lambda: Baseline.of(rows, cols))  # noqa: B023 - called at once
            if base is not None:
                done = patch(base, cols, written[table], tracker.rows(table))
        if done is None:
            final[table] = read_whole(table)
            changes |= diff({table: initial[table]}, {table: final[table]}, keys)
        elif done.change is not None:
            final[table], texts[table], changes[table] = done.rows, done.text, done.change
    return final, texts, changes


def _orderable(db: sqlite3.Connection, table: str) -> bool:
    """Whether the table's key order is SQLite's default one (no collation named in its schema)."""
    sql = db.execute("SELECT sql FROM main.sqlite_schema WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return sql is not None and "collate" not in (sql[0] or "").lower()


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
