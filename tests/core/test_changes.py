"""Change tracking gives the same final view, hash and diff as reading the whole state."""

from __future__ import annotations

import sqlite3

import pytest

from envfarm.core.changes import Tracker, final_state
from envfarm.core.environments import bundled, load_environment
from envfarm.core.episodes import Episode
from envfarm.core.state import canonical_json, canonical_view, diff, primary_key, table_names
from envfarm.validators.gate import _mutants
from envfarm.validators.replay import outcome

SCHEMA = """
CREATE TABLE owners (id INTEGER PRIMARY KEY, email TEXT UNIQUE, name TEXT);
CREATE TABLE pets (
    id INTEGER PRIMARY KEY,
    owner_id INTEGER REFERENCES owners(id) ON DELETE CASCADE ON UPDATE CASCADE,
    name TEXT
);
CREATE TABLE tags (code TEXT PRIMARY KEY, label TEXT);
CREATE TABLE seats (flight TEXT, seat INTEGER, who TEXT, PRIMARY KEY (flight, seat)) WITHOUT ROWID;
CREATE TABLE notes (body TEXT);
CREATE TABLE words (w TEXT PRIMARY KEY COLLATE NOCASE);
CREATE TABLE mixed (k PRIMARY KEY, v TEXT);
"""
ROWS = """
INSERT INTO owners VALUES (1, 'a@x', 'Ann'), (2, 'b@x', 'Bo'), (5, 'e@x', 'Eve');
INSERT INTO pets VALUES (1, 1, 'Rex'), (2, 2, 'Tom'), (3, 2, 'Kit'), (9, 5, 'Ox');
INSERT INTO tags VALUES ('b', 'bee'), ('d', 'dee');
INSERT INTO seats VALUES ('EF1', 1, 'Ann'), ('EF1', 3, 'Bo'), ('EF2', 2, NULL);
INSERT INTO notes VALUES ('hello');
INSERT INTO words VALUES ('apple'), ('Banana');
INSERT INTO mixed VALUES (1, 'one'), ('two', 'two');
"""


def database() -> sqlite3.Connection:
    db = sqlite3.connect(":memory:", isolation_level=None)
    db.executescript(SCHEMA + ROWS)
    db.execute("PRAGMA foreign_keys = ON")
    return db


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE owners SET name = 'Anne' WHERE id = 1",
        "INSERT INTO owners VALUES (3, 'c@x', 'Cy'), (0, 'z@x', 'Zed'), (7, 'g@x', 'Gus')",
        "DELETE FROM owners WHERE id = 2",  # cascades to two pets
        "DELETE FROM pets",  # no WHERE: SQLite's truncate shortcut is off while triggers exist
        "INSERT OR REPLACE INTO owners VALUES (8, 'b@x', 'Bob')",  # REPLACE deletes row 2 (same email)
        "UPDATE owners SET id = 4 WHERE id = 5",  # a key that moves (and its pet, by cascade)
        "UPDATE owners SET name = name || '!' WHERE id = 1; UPDATE owners SET name = 'Ann' WHERE id = 1",  # and back
        "INSERT INTO owners VALUES (6, 'f@x', 'F'); DELETE FROM owners WHERE id = 6",  # added, then gone
        "INSERT INTO tags VALUES ('a', 'ay'), ('c', 'see'), ('é', 'e acute'), ('Z', 'zed')",
        "INSERT INTO seats VALUES ('EF1', 2, 'Cy'), ('EF0', 9, 'Di'); DELETE FROM seats WHERE seat = 3",
        "UPDATE seats SET who = 'Eve' WHERE flight = 'EF2'",
        "INSERT INTO notes VALUES ('again')",  # no primary key: read whole
        "INSERT INTO words VALUES ('cherry'), ('Apricot')",  # a collation: read whole
        "INSERT INTO mixed VALUES (2.5, 'float'), (X'00', 'blob')",  # keys Python cannot order: read whole
        "INSERT INTO tags VALUES (3, 'a number among text keys')",
        "DELETE FROM tags; INSERT INTO tags VALUES ('q', 'cue'), ('p', 'pea')",  # emptied, refilled
    ],
)
def test_tracked_changes_give_the_whole_read_view_hash_and_diff(sql: str) -> None:
    db = database()
    keys = {t: primary_key(db, t) for t in table_names(db)}
    initial = canonical_view(db, keys)
    tracker = Tracker(db, keys)
    assert set(tracker.tables) == {"owners", "pets", "tags", "seats", "mixed"}  # not notes (no key), not words
    db.executescript(sql)
    final, texts, changes = final_state(tracker, initial, keys, lambda t: canonical_view(db, {t: keys[t]})[t])
    whole = canonical_view(db, keys)
    assert final == whole
    assert list(final) == list(whole)
    assert changes == diff(initial, whole, keys)
    for table, text in texts.items():
        assert text == canonical_json(whole[table])


def test_a_rolled_back_write_leaves_no_trace() -> None:
    db = database()
    keys = {t: primary_key(db, t) for t in table_names(db)}
    tracker = Tracker(db, keys)
    db.execute("SAVEPOINT call")
    db.execute("UPDATE owners SET name = 'x'")
    db.execute("ROLLBACK TO call")
    db.execute("RELEASE call")
    assert tracker.changed() == {}


@pytest.mark.parametrize("env_id", [e for e in bundled() if not e.startswith("tau2")])
def test_replays_tracked_and_read_whole_agree_on_every_bundled_oracle_and_its_mutants(env_id: str) -> None:
    """What the gate and scoring see, from both ways of reading a final state (tau2's large states
    are tracked by default, and the gate's runs over them in CI compare rewards the same way)."""
    env = load_environment(env_id)
    compared = 0
    for n, scenario in enumerate(env.scenarios.values()):
        runs = [("oracle", list(scenario.oracle))]
        if n < 4:
            runs += _mutants(env.tools, scenario, env.initial_view(scenario.id))[:40]
        for _, calls in runs:
            done = []
            for track in (False, True):
                episode = Episode(env, scenario, "compare")
                if track:
                    episode.track_changes()
                for call in calls:
                    episode.call(call.tool, call.arguments)
                done.append(outcome(episode))
                episode.close()
            read, tracked = done
            assert tracked.final == read.final
            assert tracked.final_state_hash == read.final_state_hash
            assert tracked.changes == read.changes
            compared += 1
    assert compared > len(env.scenarios)
