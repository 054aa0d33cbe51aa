"""Running the farm for days: metrics, idle reaping, the episode cap, graceful shutdown (real processes)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import FIXTURE_ENVS, REPO, FarmProcess, free_port, start_farm, stop_farm, wait_until_healthy
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


SLOW_CHECK = "import time\ndef check(initial, final):\n    time.sleep(1.5)\n    return True"


@pytest.fixture
def slow_env(tmp_path: Path) -> Path:
    """A copy of the notes fixture whose scenario has a check that takes its time, so scores queue in the sandbox."""
    root = tmp_path / "envs"
    shutil.copytree(FIXTURE_ENVS / "notes", root / "notes", ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "notes" / "scenarios" / "file-two.json"
    scenario = json.loads(path.read_text())
    scenario["checks"].append({"id": "slow", "description": "takes its time", "code": SLOW_CHECK})
    path.write_text(json.dumps(scenario))
    subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "manifest", "notes", "--write"],
        env={**os.environ, "ENVFARM_ENV_PATH": str(root)},
        check=True,
        capture_output=True,
        cwd=REPO,
    )
    return root


def score_then_sigterm(server: FarmProcess, count: int) -> list[Any]:
    """Send ``count`` scores at once, wait until the server holds them all (``envfarm_scoring``), SIGTERM it.

    Returns each request's answer (an httpx.Response) or the exception it ended with.
    """
    body = {"env": "notes", "scenario": "file-two", "trajectory": []}
    answers: list[Any] = [None] * count

    def post(i: int) -> None:
        try:
            answers[i] = httpx.post(f"{server.url}/v1/score", json=body, timeout=120)
        except httpx.HTTPError as e:
            answers[i] = e

    threads = [threading.Thread(target=post, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    while metric(server, "envfarm_scoring ") < count:  # every score is in: running or queued for the sandbox
        time.sleep(0.05)
    server.process.send_signal(signal.SIGTERM)
    for thread in threads:
        thread.join()
    assert server.process.wait(timeout=60) in (0, -signal.SIGTERM)
    return answers


def assert_scored_or_told_to_retry(answers: list[Any], log: str) -> None:
    """Each queued score got its score, or 503 + Retry-After saying why: no 500, no dropped connection."""
    for answer in answers:
        assert isinstance(answer, httpx.Response), f"no answer: {answer!r}"
        assert answer.status_code in (200, 503), answer.text
        if answer.status_code == 200:
            assert answer.json()["checks"][-1] == {
                "id": "slow",
                "description": "takes its time",
                "passed": True,
                "error": None,
                "preserve": False,
            }
        else:
            assert answer.headers["retry-after"] == "5"
            assert "shutting down" in answer.json()["detail"]
    statuses = {a.status_code for a in answers}
    assert statuses == {200, 503}, statuses  # some finished within the grace period; the queue's tail did not
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def test_sigterm_answers_every_queued_score_with_its_score_or_503(slow_env: Path) -> None:
    """`envfarm serve` waits 10 s for requests in flight; scores still queued for the sandbox then are told to retry."""
    farm = start_farm(
        "notes", "--sandbox-workers", "1", "--log-level", "warning", env={"ENVFARM_ENV_PATH": str(slow_env)}
    )
    answers = score_then_sigterm(farm, 16)  # one sandbox worker, 1.5 s each: far more than the grace period
    log = farm.process.stdout.read().decode() if farm.process.stdout else ""
    assert_scored_or_told_to_retry(answers, log)


VALIDATOR = """
import sys, uvicorn
from envfarm.core.environments import load_catalog
from envfarm.serve.settings import FarmSettings
from envfarm.validators.service import ScoringService, create_validator_app
port = int(sys.argv[1])
app = create_validator_app(load_catalog(["notes"]), None, FarmSettings(port=port), ScoringService(workers=1))
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=3)
"""


def test_the_validator_answers_queued_scores_at_shutdown_with_503_too(slow_env: Path) -> None:
    """The validator app under uvicorn with a grace period (as a deployment would run it): the same answers."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", VALIDATOR, str(port)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "ENVFARM_ENV_PATH": str(slow_env)},
    )
    validator = FarmProcess(f"http://127.0.0.1:{port}", process)
    wait_until_healthy(process, validator.url, "validator")
    answers = score_then_sigterm(validator, 8)
    log = process.stdout.read().decode() if process.stdout else ""
    assert_scored_or_told_to_retry(answers, log)


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
