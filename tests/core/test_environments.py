"""Loading environment packages: a good one loads; a broken one says exactly what is wrong, and where."""

from __future__ import annotations

import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import FIXTURE_ENVS

import envfarm.servers
from envfarm.core.environments import PackageError, discover, load_environment, write_manifest

_names = itertools.count()


@pytest.fixture
def broken_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., PackageError]:
    """Copy the notes fixture under a fresh name, apply an edit, load it, return the error."""
    monkeypatch.setattr(envfarm.servers, "__path__", [*envfarm.servers.__path__, str(tmp_path)])

    def load_broken(edit: Callable[[Path], None], *, fix_manifest: bool = True) -> PackageError:
        name = f"broken{next(_names)}"
        shutil.copytree(FIXTURE_ENVS / "notes", tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
        edit(tmp_path / name)
        if fix_manifest:
            try:
                write_manifest(load_environment(name, check_manifest=False))
            except PackageError as e:
                return e
        with pytest.raises(PackageError) as info:
            load_environment(name)
        return info.value

    return load_broken


def edit_scenario(change: Callable[[dict], None]) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        file = path / "scenarios" / "file-two.json"
        data = json.loads(file.read_text())
        change(data)
        file.write_text(json.dumps(data))

    return edit


def test_fixture_env_loads_with_manifest_from_code() -> None:
    env = load_environment("notes")
    assert "notes" in discover()
    assert list(env.tools) == ["list_notes", "add_note"]
    manifest = env.manifest()
    assert manifest["version"].startswith("sha256:")
    assert manifest["rules"] == [{"id": "unique-title", "text": "Two notes in one folder cannot share a title."}]
    assert manifest["tools"][1]["kind"] == "mutation"


def test_unknown_env_names_the_known_ones() -> None:
    with pytest.raises(PackageError, match=r"no package envfarm.servers.nope; known: \[.*'notes'"):
        load_environment("nope")


def test_stale_manifest_is_reported_with_the_fix(broken_copy: Callable[..., PackageError]) -> None:
    def edit(path: Path) -> None:
        manifest = json.loads((path / "manifest.json").read_text())
        (path / "manifest.json").write_text(json.dumps({**manifest, "id": path.name}))
        tools = path / "tools.py"
        tools.write_text(tools.read_text().replace("List the notes in a folder.", "List notes."))

    error = broken_copy(edit, fix_manifest=False)
    assert "manifest.json: differs from the code in ['tools', 'version']" in str(error)
    assert "envfarm manifest" in str(error)


def test_missing_rules(broken_copy: Callable[..., PackageError]) -> None:
    error = broken_copy(lambda p: (p / "__init__.py").write_text('TITLE = "x"\nDESCRIPTION = "y"\n'))
    assert "__init__.py: RULES must be a non-empty dict" in error.problems


def test_scenario_that_is_not_json(broken_copy: Callable[..., PackageError]) -> None:
    error = broken_copy(lambda p: (p / "scenarios" / "file-two.json").write_text('{"id": "file-two",'))
    assert any(m.startswith("scenarios/file-two.json: not valid JSON (line 1") for m in error.problems)


def test_scenario_missing_field_and_naive_clock(broken_copy: Callable[..., PackageError]) -> None:
    def change(d: dict) -> None:
        del d["task"]
        d["clock"] = "2026-03-14T10:00:00"

    error = broken_copy(edit_scenario(change))
    (problem,) = error.problems
    assert problem.startswith("scenarios/file-two.json: ")
    assert "task: Field required" in problem
    assert "clock: Value error, clock needs a UTC offset" in problem


def test_oracle_with_unknown_tool_and_bad_arguments(broken_copy: Callable[..., PackageError]) -> None:
    def change(d: dict) -> None:
        d["oracle"][0] = {"tool": "delete_everything", "arguments": {}}
        d["oracle"][1]["arguments"]["title"] = 7

    error = broken_copy(edit_scenario(change))
    assert "scenarios/file-two.json: oracle[0]: unknown tool 'delete_everything'" in error.problems
    assert "scenarios/file-two.json: oracle[1] (add_note): 7 is not of type 'string'" in error.problems


def test_check_with_syntax_error_or_no_check_function(broken_copy: Callable[..., PackageError]) -> None:
    def change(d: dict) -> None:
        d["checks"][0]["code"] = "def check(initial, final)\n    return True"
        d["checks"][1]["code"] = "def verify(final):\n    return True"

    error = broken_copy(edit_scenario(change))
    assert any("checks[0] (standup): syntax error line 1" in m for m in error.problems)
    assert any("checks[1] (retro): must define check(initial, final)" in m for m in error.problems)


def test_initial_state_with_unknown_column_bad_type_and_dangling_key(
    broken_copy: Callable[..., PackageError],
) -> None:
    def unknown_column(d: dict) -> None:
        d["state"]["notes"][0]["colour"] = "red"

    def bad_type(d: dict) -> None:
        d["state"]["folders"][1]["id"] = "two"

    def dangling(d: dict) -> None:
        d["state"]["notes"][0]["folder_id"] = 99

    assert "notes[0]: unknown column(s) ['colour']" in str(broken_copy(edit_scenario(unknown_column)))
    assert "folders[1]: id: Input should be a valid integer" in str(broken_copy(edit_scenario(bad_type)))
    assert "notes row 1 refers to a missing folders row" in str(broken_copy(edit_scenario(dangling)))


def test_undocumented_tool_parameter(broken_copy: Callable[..., PackageError]) -> None:
    def edit(path: Path) -> None:
        tools = path / "tools.py"
        tools.write_text(tools.read_text().replace("        body: the note's text\n", ""))

    error = broken_copy(edit)
    assert "tools.py: tool 'add_note': parameter 'body' is not described in the docstring's Args" in error.problems


def test_tools_module_that_fails_to_import(broken_copy: Callable[..., PackageError]) -> None:
    error = broken_copy(lambda p: (p / "tools.py").write_text("import not_a_module_anywhere\n"))
    assert any(m.startswith("tools.py: ") and "not_a_module_anywhere" in m for m in error.problems)
