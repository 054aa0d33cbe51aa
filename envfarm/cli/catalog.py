"""Commands about the catalog: list, manifest, check (the quality gate), scenarios synth."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from envfarm.cli.common import EnvIds, app, err, load, out
from envfarm.core.environments import PackageError, discover, load_environment, write_manifest


@app.command("list")
def list_envs(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the bundled environments with their tool and scenario counts."""
    envs = load(None)
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
    out.print(table)


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


@app.command()
def check(
    envs: EnvIds = None,
    write: Annotated[
        bool, typer.Option("--write", help="Store each passing scenario's gate numbers in its file.")
    ] = False,
) -> None:
    """Run the scenario quality gate: checks false at the start, true after the oracle, every change
    the oracle makes verified, every mutated oracle caught. Exits 1 when any scenario fails."""
    from envfarm.validators.gate import gate_environment, record_numbers
    from envfarm.validators.sandbox import SandboxPool

    catalog = load(envs)

    async def run() -> dict[str, list[Any]]:
        async with SandboxPool() as pool:
            return {env_id: await gate_environment(env, pool) for env_id, env in catalog.items()}

    results = asyncio.run(run())
    table = Table("env", "scenarios", "passed", "failed", "mutants caught", "changes verified")
    failures: list[Any] = []
    for env_id, reports in results.items():
        passed = [r for r in reports if r.passed]
        failures.extend(r for r in reports if not r.passed)
        caught = sum(r.numbers.get("mutants_caught", 0) for r in reports)
        mutants = sum(r.numbers.get("mutants", 0) for r in reports)
        verified = sum(r.numbers.get("verified_rows", 0) for r in reports)
        changed = sum(r.numbers.get("changed_rows", 0) for r in reports)
        table.add_row(
            env_id,
            str(len(reports)),
            str(len(passed)),
            str(len(reports) - len(passed)),
            f"{caught}/{mutants}",
            f"{verified}/{changed}",
        )
    out.print(table)
    for report in failures:
        err.print(f"[red]{report.env}/{report.scenario}[/red] fails the gate:", highlight=False)
        for reason in report.reasons:
            err.print(f"  - {reason}", highlight=False, markup=False)
    if write:
        for env_id, reports in results.items():
            if record_numbers(catalog[env_id], reports):
                write_manifest(load_environment(env_id, check_manifest=False))
                err.print(f"{env_id}: gate numbers written, manifest.json regenerated")
    if failures:
        raise typer.Exit(1)


scenarios_app = typer.Typer(help="Make scenarios.", no_args_is_help=True)
app.add_typer(scenarios_app, name="scenarios")


def _range(text: str, name: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    try:
        pair = (int(low), int(high or low))
    except ValueError:
        raise typer.BadParameter(f"{name} is a number or a range like 2-3, not {text!r}") from None
    if not 1 <= pair[0] <= pair[1]:
        raise typer.BadParameter(f"{name} needs 1 <= low <= high, got {text!r}")
    return pair


@scenarios_app.command("synth")
def synth(
    env: Annotated[str, typer.Argument(help="Environment id (it needs a synth.py).")],
    count: Annotated[int, typer.Option(help="How many scenarios to make.")] = 40,
    seed: Annotated[int, typer.Option(help="Same seed, same scenarios.")] = 1,
    mutations: Annotated[str, typer.Option(help="Mutations per task: N or LOW-HIGH.")] = "2-3",
    rows: Annotated[str, typer.Option(help="Rows the task may change: N or LOW-HIGH.")] = "1-12",
    template: Annotated[
        str | None, typer.Option("--from", help="Scenario whose state and clock to start from (default: first).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the scenarios instead of writing them.")] = False,
) -> None:
    """Make scenarios without an LLM: random valid tool walks become oracles, their state changes become
    checks, and only scenarios that pass the quality gate are kept (written to the env's scenarios/)."""
    from envfarm.generator.procedural import Knobs, synthesize, write_scenarios
    from envfarm.validators.sandbox import SandboxPool

    environment = load([env])[env]
    start = environment.scenarios.get(template or sorted(environment.scenarios)[0])
    if start is None:
        err.print(f"[red]error:[/red] no scenario {template!r} in {env!r}")
        raise typer.Exit(2)
    knobs = Knobs(mutations=_range(mutations, "--mutations"), changed_rows=_range(rows, "--rows"))

    async def run() -> tuple[list[Any], dict[str, int]]:
        async with SandboxPool() as pool:
            return await synthesize(environment, start, count, seed, knobs, pool)

    try:
        made, stats = asyncio.run(run())
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    if dry_run:
        for scenario in made:
            print(scenario.model_dump_json())
    else:
        write_scenarios(environment, made)
        write_manifest(load_environment(env, check_manifest=False))
    dropped = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in stats.items() if k != "attempts" and v)
    err.print(
        f"{env}: {len(made)} scenarios from {stats['attempts']} walks" + (f" (dropped: {dropped})" if dropped else "")
    )
    if len(made) < count:
        raise typer.Exit(1)
