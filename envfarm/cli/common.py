"""What every command shares: the Typer app, the consoles, loading the catalog, the serving options.

Every option also reads an ``ENVFARM_*`` environment variable (shown in each
command's ``--help``), so a container sets the farm up without flags.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from envfarm.core.environments import Environment, PackageError, load_catalog
from envfarm.serve.settings import FarmSettings

if TYPE_CHECKING:
    from envfarm.validators.service import ScoringService

app = typer.Typer(
    help="envfarm: synthesized tool-use environments served as MCP servers over SQLite state.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True, soft_wrap=True)
# Tables fit the terminal; piped into a file or another program they are not squeezed to 80 columns.
out = Console(width=None if sys.stdout.isatty() else 250)

EnvIds = Annotated[list[str] | None, typer.Argument(help="Environment ids (default: every bundled one).")]


def load(env_ids: list[str] | None) -> dict[str, Environment]:
    try:
        return load_catalog(env_ids or None)
    except PackageError as e:
        err.print(f"[red]error:[/red] {e}", markup=True, highlight=False)
        raise typer.Exit(2) from None


Host = Annotated[str, typer.Option(envvar="ENVFARM_HOST", help="Address to bind.")]
Token = Annotated[
    str | None, typer.Option(envvar="ENVFARM_TOKEN", help="Require 'Authorization: Bearer TOKEN' on every request.")
]
AllowHost = Annotated[
    list[str] | None, typer.Option(envvar="ENVFARM_ALLOW_HOSTS", help="Extra Host names to accept (beyond loopback).")
]
LogLevel = Annotated[str, typer.Option(envvar="ENVFARM_LOG_LEVEL", help="uvicorn log level.")]
LogFormat = Annotated[
    str, typer.Option(envvar="ENVFARM_LOG_FORMAT", help="envfarm's own log lines: text, or json (one object a line).")
]
MaxBody = Annotated[int, typer.Option(envvar="ENVFARM_MAX_BODY_BYTES", help="Largest request body accepted.")]
MaxCalls = Annotated[int, typer.Option(envvar="ENVFARM_MAX_CALLS", help="Longest trajectory scored, in calls.")]
MaxBatch = Annotated[int, typer.Option(envvar="ENVFARM_MAX_BATCH", help="Most trajectories in one batch request.")]
Workers = Annotated[
    int | None, typer.Option(envvar="ENVFARM_SANDBOX_WORKERS", help="Sandbox worker processes (default: CPUs).")
]


def farm_settings(host: str, port: int, token: str | None, allow_host: list[str] | None, max_body: int) -> FarmSettings:
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        err.print(f"[yellow]warning:[/yellow] binding {host} with no --token: anyone who can reach it can use it")
    return FarmSettings(host=host, port=port, token=token, allowed_hosts=allow_host or [], max_body_bytes=max_body)


ReplayWorkers = Annotated[
    int | None,
    typer.Option(
        min=0,
        envvar="ENVFARM_REPLAY_WORKERS",
        help="Processes that replay trajectories for scoring (0: replay in the service process; default: CPUs).",
    ),
]


def scoring_service(
    max_calls: int, max_batch: int, workers: int | None, replay_workers: int | None = 0
) -> ScoringService:
    from envfarm.validators.service import ScoringLimits, ScoringService

    limits = ScoringLimits(max_calls=max_calls, max_batch=max_batch)
    return ScoringService(limits, workers=workers, replay_workers=replay_workers)


def checked_node(name: str) -> str:
    """A node name (``--node``, ``ENVFARM_NODE``) if valid; else an error saying why, and exit status 2."""
    from envfarm.core.errors import InvalidInput
    from envfarm.core.nodes import check_node_name

    try:
        return check_node_name(name)
    except InvalidInput as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
