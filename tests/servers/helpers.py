"""What the per-environment tests share: the refusal check, the odd-values sweep and row look-ups.

Imported as ``from helpers import ...`` (tests/servers is on the path for its own test
modules, as tests/ is for ``conftest``). The cases stay in each environment's test file;
only the bodies that were the same everywhere live here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from envfarm.core.environments import Environment
from envfarm.core.episodes import Episode, ToolResult
from envfarm.core.state import StateView

# A business rule refusal: (rule, tool, arguments, words the error must contain).
Refusal = tuple[str, str, dict[str, Any], list[str]]
# Bad input: (tool, arguments, what the error must contain: a word or a list of words).
BadCall = tuple[str, dict[str, Any], str | list[str]]


def row(view: StateView, table: str, row_id: int) -> dict[str, Any]:
    """The row of ``table`` whose ``id`` is ``row_id``."""
    return next(r for r in view[table] if r["id"] == row_id)


def assert_refused(
    episode: Episode, tool: str, arguments: dict[str, Any], expected: str | Sequence[str], rule: str | None = None
) -> ToolResult:
    """Call ``tool``: it must come back as an error result, not an internal error, whose text holds
    every expected word (as written, case included), refused by business rule ``rule`` (None: plain
    bad input, no rule), and leave the episode's state as it was."""
    assert rule is None or rule in episode.env.rules, f"{episode.env.id} has no rule {rule!r}"
    before = episode.state_hash()
    result = episode.call(tool, arguments)
    error = result.error or ""
    assert not result.ok, f"{tool}({arguments}) was not refused"
    assert result.rule == rule, f"{tool}: refused by rule {result.rule!r}, not {rule!r}: {error}"
    assert "internal error" not in error, error
    for word in [expected] if isinstance(expected, str) else expected:
        assert word in error, f"{word!r} not in {error!r}"
    assert episode.state_hash() == before, f"{tool} was refused but wrote to the state"
    return result


def refusal_cases(cases: list[Refusal]) -> list[Any]:
    """Refusals as pytest params named ``rule-tool-index``."""
    return [pytest.param(*case, id=f"{case[0]}-{case[1]}-{i}") for i, case in enumerate(cases)]


def bad_call_cases(cases: list[BadCall]) -> list[Any]:
    """Bad calls as pytest params named ``tool-index``."""
    return [pytest.param(*case, id=f"{case[0]}-{i}") for i, case in enumerate(cases)]


def sweep_odd_values(env: Environment, episode: Episode, odd: dict[str, list[Any]], valid: dict[str, Any]) -> int:
    """Call every tool once per parameter and odd value of that parameter's type (and each of its enum
    values), the other required parameters taken from ``valid``, each on a fresh episode state; return
    how many calls were made. No call may end in an internal error, and a refused call writes nothing."""
    calls = 0
    for spec in env.tools.values():
        required = {k: valid[k] for k in spec.input_schema["required"]}
        for name, prop in spec.input_schema["properties"].items():
            types = [prop.get("type")] + [s.get("type") for s in prop.get("anyOf", [])]
            values = [v for t in types if t in odd for v in odd[t]] + list(prop.get("enum", []))
            for value in values:
                episode.reset()
                before = episode.state_hash()
                result = episode.call(spec.name, {**required, name: value})
                calls += 1
                assert "internal error" not in (result.error or ""), f"{spec.name}({name}={value!r}): {result.error}"
                if not result.ok:
                    assert episode.state_hash() == before, f"{spec.name}({name}={value!r}) failed but wrote"
    return calls
