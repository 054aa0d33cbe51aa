"""Running the farm for days: metrics, idle reaping, the episode cap, graceful shutdown (real processes)."""

from __future__ import annotations

import json
import signal
import time

import pytest
from conftest import FarmProcess, start_farm, stop_farm
from mcp import Client

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def metric(farm: FarmProcess, line_start: str) -> float:
    with farm.client() as c:
        text = c.get("/metrics").text
    values = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start)]
    return sum(values)


async def test_metrics_count_episodes_calls_resets_and_scores() -> None:
    farm = start_farm("notes")
    try:
        with farm.client() as c:
            assert c.get("/metrics").headers["content-type"].startswith("text/plain")
        episode = farm.open_episode("notes")
        async with Client(episode["mcp_url"]) as client:
            await client.call_tool("add_note", {"folder": "work", "title": "a"})
            await client.call_tool("add_note", {"folder": "work", "title": "a"})  # refused: duplicate
            await client.call_tool("no_such_tool", {})
        with farm.client() as c:
            c.post(f"/v1/episodes/{episode['episode_id']}/reset")
            c.post(f"/v1/episodes/{episode['episode_id']}/score")
        assert metric(farm, "envfarm_live_episodes ") == 1
        assert metric(farm, 'envfarm_tool_calls_total{env="notes",outcome="ok",tool="add_note"}') == 1
        assert metric(farm, 'envfarm_tool_calls_total{env="notes",outcome="error",tool="add_note"}') == 1
        assert metric(farm, 'envfarm_tool_calls_total{env="notes",outcome="error",tool="(unknown)"}') == 1
        assert metric(farm, 'envfarm_tool_call_seconds_count{env="notes"}') == 3
        assert metric(farm, 'envfarm_resets_total{env="notes"}') == 1
        assert metric(farm, 'envfarm_scores_total{env="notes",kind="live"}') == 1
    finally:
        stop_farm(farm)


def test_idle_episodes_are_reaped_with_a_reason() -> None:
    farm = start_farm("notes", "--idle-timeout", "0.5")
    try:
        idle = farm.open_episode("notes")["episode_id"]
        busy = farm.open_episode("notes")["episode_id"]
        with farm.client() as c:
            for _ in range(12):  # keep one episode in use for ~1.2 s
                assert c.get(f"/v1/episodes/{busy}/state").status_code == 200
                time.sleep(0.1)
            gone = c.get(f"/v1/episodes/{idle}/state")
            assert gone.status_code == 404
            assert "reaped after 0.5 s without use (ENVFARM_IDLE_TIMEOUT)" in gone.json()["detail"]
        assert metric(farm, 'envfarm_episodes_ended_total{reason="reaped"}') == 1
    finally:
        stop_farm(farm)


def test_a_full_farm_answers_503_with_retry_after() -> None:
    farm = start_farm("notes", "--max-episodes", "2")
    try:
        first = farm.open_episode("notes")["episode_id"]
        farm.open_episode("notes")
        with farm.client() as c:
            full = c.post("/v1/episodes", json={"env": "notes"})
            assert full.status_code == 503 and full.headers["retry-after"] == "5"
            assert "limit of 2 live episodes (ENVFARM_MAX_EPISODES)" in full.json()["detail"]
            c.delete(f"/v1/episodes/{first}")
            assert c.post("/v1/episodes", json={"env": "notes"}).status_code == 201
    finally:
        stop_farm(farm)


def test_sigterm_shuts_down_gracefully() -> None:
    farm = start_farm("notes", "--log-level", "info")
    farm.open_episode("notes")
    farm.process.send_signal(signal.SIGTERM)
    # uvicorn finishes the shutdown, then re-raises the signal so the exit status reports it
    assert farm.process.wait(timeout=20) in (0, -signal.SIGTERM)
    out = farm.process.stdout.read().decode() if farm.process.stdout else ""
    assert "ended 1 live episode(s) at shutdown" in out and "Application shutdown complete" in out
    assert "Traceback" not in out


def test_json_logs_carry_the_episode_id() -> None:
    farm = start_farm("notes", "--log-level", "info", "--log-format", "json")
    episode_id = farm.open_episode("notes")["episode_id"]
    with farm.client() as c:
        c.delete(f"/v1/episodes/{episode_id}")
    stop_farm(farm)
    out = farm.process.stdout.read().decode() if farm.process.stdout else ""
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    about = [r for r in records if r.get("episode_id") == episode_id]
    assert [r["message"] for r in about] == ["episode opened", "episode ended"]
    assert about[0]["env"] == "notes" and about[0]["scenario"] == "file-two" and about[1]["reason"] == "deleted"
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
