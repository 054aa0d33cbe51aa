"""What an environment's ``synth.py`` writes: procedural steps, and helpers for picking rows to ask about.

An environment opts in to procedural scenarios (no LLM) with a ``synth.py``
holding ``STEPS``: for each mutation tool, a :data:`StepMaker` ``(state, rng) ->
Step | None`` that picks valid arguments from the current state view, says the
request the way a user would (names and dates, never internal ids), and lists
the look-ups an agent makes first. It returns None when the state offers nothing
to do with that tool. The generator (``envfarm.generator.procedural``) walks
these steps and gates what they make; environments never import it.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView


@dataclass
class Step:
    """One mutation of a walk, as a user would ask for it."""

    arguments: dict[str, object]
    request: str
    lookups: list[Call] = field(default_factory=list)


StepMaker = Callable[[StateView, random.Random], Step | None]


def by_id(state: StateView, table: str) -> dict[Any, dict[str, Any]]:
    """A table's rows by their ``id``."""
    return {row["id"]: row for row in state[table]}


def unique_names(state: StateView, table: str, column: str = "name") -> dict[Any, str]:
    """``id -> name`` for the rows whose name alone identifies them (a request can name them)."""
    counts = Counter(row[column] for row in state[table])
    return {row["id"]: row[column] for row in state[table] if counts[row[column]] == 1}
