"""``envfarm run`` as a user runs it: a real subprocess, the farm served in process, the fake LLM server.

End to end in task mode on every scenario of two environments; killed midway and started again; and bad
input (an unknown environment, bad flags, an unreachable farm, a missing key) as one clear line and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, free_port
from fakes.agent_scripts import FINAL, oracle_agent
from fakes.llm_server import FakeLLMServer
from typer.testing import CliRunner

from envfarm.cli import app
from envfarm.core.environments import load_catalog


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    fake_server.reset()
    return fake_server


def command(out: Path, fake: FakeLLMServer, *args: str, provider: str = "openai") -> list[str]:
    url = fake.url if provider == "anthropic" else fake.openai_url
    return [
        sys.executable, "-m", "envfarm.cli", "run", "--provider", provider, "--base-url", url,
        "--model", "scripted", "--out", str(out), "--sandbox-workers", "1", *args,
    ]  # fmt: skip


def environment() -> dict[str, str]:
    env = {**os.environ, "ANTHROPIC_API_KEY": "test-key"}
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        env.pop(name, None)
    return env


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def test_end_to_end_every_scenario_of_two_environments_in_task_mode(tmp_path: Path, fake: FakeLLMServer) -> None:
    catalog = load_catalog(["notes", "library"])
    scenarios = [s for env in catalog.values() for s in env.scenarios.values()]
    fake.reset({"entries": oracle_agent(scenarios)})
    cmd = command(tmp_path, fake, "--env", "notes", "--env", "library", "--concurrency", "8", provider="anthropic")
    done = subprocess.run(cmd, cwd=REPO, env=environment(), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    lines = results(tmp_path)
    assert len(lines) == len(scenarios) == 51
    assert sorted((r["env"], r["scenario"]) for r in lines) == sorted(
        (e, s) for e in catalog for s in catalog[e].scenarios
    )
    for r in lines:
        assert r["score"]["success"], (r["scenario"], r["score"], r["error"])
        assert (r["mode"], r["ended"], r["truncated"], r["provider"], r["model"]) == (
            "task", "agent_done", False, "anthropic", "scripted"
        )  # fmt: skip
        scenario = catalog[r["env"]].scenarios[r["scenario"]]
        assert r["split"] in ("train", "test")
        assert [c["tool"] for c in r["calls"]] == [c.tool for c in scenario.oracle]
        assert r["messages"][0]["role"] == "system" and r["messages"][1] == {"role": "user", "content": scenario.task}
        assert r["messages"][-1] == {"role": "assistant", "content": FINAL}
        assert {t["name"] for t in r["tools"]} == set(catalog[r["env"]].tools)
        assert r["tokens"]["input"] > 0 and r["tokens"]["output"] > 0
    # Anthropic prompt caching: the environment's policy and tools are written once, then read.
    assert sum(r["tokens"]["cache_read"] for r in lines if r["env"] == "library") > 0
    assert "51 episodes" in done.stderr and "success 51/51" in done.stderr  # the plain progress log
    settings = json.loads((tmp_path / "run.json").read_text())
    assert settings["status"] == "finished" and settings["envs"] == ["notes", "library"]
    assert settings["farm"] == "in-process" and settings["episodes"] == 51


def _same(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records without what differs between two runs of the same episodes (ids of episodes, timing)."""
    out = [{k: v for k, v in r.items() if k not in ("episode_id", "seconds")} for r in lines]
    return sorted(out, key=lambda r: (r["env"], r["scenario"], r["trial"]))


def _wait(what: str, ready: Any, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_a_killed_run_started_again_repeats_no_model_call_and_ends_as_an_unbroken_run(
    tmp_path: Path, fake: FakeLLMServer
) -> None:
    scenario = load_catalog(["notes"])["notes"].scenarios["file-two"]
    script = {"entries": oracle_agent([scenario], per_turn=1)}  # 4 model calls an episode
    args = ("--env", "notes", "--trials", "4", "--concurrency", "2")
    broken, whole = tmp_path / "broken", tmp_path / "whole"

    fake.reset(script)
    fake.hold(after=9)  # two episodes done (8 answers), a third one answered once; then everything waits
    first = subprocess.Popen(
        command(broken, fake, *args), cwd=REPO, env=environment(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        cache = broken / "cache"
        _wait(
            "the run to finish two episodes and cache 9 answers",
            lambda: (
                fake.stats()["held"]
                and (broken / "results.jsonl").exists()
                and len((broken / "results.jsonl").read_text().splitlines()) == 2
                and len(list(cache.glob("*/*.json"))) == 9
            ),
        )
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
    with (broken / "results.jsonl").open("a") as f:
        f.write('{"env": "notes", "scenario": "file-')  # as if killed in the middle of a line
    answered_before_kill = fake.stats()["answered"]
    fake.release()
    _wait("held requests of the killed run to be dropped", lambda: fake.stats()["in_flight"] == 0)
    assert fake.stats()["answered"] == answered_before_kill == 9  # what the dead run asked is never answered

    again = subprocess.run(command(broken, fake, *args), cwd=REPO, env=environment(), capture_output=True, text=True)
    assert again.returncode == 0, again.stderr[-3000:]
    answered_resumed = fake.stats()["answered"] - answered_before_kill
    assert "2 done before" in again.stderr

    fake.reset(script)
    unbroken = subprocess.run(command(whole, fake, *args), cwd=REPO, env=environment(), capture_output=True, text=True)
    assert unbroken.returncode == 0, unbroken.stderr[-3000:]
    answered_unbroken = fake.stats()["answered"]

    assert answered_unbroken == 16
    assert answered_before_kill + answered_resumed == answered_unbroken  # no model call made twice
    assert _same(results(broken)) == _same(results(whole))
    assert len(results(broken)) == 4 and all(r["score"]["success"] for r in results(broken))
    meta = json.loads((broken / "run.json").read_text())
    assert meta["resumed"] == 1 and meta["status"] == "finished" and meta["llm"]["totals"]["cached"] == 1


runner = CliRunner()


def run_cli(*args: str) -> Any:
    return runner.invoke(app, ["run", *args])


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--env", "nope", "--model", "m", "--provider", "openai", "--base-url", "http://127.0.0.1:9/v1"],
         "no package envfarm.servers.nope"),
        (["--env", "notes", "--model", "m", "--mode", "chat"], "'chat' is not one of"),
        (["--env", "notes", "--model", "m", "--split", "dev"], "'dev' is not one of"),
        (["--env", "notes", "--model", "m", "--provider", "openai", "--trials", "0"], "--trials must be at least 1"),
        (["--env", "notes", "--model", "m", "--provider", "openai", "--base-url", "http://127.0.0.1:9/v1",
          "--scenario", "nope"], "no scenario 'nope' in notes"),
        (["--env", "notes", "--model", "m", "--provider", "replay"], "the replay provider needs a recording"),
        (["--model", "m"], "Missing option '--env'"),
    ],
)  # fmt: skip
def test_bad_input_is_one_clear_line_and_exit_2(tmp_path: Path, args: list[str], says: str) -> None:
    done = run_cli(*args, "--out", str(tmp_path / "run"))
    assert done.exit_code == 2, done.output
    assert says in done.output, done.output
    assert "Traceback" not in done.output


def test_an_unreachable_farm_is_a_clear_error(tmp_path: Path) -> None:
    farm = f"http://127.0.0.1:{free_port()}"
    model = ("--model", "m", "--provider", "openai", "--base-url", "http://127.0.0.1:9/v1")
    done = run_cli("--env", "notes", *model, "--farm", farm, "--out", str(tmp_path))
    assert done.exit_code == 2 and f"cannot reach the farm at {farm}" in done.output, done.output


def test_a_missing_key_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    done = run_cli("--env", "notes", "--model", "claude-sonnet-4-6", "--out", str(tmp_path))
    assert done.exit_code == 2 and "set ANTHROPIC_API_KEY" in done.output, done.output
    assert not (tmp_path / "results.jsonl").exists()


def test_a_run_folder_keeps_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "run.json").write_text(json.dumps({"model": "other", "mode": "task", "provider": "openai"}))
    model = ("--model", "m", "--provider", "openai", "--base-url", "http://127.0.0.1:9/v1")
    done = run_cli("--env", "notes", *model, "--out", str(tmp_path))
    assert done.exit_code == 2 and "holds a run with other settings (model: 'other' -> 'm'" in done.output
