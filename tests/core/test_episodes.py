"""Episodes: isolated, exactly resettable, atomic per call, on the scenario's clock."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import (
    EPISODE_ID_PATTERN,
    Episode,
    EpisodeExists,
    EpisodeNotFound,
    EpisodeStore,
    new_episode_id,
)
from envfarm.core.errors import InvalidInput


@pytest.fixture(scope="module")
def notes() -> Environment:
    return load_environment("notes")


def test_two_episodes_of_one_scenario_are_isolated(notes: Environment) -> None:
    store = EpisodeStore()
    a = store.create(notes, notes.scenarios["file-two"])
    b = store.create(notes, notes.scenarios["file-two"])
    assert a.id != b.id and a.state_hash() == b.state_hash()
    assert a.call("add_note", {"folder": "work", "title": "only in a"}).ok
    assert [n["title"] for n in b.call("list_notes", {"folder": "work"}).value] == []
    assert [n["title"] for n in a.call("list_notes", {"folder": "work"}).value] == ["only in a"]
    assert a.state_hash() != b.state_hash()


def test_reset_restores_the_initial_state_hash_exactly(notes: Environment) -> None:
    episode = Episode(notes, notes.scenarios["file-two"], "e1")
    initial = episode.state_hash()
    for title in ("x", "y", "z"):
        assert episode.call("add_note", {"folder": "home", "title": title}).ok
    assert episode.state_hash() != initial
    episode.reset()
    assert episode.state_hash() == initial
    assert episode.calls == 0


def test_failing_mutation_leaves_no_partial_write(notes: Environment) -> None:
    episode = Episode(notes, notes.scenarios["file-two"], "e2")
    assert episode.call("add_note", {"folder": "work", "title": "dup"}).ok
    before = episode.state_hash()
    # add_note inserts, then finds the duplicate and refuses: the insert must be rolled back
    result = episode.call("add_note", {"folder": "work", "title": "dup"})
    assert not result.ok
    assert result.rule == "unique-title"
    assert result.error == "add_note: folder 'work' already has a note titled 'dup'"
    assert episode.state_hash() == before
    assert episode.call("add_note", {"folder": "work", "title": "after"}).ok  # the episode goes on


def test_bad_calls_name_the_tool_the_argument_and_the_problem(notes: Environment) -> None:
    episode = Episode(notes, notes.scenarios["file-two"], "e3")
    before = episode.state_hash()
    cases = {
        ("nope", None): "unknown tool 'nope' in 'notes'; tools are: list_notes, add_note",
        ("add_note", None): "add_note: invalid arguments: missing required argument: 'folder'; "
        "missing required argument: 'title'",
        ("add_note", (("folder", 3), ("title", "t"))): "add_note: invalid arguments: argument 'folder': "
        "3 is not of type 'string'",
        ("add_note", (("folder", "work"), ("title", "t"), ("colour", "red"))): "add_note: invalid arguments: "
        "unexpected argument(s): 'colour' was unexpected",
        ("list_notes", (("folder", "attic"),)): "list_notes: no folder named 'attic'",
    }
    for (tool, args), message in cases.items():
        result = episode.call(tool, dict(args) if args else None)
        assert (result.ok, result.error) == (False, message)
    assert episode.state_hash() == before


def test_tools_see_the_scenario_clock_not_the_wall_clock(notes: Environment) -> None:
    episode = Episode(notes, notes.scenarios["file-two"], "e4")
    assert episode.call("add_note", {"folder": "work", "title": "t"}).value["created"] == "2026-03-14"


def test_diff_from_initial_and_serialize(notes: Environment) -> None:
    episode = Episode(notes, notes.scenarios["file-two"], "e5")
    episode.call("add_note", {"folder": "work", "title": "t"})
    changes = episode.diff_from_initial()
    assert list(changes) == ["notes"] and [r["title"] for r in changes["notes"]["added"]] == ["t"]
    assert episode.serialize()[:16] == b"SQLite format 3\x00"


def test_deleted_episode_says_why(notes: Environment) -> None:
    store = EpisodeStore()
    episode = store.create(notes, notes.scenarios["file-two"])
    store.delete(episode.id)
    with pytest.raises(EpisodeNotFound) as info:
        store.get(episode.id)
    assert info.value.reason == "episode was deleted"
    with pytest.raises(EpisodeNotFound) as info:
        store.get("ep_never")
    assert info.value.reason == "no such episode in this farm process"


def test_a_call_that_reaches_a_deleted_episode_is_told_so(notes: Environment) -> None:
    """A request bound to an episode that was deleted on its way gets "episode was deleted", not SQLite's words."""
    store = EpisodeStore()
    episode = store.create(notes, notes.scenarios["file-two"])
    store.delete(episode.id)
    with pytest.raises(EpisodeNotFound, match="episode was deleted"):
        episode.call("list_notes", {"folder": "work"})


def test_sqlite_refusing_an_argument_is_a_clear_error_and_no_traceback(caplog: pytest.LogCaptureFixture) -> None:
    library = load_environment("library")
    episode = Episode(library, library.scenarios["return-and-pay"], "e7")
    before = episode.state_hash()
    with caplog.at_level("DEBUG"):
        # Straight to the tool's SQL (the schema's maxLength would refuse this before the tool runs).
        result = episode._execute(library.tools["search_books"], {"query": "%_" * 30_000})
    assert not result.ok and not result.crashed
    assert result.error is not None and "too large for the database" in result.error
    assert not [r for r in caplog.records if r.exc_info], "no traceback for an argument SQLite refuses"
    assert episode.state_hash() == before


def test_chosen_ids_are_checked_and_unique_among_live_episodes(notes: Environment) -> None:
    store = EpisodeStore()
    scenario = notes.scenarios["file-two"]
    episode = store.create(notes, scenario, episode_id="agent-1")
    assert episode.id == "agent-1" and store.get("agent-1") is episode
    with pytest.raises(EpisodeExists):
        store.create(notes, scenario, episode_id="agent-1")
    with pytest.raises(InvalidInput, match="does not match"):
        store.create(notes, scenario, episode_id="../agent-1")
    store.delete("agent-1")
    assert store.create(notes, scenario, episode_id="agent-1").id == "agent-1"  # an ended id is free again
    assert re.fullmatch(EPISODE_ID_PATTERN, new_episode_id())
    store.close_all()


def test_values_sqlite_cannot_store_are_invalid_arguments(notes: Environment) -> None:
    episode = Episode(notes, notes.scenarios["file-two"], "e6")
    before = episode.state_hash()
    result = episode.call("add_note", {"folder": "work", "title": "\ud800"})
    assert not result.ok and result.error is not None
    assert result.error.startswith("add_note: invalid arguments: a value SQLite cannot store")
    assert episode.state_hash() == before


def test_tool_sql_cannot_attach_a_database_file(notes: Environment, tmp_path: Path) -> None:
    episode = Episode(notes, notes.scenarios["file-two"], "e9")
    target = tmp_path / "outside.db"
    with pytest.raises(sqlite3.DatabaseError, match="not authorized"):
        episode._ctx.execute("ATTACH DATABASE ? AS outside", (str(target),))
    assert not target.exists()
    assert episode.call("add_note", {"folder": "work", "title": "still works"}).ok
