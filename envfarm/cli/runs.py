"""``envfarm report`` and ``envfarm export``: reading what ``envfarm run`` wrote."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Column
from rich.table import Table as RichTable
from rich.text import Text

from envfarm.cli.common import app, err, out
from envfarm.core.errors import EnvfarmError

if TYPE_CHECKING:
    from envfarm.agents.run_files import Run

RunDirs = Annotated[
    list[Path], typer.Argument(help="Run directories written by `envfarm run` (RUN_DIR/results.jsonl).")
]


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(code)


def _load(run_dirs: list[Path]) -> list[Run]:
    from envfarm.agents.run_files import load_run

    runs = []
    for run_dir in run_dirs:
        try:
            runs.append(load_run(run_dir))
        except EnvfarmError as e:
            raise _fail(str(e)) from None
    for run in runs:
        for warning in run.warnings:
            err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, markup=True)
    return runs


@app.command()
def report(
    run_dirs: RunDirs,
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="Where to write report.md and report.html (default: the first RUN_DIR)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the numbers as JSON instead of tables.")] = False,
) -> None:
    """Report runs side by side: success rate, mean reward, pass^k, turns, tool errors, refusals, tokens, cost.

    Per environment and overall, one column per run: give several RUN_DIRs to compare models.

    Prints the tables, and writes report.md and a self-contained report.html with plots.
    """
    from envfarm.agents import report as reporting

    runs = _load(run_dirs)
    reports = reporting.build(runs)
    for r in reports:
        for warning in r.warnings[len(r.run.warnings) :]:
            err.print(f"[yellow]warning:[/yellow] {escape(warning)}", highlight=False, markup=True)
    target = out_dir if out_dir is not None else runs[0].path
    try:
        md, page = reporting.write(reports, target)
    except OSError as e:
        raise _fail(f"cannot write the report into {target}: {e}") from None
    if as_json:
        print(reporting.dumps(reports))
    else:
        for table in reporting.tables(reports):
            rich = RichTable(*(Column(Text(h)) for h in table.header), title=Text(table.title), title_justify="left")
            for column in rich.columns[1:]:
                column.justify = "right" if table.numeric else "left"
            for row in table.rows:
                rich.add_row(*(Text(c) for c in row))
            out.print(rich)
        out.print(reporting.PASS_HAT_NOTE, highlight=False)
    err.print(f"wrote {md} and {page}", highlight=False)


class Format(StrEnum):
    openai = "openai"
    anthropic = "anthropic"
    sharegpt = "sharegpt"


@app.command()
def export(
    run_dirs: RunDirs,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            help="openai: chat fine-tuning JSONL with tools; anthropic: Messages API shape; "
            "sharegpt: LLaMA-Factory's ShareGPT with tools (EnvScaler's SFT recipe).",
        ),
    ],
    out_file: Annotated[Path, typer.Option("--out", help="The .jsonl file to write (replaced if it exists).")],
    success_only: Annotated[bool, typer.Option("--success-only", help="Keep only successful episodes.")] = False,
    min_reward: Annotated[
        float | None, typer.Option("--min-reward", min=0.0, max=1.0, help="Keep only episodes with reward >= R.")
    ] = None,
    max_tool_errors: Annotated[
        int,
        typer.Option(
            "--max-tool-errors",
            help="Drop episodes with more failed tool calls than this (any kind); negative: no limit.",
        ),
    ] = 3,
) -> None:
    """Export episodes as SFT data with their tool schemas, one JSON line each, every line validated.

    EnvScaler's filter is built in: it drops errored episodes, unparseable calls, too many tool errors, duplicates.

    A summary of what was kept and dropped (by reason) goes to stderr.
    """
    from envfarm.agents.export import ExportError, Filters
    from envfarm.agents.export import export as run_export

    runs = _load(run_dirs)
    filters = Filters(success_only, min_reward, max_tool_errors if max_tool_errors >= 0 else None)
    try:
        summary = run_export(runs, fmt.value, out_file, filters)
    except ExportError as e:
        raise _fail(str(e), code=1) from None
    except (EnvfarmError, OSError) as e:
        raise _fail(str(e)) from None
    for note in summary.notes:
        err.print(f"[yellow]warning:[/yellow] dropped {escape(note)}", highlight=False, markup=True)
    for line in summary.lines():
        err.print(line, highlight=False)
    if summary.kept == 0:
        err.print(
            f"[yellow]warning:[/yellow] no episode kept: {escape(str(out_file))} is empty", highlight=False, markup=True
        )
    else:
        err.print(f"wrote {out_file}", highlight=False)
