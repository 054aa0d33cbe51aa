"""`envfarm stdio ENV --scenario ID`: one episode over stdio, with the official SDK client and with raw lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_stdio_lists_and_calls_tools() -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "envfarm.cli", "stdio", "notes", "--scenario", "file-two"],
        env={**os.environ},
    )
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        assert [t.name for t in tools] == ["list_notes", "add_note"]
        first = await client.call_tool("add_note", {"folder": "work", "title": "standup"})
        assert not first.is_error and first.structured_content is not None
        again = await client.call_tool("add_note", {"folder": "work", "title": "standup"})
        assert again.is_error
        assert again.content[0].text == "add_note: folder 'work' already has a note titled 'standup'"  # type: ignore[union-attr]
        wrong = await client.call_tool("add_note", {"folder": ["work"], "title": "x"})
        assert wrong.is_error and "argument 'folder'" in wrong.content[0].text  # type: ignore[union-attr]
        listed = await client.call_tool("list_notes", {"folder": "work"})
        assert listed.content[0].text.count('"title"') == 1  # type: ignore[union-attr]


# --- the wire itself: raw lines in, raw lines out, stdin closed at the end ----------------------------------------

STDIO = [sys.executable, "-m", "envfarm.cli", "stdio", "notes", "--scenario", "file-two"]
MAX_LINE_BYTES = 16 * 2**20  # envfarm.serve.stdio.MAX_LINE_BYTES, the HTTP endpoint's default body limit


def line(message: object) -> bytes:
    return json.dumps(message).encode() + b"\n"


def request(request_id: object, method: str, params: dict[str, object] | None = None) -> bytes:
    body: dict[str, object] = {"jsonrpc": "2.0", "id": request_id, "method": method}
    if params is not None:
        body["params"] = params
    return line(body)


INITIALIZE = request(
    1,
    "initialize",
    {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}},
) + line({"jsonrpc": "2.0", "method": "notifications/initialized"})


def call(request_id: int, tool: str, **arguments: object) -> bytes:
    return request(request_id, "tools/call", {"name": tool, "arguments": arguments})


def run_stdio(data: bytes) -> tuple[list[dict[str, Any]], str]:
    """Pipe ``data`` to `envfarm stdio notes`, close stdin; the messages it wrote and its stderr. It must exit 0."""
    done = subprocess.run(STDIO, input=data, capture_output=True, timeout=300, env={**os.environ})
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    return [json.loads(raw) for raw in done.stdout.splitlines()], stderr


def by_id(messages: list[dict[str, Any]]) -> dict[object, dict[str, Any]]:
    ids = [m["id"] for m in messages if m.get("id") is not None]
    assert len(ids) == len(set(ids)), f"answered twice: {ids}"
    return {m["id"]: m for m in messages if m.get("id") is not None}


def test_every_request_read_before_eof_is_answered() -> None:
    calls = [call(100 + i, "add_note", folder="work", title=f"note {i}") for i in range(200)]
    data = INITIALIZE + request(2, "tools/list") + b"".join(calls) + call(3, "list_notes", folder="work")
    answers = by_id(run_stdio(data)[0])
    assert set(answers) == {1, 2, 3, *range(100, 300)}
    assert answers[1]["result"]["serverInfo"]["name"] == "envfarm"
    assert [t["name"] for t in answers[2]["result"]["tools"]] == ["list_notes", "add_note"]
    assert all(answers[i]["result"]["isError"] is False for i in range(100, 300))
    assert answers[3]["result"]["isError"] is False


def test_bad_lines_get_json_rpc_errors_and_the_rest_is_served() -> None:
    lines = [
        b"not json\n",  # parse error
        b"\xff\xfe" + request(40, "ping"),  # not UTF-8: parse error
        line({"foo": 1}),  # JSON, not JSON-RPC
        line([{"jsonrpc": "2.0", "id": 41, "method": "ping"}]),  # a batch
        line([]),
        line(42),
        request(None, "ping"),  # a request's id is a string or an integer
        request(True, "ping"),
        request(1.5, "ping"),
        b"\n   \r\n",  # blank lines: nothing to answer
        INITIALIZE,
        request(43, "tools/call", "params are an object"),  # type: ignore[arg-type]
        line({"id": 44, "method": "ping"}),  # no "jsonrpc": "2.0"
        request(45, "no/such/method"),
        b'{"jsonrpc": "2.0", "id": 46, "method": "tools/call", "params": {"name": "list_notes", "arguments": '
        b'{"folder": "\\ud800"}}}\n',  # a lone surrogate: not text
        b'{"jsonrpc": "2.0", "id": 47, "method": "ping", "params": {"x": "' + b"a" * (MAX_LINE_BYTES + 1) + b'"}}\n',
        call(48, "list_notes", folder="f" * 2_000_000),  # long, but under the limit: the tool answers
        call(49, "add_note", folder=["work"], title="x"),
        call(50, "no_such_tool"),
        request(51, "ping")[:-1],  # the last line has no newline
    ]
    messages, stderr = run_stdio(b"".join(lines))
    unidentified = [m["error"] for m in messages if m.get("id") is None]
    parse, invalid = -32700, -32600
    assert [e["code"] for e in unidentified] == [parse, parse, *[invalid] * 7, parse, invalid]  # in line order
    assert unidentified[1]["message"] == "Parse error: not UTF-8 text (byte 0xff at offset 0)"
    assert "batches are not supported" in unidentified[3]["message"]
    assert unidentified[-1]["message"] == f"Invalid request: a message is at most {MAX_LINE_BYTES:,} bytes"
    answers = by_id(messages)
    assert set(answers) == {1, 43, 44, 45, 48, 49, 50, 51}
    assert answers[43]["error"]["code"] == -32600 and answers[44]["error"]["code"] == -32600
    assert answers[45]["error"]["code"] == -32601
    assert answers[48]["result"]["isError"] is True
    assert answers[48]["result"]["content"][0]["text"].startswith("list_notes: no folder named 'fff")
    assert (
        answers[49]["result"]["isError"] is True and "argument 'folder'" in answers[49]["result"]["content"][0]["text"]
    )
    assert answers[50]["result"]["isError"] is True and "unknown tool" in answers[50]["result"]["content"][0]["text"]
    assert answers[51]["result"] == {}
    assert "Task:" in stderr


def test_a_client_that_stops_reading_does_not_break_the_server() -> None:
    process = subprocess.Popen(
        STDIO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ}
    )
    assert process.stdin is not None and process.stdout is not None and process.stderr is not None
    process.stdout.close()  # nothing the server writes can arrive any more
    calls = b"".join(call(10 + i, "add_note", folder="work", title=f"n{i}") for i in range(50))
    process.stdin.write(INITIALIZE + calls + b"not json\n")
    process.stdin.close()
    assert process.wait(timeout=300) == 0
    stderr = process.stderr.read().decode(errors="replace")
    process.stderr.close()
    assert "Traceback" not in stderr, stderr
