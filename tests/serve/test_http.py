"""The farm over real HTTP: the control API, and MCP with the official SDK client in every protocol era."""

from __future__ import annotations

import json

import httpx
import pytest
from conftest import FarmProcess, start_farm, stop_farm
from mcp import Client

pytestmark = pytest.mark.anyio

MODERN, LEGACY = "auto", "legacy"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def test_envs_and_scenarios(farm: FarmProcess) -> None:
    with farm.client() as c:
        envs = {e["id"]: e for e in c.get("/v1/envs").json()}
        assert envs["notes"]["tools"] == ["list_notes", "add_note"]
        assert envs["notes"]["scenario_count"] == 1
        manifest = c.get("/v1/envs/notes").json()
        assert manifest["tools"][0]["input_schema"]["properties"]["folder"]["description"] == "the folder's name"
        public = c.get("/v1/envs/notes/scenarios").json()
        assert public == [
            {"id": "file-two", "task": "File two notes in 'work': 'standup' and 'retro'.", "split": "train"}
        ]
        full = c.get("/v1/envs/notes/scenarios/file-two").json()
        assert [k["id"] for k in full["checks"]] == ["standup", "retro"] and len(full["oracle"]) == 3


def test_episode_lifecycle(farm: FarmProcess) -> None:
    with farm.client() as c:
        created = c.post("/v1/episodes", json={"env": "notes", "scenario": "file-two", "seed": 5})
        assert created.status_code == 201
        body = created.json()
        assert set(body) == {"episode_id", "env", "scenario", "mcp_url", "task"}
        assert body["mcp_url"] == f"{farm.url}/episodes/{body['episode_id']}/mcp"
        episode = f"/v1/episodes/{body['episode_id']}"
        state = c.get(f"{episode}/state").json()
        assert [r["name"] for r in state["state"]["folders"]] == ["work", "home"]
        reset = c.post(f"{episode}/reset").json()
        assert reset["state_hash"] == state["state_hash"]
        assert c.delete(episode).status_code == 204
        gone = c.get(f"{episode}/state")
        assert gone.status_code == 404
        assert gone.json()["detail"] == f"episode {body['episode_id']!r} not found: episode was deleted"


def test_caller_chosen_episode_id(farm: FarmProcess) -> None:
    """A router (or a trainer) may name the episode; an id in use is 409, an ended one may be used again."""
    with farm.client() as c:
        created = c.post("/v1/episodes", json={"env": "notes", "episode_id": "run7-agent3_ep-12"})
        assert created.status_code == 201
        body = created.json()
        assert body["episode_id"] == "run7-agent3_ep-12"
        assert body["mcp_url"] == f"{farm.url}/episodes/run7-agent3_ep-12/mcp"
        assert c.get("/v1/episodes/run7-agent3_ep-12/state").status_code == 200
        again = c.post("/v1/episodes", json={"env": "notes", "episode_id": "run7-agent3_ep-12"})
        assert again.status_code == 409
        assert again.json()["detail"] == (
            "episode 'run7-agent3_ep-12' is already live on this farm; choose another id, "
            "or end it first with DELETE /v1/episodes/run7-agent3_ep-12"
        )
        assert c.delete("/v1/episodes/run7-agent3_ep-12").status_code == 204
        reused = c.post("/v1/episodes", json={"env": "notes", "episode_id": "run7-agent3_ep-12"})
        assert reused.status_code == 201
        assert c.get("/v1/episodes/run7-agent3_ep-12").json()["calls"] == 0
        c.delete("/v1/episodes/run7-agent3_ep-12")
        minted = c.post("/v1/episodes", json={"env": "notes", "episode_id": None}).json()["episode_id"]
        assert minted.startswith("ep_") and len(minted) == 27


@pytest.mark.parametrize("bad", ["", "-lead", "_lead", "a/b", "a b", "é", "a" * 65, "x\n", 12, ["x"]])
def test_bad_episode_ids_are_422(farm: FarmProcess, bad: object) -> None:
    with farm.client() as c:
        r = c.post("/v1/episodes", json={"env": "notes", "episode_id": bad})
    assert r.status_code == 422
    assert [e["loc"] for e in r.json()["detail"]] == [["body", "episode_id"]]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("GET", "/v1/envs/zoo", None, 404, "no environment 'zoo'; this farm serves"),
        ("GET", "/v1/envs/notes/scenarios/zz", None, 404, "no scenario 'zz' in 'notes'"),
        ("POST", "/v1/episodes", {"env": "zoo"}, 404, "no environment 'zoo'"),
        ("POST", "/v1/episodes", {"env": "notes", "scenario": "zz"}, 404, "no scenario 'zz'"),
        ("POST", "/v1/episodes/ep_nope/reset", None, 404, "not found: no such episode in this farm process"),
        ("DELETE", "/v1/episodes/ep_nope", None, 404, "not found"),
    ],
)
def test_unknown_ids_are_404_with_a_reason(
    farm: FarmProcess, method: str, path: str, body: dict | None, status: int, detail: str
) -> None:
    with farm.client() as c:
        r = c.request(method, path, json=body)
    assert r.status_code == status
    assert detail in r.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "env"),
        ({"env": 3}, "env"),
        ({"env": "notes", "seed": "x"}, "seed"),
        ({"env": "notes", "x": 1}, "x"),
    ],
)
def test_bad_bodies_are_422_naming_the_field(farm: FarmProcess, body: dict, field: str) -> None:
    with farm.client() as c:
        r = c.post("/v1/episodes", json=body)
    assert r.status_code == 422
    assert any(err["loc"][-1] == field for err in r.json()["detail"])


def test_not_json_is_422(farm: FarmProcess) -> None:
    with farm.client() as c:
        r = c.post("/v1/episodes", content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 422
    (error,) = r.json()["detail"]
    assert error["type"] == "json_invalid" and error["msg"].startswith("JSON decode error: ")


DEEP = b'{"env": "notes", "seed": ' + b"[" * 300 + b"]" * 300 + b"}"


@pytest.mark.parametrize(
    ("body", "loc", "kind"),
    [
        (b'{"env": "\\ud800"}', ["body", "env"], "string_unicode"),
        (b'{"env": "notes", "scenario": "a\\udfffb"}', ["body", "scenario"], "string_unicode"),
        (b'{"env": "notes", "\\ud800": 1}', ["body", "'\\ud800'"], "key_unicode"),
        (DEEP, ["body", "seed", *[0] * 63], "json_depth"),
        (b"[" * 100_000 + b"]" * 100_000, ["body"], "json_depth"),
        (b'{"env": "notes", "seed": NaN}', ["body", "seed"], "finite_number"),
        (b'{"env": "notes", "seed": 1e999}', ["body", "seed"], "finite_number"),
        (b'{"env": "notes", "seed": ' + b"9" * 5000 + b"}", ["body"], "number_too_long"),
        (b'{"env": "\xff\xfe"}', ["body"], "utf8"),
    ],
)
def test_input_the_farm_cannot_give_back_is_422_naming_the_field(
    farm: FarmProcess, body: bytes, loc: list[object], kind: str
) -> None:
    """Lone surrogates, NaN, nesting past 64 levels, invalid UTF-8: refused where they enter, never a 500."""
    with farm.client() as c:
        r = c.post("/v1/episodes", content=body, headers={"content-type": "application/json"})
        (error,) = r.json()["detail"]
        assert r.status_code == 422 and error["loc"] == loc and error["type"] == kind, r.text
        assert set(error) == {"loc", "msg", "type"}
        assert c.get("/healthz").status_code == 200


def test_422_never_echoes_the_input(farm: FarmProcess) -> None:
    """FastAPI's validation errors carry ``input`` (and megabytes of it); the farm answers loc, msg, type only."""
    with farm.client() as c:
        wrong_type = c.post("/v1/episodes", json={"env": "notes", "seed": "s" * 1_000_000})
        extra_key = c.post("/v1/episodes", json={"env": "notes", "k" * 1_000_000: 1})
        many = c.post("/v1/episodes", json={"env": "notes", **{f"k{i}": i for i in range(50_000)}})
    for r in (wrong_type, extra_key, many):
        assert r.status_code == 422 and len(r.content) < 5000, r.text[:500]
        assert all(set(e) == {"loc", "msg", "type"} for e in r.json()["detail"])
    assert wrong_type.json()["detail"][0]["loc"] == ["body", "seed"]
    assert extra_key.json()["detail"][0]["loc"][1].endswith("… (1000000 characters)")
    assert many.json()["detail"][-1] == {
        "loc": ["body"],
        "msg": "and 49980 more errors like these (only the first 20 are listed)",
        "type": "too_many_errors",
    }


def test_a_long_value_is_quoted_briefly(farm: FarmProcess) -> None:
    with farm.client() as c:
        env = c.post("/v1/episodes", json={"env": "z" * 1_000_000})
        episode = c.get("/v1/episodes/" + "e" * 10_000)
    assert env.status_code == 404 and len(env.content) < 1000
    assert env.json()["detail"].startswith("no environment 'zzzz") and "… (1000000 characters)" in env.text
    assert episode.status_code == 404 and len(episode.content) < 1000
    assert "… (10000 characters)" in episode.json()["detail"]


def test_every_error_is_json(farm: FarmProcess) -> None:
    """Unknown paths and wrong methods too: ``{"detail": ...}`` on the control API."""
    with farm.client() as c:
        unknown = c.get("/nope")
        wrong = c.put("/v1/envs")
    assert unknown.status_code == 404 and unknown.json() == {"detail": "Not Found"}
    assert wrong.status_code == 405 and wrong.json() == {"detail": "Method Not Allowed"}
    assert wrong.headers["allow"] == "GET"


@pytest.mark.parametrize("mode", [MODERN, LEGACY])
async def test_mcp_client_lists_and_calls_tools(farm: FarmProcess, mode: str) -> None:
    episode = farm.open_episode("notes")
    async with Client(episode["mcp_url"], mode=mode) as client:
        assert client.protocol_version == ("2026-07-28" if mode == MODERN else "2025-11-25")
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["list_notes", "add_note"]
        assert tools[0].annotations is not None and tools[0].annotations.read_only_hint is True
        assert tools[1].input_schema["required"] == ["folder", "title"]
        ok = await client.call_tool("add_note", {"folder": "work", "title": "standup"})
        assert not ok.is_error and ok.structured_content == {
            "id": 2,
            "title": "standup",
            "created": "2026-03-14",
        }
        bad_calls = {
            ("add_note", "folder", 1): "add_note: invalid arguments: missing required argument: 'title'; "
            "argument 'folder': 1 is not of type 'string'",
            ("add_note", "folder", "work"): "add_note: invalid arguments: missing required argument: 'title'",
            ("list_notes", "folder", "attic"): "list_notes: no folder named 'attic'",
            ("erase", "folder", "work"): "unknown tool 'erase' in 'notes'; tools are: list_notes, add_note",
        }
        for (tool, arg, value), message in bad_calls.items():
            result = await client.call_tool(tool, {arg: value})
            assert result.is_error and result.content[0].text == message  # type: ignore[union-attr]
        duplicate = await client.call_tool("add_note", {"folder": "work", "title": "standup"})
        assert duplicate.is_error
        listed = await client.call_tool("list_notes", {"folder": "work"})  # the episode goes on
        assert '"title":"standup"' in listed.content[0].text  # type: ignore[union-attr]
    with farm.client() as c:
        notes = c.get(f"/v1/episodes/{episode['episode_id']}/state").json()["state"]["notes"]
    assert [n["title"] for n in notes] == ["groceries", "standup"]


def test_protocol_2025_06_18_over_raw_http(farm: FarmProcess) -> None:
    """An older handshake-era client (e.g. MCP Inspector) that speaks 2025-06-18."""
    url = farm.open_episode("notes")["mcp_url"]
    headers = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"},
        },
    }
    with httpx.Client(timeout=10) as http:
        r = http.post(url, json=init, headers=headers)
        assert r.status_code == 200 and r.json()["result"]["protocolVersion"] == "2025-06-18"
        headers["mcp-protocol-version"] = "2025-06-18"
        http.post(url, json={"jsonrpc": "2.0", "method": "notifications/initialized"}, headers=headers)
        listed = http.post(url, json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}, headers=headers).json()
        assert [t["name"] for t in listed["result"]["tools"]] == ["list_notes", "add_note"]
        call = {
            "jsonrpc": "2.0",
            "id": 3,
            "method": "tools/call",
            "params": {"name": "add_note", "arguments": {}},
        }
        result = http.post(url, json=call, headers=headers).json()["result"]
        assert result["isError"] is True and "missing required argument: 'folder'" in result["content"][0]["text"]


def test_mcp_on_a_deleted_episode_is_404_with_the_reason(farm: FarmProcess) -> None:
    episode = farm.open_episode("notes")
    with farm.client() as c:
        c.delete(f"/v1/episodes/{episode['episode_id']}")
        r = c.post(
            episode["mcp_url"],
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"accept": "application/json, text/event-stream", "mcp-protocol-version": "2026-07-28"},
        )
    assert r.status_code == 404 and r.json()["id"] == 1  # the request's id, not null
    assert r.json()["error"]["message"] == f"episode {episode['episode_id']!r} not found: episode was deleted"


@pytest.mark.parametrize("method", ["GET", "DELETE", "PUT", "PATCH"])
def test_mcp_endpoint_takes_post_only(farm: FarmProcess, method: str) -> None:
    """No event stream to GET (the farm sends no server-initiated messages), no session to DELETE: 405, as JSON-RPC."""
    url = farm.open_episode("notes")["mcp_url"]
    with farm.client() as c:
        r = c.request(method, url, headers={"accept": "text/event-stream", "mcp-protocol-version": "2025-06-18"})
    assert r.status_code == 405 and r.headers["allow"] == "POST"
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["jsonrpc"] == "2.0" and body["id"] is None and body["error"]["code"] == -32600
    assert "POST only" in body["error"]["message"] and "no server-initiated messages" in body["error"]["message"]


JSON_AND_SSE = {"accept": "application/json, text/event-stream", "content-type": "application/json"}


def test_no_stream_opens_on_the_2026_wire_either(farm: FarmProcess) -> None:
    """``subscriptions/listen`` (2026-07-28's way to open a server event stream) is not served: method not found."""
    url = farm.open_episode("notes")["mcp_url"]
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {}}
    listen = {
        "jsonrpc": "2.0",
        "id": 3,
        "method": "subscriptions/listen",
        "params": {"_meta": meta, "notifications": {"toolsListChanged": True}},
    }
    headers = {**JSON_AND_SSE, "mcp-protocol-version": "2026-07-28", "mcp-method": "subscriptions/listen"}
    with farm.client() as c:
        r = c.post(url, json=listen, headers=headers)
    assert r.status_code == 404 and r.headers["content-type"] == "application/json"
    assert r.json()["id"] == 3 and r.json()["error"]["code"] == -32601


CALL = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "add_note", "arguments": {}}}


def _call(title: bytes) -> bytes:
    return (
        json.dumps(CALL)
        .encode()
        .replace(b'"arguments": {}', b'"arguments": {"folder": "work", "title": ' + title + b"}")
    )


@pytest.mark.parametrize(
    ("headers", "body", "status", "code", "says"),
    [
        ({"mcp-protocol-version": "2025-06-18"}, _call(b'"\\ud800"'), 400, -32602, "params.arguments.title: a string"),
        ({"mcp-protocol-version": "2026-07-28"}, _call(b'"\\ud800"'), 400, -32602, "lone UTF-16 surrogate"),
        ({}, _call(b"[" * 70 + b"]" * 70), 400, -32602, "nested deeper than 64 levels"),
        ({}, _call(b"NaN"), 400, -32602, "not a finite number"),
        ({"content-type": "text/plain"}, json.dumps(CALL).encode(), 400, -32600, "Content-Type: application/json"),
        (
            {"accept": "text/html", "mcp-protocol-version": "2026-07-28"},
            json.dumps(CALL).encode(),
            406,
            -32600,
            "Accept",
        ),
        ({}, json.dumps({**CALL, "params": []}).encode(), 400, -32602, "not one JSON-RPC 2.0 request"),
    ],
)
def test_mcp_errors_are_jsonrpc_errors_with_the_request_id(
    farm: FarmProcess, headers: dict[str, str], body: bytes, status: int, code: int, says: str
) -> None:
    url = farm.open_episode("notes")["mcp_url"]
    with farm.client() as c:
        r = c.post(url, content=body, headers={**JSON_AND_SSE, **headers})
        assert c.get(url.replace("/episodes/", "/v1/episodes/").removesuffix("/mcp")).json()["calls"] == 0
    assert r.status_code == status and r.headers["content-type"] == "application/json", r.text
    answer = r.json()
    assert answer["jsonrpc"] == "2.0" and answer["id"] == 7 and answer["error"]["code"] == code
    assert says in answer["error"]["message"]
    assert "input_value" not in r.text  # pydantic's echo of the input is not passed on


def test_mcp_unknown_episode_and_body_over_the_limit_are_jsonrpc_errors() -> None:
    small = start_farm("notes", "--max-body-bytes", "2000")
    try:
        url = small.open_episode("notes")["mcp_url"]
        with small.client() as c:
            unknown = c.post(f"{small.url}/episodes/ep_nope/mcp", json={**CALL, "id": "abc"}, headers=JSON_AND_SSE)
            big = c.post(url, json={**CALL, "params": {"pad": "x" * 5000}}, headers=JSON_AND_SSE)
    finally:
        stop_farm(small)
    assert unknown.status_code == 404 and unknown.json()["id"] == "abc"
    assert "no such episode in this farm process" in unknown.json()["error"]["message"]
    assert big.status_code == 413 and big.headers["content-type"] == "application/json"
    assert big.json()["id"] is None  # past the limit, the body is not read
    assert "over the limit of 2000 bytes (ENVFARM_MAX_BODY_BYTES)" in big.json()["error"]["message"]


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({"host": "evil.example.com"}, 421),
        ({"host": "evil.example.com:8000"}, 421),
        ({"origin": "http://evil.example.com"}, 403),
        ({"origin": "http://localhost:1234"}, 200),
        ({"host": "localhost:9"}, 200),
    ],
)
def test_dns_rebinding_is_refused(farm: FarmProcess, headers: dict[str, str], status: int) -> None:
    with farm.client() as c:
        r = c.get("/v1/envs", headers=headers)
        assert r.status_code == status, r.text
        mcp = c.post("/episodes/ep_x/mcp", json=CALL, headers={**JSON_AND_SSE, **headers})
    if status != 200:  # on an MCP endpoint the same refusal is a JSON-RPC error
        assert mcp.status_code == status and "DNS rebinding" in mcp.json()["error"]["message"]


def test_bearer_token_when_configured() -> None:
    secured = start_farm("notes", "--token", "s3cret")
    try:
        with secured.client() as c:
            assert c.get("/healthz").status_code == 200  # probes need no token
            refused = c.get("/v1/envs")
            assert refused.status_code == 401 and "bearer token" in refused.json()["detail"]
            assert c.get("/v1/envs", headers={"authorization": "Bearer s3cret"}).status_code == 200
            mcp = c.post("/episodes/ep_x/mcp", json=CALL, headers=JSON_AND_SSE)  # an MCP endpoint: JSON-RPC
            assert mcp.status_code == 401 and mcp.headers["www-authenticate"] == "Bearer"
            assert mcp.json()["error"]["code"] == -32600 and "bearer token" in mcp.json()["error"]["message"]
    finally:
        stop_farm(secured)
