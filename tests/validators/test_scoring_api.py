"""Scoring over real HTTP: oracles score 1.0, missing steps fail, every format agrees, bad input is 4xx."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURE_ENVS, REPO, FarmProcess, start_farm, stop_farm
from mcp import Client
from test_trajectories import anthropic, envscaler, openai, plain

from envfarm.core.environments import load_environment
from envfarm.core.scenarios import Call

LIBRARY = load_environment("library")
SCENARIOS = [("library", s) for s in sorted(LIBRARY.scenarios)] + [("notes", "file-two")]


def oracle(env: str, scenario: str) -> list[Call]:
    return load_environment(env).scenarios[scenario].oracle


def score(farm: FarmProcess, env: str, scenario: str, trajectory: Any) -> dict[str, Any]:
    with farm.client() as c:
        r = c.post("/v1/score", json={"env": env, "scenario": scenario, "trajectory": trajectory})
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(("env", "scenario"), SCENARIOS)
def test_oracle_scores_one_with_success(farm: FarmProcess, env: str, scenario: str) -> None:
    result = score(farm, env, scenario, plain(oracle(env, scenario)))
    assert result["reward"] == 1.0 and result["success"] is True, result["checks"]
    assert result["collateral"] == []
    assert all(c["ok"] for c in result["calls"]) and len(result["calls"]) == len(oracle(env, scenario))
    assert set(result) == {"env", "scenario", "reward", "success", "checks", "collateral", "calls", "final_state_hash"}


@pytest.mark.parametrize(("env", "scenario"), SCENARIOS)
def test_empty_trajectory_scores_below_one(farm: FarmProcess, env: str, scenario: str) -> None:
    result = score(farm, env, scenario, [])
    assert result["reward"] < 1.0 and result["success"] is False


@pytest.mark.parametrize(("env", "scenario"), SCENARIOS)
def test_a_missing_oracle_step_fails_a_check(farm: FarmProcess, env: str, scenario: str) -> None:
    calls = oracle(env, scenario)
    tools = load_environment(env).tools
    mutations = [i for i, c in enumerate(calls) if tools[c.tool].kind == "mutation"]
    for dropped in mutations:
        result = score(farm, env, scenario, plain(calls[:dropped] + calls[dropped + 1 :]))
        assert any(not c["passed"] for c in result["checks"]), f"dropping step {dropped} still passes every check"


def test_every_format_scores_identically(farm: FarmProcess) -> None:
    calls = oracle("library", "hold-pickup")[:-1]  # not the whole oracle: a partial score must agree too
    results = [score(farm, "library", "hold-pickup", shape(calls)) for shape in (plain, openai, anthropic, envscaler)]
    for other in results[1:]:
        assert other == results[0]
    assert 0 < results[0]["reward"] < 1


def test_replay_is_deterministic_and_errors_are_replayed_as_seen(farm: FarmProcess) -> None:
    calls = plain(oracle("library", "return-and-pay"))
    calls.insert(1, {"tool": "pay_fine", "arguments": {"fine_id": 999999, "amount_cents": 5, "method": "cash"}})
    first, second = (score(farm, "library", "return-and-pay", calls) for _ in range(2))
    assert first["final_state_hash"] == second["final_state_hash"]
    assert first["calls"][1]["ok"] is False and "999999" in first["calls"][1]["error"]
    assert first["reward"] == 1.0  # the failed call changed nothing and replay went on


def test_collateral_change_denies_success(farm: FarmProcess) -> None:
    calls = plain(oracle("notes", "file-two"))
    calls.append({"tool": "add_note", "arguments": {"folder": "home", "title": "stray"}})
    result = score(farm, "notes", "file-two", calls)
    assert result["reward"] == 1.0 and result["success"] is False
    (stray,) = result["collateral"]
    assert stray["change"] == "added" and stray["row"]["title"] == "stray"
    calls = plain(oracle("library", "return-and-pay"))
    calls.append({"tool": "update_member_contact", "arguments": {"member_id": 2, "phone": "555-0000"}})
    result = score(farm, "library", "return-and-pay", calls)
    (change,) = [c for c in result["collateral"] if c["table"] == "members"]
    assert change["change"] == "changed" and change["key"] == "2" and change["after"] == {"phone": "555-0000"}
    assert result["success"] is False


async def test_live_episode_score(farm: FarmProcess) -> None:
    episode = farm.open_episode("library", "return-and-pay")
    async with Client(episode["mcp_url"]) as client:
        for call in oracle("library", "return-and-pay"):
            assert not (await client.call_tool(call.tool, call.arguments)).is_error
    with farm.client() as c:
        result = c.post(f"/v1/episodes/{episode['episode_id']}/score").json()
        state = c.get(f"/v1/episodes/{episode['episode_id']}/state").json()
    assert result["reward"] == 1.0 and result["success"] is True
    assert result["final_state_hash"] == state["state_hash"]
    assert [c["tool"] for c in result["calls"]] == [c.tool for c in oracle("library", "return-and-pay")]


def test_batch_in_order(farm: FarmProcess) -> None:
    items = [
        {"env": "library", "scenario": "return-and-pay", "trajectory": plain(oracle("library", "return-and-pay"))},
        {"env": "notes", "scenario": "file-two", "trajectory": []},
    ]
    with farm.client() as c:
        r = c.post("/v1/score/batch", json={"items": items})
    assert r.status_code == 200
    assert [x["reward"] for x in r.json()["results"]] == [1.0, 0.0]


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"env": "zoo", "scenario": "x", "trajectory": []}, 404, "no environment 'zoo'"),
        ({"env": "notes", "scenario": "x", "trajectory": []}, 404, "no scenario 'x' in 'notes'"),
        ({"env": "notes", "scenario": "file-two"}, 422, "trajectory"),
        ({"env": "notes", "scenario": "file-two", "trajectory": "x"}, 422, "trajectory"),
        (
            {
                "env": "notes",
                "scenario": "file-two",
                "trajectory": [{"tool": "add_note"}, {"tool": "a", "arguments": 3}],
            },
            422,
            "trajectory[1].arguments: arguments must be an object",
        ),
        (
            {
                "env": "notes",
                "scenario": "file-two",
                "trajectory": [{"role": "assistant", "tool_calls": [{"function": {"name": "a", "arguments": "{"}}]}],
            },
            422,
            "trajectory[0].tool_calls[0].function.arguments: not valid JSON",
        ),
    ],
)
def test_bad_score_requests(farm: FarmProcess, body: dict[str, Any], status: int, says: str) -> None:
    with farm.client() as c:
        r = c.post("/v1/score", json=body)
    assert r.status_code == status, r.text
    assert says in json.dumps(r.json())


def test_batch_names_the_bad_item(farm: FarmProcess) -> None:
    items = [
        {"env": "notes", "scenario": "file-two", "trajectory": []},
        {"env": "notes", "scenario": "nope", "trajectory": []},
    ]
    with farm.client() as c:
        r = c.post("/v1/score/batch", json={"items": items})
    assert r.status_code == 404 and r.json()["detail"].startswith("items[1].scenario: no scenario 'nope'")


def test_limits_say_the_limit() -> None:
    small = start_farm("notes", "--max-calls", "3", "--max-batch", "2", "--max-body-bytes", "2000")
    try:
        with small.client() as c:
            long = {"env": "notes", "scenario": "file-two", "trajectory": [{"tool": "list_notes"}] * 4}
            r = c.post("/v1/score", json=long)
            assert r.status_code == 422 and "trajectory has 4 calls; the limit is 3" in r.text
            batch = {"items": [{"env": "notes", "scenario": "file-two", "trajectory": []}] * 3}
            r = c.post("/v1/score/batch", json=batch)
            assert r.status_code == 422 and "batch has 3 items; the limit is 2" in r.text
            big = {"env": "notes", "scenario": "file-two", "trajectory": [{"tool": "x" * 3000}]}
            r = c.post("/v1/score", json=big)
            assert r.status_code == 413 and "over the limit of 2000 bytes" in r.text
    finally:
        stop_farm(small)


def test_standalone_validator_scores_live_episodes_of_the_farm(farm: FarmProcess) -> None:
    validator = start_farm("--farm", farm.url, command="validator")
    try:
        with validator.client() as v:
            assert v.get("/healthz").json()["farm"] == farm.url
            episode = farm.open_episode("notes")
            live = v.post(f"/v1/episodes/{episode['episode_id']}/score").json()
            assert live["reward"] == 0.0 and live["scenario"] == "file-two"
            solved = plain(oracle("notes", "file-two"))
            offline = v.post("/v1/score", json={"env": "notes", "scenario": "file-two", "trajectory": solved})
            assert offline.json()["reward"] == 1.0
            missing = v.post("/v1/episodes/ep_nope/score")
            assert missing.status_code == 404 and "no such episode" in missing.text
    finally:
        stop_farm(validator)


def test_a_different_but_valid_added_row_is_not_collateral(farm: FarmProcess) -> None:
    calls = plain(oracle("notes", "file-two"))
    calls[1]["arguments"]["body"] = "9:00 daily"
    result = score(farm, "notes", "file-two", calls)
    assert result["success"] is True and result["collateral"] == []


# -- input a score cannot give back: refused where it enters, naming the place (farm and validator alike) ----


@pytest.fixture(scope="module")
def validator() -> Any:
    running = start_farm("notes", command="validator")
    yield running
    stop_farm(running)


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"x": 1}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


def openai_call(arguments: str) -> list[dict[str, Any]]:
    return [{"role": "assistant", "tool_calls": [{"function": {"name": "list_notes", "arguments": arguments}}]}]


SCORE = {"env": "notes", "scenario": "file-two"}
SURROGATE_ARGS = (
    b'{"env": "notes", "scenario": "file-two", '
    b'"trajectory": [{"tool": "list_notes", "arguments": {"folder": "\\ud800"}}]}'
)


@pytest.mark.parametrize("where", ["farm", "validator"])
@pytest.mark.parametrize(
    ("path", "body", "loc", "says"),
    [
        (
            "/v1/score",
            json.dumps({**SCORE, "trajectory": [{"tool": "list_notes", "arguments": nested(300)}]}).encode(),
            ["body", "trajectory", 0, "arguments", *["x"] * 61],
            "nested deeper than 64 levels",
        ),
        (
            "/v1/score",
            SURROGATE_ARGS,
            ["body", "trajectory", 0, "arguments", "folder"],
            "lone UTF-16 surrogate (\\ud800)",
        ),
        (
            "/v1/score/batch",
            b'{"items": [{"env": "notes", "scenario": "file-two", "trajectory": []}, ' + SURROGATE_ARGS + b"]}",
            ["body", "items", 1, "trajectory", 0, "arguments", "folder"],
            "lone UTF-16 surrogate",
        ),
        (
            "/v1/score",
            json.dumps({**SCORE, "trajectory": openai_call('{"folder": "\\ud800"}')}).encode(),
            ["body", "trajectory"],
            "call 0 ('list_notes'): arguments.folder: a string that holds a lone UTF-16 surrogate",
        ),
        (
            "/v1/score",
            json.dumps({**SCORE, "trajectory": openai_call('{"folder": NaN}')}).encode(),
            ["body", "trajectory"],
            "call 0 ('list_notes'): arguments.folder: not a finite number",
        ),
        (
            "/v1/score",
            json.dumps({**SCORE, "trajectory": openai_call(json.dumps(nested(80)))}).encode(),
            ["body", "trajectory"],
            "nested deeper than 60 levels",
        ),
        (
            "/v1/score",
            json.dumps({**SCORE, "trajectory": openai_call("[" * 100_000 + "]" * 100_000)}).encode(),
            ["body", "trajectory"],
            "arguments string is not JSON this service reads",
        ),
    ],
)
def test_arguments_a_score_cannot_carry_back_are_422_naming_where(
    farm: FarmProcess, validator: FarmProcess, where: str, path: str, body: bytes, loc: list[Any], says: str
) -> None:
    """Arguments nested 300 deep, lone surrogates, NaN (in the body or in an OpenAI arguments string): never a 500."""
    server = farm if where == "farm" else validator
    with server.client() as c:
        r = c.post(path, content=body, headers={"content-type": "application/json"})
        assert c.get("/healthz").status_code == 200
    assert r.status_code == 422, r.text[:500]
    (error,) = r.json()["detail"]
    assert error["loc"] == loc and says in error["msg"], error
    assert set(error) == {"loc", "msg", "type"}


def test_a_valid_surrogate_pair_is_text_and_scores(farm: FarmProcess) -> None:
    """An emoji escaped as a surrogate pair (what json.dumps writes by default) is valid text, not refused."""
    body = (
        b'{"env": "notes", "scenario": "file-two", "trajectory": '
        b'[{"tool": "add_note", "arguments": {"folder": "work", "title": "\\ud83d\\ude00"}}]}'
    )
    with farm.client() as c:
        r = c.post("/v1/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == 200 and r.json()["calls"][0]["result"]["title"] == "\U0001f600"


def test_a_check_error_no_encoder_takes_is_answered_escaped(tmp_path: Path) -> None:
    """A check's error is text from untrusted code: one holding a lone surrogate is escaped, not a 500."""
    root = tmp_path / "envs"
    shutil.copytree(FIXTURE_ENVS / "notes", root / "notes", ignore=shutil.ignore_patterns("__pycache__"))
    path = root / "notes" / "scenarios" / "file-two.json"
    scenario = json.loads(path.read_text())
    code = "def check(initial, final):\n    raise ValueError(chr(0xD800) + 'x' * 5000)"
    scenario["checks"].append({"id": "odd", "description": "raises what no encoder takes", "code": code})
    path.write_text(json.dumps(scenario))
    env = {**os.environ, "ENVFARM_ENV_PATH": str(root)}
    manifest = [sys.executable, "-m", "envfarm.cli", "manifest", "notes", "--write"]
    subprocess.run(manifest, env=env, check=True, capture_output=True, cwd=REPO)
    farm = start_farm("notes", env={"ENVFARM_ENV_PATH": str(root)})
    try:
        with farm.client() as c:
            r = c.post("/v1/score", json={"env": "notes", "scenario": "file-two", "trajectory": []})
    finally:
        stop_farm(farm)
    assert r.status_code == 200, r.text[:300]
    odd = r.json()["checks"][-1]
    assert odd["passed"] is False and odd["error"].startswith("raised ValueError: \\ud800xxx")
    assert len(odd["error"]) < 2100
