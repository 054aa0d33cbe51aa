"""The state codec: canonical views are order-insensitive, hashes stable, diffs exact."""

import sqlite3

from hypothesis import given
from hypothesis import strategies as st

from envfarm.core.state import canonical_view, diff, primary_key, state_hash


def make_db(order: list[int]) -> sqlite3.Connection:
    db = sqlite3.connect(":memory:")
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, blob BLOB)")
    db.execute("CREATE TABLE pairs (a INTEGER, b TEXT, PRIMARY KEY (b, a))")
    for i in order:
        db.execute("INSERT INTO t VALUES (?, ?, ?, ?)", (i, f"n{i}", i / 3, bytes([i])))
        db.execute("INSERT INTO pairs VALUES (?, ?)", (i, "x" if i % 2 else "y"))
    return db


def test_view_and_hash_do_not_depend_on_insertion_order() -> None:
    a, b = make_db([1, 2, 3, 4]), make_db([4, 2, 3, 1])
    assert canonical_view(a) == canonical_view(b)
    assert state_hash(canonical_view(a)) == state_hash(canonical_view(b))
    assert [r["id"] for r in canonical_view(a)["t"]] == [1, 2, 3, 4]
    assert canonical_view(a)["t"][0]["blob"] == {"$base64": "AQ=="}


def test_composite_primary_key_is_read_in_key_order() -> None:
    db = make_db([1, 2])
    assert primary_key(db, "pairs") == ["b", "a"]
    assert [(r["b"], r["a"]) for r in canonical_view(db)["pairs"]] == [("x", 1), ("y", 2)]


def test_hash_changes_with_any_value() -> None:
    db = make_db([1, 2])
    before = state_hash(canonical_view(db))
    db.execute("UPDATE t SET score = 0.5 WHERE id = 2")
    assert state_hash(canonical_view(db)) != before


def test_diff_lists_added_removed_and_changed_columns() -> None:
    db = make_db([1, 2, 3])
    keys = {"t": ["id"], "pairs": ["b", "a"]}
    before = canonical_view(db)
    db.execute("UPDATE t SET name = 'renamed' WHERE id = 2")
    db.execute("DELETE FROM t WHERE id = 3")
    db.execute("INSERT INTO t VALUES (9, 'new', 0, NULL)")
    changes = diff(before, canonical_view(db), keys)
    assert list(changes) == ["t"]
    assert [r["id"] for r in changes["t"]["added"]] == [9]
    assert [r["id"] for r in changes["t"]["removed"]] == [3]
    assert changes["t"]["changed"] == [{"key": "2", "before": {"name": "n2"}, "after": {"name": "renamed"}}]


@given(
    st.lists(st.integers(0, 60), unique=True, max_size=40),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 3)), max_size=40),
)
def test_diff_is_the_keyed_diff_of_the_whole_tables(ids: list[int], edits: list[tuple[int, int]]) -> None:
    """Keying only the rows between the equal head and tail gives the diff of keying every row."""
    before = [{"id": i, "v": 0} for i in sorted(ids)]
    rows = {r["id"]: dict(r) for r in before}
    for i, what in edits:  # add, remove, change or leave a row
        if what == 0:
            rows.setdefault(i, {"id": i, "v": 9})
        elif what == 1:
            rows.pop(i, None)
        elif what == 2 and i in rows:
            rows[i]["v"] += 1
    after = [rows[i] for i in sorted(rows)]
    keys = {"t": ["id"]}
    got = diff({"t": before}, {"t": after}, keys)
    old, new = {r["id"]: r for r in before}, {r["id"]: r for r in after}
    added = [new[k] for k in new if k not in old]
    removed = [old[k] for k in old if k not in new]
    changed = sorted(
        (
            {"key": str(k), "before": {"v": old[k]["v"]}, "after": {"v": new[k]["v"]}}
            for k in old.keys() & new.keys()
            if old[k] != new[k]
        ),
        key=lambda c: c["key"],
    )
    expected = {"t": {"added": added, "removed": removed, "changed": changed}} if added or removed or changed else {}
    assert got == expected
