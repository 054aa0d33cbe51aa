"""The agent loop through ``envfarm.agents.run``: a farm, the fake LLM server speaking the real APIs, scripted
models (oracle players, quitters, clumsy and endless ones), a scripted simulated user.

The farm is a real ``envfarm serve`` process (the run reaches it with ``--farm``), the agent reaches tools over
the episode's MCP endpoint, the models are called through the real ``anthropic`` SDK and ``httpx``.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FarmProcess, start_farm, stop_farm
from fakes.agent_scripts import FINAL, STOP_TEXT, oracle_agent, oracle_turns, stopping_user
from fakes.llm_server import FakeLLMServer
from rich.console import Console

from envfarm.agents.progress import RunProgress
from envfarm.agents.run import RunConfig, RunSummary, run
from envfarm.core.environments import Environment, load_catalog

NOTES_TASK = "File two notes in 'work': 'standup' and 'retro'."


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    for name in ("ANTHROPIC_BASE_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def catalog() -> dict[str, Environment]:
    return load_catalog(["notes", "library"])


@pytest.fixture(scope="module")
def served() -> Iterator[FarmProcess]:
    running = start_farm("notes", "library", "--sandbox-workers", "2")
    yield running
    stop_farm(running)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    fake_server.reset()
    return fake_server


def config(out: Path, fake: FakeLLMServer, farm: FarmProcess | None, **settings: Any) -> RunConfig:
    provider = settings.pop("provider", "openai")
    base_url = fake.url if provider == "anthropic" else fake.openai_url
    defaults: dict[str, Any] = {"envs": ["notes"], "model": "scripted", "concurrency": 4}
    return RunConfig(
        out=out, provider=provider, base_url=base_url, farm=farm.url if farm else None, **{**defaults, **settings}
    )


def results(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def go(cfg: RunConfig, catalog: dict[str, Environment] | None = None) -> RunSummary:
    return asyncio.run(run(cfg, catalog=catalog))


def test_an_oracle_playing_model_succeeds_on_every_scenario_in_conversation_mode(
    tmp_path: Path, fake: FakeLLMServer, served: FarmProcess, catalog: dict[str, Environment]
) -> None:
    scenarios = [s for env in catalog.values() for s in env.scenarios.values()]
    fake.reset({"entries": oracle_agent(scenarios) + stopping_user(scenarios)})
    cfg = config(
        tmp_path,
        fake,
        served,
        envs=["notes", "library"],
        mode="conversation",
        user_provider="anthropic",
        user_base_url=fake.url,
        user_model="claude-haiku-4-5",
        concurrency=8,
    )
    summary = go(cfg)
    lines = results(tmp_path)
    assert summary.total == len(lines) == len(scenarios) == 51
    failed = [(r["scenario"], r["ended"], r["error"], r["score"]) for r in lines if not r["score"]["success"]]
    assert not failed
    for r in lines:
        assert (r["mode"], r["ended"], r["truncated"], r["user_model"]) == (
            "conversation",
            "user_done",
            False,
            "claude-haiku-4-5",
        )
        said = [m["content"] for m in r["messages"] if m["role"] == "user"]
        task = catalog[r["env"]].scenarios[r["scenario"]].task
        assert said == [task, STOP_TEXT]  # the agent saw only what the user said
        assert r["messages"][-2] == {"role": "assistant", "content": FINAL}
        assert r["user_tokens"]["output"] > 0 and r["tokens"]["input"] > 0
    assert fake.stats()["unmatched"] == 0
    run_json = json.loads((tmp_path / "run.json").read_text())
    assert run_json["status"] == "finished" and run_json["llm"]["stages"]["user"]["calls"] == 2 * len(scenarios)


def test_a_model_that_stops_early_fails(tmp_path: Path, fake: FakeLLMServer, served: FarmProcess) -> None:
    fake.reset([{"side": "agent", "match": [NOTES_TASK], "turns": [{"text": "I filed them."}]}])
    go(config(tmp_path, fake, served, provider="anthropic"))
    [r] = results(tmp_path)
    assert (r["ended"], r["turns"], r["truncated"], r["calls"]) == ("agent_done", 1, False, [])
    assert r["score"]["success"] is False and r["score"]["reward"] == 0.0
    assert [c["passed"] for c in r["score"]["checks"]] == [False, False]


def test_unknown_tools_and_broken_json_get_error_results_and_the_run_goes_on(
    tmp_path: Path, fake: FakeLLMServer, served: FarmProcess, catalog: dict[str, Environment]
) -> None:
    clumsy = [
        {"name": "delete_everything", "arguments": {}},
        {"name": "add_note", "raw_arguments": '{"folder": "work", "title": '},
        {"name": "add_note", "raw_arguments": '["work"]'},
        {"name": "add_note", "arguments": {"folder": 1}},
    ]
    again = {"tool_calls": [{"name": "add_note", "arguments": {"folder": "work", "title": "retro"}}]}
    turns = [{"tool_calls": clumsy}, *oracle_turns(catalog["notes"].scenarios["file-two"])]
    turns.insert(-1, again)  # a call a rule refuses: the title is taken
    fake.reset([{"side": "agent", "match": [NOTES_TASK], "turns": turns}])
    go(config(tmp_path, fake, served))
    [r] = results(tmp_path)
    assert r["ended"] == "agent_done" and r["score"]["success"] is True
    assert r["tool_errors"] == {"unknown_tool": 1, "bad_json": 2, "schema": 1, "refused": 1}
    assert r["refusals"] == {"unique-title": 1}
    kinds = [c["error_kind"] for c in r["calls"]]
    assert kinds == ["unknown_tool", "bad_json", "bad_json", "schema", None, None, None, "refused"]
    assert r["calls"][1]["arguments"] is None and "not valid JSON" in r["calls"][1]["error"]
    assert "must be a JSON object" in r["calls"][2]["error"]
    assert r["calls"][-1]["rule"] == "unique-title" and r["calls"][-1]["ok"] is False
    results_of_turn_one = [m for m in r["messages"] if m["role"] == "tool"][:4]
    assert all(m["is_error"] for m in results_of_turn_one)
    assert "unknown tool 'delete_everything'" in results_of_turn_one[0]["content"]
    assert "invalid arguments" in results_of_turn_one[3]["content"]
    broken = r["messages"][2]["tool_calls"][1]
    assert broken["arguments"] is None and broken["raw_arguments"] == '{"folder": "work", "title": '


def test_a_model_that_never_stops_is_truncated_at_max_turns(
    tmp_path: Path, fake: FakeLLMServer, served: FarmProcess
) -> None:
    forever = {"tool_calls": [{"name": "list_notes", "arguments": {"folder": "work"}}]}
    fake.reset([{"side": "agent", "match": [NOTES_TASK], "turns": [], "then": forever}])
    go(config(tmp_path, fake, served, provider="anthropic", max_turns=4, trials=2))
    lines = results(tmp_path)
    assert len(lines) == 2
    for r in lines:
        assert (r["ended"], r["truncated"], r["turns"], len(r["calls"])) == ("max_turns", True, 4, 4)
        assert r["score"]["success"] is False
    assert fake.stats()["answered"] == 8


def test_429_and_529_are_retried(tmp_path: Path, fake: FakeLLMServer, served: FarmProcess) -> None:
    scenario = load_catalog(["notes"])["notes"].scenarios["file-two"]
    fake.reset(
        {
            "entries": oracle_agent([scenario]),
            "faults": [{"status": 429, "retry_after": 0}, {"status": 529, "retry_after": 0}],
        }
    )
    summary = go(config(tmp_path, fake, served, provider="anthropic"))
    [r] = results(tmp_path)
    assert r["score"]["success"] is True and r["ended"] == "agent_done"
    assert fake.stats()["faults"] == 2
    assert summary.ledger["totals"]["retries"] == 2
    assert json.loads((tmp_path / "run.json").read_text())["llm"]["totals"]["retries"] == 2


def test_progress_live_on_a_terminal_plain_lines_elsewhere() -> None:
    line = {
        "env": "notes",
        "scenario": "file-two",
        "trial": 0,
        "turns": 3,
        "ended": "max_turns",
        "error": None,
        "score": {"reward": 0.5, "success": False, "checks": [{"id": "retro", "passed": False, "error": None}]},
        "tokens": {"input": 900, "output": 100, "cache_read": 0, "cache_write": 0},
        "user_tokens": {},
        "cost_usd": 0.25,
        "tool_errors": {"schema": 2},
    }
    for terminal in (True, False):
        console = Console(file=io.StringIO(), force_terminal=terminal, width=200)
        progress = RunProgress(console)
        assert progress.live is terminal
        progress.start(2, [])
        progress.finished(line)
        progress.stop()
        shown = console.file.getvalue()  # type: ignore[attr-defined]
        assert "success 0/1 (0%), 1,000 tokens, $0.2500" in shown
        assert "failing: tool schema x2, ended max_turns x1, check notes/retro x1" in shown
        assert ("1/2" in shown) if terminal else ("[1/2] notes/file-two #0: reward 0.50, failed retro" in shown)
