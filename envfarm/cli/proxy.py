"""``envfarm proxy nginx``: the configuration of a standard reverse proxy in front of farm nodes."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envfarm.cli.common import app, err

proxy_app = typer.Typer(
    help="Configuration for a standard reverse proxy in front of `envfarm serve --node` workers.",
    no_args_is_help=True,
)
app.add_typer(proxy_app, name="proxy")


@proxy_app.command("nginx")
def nginx(
    node: Annotated[
        list[str] | None,
        typer.Option(help="A node: NAME=URL, its --node name and base URL, e.g. a=http://127.0.0.1:9001 (repeat)."),
    ] = None,
    statefulset: Annotated[
        str | None,
        typer.Option(help="Kubernetes: the workers' StatefulSet; its pods NAME-0 ... NAME-(N-1) are the nodes."),
    ] = None,
    replicas: Annotated[int | None, typer.Option(help="Kubernetes: the StatefulSet's replicas.")] = None,
    domain: Annotated[
        str | None,
        typer.Option(
            help="Kubernetes: the headless Service's DNS domain, e.g. envfarm-worker.default.svc.cluster.local."
        ),
    ] = None,
    worker_port: Annotated[int, typer.Option(help="Kubernetes: the port the pods serve on.")] = 8000,
    drain: Annotated[
        list[str] | None,
        typer.Option(help="A node that keeps serving its episodes but gets no new ones (repeat)."),
    ] = None,
    host: Annotated[str, typer.Option(help="Address nginx listens on (0.0.0.0: every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port nginx listens on.")] = 8080,
    balance: Annotated[str, typer.Option(help="How new episodes pick a node: least_conn or round_robin.")] = (
        "least_conn"
    ),
    max_body_bytes: Annotated[
        int, typer.Option(help="Largest request body, as the nodes' ENVFARM_MAX_BODY_BYTES.")
    ] = 16 * 2**20,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for a node's answer.")] = 300.0,
    worker_processes: Annotated[str, typer.Option(help="nginx worker processes: a number, or auto.")] = "auto",
    resolver: Annotated[
        list[str] | None,
        typer.Option(
            help="DNS server(s) to resolve node names while nginx runs (Kubernetes; nginx 1.27.3+); "
            "auto: those in /etc/resolv.conf."
        ),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the configuration here (default: print it).")
    ] = None,
) -> None:
    """Print an nginx.conf that routes each episode's requests to the node its id names, and new episodes
    to any node taking them: no envfarm code on the data path (docs/deploy.md)."""
    from envfarm.serve.nginx import ProxyConfig, parse_node, render, statefulset_nodes, system_resolvers

    try:
        if node and statefulset:
            raise ValueError("give the nodes one way: --node NAME=URL ..., or --statefulset NAME --replicas N")
        if statefulset:
            if replicas is None or domain is None:
                raise ValueError("--statefulset needs --replicas N and --domain (the headless Service's DNS domain)")
            nodes = statefulset_nodes(statefulset, replicas, domain, worker_port)
        elif replicas is not None or domain is not None:
            raise ValueError("--replicas and --domain go with --statefulset")
        else:
            nodes = [parse_node(spec) for spec in node or []]
        servers = [s for value in resolver or [] for s in (system_resolvers() if value == "auto" else [value])]
        config = ProxyConfig(
            host=host,
            port=port,
            balance=balance,
            max_body_bytes=max_body_bytes,
            timeout=timeout,
            worker_processes=worker_processes,
            resolver=servers,
            drain=list(drain or []),
        )
        text = render(nodes, config)
    except (ValueError, OSError) as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        raise typer.Exit(2) from None
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    err.print(f"wrote {output}: nginx in front of {len(nodes)} node(s), listening on {host}:{port}", highlight=False)
