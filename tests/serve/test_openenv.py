"""OpenEnv's protocol at /openenv/{env}, driven by openenv-core's own client classes against a real farm.

openenv-core (pinned, 0.3.0) is installed without its UI stack: ``pip install --no-deps openenv-core==0.3.0``
beside the dev extra, which holds the few packages its client classes import (.ci/run does both). Raw
WebSocket and HTTP requests check the exact message shapes and that bad input is an OpenEnv error, never a 500.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from typing import Any

import pytest
from conftest import REPO, FarmProcess, start_farm, stop_farm

INSTALL = "pip install --no-deps openenv-core==0.3.0"
if not os.environ.get("CI"):  # CI installs it (.ci/run): there a missing package fails, never skips
    pytest.importorskip("openenv.core.mcp_client", reason=f"openenv-core is not installed: {INSTALL}")

from openenv.core.env_server.mcp_types import CallToolAction, ListToolsAction  # noqa: E402
from openenv.core.env_server.types import EnvironmentMetadata, HealthResponse, SchemaResponse, State  # noqa: E402
from openenv.core.generic_client import GenericEnvClient  # noqa: E402
from openenv.core.mcp_client import MCPToolClient  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import InvalidStatus  # noqa: E402

from envfarm.core.environments import load_catalog  # noqa: E402
from envfarm.core.scenarios import split_of  # noqa: E402

LIBRARY = load_catalog(["library"])["library"]
NOTES_TASK = "File two notes in 'work': 'standup' and 'retro'."


def base(farm: FarmProcess, env: str) -> str:
    return f"{farm.url}/openenv/{env}"


def ws_url(farm: FarmProcess, env: str) -> str:
    return base(farm, env).replace("http://", "ws://") + "/ws"


def eventually(check: Any, timeout: float = 10) -> None:
    """Wait for ``check()`` to hold: a client's close returns before the server has ended the session."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the condition did not hold in time"
        time.sleep(0.05)


def oracle(env: str, scenario: str) -> list[dict[str, Any]]:
    return list(load_catalog([env])[env].scenarios[scenario].model_dump(mode="json")["oracle"])


@pytest.fixture(scope="module")
def notes_farm() -> Any:
    """A farm of the notes fixture env alone, whose output is checked for tracebacks at the end."""
    farm = start_farm("notes")
    yield farm
    stop_farm(farm)
    output = farm.process.stdout.read().decode() if farm.process.stdout else ""
    assert "Traceback" not in output and "Exception in ASGI application" not in output, output[-5000:]


async def test_reset_list_tools_oracle_done_scores_one(farm: FarmProcess) -> None:
    scenario = LIBRARY.scenarios["return-and-pay"]
    async with MCPToolClient(base_url=base(farm, "library")) as env:
        reset = await env.reset(scenario="return-and-pay")
        meta = reset.observation.metadata
        assert (reset.done, reset.reward) == (False, None)
        assert meta["task"] == scenario.task and meta["scenario"] == "return-and-pay" and meta["env"] == "library"
        assert meta["description"] == LIBRARY.description and meta["rules"] == LIBRARY.rules
        assert meta["split"] == split_of(scenario)
        episode_id = meta["episode_id"]

        tools = await env.list_tools()
        with farm.client() as c:
            manifest = c.get("/v1/envs/library").json()
            assert c.get(f"/v1/episodes/{episode_id}").status_code == 200  # a farm episode like any other
        assert [(t.name, t.description, t.input_schema) for t in tools] == [
            (t["name"], t["description"], t["input_schema"]) for t in manifest["tools"]
        ]

        for call in scenario.oracle:
            step = await env.step(CallToolAction(tool_name=call.tool, arguments=call.arguments))
            assert step.observation.error is None, step.observation.error
            assert step.observation.result["is_error"] is False and step.done is False
        value = await env.call_tool("get_member_account", member_id=1)  # call_tool returns the data
        assert isinstance(value, dict) and value["card_number"] == "LIB-100001"

        state = await env.state()
        assert isinstance(state, State) and state.episode_id == episode_id
        assert state.step_count == 1 + len(scenario.oracle) + 1  # list_tools, the oracle, get_member_account

        end = await env.step(CallToolAction(tool_name="done"))
        assert end.done is True and end.reward == 1.0
        assert end.observation.result["data"]["success"] is True
        assert all(check["passed"] for check in end.observation.result["data"]["checks"])
        with farm.client() as c:
            gone = c.get(f"/v1/episodes/{episode_id}")
        assert gone.status_code == 404 and "done" in gone.json()["detail"]
        after = await env.state()
        assert (after.episode_id, after.step_count) == (episode_id, state.step_count + 1)
        with pytest.raises(RuntimeError, match="is done .*send reset"):
            await env.call_tool("find_member", query="Ada")


async def test_every_environment_scores_its_oracle_one(farm: FarmProcess) -> None:
    """One scenario of each environment, all at once: the oracle's steps, then done, reward 1.0."""
    with farm.client() as c:
        envs = [e["id"] for e in c.get("/v1/envs").json()]

    async def play(env_id: str) -> tuple[str, float | None]:
        async with GenericEnvClient(base_url=base(farm, env_id)) as env:
            reset = await env.reset()
            meta = reset.observation["metadata"]
            for call in oracle(env_id, meta["scenario"]):
                step = await env.step({"type": "call_tool", "tool_name": call["tool"], "arguments": call["arguments"]})
                assert step.observation["result"]["is_error"] is call.get("refused", False), (env_id, call, step)
            end = await env.step({"type": "done"})
            assert end.done and end.observation["metadata"]["episode_id"] == meta["episode_id"]
            return env_id, end.reward

    results = await asyncio.gather(*(play(e) for e in envs))
    assert {env: reward for env, reward in results} == {env: 1.0 for env in envs}


async def test_a_wrong_episode_scores_below_one(notes_farm: FarmProcess) -> None:
    async with MCPToolClient(base_url=base(notes_farm, "notes")) as env:
        await env.reset()
        end = await env.step(CallToolAction(tool_name="done"))  # nothing done
        assert end.done and end.reward == 0.0 and end.observation.result["data"]["success"] is False

        await env.reset()
        await env.call_tool("add_note", folder="work", title="standup")  # half the task
        refused = await env.step(CallToolAction(tool_name="add_note", arguments={"folder": "work", "title": 5}))
        assert refused.observation.error.error_type.value == "invalid_args"
        end = await env.step(CallToolAction(tool_name="done"))
        assert end.reward == 0.5 and end.observation.result["data"]["success"] is False


async def test_64_concurrent_sessions_do_not_leak(notes_farm: FarmProcess) -> None:
    """Each session writes its own note and sees only its own; rewards are each session's own."""

    async def session(i: int) -> tuple[str, float | None, list[str]]:
        async with MCPToolClient(base_url=base(notes_farm, "notes"), message_timeout_s=120) as env:
            reset = await env.reset(episode_id=f"openenv-leak-{i}")
            await env.call_tool("add_note", folder="work", title=f"mine-{i}")
            if i % 2 == 0:
                await env.call_tool("add_note", folder="work", title="standup")
                await env.call_tool("add_note", folder="work", title="retro")
            listed = await env.call_tool("list_notes", folder="work")
            titles = sorted(n["title"] for n in listed)
            end = await env.step(CallToolAction(tool_name="done"))
            return reset.observation.metadata["episode_id"], end.reward, titles

    results = await asyncio.gather(*(session(i) for i in range(64)))
    for i, (episode_id, reward, titles) in enumerate(results):
        assert episode_id == f"openenv-leak-{i}"
        assert titles == (sorted([f"mine-{i}", "standup", "retro"]) if i % 2 == 0 else [f"mine-{i}"])
        assert reward == (1.0 if i % 2 == 0 else 0.0)
    with notes_farm.client() as c:
        assert not [e for e in c.get("/v1/episodes").json() if e["episode_id"].startswith("openenv-leak-")]


async def test_a_session_holds_one_episode_and_closing_deletes_it(notes_farm: FarmProcess) -> None:
    async with GenericEnvClient(base_url=base(notes_farm, "notes")) as env:
        first = (await env.reset()).observation["metadata"]["episode_id"]
        with pytest.raises(RuntimeError, match="no scenario 'zzz'"):
            await env.reset(scenario="zzz")  # a reset that names no scenario leaves the episode it had
        assert (await env.state())["episode_id"] == first
        second = (await env.reset()).observation["metadata"]["episode_id"]
        with notes_farm.client() as c:
            replaced = c.get(f"/v1/episodes/{first}")
            assert replaced.status_code == 404 and "replaced" in replaced.json()["detail"]
            assert c.get(f"/v1/episodes/{second}").status_code == 200
    with notes_farm.client() as c:
        eventually(lambda: c.get(f"/v1/episodes/{second}").status_code == 404)
        closed = c.get(f"/v1/episodes/{second}")
    assert "closed with its OpenEnv session" in closed.json()["detail"]


async def test_scenarios_by_name_seed_and_split(farm: FarmProcess) -> None:
    tests = sorted(s.id for s in LIBRARY.scenarios.values() if split_of(s) == "test")
    async with GenericEnvClient(base_url=base(farm, "library")) as env:
        picked = [(await env.reset(split="test")).observation["metadata"]["scenario"] for _ in range(len(tests) + 1)]
        assert sorted(set(picked)) == tests and picked[0] == picked[-1]  # the next of the split, round and round
        by_seed = (await env.reset(seed=11)).observation["metadata"]["scenario"]
        with farm.client() as c:
            opened = c.post("/v1/episodes", json={"env": "library", "seed": 11}).json()
            c.delete(f"/v1/episodes/{opened['episode_id']}")
        assert by_seed == opened["scenario"]  # the same draw as the control API's
        with pytest.raises(RuntimeError, match="VALIDATION_ERROR"):
            await env.reset(scenario="no-such-scenario")
        with pytest.raises(RuntimeError, match="scenaro"):
            await env.reset(scenaro="return-and-pay")  # a typo is named, not ignored


async def test_health_schema_metadata_validate_as_openenv_models(farm: FarmProcess) -> None:
    with farm.client() as c:
        HealthResponse.model_validate(c.get("/openenv/library/health").json())
        schema = SchemaResponse.model_validate(c.get("/openenv/library/schema").json())
        meta = EnvironmentMetadata.model_validate(c.get("/openenv/library/metadata").json())
        missing = c.get("/openenv/nowhere/health")
    assert {"list_tools", "call_tool", "done"} <= set(json.dumps(schema.action).split('"')) and "step_count" in str(
        schema.state
    )
    assert meta.name == "library" and "loan-limit" in (meta.readme_content or "")
    assert missing.status_code == 404 and "nowhere" in missing.json()["detail"]
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(farm, "nowhere")):
            pass
    assert refused.value.response.status_code == 404 and b"nowhere" in refused.value.response.body


async def test_http_reset_step_state_done(notes_farm: FarmProcess) -> None:
    with notes_farm.client() as c:
        reset = c.post("/openenv/notes/reset", json={})
        assert reset.status_code == 200 and set(reset.json()) == {"observation", "reward", "done"}
        episode_id = reset.json()["observation"]["metadata"]["episode_id"]
        listed = c.post("/openenv/notes/step", json={"action": {"type": "list_tools"}})  # needs no episode
        assert [t["name"] for t in listed.json()["observation"]["tools"]] == ["list_notes", "add_note"]
        for title in ("standup", "retro"):
            action = {"type": "call_tool", "tool_name": "add_note", "arguments": {"folder": "work", "title": title}}
            step = c.post("/openenv/notes/step", json={"action": action, "episode_id": episode_id})
            assert step.status_code == 200 and step.json()["observation"]["error"] is None
        state = c.get("/openenv/notes/state", params={"episode_id": episode_id}).json()
        assert state["step_count"] == 2 and state["tool_calls"] == 2 and len(state["state_hash"]) == 64
        assert c.get("/openenv/notes/state").json() == State().model_dump() | {
            "env": None,
            "scenario": None,
            "state_hash": None,
            "tool_calls": 0,
            "done": False,
            "reward": None,
        }
        end = c.post("/openenv/notes/step", json={"action": {"type": "done"}, "episode_id": episode_id})
        assert end.json()["done"] is True and end.json()["reward"] == 1.0
        again = c.post("/openenv/notes/step", json={"action": {"type": "done"}, "episode_id": episode_id})
        assert again.status_code == 404 and "done" in again.json()["detail"]
        orphan = c.post("/openenv/notes/step", json={"action": {"type": "call_tool", "tool_name": "list_notes"}})
        assert orphan.status_code == 409 and "reset" in orphan.json()["detail"]


async def test_mcp_messages_on_the_session(notes_farm: FarmProcess) -> None:
    async with connect(ws_url(notes_farm, "notes")) as ws:
        await ws.send(json.dumps({"type": "reset", "data": {}}))
        assert json.loads(await ws.recv())["type"] == "observation"
        await ws.send(json.dumps({"type": "mcp", "data": {"jsonrpc": "2.0", "id": 7, "method": "tools/list"}}))
        listed = json.loads(await ws.recv())
        assert listed["type"] == "mcp" and listed["data"]["id"] == 7
        assert [t["name"] for t in listed["data"]["result"]["tools"]] == ["list_notes", "add_note"]
        call = {"name": "add_note", "arguments": {"folder": "work", "title": "x"}}
        await ws.send(
            json.dumps({"type": "mcp", "data": {"jsonrpc": "2.0", "id": 8, "method": "tools/call", "params": call}})
        )
        called = json.loads(await ws.recv())["data"]
        assert called["id"] == 8 and called["result"]["isError"] is False
        await ws.send(json.dumps({"type": "mcp", "data": {"jsonrpc": "2.0", "id": 9, "method": "resources/list"}}))
        assert json.loads(await ws.recv())["data"]["error"]["code"] == -32601


BAD_MESSAGES: list[tuple[str, str | bytes, str]] = [
    ("not json", "{nope", "INVALID_JSON"),
    ("a list", "[1, 2]", "INVALID_JSON"),
    ("unknown type", '{"type": "jump"}', "UNKNOWN_TYPE"),
    ("no type", '{"data": {}}', "UNKNOWN_TYPE"),
    ("step without data", '{"type": "step"}', "VALIDATION_ERROR"),
    ("extra field", '{"type": "state", "x": 1}', "VALIDATION_ERROR"),
    ("reset data not an object", '{"type": "reset", "data": 3}', "VALIDATION_ERROR"),
    ("unknown reset field", '{"type": "reset", "data": {"scenaro": "file-two"}}', "VALIDATION_ERROR"),
    ("unknown scenario", '{"type": "reset", "data": {"scenario": "zzz"}}', "VALIDATION_ERROR"),
    ("bad episode id", '{"type": "reset", "data": {"episode_id": "a b"}}', "VALIDATION_ERROR"),
    ("unknown action", '{"type": "step", "data": {"type": "fly"}}', "VALIDATION_ERROR"),
    ("action not an object", '{"type": "step", "data": "list_tools"}', "VALIDATION_ERROR"),
    ("tool_name missing", '{"type": "step", "data": {"type": "call_tool"}}', "VALIDATION_ERROR"),
    ("arguments a list", '{"type": "step", "data": {"tool_name": "add_note", "arguments": []}}', "VALIDATION_ERROR"),
    (
        "lone surrogate",
        '{"type": "step", "data": {"tool_name": "list_notes", "arguments": {"folder": "\\ud800"}}}',
        "VALIDATION_ERROR",
    ),
    ("NaN", '{"type": "step", "data": {"tool_name": "list_notes", "arguments": {"folder": NaN}}}', "VALIDATION_ERROR"),
    ("too deep", '{"type": "step", "data": ' + "[" * 100 + "]" * 100 + "}", "VALIDATION_ERROR"),
    ("not utf-8", b'{"type": "state"\xff}', "VALIDATION_ERROR"),
    ("huge number", '{"type": "reset", "data": {"seed": ' + "9" * 5000 + "}}", "VALIDATION_ERROR"),
]


async def test_bad_messages_are_openenv_errors_and_the_session_goes_on(notes_farm: FarmProcess) -> None:
    async with connect(ws_url(notes_farm, "notes")) as ws:
        await ws.send(json.dumps({"type": "step", "data": {"type": "call_tool", "tool_name": "list_notes"}}))
        error = json.loads(await ws.recv())
        assert (
            error["type"] == "error"
            and error["data"]["code"] == "SESSION_ERROR"
            and "reset" in error["data"]["message"]
        )
        for name, message, code in BAD_MESSAGES:
            await ws.send(message)
            answer = json.loads(await ws.recv())
            assert answer["type"] == "error" and answer["data"]["code"] == code, (name, answer)
            assert isinstance(answer["data"]["message"], str) and len(answer["data"]["message"]) < 2100, name
        # refused tool calls are observations with OpenEnv's ToolError, not failed steps
        await ws.send(json.dumps({"type": "reset", "data": {"scenario": "file-two"}}))
        assert json.loads(await ws.recv())["type"] == "observation"
        for action, error_type in [
            ({"tool_name": "fly"}, "tool_not_found"),
            ({"tool_name": "add_note", "arguments": {"folder": "work"}}, "invalid_args"),
            ({"tool_name": "add_note", "arguments": {"folder": "nowhere", "title": "t"}}, "execution_error"),
        ]:
            await ws.send(json.dumps({"type": "step", "data": {"type": "call_tool", **action}}))
            observation = json.loads(await ws.recv())["data"]["observation"]
            assert observation["error"]["error_type"] == error_type and observation["result"]["is_error"] is True
        await ws.send(json.dumps({"type": "state"}))
        state = json.loads(await ws.recv())
        assert state["type"] == "state" and state["data"]["step_count"] == 3
        await ws.send(json.dumps({"type": "close"}))
        await ws.wait_closed()


async def test_bad_http_bodies_are_json_errors_never_500(notes_farm: FarmProcess) -> None:
    with notes_farm.client() as c:
        cases = [
            c.post("/openenv/notes/step", json={"action": {"type": "fly"}}),
            c.post("/openenv/notes/step", json={"action": {"type": "call_tool"}}),
            c.post("/openenv/notes/step", json={"action": {"type": "list_tools"}, "extra": 1}),
            c.post("/openenv/notes/step", json={"action": {"type": "list_tools"}, "episode_id": "ep_missing"}),
            c.post("/openenv/notes/reset", json={"scenario": "zzz"}),
            c.post("/openenv/notes/reset", json={"split": "validation"}),
            c.post("/openenv/notes/reset", content=b"{nope", headers={"content-type": "application/json"}),
            c.get("/openenv/notes/state", params={"episode_id": "ep_missing"}),
            c.post(
                "/openenv/notes/step",
                content=b'{"action": {"tool_name": "list_notes", "arguments": {"folder": "\\ud800"}}}',
                headers={"content-type": "application/json"},
            ),
        ]
    assert [r.status_code for r in cases] == [422, 422, 422, 404, 404, 422, 422, 404, 422]
    for r in cases:
        assert "detail" in r.json(), r.text
    assert cases[0].json()["detail"][0]["loc"] == ["body", "action", "type"]


async def test_token_host_and_origin_are_checked_on_the_websocket() -> None:
    farm = start_farm("notes", "--token", "s3cret")
    try:
        url = ws_url(farm, "notes")
        with pytest.raises(InvalidStatus) as refused:
            async with connect(url):
                pass
        assert refused.value.response.status_code == 401
        with pytest.raises(ConnectionError, match="401"):
            async with MCPToolClient(base_url=base(farm, "notes")) as env:
                await env.reset()
        # OpenEnv's clients send no headers: the token goes as the URL's password (HTTP Basic)
        async with MCPToolClient(base_url=base(farm, "notes").replace("http://", "http://envfarm:s3cret@")) as env:
            assert (await env.reset()).observation.metadata["env"] == "notes"
        auth = {"authorization": "Bearer s3cret"}
        with pytest.raises(InvalidStatus) as wrong_host:
            async with connect(url, additional_headers={**auth, "host": "evil.example"}):
                pass
        assert wrong_host.value.response.status_code == 421
        with pytest.raises(InvalidStatus) as wrong_origin:
            async with connect(url, additional_headers=auth, origin="http://evil.example"):  # type: ignore[arg-type]
                pass
        assert wrong_origin.value.response.status_code == 403
        async with connect(url, additional_headers=auth) as ws:
            await ws.send(json.dumps({"type": "state"}))
            assert json.loads(await ws.recv())["type"] == "state"
        with farm.client() as c:
            assert c.get("/openenv/notes/health").status_code == 401
            assert c.get("/openenv/notes/health", headers=auth).status_code == 200
    finally:
        stop_farm(farm)


def metric(farm: FarmProcess, line_start: str) -> float:
    with farm.client() as c:
        text = c.get("/metrics").text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(line_start))


async def test_limits_reaping_and_metrics_apply() -> None:
    farm = start_farm("notes", "--max-episodes", "2", "--idle-timeout", "2")
    try:
        async with (
            MCPToolClient(base_url=base(farm, "notes")) as a,
            MCPToolClient(base_url=base(farm, "notes")) as b,
            MCPToolClient(base_url=base(farm, "notes")) as c,
        ):
            await a.reset()
            await b.reset()
            with pytest.raises(RuntimeError, match="CAPACITY_REACHED"):
                await c.reset()
            assert metric(farm, "envfarm_openenv_sessions ") == 3
            await a.call_tool("add_note", folder="work", title="standup")
            await a.step(CallToolAction(tool_name="no_such_tool"))
            assert metric(farm, 'envfarm_tool_calls_total{env="notes",outcome="ok",tool="add_note"}') == 1
            assert metric(farm, 'envfarm_tool_calls_total{env="notes",outcome="error",tool="(unknown)"}') == 1
            await a.step(CallToolAction(tool_name="done"))
            assert metric(farm, 'envfarm_episodes_ended_total{reason="done"}') == 1
            assert metric(farm, 'envfarm_scores_total{env="notes",kind="live"}') == 1
            await c.reset()  # a's episode ended, so there is room
            await asyncio.sleep(5)  # b and c idle past the timeout: reaped, as over MCP
            with pytest.raises(RuntimeError, match="reaped after .*SESSION_ERROR"):
                await b.call_tool("list_notes", folder="work")
            assert (await b.step(ListToolsAction())).observation.tools  # the session goes on: tools need no episode
        eventually(lambda: metric(farm, "envfarm_openenv_sessions ") == 0)
        assert metric(farm, 'envfarm_episodes_ended_total{reason="reaped"}') == 2
        assert metric(farm, 'envfarm_openenv_messages_total{kind="reset",outcome="error"}') == 1
    finally:
        stop_farm(farm)


def test_the_docs_client_example_runs(farm: FarmProcess) -> None:
    text = (REPO / "docs" / "openenv.md").read_text()
    match = re.search(r"<!-- docs-test: openenv-client -->\s*```python\n(.*?)```", text, re.DOTALL)
    assert match, "docs/openenv.md has no block marked docs-test: openenv-client"
    code = match.group(1).replace("http://127.0.0.1:8000", farm.url)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].startswith("task: ") and lines[2] == "Ada Okafor"
    assert re.fullmatch(r"done: True reward: 0\.\d+", lines[3])  # the task was not done: a partial reward
