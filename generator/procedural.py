"""Procedural scenarios: random valid tool walks become oracles, their state diffs become checks.

No LLM is involved. An environment opts in with a ``synth.py`` module holding
``STEPS``: for each mutation tool, a function ``(state, rng) -> Step | None``
that picks valid arguments from the current state view (``{table: [rows]}``),
says the request the way a user would (names and dates, never internal ids),
and lists the lookups an agent has to make first to find what the request names.
It returns None when the state offers nothing to do with that tool.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from envfarm.scenarios import Call
from envfarm.state import StateView


@dataclass
class Step:
    """One mutation of a walk, as a user would ask for it."""

    arguments: dict[str, object]
    request: str
    lookups: list[Call] = field(default_factory=list)


StepMaker = Callable[[StateView, random.Random], Step | None]
