"""Check functions: turning a check's source into something that can be called.

A check is Python source defining ``check(initial, final) -> bool`` over
canonical state views. EnvScaler's form, ``check_func(final_state)`` reading a
global ``initial_state``, runs unchanged: the initial view is bound to that
global before the call.

This module only compiles and calls; it does not contain anything. Service
processes never call it directly on scenario or user code: the validator runs
it inside sandboxed worker processes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from envfarm.core.state import StateView


@dataclass
class CheckOutcome:
    """Whether one check passed, and why not when it could not run."""

    id: str
    passed: bool
    error: str | None = None


def run_check(
    check_id: str, code: str, initial: StateView, final: StateView, compiler: Callable[[str, str, str], Any] = compile
) -> CheckOutcome:
    """Compile (with ``compiler``: the sandbox caches code objects) and run one check; any failure to
    run is reported, never raised."""
    namespace: dict[str, Any] = {"__name__": f"check_{check_id}", "initial_state": initial}
    try:
        exec(compiler(code, f"<check {check_id}>", "exec"), namespace)
        if callable(namespace.get("check")):
            result = namespace["check"](initial, final)
        elif callable(namespace.get("check_func")):
            result = namespace["check_func"](final)
        else:
            return CheckOutcome(check_id, False, "defines neither check(initial, final) nor check_func(final)")
    except Exception as e:  # the check's own bug: reported on that check
        return CheckOutcome(check_id, False, f"raised {type(e).__name__}: {e}")
    if not isinstance(result, bool):
        return CheckOutcome(check_id, False, f"returned {type(result).__name__}, not bool")
    return CheckOutcome(check_id, result)
