"""The router: two real `envfarm serve` workers and real `envfarm router` processes on 127.0.0.1.

Episodes opened through a router land on, and stay on, the worker the ring names; MCP
calls through it change only that worker's state; a second router with the same workers
agrees; a killed worker's episodes answer 502 naming it while the other worker's go on.
The ring itself: stable, balanced, and adding a worker moves only about 1/n of the ids.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest
from conftest import REPO, FarmProcess, free_port, start_farm, stop_farm, wait_until_healthy
from mcp import Client

from envfarm.client import AsyncFarm
from envfarm.serve.router import VNODES, HashRing, normalize_worker

ENV = "notes"  # the tiny fixture environment: workers start fast

# -- the ring -------------------------------------------------------------------------------

WORKERS = [f"http://envfarm-worker-{i}.envfarm-worker:8000" for i in range(8)]
KEYS = [f"ep_{i:024x}" for i in range(20_000)]


def test_ring_mapping_is_stable_and_independent_of_the_order_of_workers() -> None:
    ring = HashRing(WORKERS[:4])
    # Pinned: a change of hash or of point naming would send live episodes' requests astray
    # in a fleet of routers of mixed versions.
    picked = [ring.node_for(k) for k in ("ep_000000000000000000000000", "a", "episode-42", "b", "c")]
    assert picked == [WORKERS[0], WORKERS[1], WORKERS[0], WORKERS[2], WORKERS[3]]
    again = HashRing(reversed(WORKERS[:4]))
    assert all(ring.node_for(k) == again.node_for(k) for k in KEYS)
    assert ring.vnodes == VNODES == 160


@pytest.mark.parametrize("n", range(2, 9))
def test_ring_is_balanced_within_20_percent(n: int) -> None:
    ring = HashRing(WORKERS[:n])
    counts = Counter(ring.node_for(k) for k in KEYS)
    assert set(counts) == set(WORKERS[:n])
    for node, count in counts.items():
        assert abs(count / len(KEYS) * n - 1) < 0.2, (node, count)
    shares = ring.shares()
    assert sum(shares.values()) == pytest.approx(1.0)
    assert all(abs(share * n - 1) < 0.2 for share in shares.values())


@pytest.mark.parametrize("n", [2, 4, 7])
def test_adding_a_worker_moves_about_one_nth_of_the_ids_and_only_to_it(n: int) -> None:
    before, after = HashRing(WORKERS[:n]), HashRing(WORKERS[: n + 1])
    moved = [k for k in KEYS if before.node_for(k) != after.node_for(k)]
    assert {after.node_for(k) for k in moved} == {WORKERS[n]}  # nothing moves between old workers
    assert 0.7 < len(moved) / len(KEYS) * (n + 1) < 1.3  # ~1/(n+1) of the ids, within 30 %


def test_removing_a_worker_moves_only_its_own_ids() -> None:
    before, after = HashRing(WORKERS[:5]), HashRing(WORKERS[:2] + WORKERS[3:5])
    moved = [k for k in KEYS if before.node_for(k) != after.node_for(k)]
    assert moved and all(before.node_for(k) == WORKERS[2] for k in moved)


@pytest.mark.parametrize(
    ("url", "problem"),
    [("ftp://x:1", "not a base URL"), ("127.0.0.1:8000", "not a base URL"), ("http://x:1/api", "without a path")],
)
def test_worker_urls_must_be_base_urls(url: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        normalize_worker(url)
    assert normalize_worker("http://10.0.0.5:8000/") == "http://10.0.0.5:8000"


def test_a_ring_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one"):
        HashRing([])


# -- two workers and routers, as processes ------------------------------------------------------


class Fleet:
    """Two workers and a router over them."""

    def __init__(self, *router_args: str, worker_args: tuple[tuple[str, ...], ...] = ((), ())) -> None:
        self.workers = [start_farm(ENV, *args) for args in worker_args]
        try:
            self.router = start_router(self.worker_urls, *router_args)
        except BaseException:  # a router that failed to start: stop the workers already started
            self.close()
            raise
        self.ring = HashRing(self.worker_urls)
        self.extra: list[FarmProcess] = []

    @property
    def worker_urls(self) -> list[str]:
        return [w.url for w in self.workers]

    def ids_on(self, worker: str, count: int, prefix: str) -> list[str]:
        """Episode ids that the ring gives to ``worker`` (so a test is not at the mercy of random ids)."""
        ids = (f"{prefix}-{i}" for i in range(10_000))
        return [i for i in ids if self.ring.node_for(i) == worker][:count]

    def close(self) -> None:
        for process in [getattr(self, "router", None), *self.workers, *getattr(self, "extra", [])]:
            if process is not None:
                stop_farm(process)


def start_router(workers: list[str], *args: str) -> FarmProcess:
    flags = [part for url in workers for part in ("--worker", url)]
    return start_farm(*flags, "--health-interval", "0.2", *args, command="router")


def on_workers(fleet: Fleet, episode_id: str) -> dict[str, int]:
    """The status each worker, asked directly, gives for the episode."""
    return {w: httpx.get(f"{w}/v1/episodes/{episode_id}", timeout=10).status_code for w in fleet.worker_urls}


@pytest.fixture(scope="module")
def fleet() -> Iterator[Fleet]:
    running = Fleet()
    yield running
    running.close()


@pytest.fixture(scope="module")
def opened(fleet: Fleet) -> dict[str, str]:
    """20 episodes opened through the router (16 with ids it mints, 4 with ids the client chose): id -> worker."""
    a, b = fleet.worker_urls
    chosen = fleet.ids_on(a, 2, "mine") + fleet.ids_on(b, 2, "mine")
    where: dict[str, str] = {}
    with fleet.router.client() as router:
        for body in [{"env": ENV}] * 16 + [{"env": ENV, "episode_id": i} for i in chosen]:
            r = router.post("/v1/episodes", json=body)
            assert r.status_code == 201, r.text
            episode = r.json()
            assert episode["mcp_url"] == f"{fleet.router.url}/episodes/{episode['episode_id']}/mcp"
            where[episode["episode_id"]] = r.headers["x-envfarm-worker"]
    assert set(chosen) <= set(where)
    return where


def test_each_episode_lives_on_exactly_the_worker_the_ring_names(fleet: Fleet, opened: dict[str, str]) -> None:
    assert len(opened) == 20
    for episode_id, worker in opened.items():
        assert worker == fleet.ring.node_for(episode_id)
        assert on_workers(fleet, episode_id) == {w: 200 if w == worker else 404 for w in fleet.worker_urls}
    assert set(opened.values()) == set(fleet.worker_urls)  # both workers hold some


def test_every_request_about_an_episode_stays_on_its_worker(fleet: Fleet, opened: dict[str, str]) -> None:
    with fleet.router.client() as router:
        for episode_id, worker in list(opened.items())[:6]:
            for method, path in [("GET", ""), ("GET", "/state"), ("POST", "/reset")]:
                r = router.request(method, f"/v1/episodes/{episode_id}{path}")
                assert r.status_code == 200, r.text
                assert r.headers["x-envfarm-worker"] == worker


async def test_mcp_through_the_router_changes_state_only_on_the_owning_worker(
    fleet: Fleet, opened: dict[str, str]
) -> None:
    episode_id, owner = next(iter(opened.items()))
    other = next(w for w in fleet.worker_urls if w != owner)
    # The same id opened directly on the other worker: it must not see the call made through the router.
    twin = httpx.post(f"{other}/v1/episodes", json={"env": ENV, "episode_id": episode_id})
    assert twin.status_code == 201
    before = httpx.get(f"{other}/v1/episodes/{episode_id}/state").json()["state_hash"]
    try:
        for mode in ("auto", "legacy"):
            async with Client(f"{fleet.router.url}/episodes/{episode_id}/mcp", mode=mode) as client:
                assert [t.name for t in (await client.list_tools()).tools] == ["list_notes", "add_note"]
                result = await client.call_tool("add_note", {"folder": "work", "title": f"via router {mode}"})
                assert not result.is_error, result
        notes = httpx.get(f"{owner}/v1/episodes/{episode_id}/state").json()["state"]["notes"]
        assert {"via router auto", "via router legacy"} <= {n["title"] for n in notes}
        assert httpx.get(f"{other}/v1/episodes/{episode_id}/state").json()["state_hash"] == before
    finally:
        httpx.delete(f"{other}/v1/episodes/{episode_id}")


def test_mcp_headers_and_status_pass_through(fleet: Fleet, opened: dict[str, str]) -> None:
    episode_id, owner = next(iter(opened.items()))
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    with fleet.router.client() as router:
        r = router.post(f"/episodes/{episode_id}/mcp", json=init, headers=headers)
        assert r.status_code == 200 and r.headers["x-envfarm-worker"] == owner
        assert r.json()["result"]["protocolVersion"] == "2025-06-18"
        missing = router.post("/episodes/ep_nowhere/mcp", json=init, headers=headers)
        assert missing.status_code == 404  # the owning worker's answer, passed on
        assert "no such episode in this farm process" in missing.json()["error"]["message"]


async def test_the_python_client_runs_and_scores_an_episode_through_the_router(fleet: Fleet) -> None:
    async with AsyncFarm(fleet.router.url) as farm, farm.episode(ENV, "file-two") as episode:
        for title in ("standup", "retro"):
            result = await episode.call("add_note", {"folder": "work", "title": title})
            assert not result.is_error
        score = await episode.score()
        assert score["reward"] == 1.0
        assert on_workers(fleet, episode.id)[fleet.ring.node_for(episode.id)] == 200


def test_a_second_router_with_the_same_workers_routes_the_same_ids_the_same_way(
    fleet: Fleet, opened: dict[str, str]
) -> None:
    second = start_router(list(reversed(fleet.worker_urls)))  # order does not matter, only the set
    try:
        with second.client() as router:
            for episode_id, worker in opened.items():
                r = router.get(f"/v1/episodes/{episode_id}")
                assert r.status_code == 200, r.text
                assert r.headers["x-envfarm-worker"] == worker
    finally:
        stop_farm(second)


def test_list_merges_every_worker_and_names_where_each_episode_is(fleet: Fleet, opened: dict[str, str]) -> None:
    with fleet.router.client() as router:
        listed = {e["episode_id"]: e["worker"] for e in router.get("/v1/episodes").json()}
    assert opened.items() <= listed.items()


def test_stateless_requests_take_turns_over_the_workers(fleet: Fleet) -> None:
    with fleet.router.client() as router:
        answers = [router.get("/v1/envs") for _ in range(4)]
        assert all(r.status_code == 200 and r.json()[0]["id"] == ENV for r in answers)
        assert {r.headers["x-envfarm-worker"] for r in answers} == set(fleet.worker_urls)
        score = router.post("/v1/score", json={"env": ENV, "scenario": "file-two", "trajectory": []})
        assert score.status_code == 200 and score.json()["reward"] == 0.0


def test_router_describes_its_ring(fleet: Fleet) -> None:
    with fleet.router.client() as router:
        health = router.get("/healthz").json()
        ring = router.get("/v1/router").json()
        metrics = router.get("/metrics").text
    assert health["status"] == "ok" and health["role"] == "router" and health["workers"] == 2
    assert [w["url"] for w in ring["workers"]] == sorted(fleet.worker_urls)
    assert all(w["healthy"] is True for w in ring["workers"])
    assert sum(w["share"] for w in ring["workers"]) == pytest.approx(1.0, abs=1e-3)
    assert "envfarm_router_requests_total" in metrics


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"env": ENV, "episode_id": "a/b"}, 422, "episode_id"),
        ({"env": ENV, "episode_id": ""}, 422, "episode_id"),
        ({"env": ENV, "episode_id": 7}, 422, "episode_id"),
        ({"env": "zoo"}, 404, "no environment 'zoo'"),
        ({}, 422, "env"),
        ([1, 2], 422, "body"),
    ],
)
def test_bad_requests_through_the_router_are_the_workers_4xx(
    fleet: Fleet, body: object, status: int, says: str
) -> None:
    with fleet.router.client() as router:
        r = router.post("/v1/episodes", json=body)
    assert r.status_code == status
    assert says in r.text


def test_an_id_in_use_is_409_and_not_json_is_422(fleet: Fleet) -> None:
    with fleet.router.client() as router:
        first = router.post("/v1/episodes", json={"env": ENV, "episode_id": "taken"})
        again = router.post("/v1/episodes", json={"env": ENV, "episode_id": "taken"})
        garbage = router.post("/v1/episodes", content=b"{not json", headers={"content-type": "application/json"})
    assert first.status_code == 201
    assert again.status_code == 409 and "'taken' is already live" in again.json()["detail"]
    assert again.headers["x-envfarm-worker"] == first.headers["x-envfarm-worker"]
    assert garbage.status_code == 422


def test_host_and_origin_are_checked_by_the_router(fleet: Fleet) -> None:
    with fleet.router.client() as router:
        assert router.get("/v1/envs", headers={"host": "evil.example"}).status_code == 421
        assert router.get("/v1/envs", headers={"origin": "http://evil.example"}).status_code == 403
        assert router.get("/v1/envs", headers={"origin": "http://localhost:3000"}).status_code == 200


def test_bodies_over_the_limit_are_413_at_the_router(fleet: Fleet, opened: dict[str, str]) -> None:
    router = start_router(fleet.worker_urls, "--max-body-bytes", "2000")
    try:
        episode_id = next(iter(opened))
        big = {"jsonrpc": "2.0", "id": 1, "method": "ping", "params": {"pad": "x" * 5000}}
        with router.client() as c:
            for path in (f"/episodes/{episode_id}/mcp", "/v1/score", f"/v1/episodes/{episode_id}/score"):
                r = c.post(path, json=big)
                assert r.status_code == 413, (path, r.text)
                # the control API's shape, or a JSON-RPC error on an MCP endpoint (its id is past the limit)
                said = r.json()["error"]["message"] if path.endswith("/mcp") else r.json()["detail"]
                assert "over the limit of 2000 bytes (ENVFARM_MAX_BODY_BYTES)" in said
    finally:
        stop_farm(router)


def test_tokens_router_and_workers_each_their_own() -> None:
    worker = start_farm(ENV, "--token", "worker-secret")
    try:
        router = start_router([worker.url], "--token", "router-secret", "--worker-token", "worker-secret")
        try:
            with router.client() as c:
                assert c.get("/healthz").status_code == 200  # open, for probes
                assert c.post("/v1/episodes", json={"env": ENV}).status_code == 401
                wrong = c.post("/v1/episodes", json={"env": ENV}, headers={"authorization": "Bearer worker-secret"})
                assert wrong.status_code == 401
                ok = c.post("/v1/episodes", json={"env": ENV}, headers={"authorization": "Bearer router-secret"})
                assert ok.status_code == 201, ok.text
        finally:
            stop_farm(router)
    finally:
        stop_farm(worker)


# -- a worker lost ---------------------------------------------------------------------------------


async def test_a_lost_workers_episodes_answer_502_naming_it_and_the_others_go_on() -> None:
    fleet = Fleet()
    try:
        lost, alive = fleet.worker_urls
        ids = {w: fleet.ids_on(w, 3, "ep") for w in fleet.worker_urls}
        with fleet.router.client() as router:
            for worker, episode_ids in ids.items():
                for episode_id in episode_ids:
                    r = router.post("/v1/episodes", json={"env": ENV, "episode_id": episode_id})
                    assert r.status_code == 201 and r.headers["x-envfarm-worker"] == worker
            fleet.workers[0].process.kill()  # a crash: no goodbye
            fleet.workers[0].process.wait(timeout=10)

            for episode_id in ids[lost]:
                r = router.get(f"/v1/episodes/{episode_id}/state")
                assert r.status_code == 502 and r.headers["x-envfarm-worker"] == lost
                detail = r.json()["detail"]
                assert f"episode {episode_id!r} is held by worker {lost}, which is unreachable" in detail
                assert "never move to another worker" in detail
                mcp = router.post(f"/episodes/{episode_id}/mcp", json={"jsonrpc": "2.0", "id": 41, "method": "ping"})
                assert mcp.status_code == 502 and mcp.json()["id"] == 41  # the request's own id, not null
                assert f"held by worker {lost}, which is unreachable" in mcp.json()["error"]["message"]
            chosen = router.post("/v1/episodes", json={"env": ENV, "episode_id": fleet.ids_on(lost, 1, "new")[0]})
            assert chosen.status_code == 502
            assert f"its id belongs to worker {lost}, which is unreachable" in chosen.json()["detail"]
            listing = router.get("/v1/episodes")
            assert listing.status_code == 502 and lost in listing.json()["detail"]

            for episode_id in ids[alive]:
                r = router.get(f"/v1/episodes/{episode_id}/state")
                assert r.status_code == 200 and r.headers["x-envfarm-worker"] == alive
            async with Client(f"{fleet.router.url}/episodes/{ids[alive][0]}/mcp") as client:
                assert not (await client.call_tool("add_note", {"folder": "work", "title": "still here"})).is_error
            for _ in range(6):  # new episodes, and stateless requests, go to the worker that answers
                r = router.post("/v1/episodes", json={"env": ENV})
                assert r.status_code == 201 and r.headers["x-envfarm-worker"] == alive
                assert router.get("/v1/envs").status_code == 200
            described = {w["url"]: w for w in router.get("/v1/router").json()["workers"]}
            assert described[lost]["healthy"] is False and "ConnectError" in described[lost]["error"]
            assert described[alive]["healthy"] is True
            assert router.get("/healthz").status_code == 200
    finally:
        fleet.close()


def test_a_full_worker_sends_new_episodes_to_another_and_all_full_is_the_workers_503() -> None:
    fleet = Fleet(worker_args=(("--max-episodes", "1"), ("--max-episodes", "8")))
    try:
        full, roomy = fleet.worker_urls
        assert httpx.post(f"{full}/v1/episodes", json={"env": ENV}, timeout=10).status_code == 201
        with fleet.router.client() as router:
            for _ in range(8):  # with random ids, about half would fall on the full worker
                r = router.post("/v1/episodes", json={"env": ENV})
                assert r.status_code == 201, r.text
                assert r.headers["x-envfarm-worker"] == roomy
            refused = router.post("/v1/episodes", json={"env": ENV})
        assert refused.status_code == 503 and refused.headers["retry-after"]
        assert "live episodes" in refused.json()["detail"]
    finally:
        fleet.close()


def test_no_worker_reachable_is_503_not_500() -> None:
    fleet = Fleet()
    try:
        for worker in fleet.workers:
            worker.process.kill()
            worker.process.wait(timeout=10)
        with fleet.router.client() as router:
            envs = router.get("/v1/envs")
            opened = router.post("/v1/episodes", json={"env": ENV})
        assert envs.status_code == 503 and "no worker could be reached" in envs.json()["detail"]
        assert opened.status_code == 503 and envs.headers["retry-after"] == "5"
    finally:
        fleet.close()


def test_router_cli_refuses_a_bad_worker_list() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "router", "--worker", "http://a:1/x"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "without a path" in run.stderr
    empty = subprocess.run([sys.executable, "-m", "envfarm.cli", "router"], capture_output=True, text=True)
    assert empty.returncode == 2 and "at least one worker" in empty.stderr


def test_workers_from_the_environment_variable_comma_separated() -> None:
    a, b = start_farm(ENV), start_farm(ENV)
    port = free_port()
    env = {**os.environ, "ENVFARM_WORKERS": f"{a.url},{b.url}", "ENVFARM_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "envfarm.cli", "router", "--log-level", "warning"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_healthy(process, f"http://127.0.0.1:{port}", "envfarm router")
        described = httpx.get(f"http://127.0.0.1:{port}/v1/router").json()
        assert sorted(w["url"] for w in described["workers"]) == sorted([a.url, b.url])
    finally:
        process.terminate()
        process.wait(timeout=10)
        stop_farm(a)
        stop_farm(b)
