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

import ast
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


# --- which tables a check reads ------------------------------------------------------------------

_INTROSPECTION_NAMES = frozenset({"locals", "vars", "globals", "eval", "exec", "compile", "getattr", "__import__"})
_INTROSPECTION_ATTRS = frozenset(
    {"_getframe", "f_locals", "f_globals", "f_back", "tb_frame", "gi_frame", "cr_frame", "__dict__", "__globals__"}
)


def tables_read(code: str) -> frozenset[str] | None:
    """The tables a check can read from its state views, told from its source; None when its text
    does not say (it reads the views some other way): such a check is given every table.

    A check is given only the tables it names, so scoring costs what the checks read, not the
    size of the state. A view is followed where the code indexes it by a string literal
    (``final["loans"]``, ``initial.get("fines", [])``), by a loop variable that only ever takes
    string literals (``for t, col in [("loans", "id")]: initial[t]``), or where it is passed to a
    function of the check's own (``def theirs(view): ... theirs(final)``), whose parameter is then
    followed the same way. Any other use of a view (returned, iterated, rebound, ``in``, ``len``)
    or any introspection (``locals``, ``eval``, frames) gives None. The sandbox never sends a table
    outside the job's union of these sets, so a check cannot see it by any route; a check that
    reaches a view around this analysis only loses tables it did not name (``KeyError``), it never
    gains any.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None  # the sandbox reports why it cannot compile
    views = {"initial_state"}
    for statement in tree.body:
        if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef) and statement.name in ("check", "check_func"):
            a = statement.args
            if a.vararg or a.kwarg:
                return None
            views |= {p.arg for p in (*a.posonlyargs, *a.args, *a.kwonlyargs)}
    parents: dict[ast.AST, ast.AST] = {}
    for above in ast.walk(tree):
        for child in ast.iter_child_nodes(above):
            parents[child] = above
    literal_loops = _literal_loop_names(tree)
    helpers = _helper_functions(tree)
    if not _follow_into_helpers(tree, views, helpers):
        return None
    tables: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in _INTROSPECTION_NAMES:
            return None
        if isinstance(node, ast.Attribute) and node.attr in _INTROSPECTION_ATTRS:
            return None
        if not (isinstance(node, ast.Name) and node.id in views):
            continue
        if not isinstance(node.ctx, ast.Load):
            return None  # a view rebound or deleted
        parent = parents.get(node)
        if isinstance(parent, ast.Call) and node in parent.args and _helper(parent, helpers) is not None:
            continue  # handed to a helper, whose parameter is followed as a view
        if isinstance(parent, ast.Subscript) and parent.value is node:
            index: ast.AST | None = parent.slice
        elif (
            isinstance(parent, ast.Attribute)
            and parent.attr == "get"
            and isinstance(call := parents.get(parent), ast.Call)
            and call.func is parent
            and call.args
        ):
            index = call.args[0]
        else:
            return None
        if isinstance(index, ast.Constant) and isinstance(index.value, str):
            tables.add(index.value)
        elif isinstance(index, ast.Name) and index.id in literal_loops:
            tables |= literal_loops[index.id]
        else:
            return None
    return frozenset(tables)


def _helper_functions(tree: ast.AST) -> dict[str, ast.arguments]:
    """The check's own functions, by name: ``def`` or ``name = lambda``, each name bound once."""
    found: dict[str, ast.arguments] = {}
    bound: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            found[node.name] = node.args
            bound[node.name] = bound.get(node.name, 0) + 1
        elif isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound[node.id] = bound.get(node.id, 0) + 1
        elif (
            isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Lambda)
            and len(node.targets) == 1
            and isinstance(node.targets[0], ast.Name)
        ):
            found[node.targets[0].id] = node.value.args
    return {name: args for name, args in found.items() if bound.get(name) == 1}


def _helper(call: ast.Call, helpers: dict[str, ast.arguments]) -> ast.arguments | None:
    if isinstance(call.func, ast.Name) and not call.keywords:
        args = helpers.get(call.func.id)
        if args is not None and not args.vararg and len(call.args) <= len(args.posonlyargs) + len(args.args):
            return args
    return None


def _follow_into_helpers(tree: ast.AST, views: set[str], helpers: dict[str, ast.arguments]) -> bool:
    """Add to ``views`` each helper parameter that a view is passed to (until nothing changes).
    False when a view goes where it cannot be followed (a starred argument)."""
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and _helper(n, helpers) is not None]
    changed = True
    while changed:
        changed = False
        for call in calls:
            params = _helper(call, helpers)
            assert params is not None
            positional = [*params.posonlyargs, *params.args]
            for i, arg in enumerate(call.args):
                if isinstance(arg, ast.Starred):
                    return False
                if isinstance(arg, ast.Name) and arg.id in views and positional[i].arg not in views:
                    views.add(positional[i].arg)
                    changed = True
    return True


def _literal_loop_names(tree: ast.AST) -> dict[str, frozenset[str]]:
    """Names bound only by loops (and comprehensions) over literal strings, with every string they
    can take: ``for t in ["a", "b"]``, or ``for t, col in [("a", "id"), ("b", "x")]``, where a
    name whose place holds something else than strings is left out."""
    values: dict[str, set[str]] = {}
    other: set[str] = set()  # bound some other way too
    loop_targets: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.For | ast.AsyncFor | ast.comprehension):
            found = _literal_loop(node.target, node.iter)
            if found is not None:
                for name, strings in found.items():
                    values.setdefault(name.id, set()).update(strings)
                    loop_targets.add(id(name))
                if isinstance(node.target, ast.Tuple):
                    loop_targets.add(id(node.target))
                continue
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load) and id(node) not in loop_targets:
            other.add(node.id)
        elif isinstance(node, ast.arg):
            other.add(node.arg)
        elif isinstance(node, ast.alias):
            other.add(node.asname or node.name.split(".")[0])
        elif isinstance(node, ast.Global | ast.Nonlocal):
            other.update(node.names)
        elif isinstance(node, ast.ExceptHandler | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name:
                other.add(node.name)
        elif isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            other.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            other.add(node.rest)
    return {name: frozenset(found) for name, found in values.items() if name not in other}


def _literal_loop(target: ast.AST, source: ast.AST) -> dict[ast.Name, set[str]] | None:
    """The loop's target names that take only string literals, with those strings (None when the
    loop is not over a literal list, tuple or set)."""
    if not isinstance(source, ast.List | ast.Tuple | ast.Set):
        return None
    if isinstance(target, ast.Name):
        places: list[ast.AST] = [target]
        items = [[e] for e in source.elts]
    elif isinstance(target, ast.Tuple) and all(isinstance(t, ast.Name) for t in target.elts):
        places = list(target.elts)
        if not all(isinstance(e, ast.Tuple) and len(e.elts) == len(places) for e in source.elts):
            return None
        items = [list(e.elts) for e in source.elts]  # type: ignore[attr-defined]
    else:
        return None
    out: dict[ast.Name, set[str]] = {}
    for k, place in enumerate(places):
        strings = [c.value for c in (e[k] for e in items) if isinstance(c, ast.Constant) and isinstance(c.value, str)]
        if len(strings) == len(items):
            out[place] = set(strings)  # type: ignore[index]
    return out


# --- whether a check may change its views ------------------------------------------------------

_MUTATORS = frozenset(
    {
        # list and dict methods that change them in place
        *("append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"),
        *("update", "setdefault", "popitem", "move_to_end", "appendleft", "extendleft", "popleft", "rotate"),
        # functions of the modules checks may import that change their argument
        *("heapify", "heappush", "heappop", "heapreplace", "heappushpop", "shuffle"),
        *("insort", "insort_left", "insort_right", "setitem", "delitem", "methodcaller"),
        *("iadd", "iand", "iconcat", "ifloordiv", "ilshift", "imod", "imul", "imatmul", "ior", "ipow"),
        *("irshift", "isub", "itruediv", "ixor", "setattr", "delattr"),
    }
)


def may_change_views(code: str) -> bool:
    """Whether a check's source could change the state views it is given, told without running it.

    False only for code that assigns to no item or attribute, uses no augmented assignment, and
    names none of the methods and functions that change a list or dict in place (nor any dunder
    or introspection): such a check may be handed the sandbox's parsed views themselves instead of
    a copy per check (the copies cost more than most checks). Anything else is copied, as before.
    """
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Subscript | ast.Attribute | ast.Starred) and not isinstance(node.ctx, ast.Load):
            return True
        if isinstance(node, ast.AugAssign):
            return True
        names = (
            [node.id]
            if isinstance(node, ast.Name)
            else [node.attr]
            if isinstance(node, ast.Attribute)
            else [node.name.split(".")[-1], node.asname or ""]
            if isinstance(node, ast.alias)
            else []
        )
        for name in names:
            if name in _MUTATORS or name in _INTROSPECTION_NAMES or name in _INTROSPECTION_ATTRS or name[:2] == "__":
                return True
    return False
