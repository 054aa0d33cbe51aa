"""Static gates on generated code, before it is written or imported.

Generated ``models.py`` and ``tools.py`` must compile, import only from an
allow-list, call no builtin that reaches outside the episode (files, eval,
introspection), touch no dunder attribute, and do nothing at import time but
define things. The point is that an imported generated module cannot act: all
it can do is define tables and tools that work on the episode's database
through ``ToolContext``.
"""

from __future__ import annotations

import ast

ALLOWED_IMPORTS = {
    "__future__",
    "typing",
    "datetime",
    "math",
    "re",
    "json",
    "decimal",
    "enum",
    "sqlmodel",
    "sqlalchemy.orm",
    "envfarm.core.tools",
}
FORBIDDEN_NAMES = {
    "eval",
    "exec",
    "compile",
    "open",
    "__import__",
    "input",
    "breakpoint",
    "globals",
    "locals",
    "vars",
    "getattr",
    "setattr",
    "delattr",
    "exit",
    "quit",
    "help",
    "memoryview",
    "__builtins__",
    "importlib",
    "os",
    "sys",
    "subprocess",
}
FORBIDDEN_ATTRIBUTES = {"db"}  # tools use ctx.one/all/scalar/execute/insert/update, not the raw connection
TOP_LEVEL = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef, ast.Assign, ast.AnnAssign, ast.Expr)


def gate_source(source: str, filename: str) -> list[str]:
    """Every problem found in one generated module, each with its line; empty when it passes."""
    try:
        tree = ast.parse(source, filename)
        compile(tree, filename, "exec")
    except SyntaxError as e:
        return [f"{filename}: line {e.lineno}: does not compile: {e.msg}"]
    problems: list[str] = []
    for node in tree.body:
        if not isinstance(node, TOP_LEVEL):
            problems.append(f"{filename}: line {node.lineno}: only imports, definitions and constants at top level")
        elif isinstance(node, ast.Expr) and not isinstance(node.value, ast.Constant):
            problems.append(f"{filename}: line {node.lineno}: a top-level expression runs at import time")
        elif isinstance(node, ast.Assign | ast.AnnAssign) and _calls(node.value):
            problems.append(f"{filename}: line {node.lineno}: a top-level assignment calls something at import time")
    for sub in ast.walk(tree):
        line = getattr(sub, "lineno", "?")
        if isinstance(sub, ast.Import):
            for alias in sub.names:
                if alias.name not in ALLOWED_IMPORTS:
                    problems.append(f"{filename}: line {line}: import {alias.name!r} is not allowed{_allowed()}")
        elif isinstance(sub, ast.ImportFrom):
            module = sub.module or ""
            if sub.level or module not in ALLOWED_IMPORTS:
                problems.append(f"{filename}: line {line}: import from {module!r} is not allowed{_allowed()}")
        elif isinstance(sub, ast.Name) and sub.id in FORBIDDEN_NAMES:
            problems.append(f"{filename}: line {line}: {sub.id!r} is forbidden in generated code")
        elif isinstance(sub, ast.Attribute):
            if sub.attr.startswith("__") and sub.attr.endswith("__"):
                problems.append(f"{filename}: line {line}: dunder attribute {sub.attr!r} is forbidden")
            elif sub.attr in FORBIDDEN_ATTRIBUTES:
                problems.append(f"{filename}: line {line}: use ctx.one/all/scalar/execute, not ctx.{sub.attr}")
        elif isinstance(sub, ast.Global | ast.Nonlocal):
            problems.append(f"{filename}: line {line}: global state is forbidden (tools must be pure over ctx)")
    return problems


def _calls(node: ast.AST | None) -> bool:
    """Whether an expression calls anything (registry() for the models' Base is the one exception)."""
    if node is None:
        return False
    for sub in ast.walk(node):
        if isinstance(sub, ast.Call) and not (isinstance(sub.func, ast.Name) and sub.func.id in {"registry", "Field"}):
            return True
    return False


def _allowed() -> str:
    return f" (allowed: {', '.join(sorted(ALLOWED_IMPORTS))})"
