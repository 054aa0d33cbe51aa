"""Nodes and a standard proxy: real `envfarm serve --node` workers behind a real nginx on 127.0.0.1.

A node's episode ids name it, so nginx, configured by `envfarm proxy nginx`, sends every request
about an episode to its node from the URL alone; new episodes go to any node taking them. Checked
here with Debian's nginx (`.ci/run` installs it) as a foreground process in a temporary prefix:
episodes spread over the nodes and stay on theirs; oracles played over MCP through the proxy score
1.0; a stopped node's episodes answer a clear 502 naming it while the others' go on and new episodes
open on the nodes left; a full node is skipped; a wrong node answers 421 naming the right one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from conftest import REPO, FarmProcess, free_port, start_farm, stop_farm
from mcp import Client

from envfarm.client import AsyncFarm
from envfarm.core.environments import load_catalog
from envfarm.core.episodes import EPISODE_ID_PATTERN
from envfarm.core.errors import InvalidInput
from envfarm.core.nodes import (
    MAX_NODE_LENGTH,
    NODE_IN_PATH,
    check_node_name,
    misdirected,
    new_node_episode_id,
    node_of,
)
from envfarm.serve.nginx import ProxyConfig, parse_node, render

ENVS = ("notes", "library")  # the tiny fixture environment, and a bundled one with a longer oracle
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
needs_nginx = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx-light; .ci/run installs it)"
)
CATALOG = load_catalog(list(ENVS))


# -- ids that name their node ---------------------------------------------------------------------


def test_a_nodes_ids_name_it_and_one_regex_finds_it() -> None:
    episode_id = new_node_episode_id("envfarm-worker-12")
    assert re.fullmatch(r"ep_envfarm-worker-12_[0-9a-f]{16}", episode_id)
    assert node_of(episode_id) == "envfarm-worker-12"
    assert re.match(NODE_IN_PATH, f"/episodes/{episode_id}/mcp")["node"] == "envfarm-worker-12"  # type: ignore[index]
    assert re.match(NODE_IN_PATH, f"/v1/episodes/{episode_id}/state")["node"] == "envfarm-worker-12"  # type: ignore[index]
    longest = new_node_episode_id("n" * MAX_NODE_LENGTH)
    assert len(longest) == 64 and re.fullmatch(EPISODE_ID_PATTERN, longest)  # ids stay valid episode ids
    # An id minted without a node (ep_ + 24 hex digits) and ids without the prefix name no node.
    assert [node_of(i) for i in ("ep_0123456789abcdef01234567", "mine", "ep-a_1", "ep__x")] == [None] * 4
    assert node_of("ep_a_b_c") == "a"  # a node name holds no '_': the first one ends it


def test_node_names_are_dns_labels_that_fit_in_an_id() -> None:
    for good in ("a", "envfarm-worker-0", "0", "n" * MAX_NODE_LENGTH):
        assert check_node_name(good) == good
    for bad, says in [
        ("", "empty"),
        ("Worker", "DNS label"),
        ("a_b", "DNS label"),
        ("-a", "DNS label"),
        ("a-", "DNS label"),
        ("a.b", "DNS label"),
        ("n" * (MAX_NODE_LENGTH + 1), f"at most {MAX_NODE_LENGTH}"),
    ]:
        with pytest.raises(InvalidInput, match=says):
            check_node_name(bad)


def test_misdirected_names_the_right_node() -> None:
    assert misdirected("ep_b_1", "a") == (
        "episode 'ep_b_1' belongs to node b; this is node a. Send its requests to node b "
        "(a proxy in front of the nodes routes them there by the id)"
    )
    assert misdirected("ep_a_1", "a") is None and misdirected("mine", "a") is None


# -- a node worker alone ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def node_a() -> Iterator[FarmProcess]:
    running = start_farm("notes", "--node", "a")
    yield running
    stop_farm(running)


def test_a_node_mints_ids_naming_it_and_refuses_another_nodes_episodes(node_a: FarmProcess) -> None:
    with node_a.client() as c:
        assert c.get("/healthz").json()["node"] == "a"
        opened = c.post("/v1/episodes", json={"env": "notes"})
        assert opened.status_code == 201 and node_of(opened.json()["episode_id"]) == "a"
        mine = c.post("/v1/episodes", json={"env": "notes", "episode_id": "ep_a_run7-agent3"})
        assert mine.status_code == 201 and mine.json()["episode_id"] == "ep_a_run7-agent3"

        for method, path in [("GET", "/v1/episodes/ep_b_1"), ("GET", "/v1/episodes/ep_b_1/state"),
                             ("POST", "/v1/episodes/ep_b_1/reset"), ("POST", "/v1/episodes/ep_b_1/score"),
                             ("DELETE", "/v1/episodes/ep_b_1")]:  # fmt: skip
            r = c.request(method, path)
            assert r.status_code == 421, (method, path, r.text)
            assert r.json() == {"detail": misdirected("ep_b_1", "a")}
        rpc = c.post("/episodes/ep_b_1/mcp", json={"jsonrpc": "2.0", "id": 9, "method": "ping"})
        assert rpc.status_code == 421
        assert rpc.json() == {
            "jsonrpc": "2.0",
            "id": 9,
            "error": {"code": -32600, "message": misdirected("ep_b_1", "a")},
        }

        other = c.post("/v1/episodes", json={"env": "notes", "episode_id": "ep_b_1"})
        assert other.status_code == 421 and "belongs to node b; this is node a" in other.json()["detail"]
        nameless = c.post("/v1/episodes", json={"env": "notes", "episode_id": "run7"})
        assert nameless.status_code == 422
        assert nameless.json()["detail"][0]["loc"] == ["body", "episode_id"]
        assert "must name the node: ep_a_" in nameless.json()["detail"][0]["msg"]
        assert c.get("/v1/episodes/ep_a_never/state").status_code == 404  # its own id, not live: 404 as ever


def test_serve_refuses_a_bad_node_name_without_a_traceback() -> None:
    for args, env, says in [
        (["--node", "Node_1"], {}, "is not a DNS label"),
        ([], {"ENVFARM_NODE": "x" * 45}, "at most 44 fit in an episode id"),
    ]:
        run = subprocess.run(
            [sys.executable, "-m", "envfarm.cli", "serve", "notes", *args],
            capture_output=True,
            text=True,
            cwd=REPO,
            env={**os.environ, **env},
            timeout=60,
        )
        assert run.returncode == 2 and says in run.stderr and "Traceback" not in run.stderr, run.stderr


# -- the nginx configuration -----------------------------------------------------------------------


def proxy_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "proxy", "nginx", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--node", "a"], "--node takes NAME=URL"),
        (["--node", "a:http://x:1"], "--node takes NAME=URL"),
        (["--node", "Bad=http://x:1"], "is not a DNS label"),
        (["--node", "a=http://x:1", "--node", "a=http://y:1"], "two nodes have the same name: a"),
        (["--node", "a=http://x:1", "--node", "b=http://x:1"], "two nodes have the same address: x:1"),
        (["--node", "a=https://x:1"], "http:// base URL"),
        (["--node", "a=http://x:1/api"], "without a path"),
        (["--node", "a=http://x:port"], "port is not a number"),
        ([], "give the nodes"),
        (["--node", "a=http://x:1", "--drain", "a"], "every node is draining"),
        (["--node", "a=http://x:1", "--drain", "b"], "--drain b: no such node"),
        (["--node", "a=http://x:1", "--balance", "random"], "--balance must be one of"),
        (["--node", "a=http://x:1", "--statefulset", "w", "--replicas", "2", "--domain", "w"], "one way"),
        (["--statefulset", "w", "--replicas", "2"], "needs --replicas N and --domain"),
        (["--statefulset", "W", "--replicas", "2", "--domain", "w.ns.svc"], "is not a DNS label"),
        (["--node", "a=http://x:1", "--resolver", "kube-dns"], "not an IP address"),
    ],
)
def test_proxy_cli_refuses_bad_input_clearly(args: list[str], says: str) -> None:
    run = proxy_cli(*args)
    assert run.returncode == 2, run.stdout
    assert says in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert run.stdout == ""


def test_the_configuration_routes_by_the_ids_node_and_streams() -> None:
    text = proxy_cli("--node", "a=http://127.0.0.1:9001", "--node", "b=http://[::1]:9002", "--drain", "b").stdout
    assert text == render(
        [parse_node("a=http://127.0.0.1:9001"), parse_node("b=http://[::1]:9002")], ProxyConfig(drain=["b"])
    )
    assert "server [::1]:9002;  # b" in text
    any_group = text[text.index("upstream envfarm_any") :]
    any_group = any_group[: any_group.index("}")]
    assert "127.0.0.1:9001" in any_group and "9002" not in any_group  # b drains: no new episodes
    assert "proxy_buffering off;" in text  # MCP answers stream through
    assert "proxy_set_header Host $http_host;" in text  # so a node's mcp_url names the proxy
    assert '"~^ep_(?<envfarm_id_node>[a-z0-9-]+)_" $envfarm_id_node;' in text
    assert "proxy_next_upstream error timeout http_503 non_idempotent;" in text  # new episodes only
    if NGINX:  # and nginx takes it
        with tempfile.TemporaryDirectory() as prefix:
            conf = Path(prefix) / "nginx.conf"
            conf.write_text(text)
            check = subprocess.run([NGINX, "-t", "-p", prefix, "-c", str(conf), "-e", "stderr"], capture_output=True)
            assert check.returncode == 0, check.stderr.decode()


# -- nodes behind nginx ---------------------------------------------------------------------------------


@dataclass
class Proxy:
    """nginx in the foreground, in its own prefix, with the configuration `envfarm proxy nginx` wrote."""

    url: str
    process: subprocess.Popen[bytes]
    prefix: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.prefix, ignore_errors=True)


def start_proxy(nodes: dict[str, str], *args: str) -> Proxy:
    """`envfarm proxy nginx --node NAME=URL ...` written into a fresh prefix, and nginx run on it on a free port."""
    assert NGINX is not None
    prefix = Path(tempfile.mkdtemp(prefix="envfarm-nginx-"))
    prefix.chmod(0o755)  # run as root (CI), nginx's workers are 'nobody': they must reach the temp folders
    port = free_port()
    flags = [part for name, url in nodes.items() for part in ("--node", f"{name}={url}")]
    conf = prefix / "nginx.conf"
    written = proxy_cli(*flags, "--port", str(port), "--worker-processes", "2", "--output", str(conf), *args)
    assert written.returncode == 0, written.stderr
    log = (prefix / "stderr.log").open("wb")
    process = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(conf), "-e", "stderr"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"nginx exited with {process.returncode}: {(prefix / 'stderr.log').read_text()}")
        try:
            if httpx.get(f"{url}/proxy/healthz", timeout=1).status_code == 200:
                return Proxy(url, process, prefix)
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"nginx did not answer in 20 s: {(prefix / 'stderr.log').read_text()}")
        time.sleep(0.05)


@dataclass
class Fleet:
    """Node workers (`envfarm serve --node NAME`) and nginx in front of them."""

    nodes: dict[str, FarmProcess]
    proxy: Proxy
    extra: list[Proxy] = field(default_factory=list)

    @classmethod
    def start(
        cls, names: list[str], *proxy_args: str, envs: tuple[str, ...] = ENVS, worker_args: tuple[str, ...] = ()
    ) -> Fleet:
        nodes: dict[str, FarmProcess] = {}
        try:
            for name in names:  # one after another: side by side, a busy 2-core machine can take over 30 s each
                nodes[name] = start_farm(*envs, "--node", name, "--sandbox-workers", "1", *worker_args)
            return cls(nodes, start_proxy({n: p.url for n, p in nodes.items()}, *proxy_args))
        except BaseException:
            for process in nodes.values():
                stop_farm(process)
            raise

    def where(self, episode_id: str) -> dict[str, int]:
        """The status each node, asked directly, gives for the episode."""
        return {
            n: httpx.get(f"{p.url}/v1/episodes/{episode_id}", timeout=10).status_code for n, p in self.nodes.items()
        }

    def close(self) -> None:
        for proxy in [self.proxy, *self.extra]:
            proxy.stop()
        for process in self.nodes.values():
            stop_farm(process)


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light; .ci/run installs it)")
    running = Fleet.start(["n0", "n1", "n2"])
    yield running
    running.close()


@pytest.fixture(scope="module")
def opened(fleet: Fleet) -> dict[str, str]:
    """18 episodes opened through the proxy: id -> the node its id names."""
    found = {}
    with fleet.proxy.client() as proxy:
        for i in range(18):
            r = proxy.post("/v1/episodes", json={"env": ENVS[i % 2]})
            assert r.status_code == 201, r.text
            episode = r.json()
            assert episode["mcp_url"] == f"{fleet.proxy.url}/episodes/{episode['episode_id']}/mcp"  # not rewritten
            found[episode["episode_id"]] = node_of(episode["episode_id"])
    return found


@needs_nginx
def test_episodes_spread_over_the_nodes_and_live_on_the_one_their_id_names(
    fleet: Fleet, opened: dict[str, str]
) -> None:
    counts = Counter(opened.values())
    assert set(counts) == set(fleet.nodes), counts  # every node took some
    assert max(counts.values()) - min(counts.values()) <= 2, counts  # least connections, round robin on ties
    for episode_id, node in opened.items():
        assert fleet.where(episode_id) == {n: 200 if n == node else 421 for n in fleet.nodes}
    with fleet.proxy.client() as proxy:
        for episode_id in list(opened)[:6]:
            for method, path in [("GET", ""), ("GET", "/state"), ("POST", "/reset")]:
                r = proxy.request(method, f"/v1/episodes/{episode_id}{path}")
                assert r.status_code == 200 and r.json()["episode_id"] == episode_id, r.text


@needs_nginx
@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_oracles_played_over_mcp_through_the_proxy_score_one(fleet: Fleet, mode: str) -> None:
    async with httpx.AsyncClient(base_url=fleet.proxy.url, timeout=30) as proxy:
        played = Counter()
        for env_id, scenario_id in [("library", "return-and-pay"), ("notes", "file-two")] * 3:
            scenario = CATALOG[env_id].scenarios[scenario_id]
            r = await proxy.post("/v1/episodes", json={"env": env_id, "scenario": scenario_id})
            assert r.status_code == 201, r.text
            episode = r.json()
            async with Client(episode["mcp_url"], mode=mode) as client:
                assert {t.name for t in (await client.list_tools()).tools} == set(CATALOG[env_id].tools)
                for call in scenario.oracle:
                    result = await client.call_tool(call.tool, call.arguments)
                    assert result.is_error == call.refused, (call, result)
            score = (await proxy.post(f"/v1/episodes/{episode['episode_id']}/score")).json()
            assert (score["reward"], score["success"]) == (1.0, True), score
            assert (await proxy.delete(f"/v1/episodes/{episode['episode_id']}")).status_code == 204
            played[node_of(episode["episode_id"])] += 1
        assert len(played) >= 2  # more than one node played


@needs_nginx
async def test_the_python_client_runs_and_scores_an_episode_through_the_proxy(fleet: Fleet) -> None:
    async with AsyncFarm(fleet.proxy.url) as client, client.episode("notes", "file-two") as episode:
        for title in ("standup", "retro"):
            assert not (await episode.call("add_note", {"folder": "work", "title": title})).is_error
        assert (await episode.score())["reward"] == 1.0
        assert fleet.where(episode.id)[node_of(episode.id) or ""] == 200


@needs_nginx
def test_any_node_answers_the_catalog_and_scoring_and_one_node_by_name(fleet: Fleet, opened: dict[str, str]) -> None:
    with fleet.proxy.client() as proxy:
        assert proxy.get("/healthz").json()["status"] == "ok"
        assert proxy.get("/proxy/healthz").json() == {"status": "ok", "role": "proxy", "nodes": ["n0", "n1", "n2"]}
        assert {e["id"] for e in proxy.get("/v1/envs").json()} == set(ENVS)
        assert proxy.get("/v1/envs/library/scenarios").status_code == 200
        scored = proxy.post("/v1/score", json={"env": "notes", "scenario": "file-two", "trajectory": []})
        assert scored.status_code == 200 and scored.json()["reward"] == 0.0
        answered_by = {proxy.get("/healthz").json()["node"] for _ in range(9)}
        assert len(answered_by) >= 2, answered_by  # spread, not one node for everything

        listing = proxy.get("/v1/episodes")
        assert listing.status_code == 501 and "/nodes/NODE/v1/episodes" in listing.json()["detail"]
        for node in fleet.nodes:
            assert proxy.get(f"/nodes/{node}/healthz").json()["node"] == node
            mine = {e["episode_id"] for e in proxy.get(f"/nodes/{node}/v1/episodes").json()}
            assert {i for i, n in opened.items() if n == node} <= mine
            assert all(node_of(i) == node for i in mine)
        assert proxy.get("/nodes/n9/healthz").status_code == 404

        chosen = proxy.post("/nodes/n1/v1/episodes", json={"env": "notes", "episode_id": "ep_n1_trainer-run-3"})
        assert chosen.status_code == 201, chosen.text
        assert chosen.json()["mcp_url"] == f"{fleet.proxy.url}/episodes/ep_n1_trainer-run-3/mcp"
        assert proxy.get("/v1/episodes/ep_n1_trainer-run-3/state").status_code == 200
        wrong = proxy.post("/nodes/n0/v1/episodes", json={"env": "notes", "episode_id": "ep_n1_other"})
        assert wrong.status_code == 421 and "belongs to node n1; this is node n0" in wrong.json()["detail"]


@needs_nginx
def test_ids_naming_no_node_of_the_proxy_are_404_in_each_paths_shape(fleet: Fleet) -> None:
    with fleet.proxy.client() as proxy:
        for episode_id in ("ep_n9_1", "ep_0123456789abcdef01234567"):
            control = proxy.get(f"/v1/episodes/{episode_id}/state")
            assert control.status_code == 404
            assert f"episode {episode_id} not found: its id names no node of this proxy" in control.json()["detail"]
            rpc = proxy.post(f"/episodes/{episode_id}/mcp", json={"jsonrpc": "2.0", "id": 3, "method": "ping"})
            assert rpc.status_code == 404 and rpc.json()["error"]["code"] == -32001
            assert "names no node of this proxy (nodes: n0, n1, n2)" in rpc.json()["error"]["message"]
        gone = proxy.get("/v1/episodes/ep_n2_neveropened")
        assert gone.status_code == 404 and "no such episode in this farm process" in gone.json()["detail"]


def messages(error: BaseException) -> list[str]:
    """The messages of an exception, of the groups it belongs to, and of what caused it."""
    found = [str(error)]
    for inner in [*getattr(error, "exceptions", ()), error.__cause__, error.__context__]:
        if inner is not None:
            found += messages(inner)
    return found


# -- a node lost, full, draining -----------------------------------------------------------------------


@needs_nginx
async def test_a_stopped_nodes_episodes_answer_502_naming_it_and_the_others_go_on() -> None:
    fleet = Fleet.start(["a", "b", "c"], "--max-body-bytes", "4000", envs=("notes",))
    try:
        with fleet.proxy.client() as proxy:
            ids: dict[str, list[str]] = {n: [] for n in fleet.nodes}
            for _ in range(60):
                if all(len(v) >= 2 for v in ids.values()):
                    break
                episode_id = proxy.post("/v1/episodes", json={"env": "notes"}).json()["episode_id"]
                ids[node_of(episode_id) or ""].append(episode_id)
            assert all(len(v) >= 2 for v in ids.values()), ids

            big = proxy.post(f"/episodes/{ids['a'][0]}/mcp", json={"jsonrpc": "2.0", "id": 1, "params": "x" * 5000})
            assert big.status_code == 413 and "over the limit of 4000 bytes" in big.json()["error"]["message"]

            fleet.nodes["b"].process.kill()  # a crash: no goodbye
            fleet.nodes["b"].process.wait(timeout=10)

            for episode_id in ids["b"]:
                r = proxy.get(f"/v1/episodes/{episode_id}/state")
                assert r.status_code == 502
                assert r.json()["detail"].startswith(
                    f"episode {episode_id} is held by node b, which cannot be reached or did not answer in time; "
                    "episodes never move to another node"
                )
                rpc = proxy.post(f"/episodes/{episode_id}/mcp", json={"jsonrpc": "2.0", "id": 41, "method": "ping"})
                assert rpc.status_code == 502 and rpc.json()["error"]["code"] == -32001
                assert "is held by node b, which cannot be reached" in rpc.json()["error"]["message"]
            with pytest.raises(Exception) as caught:  # the MCP SDK raises the proxy's message
                async with Client(f"{fleet.proxy.url}/episodes/{ids['b'][0]}/mcp") as client:
                    await client.call_tool("list_notes", {})
            assert any("is held by node b, which cannot be reached" in m for m in messages(caught.value))
            assert proxy.get("/nodes/b/healthz").status_code == 502

            for node in ("a", "c"):
                for episode_id in ids[node]:
                    assert proxy.get(f"/v1/episodes/{episode_id}/state").status_code == 200
                async with Client(f"{fleet.proxy.url}/episodes/{ids[node][0]}/mcp") as client:
                    assert not (await client.call_tool("add_note", {"folder": "work", "title": "still"})).is_error
            new = [proxy.post("/v1/episodes", json={"env": "notes"}) for _ in range(8)]
            assert all(r.status_code == 201 for r in new), [r.text for r in new]
            assert {node_of(r.json()["episode_id"]) for r in new} == {"a", "c"}
            assert proxy.get("/healthz").status_code == 200 and proxy.get("/v1/envs").status_code == 200

            for node in ("a", "c"):
                fleet.nodes[node].process.kill()
                fleet.nodes[node].process.wait(timeout=10)
            none = proxy.post("/v1/episodes", json={"env": "notes"})
            assert none.status_code == 503 and none.headers["retry-after"] == "5"
            assert none.json()["detail"].startswith("no node took the new episode")
            assert proxy.get("/v1/envs").json()["detail"] == "no node could be reached (nodes: a, b, c); retry later"
    finally:
        fleet.close()


@needs_nginx
def test_a_full_node_is_skipped_and_all_full_is_the_nodes_503() -> None:
    fleet = Fleet.start(["a", "b"], envs=("notes",), worker_args=("--max-episodes", "3"))
    try:
        with fleet.proxy.client() as proxy:
            assert proxy.post("/nodes/a/v1/episodes", json={"env": "notes"}).status_code == 201
            assert proxy.post("/nodes/a/v1/episodes", json={"env": "notes"}).status_code == 201
            opened = [proxy.post("/v1/episodes", json={"env": "notes"}) for _ in range(4)]
            assert [r.status_code for r in opened] == [201] * 4, [r.text for r in opened]
            assert Counter(node_of(r.json()["episode_id"]) for r in opened) == {"a": 1, "b": 3}
            refused = proxy.post("/v1/episodes", json={"env": "notes"})
            assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
            # The last node's own 503, or the proxy's when nginx has set both aside for 5 s after a 503.
            assert "limit of 3 live episodes" in refused.json()["detail"] or refused.json()["detail"].startswith(
                "no node took the new episode: each node taking new ones (a, b) holds its limit of live episodes"
            )
    finally:
        fleet.close()


@needs_nginx
def test_a_draining_node_keeps_its_episodes_and_gets_no_new_ones(fleet: Fleet, opened: dict[str, str]) -> None:
    draining = start_proxy({n: p.url for n, p in fleet.nodes.items()}, "--drain", "n2")
    fleet.extra.append(draining)
    with draining.client() as proxy:
        new = [proxy.post("/v1/episodes", json={"env": "notes"}).json()["episode_id"] for _ in range(8)]
        assert {node_of(i) for i in new} == {"n0", "n1"}
        on_n2 = [i for i, n in opened.items() if n == "n2"]
        assert on_n2 and all(proxy.get(f"/v1/episodes/{i}/state").status_code == 200 for i in on_n2)
