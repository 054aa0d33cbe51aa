"""Every environment folder ships in a non-editable install (Docker) too."""

from __future__ import annotations

import tomllib

from conftest import REPO


def test_every_server_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {f"envfarm.servers.{p.parent.name}" for p in (REPO / "servers").glob("*/__init__.py")}
    assert folders and folders <= listed, f"add to [tool.setuptools] packages: {sorted(folders - listed)}"
