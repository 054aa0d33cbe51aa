"""The ``envfarm`` command line: list, serve, stdio, manifest.

Every option also reads an ``ENVFARM_*`` environment variable (shown in each
command's ``--help``), so a container sets the farm up without flags.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from envfarm.environments import (
    Environment,
    PackageError,
    discover,
    load_catalog,
    load_environment,
    write_manifest,
)

app = typer.Typer(
    help="envfarm: synthesized tool-use environments served as MCP servers over SQLite state.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)

EnvIds = Annotated[list[str] | None, typer.Argument(help="Environment ids (default: every bundled one).")]


def _load(env_ids: list[str] | None) -> dict[str, Environment]:
    try:
        return load_catalog(env_ids or None)
    except PackageError as e:
        err.print(f"[red]error:[/red] {e}", markup=True, highlight=False)
        raise typer.Exit(2) from None


@app.command("list")
def list_envs(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the bundled environments with their tool and scenario counts."""
    envs = _load(None)
    rows = [
        {
            "id": env.id,
            "title": env.title,
            "tools": len(env.tools),
            "queries": sum(t.kind == "query" for t in env.tools.values()),
            "mutations": sum(t.kind == "mutation" for t in env.tools.values()),
            "rules": len(env.rules),
            "scenarios": len(env.scenarios),
        }
        for env in envs.values()
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("env", "title", "tools", "queries", "mutations", "rules", "scenarios")
    for r in rows:
        table.add_row(*(str(r[k]) for k in ("id", "title", "tools", "queries", "mutations", "rules", "scenarios")))
    Console().print(table)


@app.command()
def serve(
    envs: EnvIds = None,
    host: Annotated[str, typer.Option(envvar="ENVFARM_HOST", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ENVFARM_PORT", help="Port to bind (0 picks a free one).")] = 8000,
    token: Annotated[
        str | None,
        typer.Option(envvar="ENVFARM_TOKEN", help="Require 'Authorization: Bearer TOKEN' on every request."),
    ] = None,
    allow_host: Annotated[
        list[str] | None,
        typer.Option(envvar="ENVFARM_ALLOW_HOSTS", help="Extra Host names to accept (beyond loopback)."),
    ] = None,
    log_level: Annotated[str, typer.Option(envvar="ENVFARM_LOG_LEVEL", help="uvicorn log level.")] = "info",
) -> None:
    """Serve environments: the control API at /v1 and each episode's MCP endpoint at /episodes/{id}/mcp."""
    import uvicorn

    from envfarm.app import FarmSettings, create_app

    catalog = _load(envs)
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        err.print(f"[yellow]warning:[/yellow] binding {host} with no --token: anyone who can reach it can use it")
    settings = FarmSettings(host=host, port=port, token=token, allowed_hosts=allow_host or [])
    names = ", ".join(f"{e.id} ({len(e.scenarios)} scenarios)" for e in catalog.values())
    err.print(f"envfarm serving {names} on http://{host}:{port} - open an episode with POST /v1/episodes")
    uvicorn.run(create_app(catalog, settings), host=host, port=port, log_level=log_level)


@app.command()
def stdio(
    env: Annotated[str, typer.Argument(help="Environment id.")],
    scenario: Annotated[str | None, typer.Option(help="Scenario id (default: the first).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the tools' randomness.")] = None,
) -> None:
    """Serve one episode over stdio, for desktop MCP clients; the task is printed on stderr."""
    from envfarm.episodes import Episode
    from envfarm.mcp_server import serve_stdio

    environment = _load([env])[env]
    scenario_id = scenario or sorted(environment.scenarios)[0]
    if scenario_id not in environment.scenarios:
        known = sorted(environment.scenarios)
        err.print(f"[red]error:[/red] no scenario {scenario_id!r} in {env!r}; known: {known}")
        raise typer.Exit(2)
    episode = Episode(environment, environment.scenarios[scenario_id], f"stdio-{env}-{scenario_id}", seed)
    err.print(f"envfarm: {env}/{scenario_id} over stdio. Task: {episode.scenario.task}", highlight=False)
    asyncio.run(serve_stdio(episode))


@app.command()
def manifest(
    envs: EnvIds = None,
    write: Annotated[bool, typer.Option("--write", help="Write manifest.json from the code.")] = False,
) -> None:
    """Check (or with --write, regenerate) each environment's manifest.json against its code."""
    failed = False
    for env_id in envs or discover():
        try:
            if write:
                path = write_manifest(load_environment(env_id, check_manifest=False))
                err.print(f"wrote {path}")
            else:
                load_environment(env_id)
                err.print(f"{env_id}: manifest matches the code")
        except PackageError as e:
            err.print(f"[red]error:[/red] {e}", highlight=False)
            failed = True
    if failed:
        raise typer.Exit(1)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="envfarm")


if __name__ == "__main__":
    main()
