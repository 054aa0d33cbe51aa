"""Commands that serve: serve, validator, router, stdio, compose."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from envfarm.cli.common import (
    AllowHost,
    EnvIds,
    Host,
    LogFormat,
    LogLevel,
    MaxBatch,
    MaxBody,
    MaxCalls,
    ReplayWorkers,
    Token,
    Workers,
    app,
    checked_node,
    err,
    farm_settings,
    load,
    scoring_service,
)
from envfarm.serve import logs


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
    node: Annotated[
        str | None,
        typer.Option(
            envvar="ENVFARM_NODE",
            help="This worker's name (a DNS label, e.g. its pod's): its episode ids name it, so a proxy routes by id.",
        ),
    ] = None,
) -> None:
    """Serve environments: the control API and scoring at /v1, each episode's MCP endpoint at /episodes/{id}/mcp."""
    import uvicorn

    from envfarm.serve.app import create_app
    from envfarm.validators.service import farm_extension

    if node is not None:
        node = checked_node(node)
    catalog = load(envs)
    settings = farm_settings(host, port, token, allow_host, max_body_bytes)
    settings.max_episodes, settings.idle_timeout, settings.node = max_episodes, idle_timeout, node
    scoring = farm_extension(scoring_service(max_calls, max_batch, sandbox_workers))
    logs.configure(log_level, log_format)
    names = ", ".join(f"{e.id} ({len(e.scenarios)} scenarios)" for e in catalog.values())
    on = f" as node {node}" if node else ""
    err.print(f"envfarm serving {names} on http://{host}:{port}{on} - open an episode with POST /v1/episodes")
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
    replay_workers: ReplayWorkers = None,
) -> None:
    """Serve scoring alone: replay trajectories and run their checks in the sandbox, over HTTP."""
    import uvicorn

    from envfarm.validators.service import create_validator_app

    catalog = load(envs)
    settings = farm_settings(host, port, token, allow_host, max_body_bytes)
    service = scoring_service(max_calls, max_batch, sandbox_workers, replay_workers)
    logs.configure(log_level, "text")
    err.print(f"envfarm validator on http://{host}:{port}" + (f", reading live episodes from {farm}" if farm else ""))
    uvicorn.run(
        create_validator_app(catalog, farm, settings, service),
        host=host,
        port=port,
        log_level=log_level,
        timeout_graceful_shutdown=10,  # finish scores in flight; the rest get 503 + Retry-After
    )


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

    from envfarm.serve.router import create_router_app

    urls = [url for value in worker or [] for url in value.replace(",", " ").split()]
    settings = farm_settings(host, port, token, allow_host, max_body_bytes)
    try:
        api = create_router_app(urls, settings, worker_token, health_interval, timeout)
    except ValueError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    logs.configure(log_level, log_format)
    err.print(f"envfarm router on http://{host}:{port} over {len(set(urls))} worker(s): {', '.join(urls)}")
    uvicorn.run(api, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=10)


@app.command()
def stdio(
    env: Annotated[str, typer.Argument(help="Environment id.")],
    scenario: Annotated[str | None, typer.Option(help="Scenario id (default: the first).")] = None,
    seed: Annotated[int | None, typer.Option(help="Seed for the tools' randomness.")] = None,
) -> None:
    """Serve one episode over stdio, for desktop MCP clients; the task is printed on stderr."""
    from envfarm.core.episodes import Episode
    from envfarm.serve.stdio import serve_stdio

    environment = load([env])[env]
    scenario_id = scenario or sorted(environment.scenarios)[0]
    if scenario_id not in environment.scenarios:
        known = sorted(environment.scenarios)
        err.print(f"[red]error:[/red] no scenario {scenario_id!r} in {env!r}; known: {known}")
        raise typer.Exit(2)
    episode = Episode(environment, environment.scenarios[scenario_id], f"stdio-{env}-{scenario_id}", seed)
    err.print(f"envfarm: {env}/{scenario_id} over stdio. Task: {episode.scenario.task}", highlight=False)
    asyncio.run(serve_stdio(episode))


@app.command("compose")
def compose_file(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write it.")] = Path("docker-compose.yml"),
    check: Annotated[bool, typer.Option("--check", help="Only check that the file is up to date.")] = False,
) -> None:
    """Write docker-compose.yml: the farm, the validator pointed at it, healthchecks, ports on
    127.0.0.1 only, a volume for generated environments."""
    from envfarm.serve.compose import render

    text = render()
    if check:
        if not output.is_file() or output.read_text(encoding="utf-8") != text:
            err.print(f"[red]error:[/red] {output} is not what `envfarm compose` writes; run it to update")
            raise typer.Exit(1)
        err.print(f"{output} is up to date")
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output}")
