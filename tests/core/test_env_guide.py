"""docs/env-format.md is true: following it literally builds, checks and serves a new environment.

The guide's code blocks marked ``<!-- guide: PATH -->`` are written to PATH in a fresh
folder (the blocks of one file joined in order), so the guide and this test cannot drift.
Then the guide's own commands run on the result as real processes, with ENVFARM_ENV_PATH
naming that folder, as for a user outside the repository: nothing outside the new
environment's folder is written or edited. Each command is asserted to appear in the guide
as it is run (but for ``--count 40``, made ``--count 2`` to keep this fast).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, FarmProcess, free_port, stop_farm, wait_until_healthy

GUIDE = REPO / "docs" / "env-format.md"
ENV = "parking"
PACKAGE_FILES = [
    "__init__.py",
    "__main__.py",
    "models.py",
    "tools.py",
    "synth.py",
    "states/base.json",
    "scenarios/new-car.json",
]
TOOLS = {
    "find_driver": "query",
    "list_permits": "query",
    "issue_permit": "mutation",
    "update_driver_contact": "mutation",
}
RULES = ["one-permit-per-plate", "permit-limit", "unique-email"]
TABLES = ["drivers", "permits"]


def guide_text() -> str:
    return GUIDE.read_text(encoding="utf-8")


def guide_files() -> dict[str, str]:
    """PATH -> text of the blocks marked ``<!-- guide: PATH -->``, joined in order (two blank lines apart)."""
    blocks = re.findall(r"<!-- guide: (\S+) -->\n```\w*\n(.*?)```", guide_text(), re.DOTALL)
    assert blocks, "docs/env-format.md marks no block with <!-- guide: PATH -->"
    files: dict[str, list[str]] = {}
    for path, body in blocks:
        files.setdefault(path, []).append(body)
    return {path: "\n\n".join(bodies) for path, bodies in files.items()}


def process_env(root: Path) -> dict[str, str]:
    """This process's environment, with only the guide's folder on ENVFARM_ENV_PATH."""
    return {**os.environ, "ENVFARM_ENV_PATH": str(root)}


def argv(command: str) -> list[str]:
    """A guide command as this interpreter runs it (``envfarm`` is ``python -m envfarm``)."""
    words = shlex.split(command)
    if words[0] == "envfarm":
        return [sys.executable, "-m", "envfarm", *words[1:]]
    assert words[0] == "python", command
    return [sys.executable, *words[1:]]


def run(
    root: Path, command: str, *extra: str, said: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command the guide gives (``said``: how the guide writes it, when the test shortens it)."""
    assert (said or command) in guide_text(), f"docs/env-format.md never says `{said or command}`"
    return subprocess.run(
        [*argv(command), *extra],
        cwd=root,
        env={**process_env(root), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder on ENVFARM_ENV_PATH, holding the guide's files, its manifest written as the guide says."""
    folder = tmp_path_factory.mktemp("guide")
    for path, text in guide_files().items():
        file = folder / path
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text, encoding="utf-8")
    written = run(folder, f"envfarm manifest {ENV} --write")
    assert written.returncode == 0, written.stderr
    assert (folder / ENV / "manifest.json").is_file()
    return folder


def test_the_guide_gives_every_file_of_the_package_lint_clean(root: Path) -> None:
    files = guide_files()
    assert sorted(p.removeprefix(f"{ENV}/") for p in files if p.startswith(f"{ENV}/")) == sorted(PACKAGE_FILES)
    layout = re.search(r"```\n(parking/\n.*?)```", guide_text(), re.DOTALL)
    assert layout, "the guide shows the folder's layout"
    for name in {p.split("/")[0] for p in PACKAGE_FILES} | {"manifest.json"}:
        assert name in layout.group(1), f"the layout does not list {name}"
    python = [str(root / p) for p in files if p.endswith(".py")]
    config = str(REPO / "pyproject.toml")
    for check in (["check"], ["format", "--check"]):  # what CI runs on servers/
        lint = subprocess.run(
            [sys.executable, "-m", "ruff", *check, "--config", config, *python], capture_output=True, text=True
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_the_manifest_matches_the_code(root: Path) -> None:
    done = run(root, f"envfarm manifest {ENV}")
    assert done.returncode == 0, done.stderr
    assert f"{ENV}: manifest matches the code" in done.stderr


def test_the_scenario_passes_the_quality_gate(root: Path) -> None:
    assert f"envfarm check {ENV}\n" in guide_text()
    done = run(root, f"envfarm check {ENV} --write")
    assert done.returncode == 0, done.stdout + done.stderr
    gate = json.loads((root / ENV / "scenarios" / "new-car.json").read_text())["gate"]
    assert gate["mutants"] > 0 and gate["mutants_caught"] == gate["mutants"]
    assert gate["changed_rows"] == gate["verified_rows"] == 2
    assert gate["preservation_checks"] == 1 and gate["false_at_start"] == 2


def test_synth_writes_gated_procedural_scenarios(root: Path) -> None:
    said = f"envfarm scenarios synth {ENV} --count 40 --seed 1"
    done = run(root, f"envfarm scenarios synth {ENV} --count 2 --seed 1", said=said)
    assert done.returncode == 0, done.stderr
    for name in ("synth-1-001", "synth-1-002"):
        scenario = json.loads((root / ENV / "scenarios" / f"{name}.json").read_text())
        assert scenario["gate"]["mutants_caught"] == scenario["gate"]["mutants"] > 0
        assert {call["tool"] for call in scenario["oracle"]} == {"find_driver", "issue_permit"}
        assert "permit for their car" in scenario["task"]


def test_the_package_loads_in_a_fresh_process(root: Path) -> None:
    """``load_environment`` validates everything (the manifest against the code too) in a new interpreter."""
    code = (
        "import json\n"
        "from envfarm.core.environments import load_environment\n"
        f"env = load_environment({ENV!r})\n"
        "print(json.dumps({'tools': {t.name: t.kind for t in env.tools.values()}, 'rules': list(env.rules),\n"
        "    'tables': sorted(env.metadata.tables), 'scenarios': sorted(env.scenarios), 'title': env.title}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=root, env=process_env(root), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    env = json.loads(done.stdout)
    assert env["title"] == "Parking permits"
    assert env["tools"] == TOOLS
    assert env["rules"] == RULES
    assert env["tables"] == TABLES
    assert "new-car" in env["scenarios"]


def test_envfarm_list_shows_it(root: Path) -> None:
    done = run(root, "envfarm list --json")
    assert done.returncode == 0, done.stderr
    rows = {row["id"]: row for row in json.loads(done.stdout)}
    assert ENV in rows, f"envfarm list shows {sorted(rows)}"
    row = rows[ENV]
    assert (row["tools"], row["queries"], row["mutations"], row["rules"]) == (4, 2, 2, 3)
    assert row["scenarios"] >= 1


def test_it_serves_refuses_by_rule_and_scores_the_oracle_1(root: Path) -> None:
    """`envfarm serve parking`, then the guide's MCP client: a refusal naming the rule, the oracle, reward 1.0."""
    assert f"envfarm serve {ENV}\n" in guide_text()
    port = free_port()
    process = subprocess.Popen(
        [*argv(f"envfarm serve {ENV}"), "--port", str(port), "--log-level", "warning"],
        cwd=root,
        env=process_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    farm = FarmProcess(f"http://127.0.0.1:{port}", process)
    try:
        # While the farm starts: the package's __main__.py is `envfarm serve parking` too.
        module = run(root, f"python -m envfarm.servers.{ENV}", "--help")
        assert module.returncode == 0, module.stderr
        assert "Usage: envfarm serve" in module.stdout
        wait_until_healthy(process, farm.url, f"envfarm serve {ENV}")
        code = guide_files()["try_parking.py"].replace("http://127.0.0.1:8000", farm.url)
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    finally:
        stop_farm(farm)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    refused = "refused: True issue_permit: driver 4 (Dana Fox) already holds 2 active permits"
    assert lines[0].startswith("task: Hi, I'm Ada Ruiz.")
    assert lines[1] == f"tools: {list(TOOLS)}"
    assert lines[2] == refused
    assert lines[3:7] == [f"{tool} ok" for tool in TOOLS]  # the oracle calls each tool once, in this order
    assert lines[7] == "reward: 1.0 success: True"
    said = re.sub(r"\s+", " ", guide_text())  # what the guide says the client prints
    assert refused in said and "reward: 1.0 success: True" in said


def test_the_environments_own_tests_pass(root: Path) -> None:
    # The dev extra's pytest plugins (schemathesis ...) take seconds to load and this test needs none of them.
    quick = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = run(root, f"python -m pytest tests/servers/test_{ENV}.py", "-q", "-p", "no:cacheprovider", env=quick)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout


def test_the_docs_page_names_every_table_tool_rule_and_authored_scenario(root: Path) -> None:
    """What tests/servers/test_catalog.py asks of a bundled environment's docs page."""
    page = guide_files()[f"docs/environments/{ENV}.md"]
    authored = [p.stem for p in (root / ENV / "scenarios").glob("*.json") if not p.stem.startswith("synth-")]
    assert authored == ["new-car"]
    missing = [name for name in [*TABLES, *TOOLS, *RULES, *authored] if f"`{name}`" not in page]
    assert not missing, f"the guide's docs page does not mention {missing}"
