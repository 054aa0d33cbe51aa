"""``envfarm proxy nginx``: an nginx.conf that puts a farm of named nodes behind one address.

Every node is an ``envfarm serve --node NAME`` worker, whose episode ids name it
(``ep_<node>_<hex>``, :mod:`envfarm.core.nodes`). So nginx routes every request about an
episode by its URL alone, with a ``map`` from the id to the node's upstream group, and
envfarm's own code is no longer on the data path:

- ``/v1/episodes/{id}...`` and ``/episodes/{id}/mcp`` go to the node the id names, and only
  there: when that node cannot be reached the answer is a ``502`` naming it (a JSON-RPC error
  on an MCP endpoint), never another node's "no such episode";
- ``POST /v1/episodes`` goes to any node taking new episodes (least connections, or round
  robin), skipping one that is full (``503``) or cannot be reached; the node mints the id;
- ``/nodes/{node}/...`` is that node's own ``/...`` (its episode list, its metrics, an episode
  with an id the caller chose);
- everything else (``/healthz``, ``/v1/envs...``, ``/v1/score``, ``/docs``) goes to any node;
- ``GET /v1/episodes`` is refused (``501``): nginx cannot merge the nodes' lists, and one
  node's list would pass for the whole farm's.

The client's ``Host`` is passed on, so the ``mcp_url`` a node returns names the proxy; answers
are not buffered (MCP answers stream through); the proxy's own errors are JSON in the farm's
shapes. The text is the configuration; :func:`render` writes it, the CLI prints it.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from envfarm import __version__
from envfarm.core.errors import InvalidInput
from envfarm.core.nodes import NODE_IN_ID, check_node_name

BALANCES = ("least_conn", "round_robin")
KEEPALIVE_SECONDS = 4
"""Seconds nginx keeps an idle connection to a node: under uvicorn's 5, so it never reuses one the node is closing."""


@dataclass(frozen=True)
class ProxyNode:
    """One node behind the proxy: its name (what its episode ids carry) and the address nginx reaches it at."""

    name: str
    address: str  # host:port, as nginx's ``server`` takes it


@dataclass
class ProxyConfig:
    """What the generated nginx.conf says besides the nodes."""

    host: str = "127.0.0.1"
    port: int = 8080
    balance: str = "least_conn"
    max_body_bytes: int = 16 * 2**20
    timeout: float = 300.0
    worker_processes: str = "auto"
    resolver: list[str] = field(default_factory=list)  # DNS servers for names resolved at run time (Kubernetes)
    drain: list[str] = field(default_factory=list)  # nodes that keep their episodes but get no new ones


def parse_node(spec: str) -> ProxyNode:
    """``NAME=URL`` (``a=http://127.0.0.1:9001``) as a node; ValueError saying what is wrong."""
    name, sep, url = spec.partition("=")
    if not sep:
        raise ValueError(f"--node takes NAME=URL, e.g. a=http://127.0.0.1:9001; got {spec!r}")
    try:
        check_node_name(name.strip())
    except InvalidInput as e:
        raise ValueError(f"--node {spec!r}: {e}") from None
    return ProxyNode(name.strip(), _address(url.strip(), spec))


def _address(url: str, spec: str) -> str:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--node {spec!r}: the URL must be a node's http:// base URL, e.g. http://10.0.0.5:8000")
    if parts.path.strip("/") or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"--node {spec!r}: the URL must be a base URL without a path (http://host:port)")
    try:
        port = parts.port or 80
    except ValueError:
        raise ValueError(f"--node {spec!r}: the port is not a number from 0 to 65535") from None
    host = parts.hostname
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def statefulset_nodes(statefulset: str, replicas: int, domain: str, port: int = 8000) -> list[ProxyNode]:
    """The pods of a StatefulSet as nodes: ``NAME-i`` at ``NAME-i.DOMAIN:PORT`` (DOMAIN: its headless Service's)."""
    if replicas < 1:
        raise ValueError(f"--replicas must be at least 1, not {replicas}")
    if not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", domain):
        raise ValueError(f"--domain {domain!r} is not a DNS name like envfarm-worker.default.svc.cluster.local")
    nodes = []
    for i in range(replicas):
        name = f"{statefulset}-{i}"
        try:
            check_node_name(name)
        except InvalidInput as e:
            raise ValueError(f"--statefulset {statefulset!r}: its pod {e}") from None
        nodes.append(ProxyNode(name, f"{name}.{domain}:{port}"))
    return nodes


def system_resolvers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The name servers in resolv.conf (``--resolver auto``: in a pod, the cluster's DNS service)."""
    found = []
    for line in resolv_conf.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            found.append(words[1])
    if not found:
        raise ValueError(f"--resolver auto: {resolv_conf} names no nameserver; give the DNS server's address")
    return found


def check(nodes: Sequence[ProxyNode], config: ProxyConfig) -> None:
    """ValueError naming the problem when the nodes and settings cannot make a working configuration."""
    if not nodes:
        raise ValueError("give the nodes: --node NAME=URL (repeat it), or --statefulset NAME --replicas N")
    for kind, values in (("name", [n.name for n in nodes]), ("address", [n.address for n in nodes])):
        twice = sorted(v for v, count in Counter(values).items() if count > 1)
        if twice:
            raise ValueError(f"two nodes have the same {kind}: {', '.join(twice)}")
    unknown = sorted(set(config.drain) - {n.name for n in nodes})
    if unknown:
        raise ValueError(f"--drain {', '.join(unknown)}: no such node (nodes: {', '.join(n.name for n in nodes)})")
    if not [n for n in nodes if n.name not in config.drain]:
        raise ValueError("every node is draining: at least one must take new episodes")
    if config.balance not in BALANCES:
        raise ValueError(f"--balance must be one of {', '.join(BALANCES)}, not {config.balance!r}")
    if not 0 < config.port < 65536:
        raise ValueError(f"--port must be from 1 to 65535, not {config.port}")
    if config.max_body_bytes < 1:
        raise ValueError("--max-body-bytes must be at least 1")
    if config.timeout <= 0:
        raise ValueError("--timeout must be positive")
    if config.worker_processes != "auto" and not config.worker_processes.isdigit():
        raise ValueError(f"--worker-processes must be a number or auto, not {config.worker_processes!r}")
    for server in config.resolver:
        try:
            ipaddress.ip_address(server.strip("[]"))
        except ValueError:
            raise ValueError(f"--resolver {server!r} is not an IP address (or give auto)") from None


def _upstream(name: str, nodes: Iterable[ProxyNode], config: ProxyConfig, keepalive: int, balance: bool) -> str:
    lines = [f"    upstream {name} {{"]
    if config.resolver or balance:  # shared by nginx's worker processes: balance, failures, resolved addresses
        lines.append(f"        zone {name} 64k;")
    if balance and config.balance == "least_conn":
        lines.append("        least_conn;")
    for node in nodes:
        options = " resolve" if config.resolver else ""
        if balance:  # a node that fails is left out of new episodes for 5 s (one group per node is never left out)
            options += " max_fails=1 fail_timeout=5s"
        lines.append(f"        server {node.address}{options};  # {node.name}")
    lines += [
        f"        keepalive {keepalive};",
        f"        keepalive_timeout {KEEPALIVE_SECONDS}s;",
        "        keepalive_requests 10000;",
        "    }",
    ]
    return "\n".join(lines)


def upstream_name(node: str) -> str:
    return f"envfarm_node_{node}"


def _json_text(text: str) -> str:
    """Text for a JSON string inside an nginx single-quoted string: envfarm's own words, node names and variables."""
    assert not re.search(r"['\"\\\n]", text), text
    return text


def _answer(status: int, message: str, mcp: bool | None, indent: str) -> str:
    """``return STATUS 'BODY';`` with the message as JSON-RPC (``mcp``), as detail, or chosen by ``$envfarm_mcp``."""
    code = "-32001" if status in (404, 502) else "-32603" if status >= 500 else "-32600"
    message = _json_text(message)
    rpc = f'return {status} \'{{"jsonrpc":"2.0","id":null,"error":{{"code":{code},"message":"{message}"}}}}\';'
    detail = f'return {status} \'{{"detail":"{message}"}}\';'
    if mcp is True:
        return indent + rpc
    if mcp is False:
        return indent + detail
    return f"{indent}if ($envfarm_mcp) {{\n{indent}    {rpc}\n{indent}}}\n{indent}{detail}"


def _named(name: str, status: int, message: str, retry: bool = False) -> str:
    """A named location answering the proxy's own error in the path's shape."""
    retry_line = "            add_header Retry-After 5 always;\n" if retry else ""
    return f"        location @{name} {{\n{retry_line}{_answer(status, message, None, '            ')}\n        }}"


def _episode_location(pattern: str, mcp: bool, no_node: str) -> str:
    return f"""\
        location ~ {pattern} {{
            if ($envfarm_upstream = "") {{
{_answer(404, no_node, mcp, "                ")}
            }}
            proxy_pass http://$envfarm_upstream;
            proxy_next_upstream off;
            error_page 502 504 = @envfarm_node_down;
            error_page 413 = @envfarm_too_large;
        }}"""


def _addressed_location(node: ProxyNode) -> str:
    return f"""\
        location /nodes/{node.name}/ {{
            set $envfarm_addressed {node.name};
            proxy_pass http://{upstream_name(node.name)}/;
            error_page 502 504 = @envfarm_addressed_down;
            error_page 413 = @envfarm_too_large;
        }}"""


EPISODE_ID = "[A-Za-z0-9][A-Za-z0-9_-]*"
NODE_DOWN = (
    "episode $envfarm_episode is held by node $envfarm_node, which cannot be reached or did not answer in time; "
    "episodes never move to another node, so this one is unavailable until node $envfarm_node answers again "
    "(a restarted node has lost its episodes)"
)


def render(nodes: Sequence[ProxyNode], config: ProxyConfig | None = None) -> str:
    """The complete, commented nginx.conf for these nodes (ValueError when they cannot make one)."""
    config = config or ProxyConfig()
    check(nodes, config)
    names = ", ".join(n.name for n in nodes)
    creating = [n for n in nodes if n.name not in config.drain]
    width = max(len("node"), *(len(n.name) for n in nodes))
    table = "\n".join(
        f"#   {n.name:<{width}}  {n.address:<40}  {'no (draining)' if n.name in config.drain else 'yes'}" for n in nodes
    )
    listen = f"{config.port}" if config.host in ("0.0.0.0", "") else f"{_listen_host(config.host)}:{config.port}"
    balance = "least connections" if config.balance == "least_conn" else "round robin"
    resolver = ""
    if config.resolver:
        servers = " ".join(s if ":" not in s or s.startswith("[") else f"[{s}]" for s in config.resolver)
        resolver = (
            "    # Node names are resolved while nginx runs (server ... resolve: nginx 1.27.3 or later), so a\n"
            "    # restarted pod is found under its name at its new address.\n"
            f"    resolver {servers} valid=5s ipv6=off;\n"
            "    resolver_timeout 2s;\n\n"
        )
    node_upstreams = "\n".join(_upstream(upstream_name(n.name), [n], config, 32, balance=False) for n in nodes)
    node_map = "\n".join(f"        {n.name} {upstream_name(n.name)};" for n in nodes)
    addressed = "\n".join(_addressed_location(n) for n in nodes)
    no_node = (
        f"episode $envfarm_episode not found: its id names no node of this proxy (nodes: {names}); "
        "episode ids name their node, ep_NODE_..."
    )
    no_list = (
        "a proxy cannot list every live episode: the nodes hold them and nginx cannot merge their lists; "
        f"list the episodes of each node at /nodes/NODE/v1/episodes (nodes: {names})"
    )
    listed = ",".join(f'"{n.name}"' for n in nodes)
    health = "{" + f'"status":"ok","role":"proxy","nodes":[{listed}]' + "}"
    taking = ", ".join(n.name for n in creating)
    named = "\n".join(
        [
            _named("envfarm_node_down", 502, NODE_DOWN),
            _named(
                "envfarm_addressed_down", 502, "node $envfarm_addressed cannot be reached or did not answer in time"
            ),
            _named("envfarm_no_node", 503, f"no node could be reached (nodes: {taking}); retry later", retry=True),
            _named(
                "envfarm_no_room",
                503,
                f"no node took the new episode: each node taking new ones ({taking}) holds its limit of live "
                "episodes (ENVFARM_MAX_EPISODES) or cannot be reached; retry later",
                retry=True,
            ),
            _named(
                "envfarm_too_large",
                413,
                f"request body is over the limit of {config.max_body_bytes} bytes "
                "(--max-body-bytes of the proxy, as ENVFARM_MAX_BODY_BYTES of the nodes)",
            ),
        ]
    )
    return f"""\
# nginx.conf for an envfarm farm of {len(nodes)} node(s), written by `envfarm proxy nginx` (envfarm {__version__}).
# Change the nodes with that command, not by hand; docs/deploy.md ("Beyond one machine") explains it.
#
#   {"node":<{width}}  {"address":<40}  new episodes
{table}
#
# Routing, with no state and no lookup: a node's episode ids name it (ep_NODE_<hex>, minted by
# `envfarm serve --node NODE`), so the URL of every request about an episode says where it goes.
# - /v1/episodes/ID... and /episodes/ID/mcp: to the node ID names, and never to another one;
#   when that node cannot be reached the answer is 502 naming it.
# - POST /v1/episodes: a new episode, on any node taking new ones ({balance}); a node that
#   is full (503) or cannot be reached is skipped.
# - /nodes/NODE/...: that node's own /... (its episode list, its metrics, or an episode whose id
#   the caller chose: POST /nodes/NODE/v1/episodes with "episode_id": "ep_NODE_...").
# - GET /v1/episodes: refused (501): one node's list would pass for the whole farm's.
# - everything else (/healthz, /v1/envs..., /v1/score, /docs): any node.
# - /proxy/healthz: the proxy's own liveness, answered here.
#
# Run it in the foreground, with a writable directory for the pid and temporary files:
#   nginx -p DIR -c THIS_FILE -e stderr

daemon off;
worker_processes {config.worker_processes};
pid nginx.pid;  # relative paths are under the prefix (nginx -p DIR)
error_log stderr warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;  # a line per tool call costs CPU; to log requests: access_log /dev/stdout;
    server_tokens off;
    default_type application/json;  # the proxy's own answers are JSON, as the farm's are

    client_body_temp_path client_body_temp;
    proxy_temp_path proxy_temp;
    fastcgi_temp_path fastcgi_temp;
    uwsgi_temp_path uwsgi_temp;
    scgi_temp_path scgi_temp;

    # Bodies as large as a node takes (ENVFARM_MAX_BODY_BYTES), in memory up to 1 MB.
    client_max_body_size {config.max_body_bytes};
    client_body_buffer_size 1m;
    keepalive_requests 10000;

{resolver}    # To the nodes: HTTP/1.1 on kept-alive connections; answers passed on as they come, never
    # buffered (MCP answers stream through); the client's Host passed on, so the mcp_url a node
    # returns names this proxy (nodes must accept it: ENVFARM_ALLOW_HOSTS); WebSocket upgrades
    # (OpenEnv sessions) passed on.
    proxy_http_version 1.1;
    proxy_set_header Host $http_host;
    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
    proxy_set_header X-Forwarded-Proto $scheme;
    proxy_set_header Upgrade $http_upgrade;
    proxy_set_header Connection $envfarm_connection;
    proxy_buffering off;
    proxy_connect_timeout 5s;
    proxy_read_timeout {config.timeout:g}s;
    proxy_send_timeout {config.timeout:g}s;

    map $http_upgrade $envfarm_connection {{
        default upgrade;
        "" "";
    }}

    # One group per node: the requests about its episodes.
{node_upstreams}

    # The nodes taking new episodes: POST /v1/episodes and every request about no episode.
{_upstream("envfarm_any", creating, config, 64, balance=True)}

    # The node an episode id names (envfarm.core.nodes.NODE_IN_ID), and its group.
    map $envfarm_episode $envfarm_node {{
        "~{NODE_IN_ID.replace("?P<node>", "?<envfarm_id_node>")}" $envfarm_id_node;
        default "";
    }}
    map $envfarm_node $envfarm_upstream {{
        default "";
{node_map}
    }}

    # MCP endpoints answer errors as JSON-RPC errors; every other path as {{"detail": "..."}}.
    map $uri $envfarm_mcp {{
        "~^/episodes/[^/]+/mcp$" 1;
        default 0;
    }}

    server {{
        listen {listen};

        location = /proxy/healthz {{
            return 200 '{health}';
        }}

        # A new episode: any node taking new ones; one that is full (503) or cannot be reached is
        # skipped (a POST goes to a second node only then: the first one opened nothing).
        location = /v1/episodes {{
            if ($request_method ~ ^(GET|HEAD)$) {{
{_answer(501, no_list, False, "                ")}
            }}
            proxy_pass http://envfarm_any;
            proxy_next_upstream error timeout http_503 non_idempotent;
            error_page 502 504 = @envfarm_no_room;
            error_page 413 = @envfarm_too_large;
        }}

        # A request about one episode: to the node its id names, never to another.
{_episode_location(f"^/v1/episodes/(?<envfarm_episode>{EPISODE_ID})(?:/|$)", False, no_node)}
{_episode_location(f"^/episodes/(?<envfarm_episode>{EPISODE_ID})/mcp$", True, no_node)}

        # One node by name: /nodes/NODE/... is NODE's own /...
{addressed}
        location /nodes/ {{
{_answer(404, f"no such node: /nodes/NODE/ names one of {names}", False, "            ")}
        }}

        # Everything else answers the same on every node.
        location / {{
            proxy_pass http://envfarm_any;
            error_page 502 504 = @envfarm_no_node;
            error_page 413 = @envfarm_too_large;
        }}

        # The proxy's own errors, in the farm's shapes.
{named}
    }}
}}
"""


def _listen_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
