"""The static gate refuses generated code that could act outside the episode, and says where."""

import pytest

from envfarm.generator.codegate import gate_source
from tests.generator.recording import MODELS_PY, TOOLS_PY


def test_the_recorded_environment_passes() -> None:
    assert gate_source(MODELS_PY, "models.py") == []
    assert gate_source(TOOLS_PY, "tools.py") == []


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(:\n    pass\n", "line 1: does not compile"),
        ("import os\n", "import 'os' is not allowed"),
        ("import subprocess as sp\n", "import 'subprocess' is not allowed"),
        ("from pathlib import Path\n", "import from 'pathlib' is not allowed"),
        ("from . import models\n", "import from '' is not allowed"),
        ("def f():\n    return open('/etc/passwd').read()\n", "'open' is forbidden"),
        ("def f(x):\n    return eval(x)\n", "'eval' is forbidden"),
        ("def f(x):\n    return getattr(x, 'y')\n", "'getattr' is forbidden"),
        ("def f():\n    return ().__class__.__bases__\n", "dunder attribute '__class__'"),
        ("def f(ctx):\n    return ctx.db.execute('x')\n", "use ctx.one/all/scalar/execute, not ctx.db"),
        ("X = []\ndef f():\n    global X\n", "global state is forbidden"),
        ("print('hello')\n", "a top-level expression runs at import time"),
        ("ROWS = list(range(10**9))\n", "a top-level assignment calls something"),
        ("for i in range(3):\n    pass\n", "only imports, definitions and constants"),
    ],
)
def test_refusals_name_the_problem_and_the_line(source: str, expected: str) -> None:
    problems = gate_source(source, "tools.py")
    assert problems, source
    assert any(expected in p for p in problems), problems
    assert all(p.startswith("tools.py: line ") for p in problems)


def test_allowed_constructs_pass() -> None:
    source = (
        '"""Docstring."""\n'
        "from __future__ import annotations\n"
        "import re\n"
        "from datetime import date\n"
        "from envfarm.core.tools import ToolContext, ToolError, tool\n"
        "STYLES = ('a', 'b')\n"
        "LIMIT: int = 5\n"
        "class Base:\n    pass\n"
        "def f(ctx: ToolContext) -> int:\n    return len(re.findall('x', str(date(2026, 1, 1))))\n"
    )
    assert gate_source(source, "tools.py") == []
