"""``envfarm score``: score trajectory files offline, with no server."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from envfarm.cli.common import app, err, out
from envfarm.core.errors import EnvfarmError


@app.command()
def score(
    files: Annotated[list[Path], typer.Argument(help="JSON or JSONL files of {env, scenario, trajectory} records.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the score responses as JSON lines.")] = False,
) -> None:
    """Score trajectories offline, with no server: replay each one and run its checks in the sandbox (a progress
    bar on standard error)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from envfarm.validators.offline import score_files

    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    progress = Progress(*columns, console=err, transient=False)
    task = progress.add_task("scoring", total=None)
    try:
        with progress:  # on standard error: the results on standard output stay clean
            results = score_files(
                files,
                on_start=lambda count: progress.update(task, total=count),
                on_done=lambda: progress.advance(task),
            )
    except EnvfarmError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    if as_json:
        for _, result in results:
            print(result.model_dump_json())
        return
    table = Table("record", "env/scenario", "reward", "success", "failed checks")
    for where, result in results:
        failed = ", ".join(c.id for c in result.checks if not c.passed) or "-"
        table.add_row(where, f"{result.env}/{result.scenario}", f"{result.reward:.3f}", str(result.success), failed)
    out.print(table)
