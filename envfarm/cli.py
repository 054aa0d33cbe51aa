"""The ``envfarm`` command line: list, serve, stdio, manifest.

Every option also reads an ``ENVFARM_*`` environment variable (shown in each
command's ``--help``), so a container sets the farm up without flags.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from envfarm import logs
from envfarm.cli_generate import generate_app
from envfarm.environments import (
    Environment,
    PackageError,
    discover,
    load_catalog,
    load_environment,
    write_manifest,
)
from envfarm.settings import FarmSettings

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
    out.print(table)


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


def _settings(host: str, port: int, token: str | None, allow_host: list[str] | None, max_body: int) -> FarmSettings:
    if host not in ("127.0.0.1", "localhost", "::1") and not token:
        err.print(f"[yellow]warning:[/yellow] binding {host} with no --token: anyone who can reach it can use it")
    return FarmSettings(host=host, port=port, token=token, allowed_hosts=allow_host or [], max_body_bytes=max_body)


def _scoring(max_calls: int, max_batch: int, workers: int | None) -> ScoringService:
    from envfarm.validators.service import ScoringLimits, ScoringService

    return ScoringService(ScoringLimits(max_calls=max_calls, max_batch=max_batch), workers=workers)


@app.command()
def serve(
    envs: EnvIds = None,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ENVFARM_PORT", help="Port to bind.")] = 8000,
    token: Token = None,
    allow_host: AllowHost = None,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
    max_body_bytes: MaxBody = 16 * 2**20,
    max_calls: MaxCalls = 1000,
    max_batch: MaxBatch = 256,
    sandbox_workers: Workers = None,
    max_episodes: Annotated[
        int, typer.Option(envvar="ENVFARM_MAX_EPISODES", help="Live episodes at most; past it, 503 + Retry-After.")
    ] = 10_000,
    idle_timeout: Annotated[
        float, typer.Option(envvar="ENVFARM_IDLE_TIMEOUT", help="Seconds unused before an episode is reaped.")
    ] = 3600.0,
) -> None:
    """Serve environments: the control API and scoring at /v1, each episode's MCP endpoint at /episodes/{id}/mcp."""
    import uvicorn

    from envfarm.app import create_app
    from envfarm.validators.service import farm_extension

    catalog = _load(envs)
    settings = _settings(host, port, token, allow_host, max_body_bytes)
    settings.max_episodes, settings.idle_timeout = max_episodes, idle_timeout
    scoring = farm_extension(_scoring(max_calls, max_batch, sandbox_workers))
    logs.configure(log_level, log_format)
    names = ", ".join(f"{e.id} ({len(e.scenarios)} scenarios)" for e in catalog.values())
    err.print(f"envfarm serving {names} on http://{host}:{port} - open an episode with POST /v1/episodes")
    uvicorn.run(
        create_app(catalog, settings, [scoring]),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=10,  # finish requests in flight, then end every episode with a reason
    )


@app.command()
def validator(
    envs: EnvIds = None,
    farm: Annotated[
        str | None, typer.Option(envvar="ENVFARM_FARM_URL", help="The farm whose live episodes can be scored.")
    ] = None,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ENVFARM_PORT", help="Port to bind.")] = 8001,
    token: Token = None,
    allow_host: AllowHost = None,
    log_level: LogLevel = "info",
    max_body_bytes: MaxBody = 16 * 2**20,
    max_calls: MaxCalls = 1000,
    max_batch: MaxBatch = 256,
    sandbox_workers: Workers = None,
) -> None:
    """Serve scoring alone: replay trajectories and run their checks in the sandbox, over HTTP."""
    import uvicorn

    from envfarm.validators.service import create_validator_app

    catalog = _load(envs)
    settings = _settings(host, port, token, allow_host, max_body_bytes)
    service = _scoring(max_calls, max_batch, sandbox_workers)
    logs.configure(log_level, "text")
    err.print(f"envfarm validator on http://{host}:{port}" + (f", reading live episodes from {farm}" if farm else ""))
    uvicorn.run(create_validator_app(catalog, farm, settings, service), host=host, port=port, log_level=log_level)


@app.command()
def router(
    worker: Annotated[
        list[str] | None,
        typer.Option(
            "--worker",
            envvar="ENVFARM_WORKERS",
            help="A worker's base URL, e.g. http://10.0.0.5:8000 (repeat the flag; comma-separated in the variable).",
        ),
    ] = None,
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="ENVFARM_PORT", help="Port to bind.")] = 8080,
    token: Token = None,
    allow_host: AllowHost = None,
    worker_token: Annotated[
        str | None,
        typer.Option(
            envvar="ENVFARM_WORKER_TOKEN",
            help="Bearer token to send to the workers (default: pass on the client's Authorization header).",
        ),
    ] = None,
    health_interval: Annotated[
        float, typer.Option(envvar="ENVFARM_HEALTH_INTERVAL", help="Seconds between probes of each worker's /healthz.")
    ] = 2.0,
    timeout: Annotated[
        float, typer.Option(envvar="ENVFARM_UPSTREAM_TIMEOUT", help="Seconds to wait for a worker's answer.")
    ] = 300.0,
    log_level: LogLevel = "info",
    log_format: LogFormat = "text",
    max_body_bytes: MaxBody = 16 * 2**20,
) -> None:
    """Route to many `envfarm serve` workers: each episode's requests go to the worker that holds it
    (consistent hashing of the episode id), everything else to any worker that answers."""
    import uvicorn

    from envfarm.router import create_router_app

    urls = [url for value in worker or [] for url in value.replace(",", " ").split()]
    settings = _settings(host, port, token, allow_host, max_body_bytes)
    try:
        api = create_router_app(urls, settings, worker_token, health_interval, timeout)
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    logs.configure(log_level, log_format)
    err.print(f"envfarm router on http://{host}:{port} over {len(set(urls))} worker(s): {', '.join(urls)}")
    uvicorn.run(api, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)


@app.command()
def score(
    files: Annotated[list[Path], typer.Argument(help="JSON or JSONL files of {env, scenario, trajectory} records.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the score responses as JSON lines.")] = False,
) -> None:
    """Score trajectories offline, with no server: replay each one and run its checks in the sandbox."""
    from envfarm.validators.offline import score_files

    try:
        results = score_files(files)
    except ValueError as e:
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

    catalog = _load(envs)

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


@app.command("compose")
def compose_file(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path("docker-compose.yml"),
    check: Annotated[bool, typer.Option("--check", help="Only check that the file is up to date.")] = False,
) -> None:
    """Write docker-compose.yml for the bundled catalog: the farm, the validator pointed at it,
    healthchecks, ports on 127.0.0.1 only, a volume for generated environments."""
    from envfarm.compose import render
    from envfarm.environments import bundled

    text = render(bundled())
    if check:
        if not output.is_file() or output.read_text(encoding="utf-8") != text:
            err.print(f"[red]error:[/red] {output} is not what `envfarm compose` writes; run it to update")
            raise typer.Exit(1)
        err.print(f"{output} is up to date")
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output}")


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

    environment = _load([env])[env]
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


app.add_typer(generate_app, name="generate")


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    app(args=argv if argv is not None else sys.argv[1:], prog_name="envfarm")


if __name__ == "__main__":
    main()
