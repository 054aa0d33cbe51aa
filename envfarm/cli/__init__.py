"""The ``envfarm`` command line: the only layer that imports every other one.

One module per command group: :mod:`~envfarm.cli.catalog` (list, manifest, check,
scenarios), :mod:`~envfarm.cli.serving` (serve, validator, router, stdio, compose),
:mod:`~envfarm.cli.proxy` (proxy nginx), :mod:`~envfarm.cli.scoring` (score), :mod:`~envfarm.cli.agents` (run) and
:mod:`~envfarm.cli.generate` (generate).
Heavy imports (uvicorn, the validators, the generator) happen inside the commands,
so ``envfarm --help`` and ``envfarm list`` stay quick.
"""

from __future__ import annotations

import sys

from envfarm.cli import agents, catalog, proxy, runs, scoring, serving  # noqa: F401 - each registers its commands on `app`
from envfarm.cli.common import app
from envfarm.cli.generate import generate_app

app.add_typer(generate_app, name="generate")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="envfarm")


if __name__ == "__main__":
    main()
