"""Databases of a chosen size (``~1 MB``, ``~10 MB``) made from a scenario's own rows.

A scenario's state is tens of KB; resets are measured at realistic sizes by copying its
rows with keys shifted so they stay unique and foreign keys still hold.
"""

from __future__ import annotations

import json
import random
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from envfarm.core.environments import Environment
from envfarm.core.state import canonical_view


@dataclass
class ScaledState:
    """A database made of ``copies`` copies of a scenario's rows, keys shifted so they stay unique."""

    ddl: list[str]  # CREATE TABLE / CREATE INDEX statements, in creation order
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]  # table -> (columns, rows), parents first
    snapshot: bytes  # the database as SQLite bytes, what an episode deserializes
    copies: int

    @property
    def row_count(self) -> int:
        return sum(len(r) for _, r in self.rows.values())

    def build(self) -> sqlite3.Connection:
        """Rebuild the database from its DDL and rows (DDL + executemany in one transaction)."""
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.executescript(";\n".join(self.ddl) + ";")
        db.execute("BEGIN")
        for table_name, (columns, rows) in self.rows.items():
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            db.executemany(f'INSERT INTO "{table_name}" ({names}) VALUES ({marks})', rows)
        db.execute("COMMIT")
        return db


def _key_columns(env: Environment) -> dict[str, dict[str, tuple[str, str]]]:
    """Per table: the columns whose values must stay unique or consistent across copies.

    Maps column -> (table, column) whose value range it is shifted by: itself for primary
    keys and unique columns, the referenced column for foreign keys.
    """
    keys: dict[str, dict[str, tuple[str, str]]] = {}
    for table in env.metadata.sorted_tables:
        cols: dict[str, tuple[str, str]] = {}
        unique = {c.name for c in table.columns if c.primary_key or c.unique}
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                unique |= {c.name for c in constraint.columns}
        for index in table.indexes:
            if index.unique:
                unique |= {c.name for c in index.columns}
        for name in unique:
            cols[name] = (table.name, name)
        for column in table.columns:
            for fk in column.foreign_keys:
                cols[column.name] = (fk.column.table.name, fk.column.name)
        keys[table.name] = cols
    return keys


WORDS = [
    "the",
    "a",
    "member",
    "book",
    "copy",
    "loan",
    "due",
    "renewed",
    "returned",
    "shelf",
    "branch",
    "fine",
    "paid",
    "hold",
    "ready",
    "author",
    "title",
    "edition",
    "reading",
    "room",
    "quiet",
    "study",
    "desk",
    "card",
    "renew",
    "overdue",
    "catalog",
]


def _text(seed: int, length: int) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:length]


def scaled_state(
    env: Environment, scenario_id: str, target_bytes: int, filler: Sequence[tuple[str, str, int]] = ()
) -> ScaledState:
    """About ``target_bytes`` of SQLite made of copies of the scenario's initial rows.

    ``filler`` (table, column, length): in the copies, that column gets generated text of
    about ``length`` characters (different per row), so rows are not unrealistically small.
    """
    base = sqlite3.connect(":memory:")
    base.deserialize(env.snapshot(scenario_id))
    ddl = [
        sql
        for (name, sql) in base.execute("SELECT name, sql FROM sqlite_master ORDER BY rowid")
        if sql and not name.startswith("sqlite_")
    ]
    tables = [t.name for t in env.metadata.sorted_tables]
    source: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    for t in tables:
        cur = base.execute(f'SELECT * FROM "{t}"')
        source[t] = ([c[0] for c in cur.description], cur.fetchall())
    base.close()
    keys = _key_columns(env)
    spans: dict[tuple[str, str], int] = {}  # (table, int key column) -> shift per copy
    for t, (columns, rows) in source.items():
        for ci, c in enumerate(columns):
            values = [r[ci] for r in rows if isinstance(r[ci], int)]
            spans[(t, c)] = (max(values) + 1) if values else 1

    def make(copies: int) -> ScaledState:
        out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for t, (columns, rows) in source.items():
            shifted = [(ci, keys[t][c]) for ci, c in enumerate(columns) if c in keys[t]]
            fills = [(columns.index(c), n) for (ft, c, n) in filler if ft == t and c in columns]
            made: list[tuple[Any, ...]] = []
            for j in range(copies):
                for row in rows:
                    if j == 0 or not (shifted or fills):
                        made.append(row)
                        continue
                    new = list(row)
                    for ci, n in fills:
                        new[ci] = _text(j * 7919 + len(made), n)
                    for ci, origin in shifted:
                        v = new[ci]
                        if isinstance(v, bool) or v is None:
                            continue
                        if isinstance(v, int):
                            new[ci] = v + j * spans.get(origin, 1)
                        elif isinstance(v, str):
                            new[ci] = f"{v}~{j}"
                    made.append(tuple(new))
            out[t] = (columns, made)
        state = ScaledState(ddl=ddl, rows=out, snapshot=b"", copies=copies)
        db = state.build()
        bad = db.execute("PRAGMA foreign_key_check").fetchall()
        if bad:
            raise RuntimeError(f"scaled state of {env.id} breaks a foreign key: {bad[:3]}")
        state.snapshot = db.serialize()
        db.close()
        return state

    probe = make(64)
    one = make(1)
    per_copy = max(1.0, (len(probe.snapshot) - len(one.snapshot)) / 63)
    copies = max(1, round((target_bytes - len(one.snapshot)) / per_copy))
    state = make(copies)
    # One correction step: page fill is not quite linear.
    if abs(len(state.snapshot) - target_bytes) > 0.05 * target_bytes:
        copies = max(1, round(copies * target_bytes / len(state.snapshot)))
        state = make(copies)
    return state


KB = 1024
FULL_SIZES: list[tuple[str, int | None]] = [("20 KB", None), ("1 MB", 1024 * KB), ("10 MB", 10 * 1024 * KB)]
QUICK_SIZES: list[tuple[str, int | None]] = [("20 KB", None), ("128 KB", 128 * KB), ("640 KB", 640 * KB)]


def json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":")).encode())


def view_of(data: bytes, keys: dict[str, list[str]]) -> dict[str, Any]:
    db = sqlite3.connect(":memory:")
    try:
        db.deserialize(data)
        return canonical_view(db, keys)
    finally:
        db.close()


def sized_snapshot(env: Any, base_id: str, target_json: int | None, quick: bool) -> bytes:
    """The scenario's own database (``None``), or one grown so its canonical JSON is about ``target_json`` bytes."""
    if target_json is None:
        return env.snapshot(base_id)
    # scaled_state aims at SQLite bytes: find how many SQLite bytes one JSON byte takes at scale, then aim.
    probe = scaled_state(env, base_id, (256 if quick else 1024) * KB).snapshot
    per_json_byte = len(probe) / json_bytes(view_of(probe, env.keys()))
    data = scaled_state(env, base_id, int(target_json * per_json_byte)).snapshot
    got = json_bytes(view_of(data, env.keys()))
    if abs(got - target_json) > 0.1 * target_json:  # one correction step
        data = scaled_state(env, base_id, int(len(data) * target_json / got)).snapshot
    return data
