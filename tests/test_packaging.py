"""A real wheel ships every environment folder and every layer, with nothing listed by hand.

The wheel is what Docker's non-editable install uses; an environment missing from it
would serve in development and vanish in a container.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    source = tmp_path_factory.mktemp("source")  # a copy: setuptools writes build/ beside the sources
    keep = ["pyproject.toml", "setup.py", "README.md", "envfarm", "servers", "validators", "generator"]
    for name in keep:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("envfarm-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def _python_packages(root: Path) -> list[Path]:
    return sorted(p.parent for p in root.rglob("__init__.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize(
    ("folder", "prefix"),
    [
        ("envfarm", "envfarm"),
        ("servers", "envfarm/servers"),
        ("validators", "envfarm/validators"),
        ("generator", "envfarm/generator"),
    ],
)
def test_every_package_folder_is_in_the_wheel(wheel_files: set[str], folder: str, prefix: str) -> None:
    root = REPO / folder
    for package in _python_packages(root):
        inside = f"{prefix}/{package.relative_to(root).as_posix()}".rstrip("/.")
        assert f"{inside}/__init__.py" in wheel_files, f"{package} is not in the wheel"


def test_every_environment_ships_its_data(wheel_files: set[str]) -> None:
    for env in sorted(p.parent for p in (REPO / "servers").glob("*/__init__.py")):
        data = [env / "manifest.json", *env.glob("scenarios/*.json"), *env.glob("states/*.json")]
        for file in data:
            name = f"envfarm/servers/{file.relative_to(REPO / 'servers').as_posix()}"
            assert name in wheel_files, f"{name} is not in the wheel"


def test_tests_and_benchmarks_stay_out_of_the_wheel(wheel_files: set[str]) -> None:
    assert not [n for n in wheel_files if n.startswith(("tests/", "benchmarks/", "envfarm/tests"))]
