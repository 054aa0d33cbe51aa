"""The layering holds: every folder is one layer, and imports only point down.

core <- servers, serve <- validators <- generator; the client needs only core; agents use the
client and the generator's LLM layer (and serve a farm in process); the CLI
(the entry point) is the only place that imports every layer. Lazy imports inside
functions count too: they are dependencies all the same.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO

# Where each installed package's source lives (pyproject/setup.py map the root folders in).
SOURCES = {
    "envfarm": REPO / "envfarm",
    "envfarm.servers": REPO / "servers",
    "envfarm.validators": REPO / "validators",
    "envfarm.generator": REPO / "generator",
}

# What each layer may import, besides itself and the top-level `envfarm` package (its version).
ALLOWED: dict[str, set[str]] = {
    "envfarm.core": set(),
    "envfarm.servers": {"envfarm.core"},
    "envfarm.serve": {"envfarm.core"},
    "envfarm.client": {"envfarm.core"},
    "envfarm.validators": {"envfarm.core", "envfarm.serve"},
    "envfarm.generator": {"envfarm.core", "envfarm.serve", "envfarm.validators"},
    # Agents drive episodes through the client and ask models through the LLM layer; without --farm a run
    # serves the farm (with scoring) in its own process.
    "envfarm.agents": {
        "envfarm.core",
        "envfarm.client",
        "envfarm.generator.llm",
        "envfarm.serve",
        "envfarm.validators",
    },
    # Farm nodes as Ray actors (the farm served in the actor's process) and rollouts spread over them.
    "envfarm.ray": {"envfarm.core", "envfarm.serve", "envfarm.validators", "envfarm.agents", "envfarm.client"},
    "envfarm.cli": {"*"},
}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for package, root in SOURCES.items():
        for file in sorted(root.rglob("*.py")):
            rel = file.relative_to(root).with_suffix("").parts
            if package == "envfarm" and rel and rel[0] in ("servers", "validators", "generator"):
                continue
            parts = [p for p in rel if p != "__init__"]
            found.append((".".join([package, *parts]), file))
    return found


def _layer(module: str) -> str | None:
    """The layer a module belongs to: the longest ALLOWED key it sits under."""
    keys = sorted((k for k in ALLOWED if module == k or module.startswith(k + ".")), key=len, reverse=True)
    return keys[0] if keys else None


def _imports(file: Path, module: str) -> list[tuple[int, str]]:
    """Every envfarm module ``file`` imports (absolute or relative, at any depth of the code)."""
    tree = ast.parse(file.read_text(encoding="utf-8"))
    package = module if file.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "envfarm"]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] == "envfarm":
                out += [(node.lineno, f"{base}.{a.name}" if base == "envfarm" else base) for a in node.names]
    return out


MODULES = _modules()


def test_every_module_belongs_to_a_layer() -> None:
    loose = [m for m, _ in MODULES if _layer(m) is None and m not in ("envfarm", "envfarm.__main__")]
    assert not loose, f"modules outside every layer (add them to a layer's folder): {loose}"


@pytest.mark.parametrize(("module", "file"), MODULES, ids=[m for m, _ in MODULES])
def test_imports_only_point_down(module: str, file: Path) -> None:
    layer = _layer(module)
    if layer is None or "*" in ALLOWED[layer]:
        return
    allowed = ALLOWED[layer] | {layer}
    if layer == "envfarm.servers":  # an environment imports its own package, never another one
        own = ".".join(module.split(".")[:3])
        allowed = ALLOWED[layer] | {own}
    wrong = []
    for line, target in _imports(file, module):
        if target in ("envfarm", "envfarm.__version__"):
            continue
        if not any(target == a or target.startswith(a + ".") for a in allowed):
            wrong.append(f"line {line}: {target}")
    assert not wrong, f"{module} ({layer}) imports above or beside its layer: {wrong}"


def test_serving_loads_no_generator_and_no_llm_sdk() -> None:
    """`envfarm serve` builds its app (scoring included) without the generator or any LLM SDK."""
    probe = (
        "import sys\n"
        "from envfarm.core.environments import load_catalog\n"
        "from envfarm.serve.app import create_app\n"
        "from envfarm.validators.service import ScoringService, farm_extension\n"
        "create_app(load_catalog(['library']), extensions=[farm_extension(ScoringService(workers=1))])\n"
        "bad = sorted(m for m in sys.modules if m.startswith(('envfarm.generator', 'anthropic', 'openai')))\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "[]", out.stdout
