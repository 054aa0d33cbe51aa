"""The state codec: canonical views of an episode's database, their hash, their diff.

The canonical view is ``{table: [rows sorted by primary key]}`` with every row a
``{column: value}`` dict. Its canonical JSON (sorted keys, no whitespace) is the
same for the same rows whatever order they were written in, so its sha256 is a
stable fingerprint of a state across runs and machines.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
from typing import Any

StateView = dict[str, list[dict[str, Any]]]


def table_names(db: sqlite3.Connection) -> list[str]:
    """User tables, by name."""
    rows = db.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    ).fetchall()
    return [r[0] for r in rows]


def primary_key(db: sqlite3.Connection, table: str) -> list[str]:
    """The table's primary-key columns in key order (empty when it has none)."""
    info = db.execute(f'PRAGMA table_info("{table}")').fetchall()
    keyed = sorted((row[5], row[1]) for row in info if row[5] > 0)
    return [name for _, name in keyed]


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return {"$base64": base64.b64encode(bytes(value)).decode("ascii")}
    return value


def canonical_view(db: sqlite3.Connection, keys: dict[str, list[str]] | None = None) -> StateView:
    """Every user table's rows, sorted by primary key (by all columns when there is none).

    ``keys`` (table -> primary-key columns) saves reading the schema when the caller
    knows it. Rows are sorted by SQLite itself: its order across storage classes
    (NULL, numbers, text by code point, blobs) is the canonical one.
    """
    view: StateView = {}
    for table in table_names(db) if keys is None else sorted(keys):
        key_cols = primary_key(db, table) if keys is None else keys[table]
        if not key_cols:  # no primary key: order by every column
            key_cols = [c[0] for c in db.execute(f'SELECT * FROM "{table}" LIMIT 0').description]
        order = ", ".join(f'"{c}"' for c in key_cols)
        cur = db.execute(f'SELECT * FROM "{table}" ORDER BY {order}')
        cols = [c[0] for c in cur.description]
        view[table] = [canonical_row(cols, r) for r in cur.fetchall()]
    return view


def canonical_row(cols: list[str], values: tuple[Any, ...]) -> dict[str, Any]:
    """A row of a canonical view: ``{column: value}``, blobs as ``{"$base64": ...}``."""
    if any(isinstance(v, bytes) for v in values):
        values = tuple(_jsonable(v) for v in values)
    return dict(zip(cols, values, strict=True))


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal text."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def state_hash(view: StateView) -> str:
    """sha256 (hex) of the canonical JSON of a state view."""
    return hashlib.sha256(canonical_json(view).encode("utf-8")).hexdigest()


def row_key(row: dict[str, Any], key_cols: list[str]) -> str:
    """A row's identity within its table, as text (``"7"`` or ``"3|12"``)."""
    cols = key_cols or sorted(row)
    return "|".join(_key_text(row[c]) for c in cols)


def _key_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return canonical_json(value)


def diff(before: StateView, after: StateView, keys: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Rows added, removed and changed per table; tables with no change are left out.

    ``keys`` maps each table to its primary-key columns (see :func:`primary_key`).
    A changed row lists only the columns whose value differs.
    """
    out: dict[str, dict[str, Any]] = {}
    for table in sorted(set(before) | set(after)):
        if before.get(table) == after.get(table):
            continue  # most tables are untouched: one comparison instead of keying every row
        key_cols = keys.get(table, [])
        rows_before, rows_after = _differing_middle(before.get(table, []), after.get(table, []))
        old = {row_key(r, key_cols): r for r in rows_before}
        new = {row_key(r, key_cols): r for r in rows_after}
        added = [new[k] for k in new if k not in old]
        removed = [old[k] for k in old if k not in new]
        changed: list[dict[str, Any]] = []
        for k in old.keys() & new.keys():
            if old[k] != new[k]:
                cols = sorted(c for c in set(old[k]) | set(new[k]) if old[k].get(c) != new[k].get(c))
                changed.append(
                    {
                        "key": k,
                        "before": {c: old[k].get(c) for c in cols},
                        "after": {c: new[k].get(c) for c in cols},
                    }
                )
        changed.sort(key=lambda c: c["key"])
        if added or removed or changed:
            out[table] = {"added": added, "removed": removed, "changed": changed}
    return out


def _differing_middle(
    before: list[dict[str, Any]], after: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows of both lists between their longest equal head and tail.

    A trajectory changes a few rows of a large table: only those between the first and the last
    difference need keying. Equal rows at the same place are the same row (keys are unique), so the
    diff of the middles is the diff of the whole tables.
    """
    head, most = 0, min(len(before), len(after))
    while head < most and before[head] == after[head]:
        head += 1
    tail = 0
    while tail < most - head and before[-1 - tail] == after[-1 - tail]:
        tail += 1
    return before[head : len(before) - tail], after[head : len(after) - tail]
