"""A cache keyed by an object's identity, for values derived from shared, read-only objects.

A scenario's initial view is one object shared by every trajectory of it; what scoring derives
from its tables (their JSON, an index of their rows) is computed once and found again by the
table's identity. The cache holds the object itself, so its id cannot be reused while cached.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class ByIdentity(Generic[V]):
    """``get(obj, make)``: ``make()``'s value for this very object, computed once; at most ``size``
    objects are kept (all are dropped when full: they come and go with run-time scenarios)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._found: dict[int, tuple[Any, V]] = {}

    def get(self, obj: Any, make: Callable[[], V]) -> V:
        hit = self._found.get(id(obj))
        if hit is not None and hit[0] is obj:
            return hit[1]
        value = make()
        if len(self._found) >= self.size:
            self._found.clear()
        self._found[id(obj)] = (obj, value)
        return value
