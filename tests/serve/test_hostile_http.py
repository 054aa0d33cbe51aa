"""A hostile pass over every HTTP endpoint of the farm, the validator and the router (real processes).

Each case is sent as raw bytes over a socket, so nothing on the client side tidies it
up: very long strings, lone surrogates and invalid UTF-8 in bodies, paths and headers,
deep nesting, NaN and huge numbers, wrong types, huge arrays, bad content types, empty
bodies, wrong methods. Every answer must be clean: never a 5xx, never a dropped
connection, always JSON when it is an error (a JSON-RPC error on an MCP endpoint), and
the servers keep answering. Afterwards no server's log holds a traceback. The counts
are printed (``pytest -s``).

uvicorn's HTTP parser refuses some requests before any app sees them (a raw byte over
0x7f in the request line, say) with its own ``400 Invalid HTTP request received.`` in
plain text; those are counted apart as refused by the parser.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from conftest import REPO, free_port, wait_until_healthy

BODY_LIMIT = 1_000_000  # the servers here take bodies up to 1 MB, so "too big" stays quick
PARSER_REFUSAL = b"Invalid HTTP request received."
JSON_HEADERS = [(b"content-type", b"application/json")]
MCP_HEADERS = [
    (b"content-type", b"application/json"),
    (b"accept", b"application/json, text/event-stream"),
]
MODERN = [*MCP_HEADERS, (b"mcp-protocol-version", b"2026-07-28")]
LEGACY = [*MCP_HEADERS, (b"mcp-protocol-version", b"2025-06-18")]


@dataclass
class Server:
    """A serving process whose output goes to a file (a pipe could fill and stall it)."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        return parts.hostname or "127.0.0.1", parts.port or 80

    def stop(self) -> str:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        return self.log.read_text(errors="replace")


def start(command: str, *args: str, logs: Path) -> Server:
    port = free_port()
    log = logs / f"{command}-{port}.log"
    cmd = [sys.executable, "-m", "envfarm.cli", command, "--port", str(port), "--log-level", "warning", *args]
    with log.open("wb") as out:
        process = subprocess.Popen(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ))
    server = Server(f"http://127.0.0.1:{port}", process, log)
    wait_until_healthy(process, server.url, f"envfarm {command}")
    return server


@dataclass
class Answer:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def send_raw(
    address: tuple[str, int],
    method: bytes,
    target: bytes,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    chunked: bool = False,
) -> Answer:
    """One request, exactly these bytes, on its own connection; the answer parsed by hand."""
    lines = [method + b" " + target + b" HTTP/1.1", b"host: 127.0.0.1", b"connection: close"]
    names = {k.lower() for k, _ in headers}
    lines += [k + b": " + v for k, v in headers]
    if chunked:
        lines.append(b"transfer-encoding: chunked")
        payload = b"".join(b"%x\r\n" % len(part) + part + b"\r\n" for part in _parts(body)) + b"0\r\n\r\n"
    else:
        if b"content-length" not in names and (body or method in (b"POST", b"PUT", b"PATCH")):
            lines.append(b"content-length: " + str(len(body)).encode())
        payload = body
    with socket.create_connection(address, timeout=60) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # answered (413) before the whole body
            sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + payload)
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.split(b"\r\n")
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ConnectionError(f"no HTTP answer: {data[:200]!r}")
    answer_headers = {}
    for line in header_lines:
        name, _, value = line.partition(b":")
        answer_headers[name.strip().lower()] = value.strip()
    if answer_headers.get(b"transfer-encoding") == b"chunked":
        rest = _unchunk(rest)
    return Answer(int(parts[1]), answer_headers, rest)


def _parts(body: bytes, size: int = 65536) -> Iterator[bytes]:
    for i in range(0, len(body), size):
        yield body[i : i + size]


def _unchunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


@dataclass
class Case:
    label: str
    method: bytes
    target: bytes
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: bytes = b""
    chunked: bool = False


# -- hostile values --------------------------------------------------------------------------------

LONG = "x" * 600_000
DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
HOSTILE_JSON: dict[str, bytes] = {
    "lone high surrogate": b'"\\ud800"',
    "lone low surrogate": b'"a\\udfffb"',
    "reversed pair": b'"\\ude00\\ud83d"',
    "valid pair (emoji)": b'"\\ud83d\\ude00"',
    "NUL and controls": b'"a\\u0000b\\u001b[31m\\r\\n"',
    "right-to-left override": '"\u202eevil"'.encode(),
    "long string": json.dumps(LONG).encode(),
    "NaN": b"NaN",
    "Infinity": b"-Infinity",
    "1e999": b"1e999",
    "huge integer": b"9" * 5000,
    "big integer": b"9" * 1000,
    "float": b"1.5",
    "negative": b"-1",
    "true": b"true",
    "null": b"null",
    "empty object": b"{}",
    "empty array": b"[]",
    "nested 65": b"[" * 65 + b"]" * 65,
    "nested 300 objects": b'{"a":' * 300 + b"1" + b"}" * 300,
    "nested 100000": DEEP_ARRAY,
    "huge array": b"[" + b",".join([b"1"] * 200_000) + b"]",
    "array of objects": b"[" + b",".join([b'{"tool":"list_notes"}'] * 5000) + b"]",
}
RAW_BODIES: dict[str, bytes] = {
    "empty": b"",
    "not json": b"{not json",
    "invalid utf-8": b'{"env": "\xff\xfe"}',
    "utf-16": '{"env": "notes"}'.encode("utf-16"),
    "BOM": b'\xef\xbb\xbf{"env": "notes"}',
    "truncated": b'{"env": "no',
    "just a surrogate escape": b'"\\ud800"',
    "key with a surrogate": b'{"\\ud800": 1}',
    "long key": b'{"' + b"k" * 600_000 + b'": 1}',
    "many keys": b"{" + b",".join(b'"k%d": %d' % (i, i) for i in range(50_000)) + b"}",
    "duplicate keys": b'{"env": "notes", "env": "notes"}',
    "over the limit": b'{"env": "' + b"x" * (BODY_LIMIT + 10) + b'"}',
    "deep": DEEP_ARRAY,
}
CONTENT_TYPES: list[bytes] = [
    b"text/plain",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=zz",
    b"application/xml",
    b"application/json; charset=latin-1",
    b"application/problem+json",
    b"application/json\xff\xfe",
    b"",
]


def with_value(template: dict[str, object], key: str, value: bytes) -> bytes:
    """``template`` as JSON with ``value`` (raw JSON bytes) put in at ``key``."""
    marker = "@@VALUE@@"
    text = json.dumps({**template, key: marker}).encode()
    return text.replace(json.dumps(marker).encode(), value)


# -- the endpoints -----------------------------------------------------------------------------------


def control_cases(episode_id: str, farm_routes: bool, scoring: bool, router: bool) -> list[Case]:
    cases: list[Case] = []
    score = {"env": "notes", "scenario": "file-two", "trajectory": []}
    bodies: dict[str, tuple[bytes, dict[str, object], list[str]]] = {}
    if farm_routes:
        bodies["/v1/episodes"] = (b"POST", {"env": "notes"}, ["env", "scenario", "seed", "episode_id"])
    if scoring:
        bodies["/v1/score"] = (b"POST", score, ["env", "scenario", "trajectory", "seed"])
        bodies["/v1/score/batch"] = (b"POST", {"items": [score]}, ["items"])
    for path, (method, template, keys) in bodies.items():
        target = path.encode()
        for key in keys:
            for label, value in HOSTILE_JSON.items():
                body = with_value(template, key, value)
                cases.append(Case(f"{path} {key}={label}", method, target, JSON_HEADERS, body))
        for label, body in RAW_BODIES.items():
            cases.append(Case(f"{path} body {label}", method, target, JSON_HEADERS, body))
            cases.append(Case(f"{path} body {label} (no content type)", method, target, [], body))
        cases.append(
            Case(f"{path} chunked over the limit", method, target, JSON_HEADERS, RAW_BODIES["over the limit"], True)
        )
        for content_type in CONTENT_TYPES:
            body = json.dumps(template).encode()
            cases.append(Case(f"{path} as {content_type!r}", method, target, [(b"content-type", content_type)], body))
        for label, value in HOSTILE_JSON.items():
            cases.append(Case(f"{path} body is {label}", method, target, JSON_HEADERS, value))
    if scoring:
        for label, value in HOSTILE_JSON.items():
            call = with_value({"tool": "add_note"}, "arguments", with_value({"folder": "work"}, "title", value))
            for shape, trajectory in (
                ("plain", b"[" + call + b"]"),
                ("openai", _openai(value)),
                (
                    "anthropic",
                    b'[{"role":"assistant","content":[{"type":"tool_use","name":"add_note","input":'
                    + with_value({"folder": "work"}, "title", value)
                    + b"}]}]",
                ),
            ):
                body = with_value({"env": "notes", "scenario": "file-two"}, "trajectory", trajectory)
                cases.append(
                    Case(f"/v1/score {shape} arguments title={label}", b"POST", b"/v1/score", JSON_HEADERS, body)
                )
        many = json.dumps({**score, "trajectory": [{"tool": "list_notes"}] * 20_000}).encode()
        cases.append(Case("/v1/score 20000 calls", b"POST", b"/v1/score", JSON_HEADERS, many))
        batch = json.dumps({"items": [score] * 5000}).encode()
        cases.append(Case("/v1/score/batch 5000 items", b"POST", b"/v1/score/batch", JSON_HEADERS, batch))
    # paths: every route, with hostile ids in them
    ids = {
        "live": episode_id.encode(),
        "long": b"e" * 12_000,
        "percent invalid utf-8": b"%ff%fe",
        "percent surrogate": b"%ED%A0%80",
        "percent NUL": b"ep%00x",
        "percent slash": b"a%2Fb",
        "percent unicode": b"%C3%A9p",
        "dots": b"..",
        "raw byte": b"ep\xff",
        "space": b"a%20b",
    }
    for label, raw_id in ids.items():
        routes = []
        if farm_routes:
            routes += [
                (b"GET", b"/v1/episodes/" + raw_id),
                (b"GET", b"/v1/episodes/" + raw_id + b"/state"),
                (b"POST", b"/v1/episodes/" + raw_id + b"/reset"),
                (b"GET", b"/v1/envs/" + raw_id),
                (b"GET", b"/v1/envs/" + raw_id + b"/scenarios"),
                (b"GET", b"/v1/envs/notes/scenarios/" + raw_id),
            ]
        if scoring:
            routes.append((b"POST", b"/v1/episodes/" + raw_id + b"/score"))
        if farm_routes and label != "live":
            routes.append((b"DELETE", b"/v1/episodes/" + raw_id))
        for method, target in routes:
            cases.append(Case(f"{method.decode()} {label} id", method, target))
    # every method on every fixed path, and unknown paths
    fixed = [b"/healthz", b"/metrics", b"/nope", b"//v1//envs", b"/v1/" + b"a" * 10_000, b"/openapi.json"]
    fixed += [b"/v1/envs", b"/v1/episodes"] if farm_routes else []
    fixed += [b"/v1/score", b"/v1/score/batch"] if scoring else []
    fixed += [b"/v1/router"] if router else []
    for target in fixed:
        for method in (b"GET", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS", b"HEAD", b"TRACE", b"BREW"):
            cases.append(
                Case(
                    f"{method.decode()} {target[:40]!r}",
                    method,
                    target,
                    JSON_HEADERS,
                    b"{}" if method == b"POST" else b"",
                )
            )
    # queries and headers
    cases += [
        Case("query with junk", b"GET", b"/v1/envs?x=%ff%fe&y=" + b"z" * 5000 + b"&%00=1"),
        Case("long header", b"GET", b"/healthz", [(b"x-junk", b"v" * 8000)]),
        Case("latin-1 header", b"GET", b"/healthz", [(b"x-junk", b"\xe9\xff\xfe")]),
        Case("latin-1 origin", b"GET", b"/v1/envs", [(b"origin", b"http://\xff\xfe")]),
        Case("long origin", b"GET", b"/v1/envs", [(b"origin", b"http://" + b"o" * 8000)]),
        Case("bad authorization", b"GET", b"/v1/envs", [(b"authorization", b"Bearer \xff" + b"t" * 4000)]),
        Case("content-length not a number", b"POST", b"/v1/score", [(b"content-length", b"abc")], b""),
        Case("content-length negative", b"POST", b"/v1/score", [(b"content-length", b"-5")], b""),
        Case("content-length huge", b"POST", b"/v1/score", [(b"content-length", b"99999999999999")], b""),
    ]
    return cases


def _openai(value: bytes) -> bytes:
    arguments = with_value({"folder": "work"}, "title", value).decode("utf-8", "surrogateescape")
    call = {"function": {"name": "add_note", "arguments": "@@A@@"}}
    text = json.dumps([{"role": "assistant", "tool_calls": [call]}]).encode()
    encoded = json.dumps(arguments, ensure_ascii=True).encode("utf-8", "surrogateescape")
    return text.replace(b'"@@A@@"', encoded)


def mcp_cases(episode_id: str) -> list[Case]:
    target = f"/episodes/{episode_id}/mcp".encode()
    cases: list[Case] = []
    call = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {"name": "add_note", "arguments": {}}}
    modern_call = [*MODERN, (b"mcp-method", b"tools/call"), (b"mcp-name", b"add_note")]
    for era, headers in (("modern", modern_call), ("legacy", LEGACY), ("no version", MCP_HEADERS)):
        for label, value in HOSTILE_JSON.items():
            args = with_value({"folder": "work"}, "title", value)
            body = json.dumps(call).encode().replace(b'"arguments": {}', b'"arguments": ' + args)
            cases.append(Case(f"mcp {era} tools/call title={label}", b"POST", target, headers, body))
            for key in ("id", "method", "params", "jsonrpc"):
                cases.append(Case(f"mcp {era} {key}={label}", b"POST", target, headers, with_value(call, key, value)))
        for label, body in RAW_BODIES.items():
            cases.append(Case(f"mcp {era} body {label}", b"POST", target, headers, body))
        for content_type in CONTENT_TYPES:
            kept = [(k, v) for k, v in headers if k != b"content-type"] + [(b"content-type", content_type)]
            cases.append(Case(f"mcp {era} as {content_type!r}", b"POST", target, kept, json.dumps(call).encode()))
        for accept in (b"", b"text/html", b"\xff", b"text/event-stream"):
            kept = [(k, v) for k, v in headers if k != b"accept"] + [(b"accept", accept)]
            cases.append(Case(f"mcp {era} accept {accept!r}", b"POST", target, kept, json.dumps(call).encode()))
        batch = json.dumps([call, call]).encode()
        cases.append(Case(f"mcp {era} batch", b"POST", target, headers, batch))
        name = json.dumps({**call, "params": {"name": LONG, "arguments": {}}}).encode()
        cases.append(Case(f"mcp {era} long tool name", b"POST", target, headers, name))
    for version in (b"1999-01-01", b"\xff\xfe", b"2026-07-28, 2025-06-18", b"x" * 5000):
        headers = [*MCP_HEADERS, (b"mcp-protocol-version", version)]
        cases.append(Case(f"mcp version {version[:20]!r}", b"POST", target, headers, json.dumps(call).encode()))
    for method in (b"GET", b"DELETE", b"PUT", b"PATCH", b"OPTIONS", b"HEAD"):
        cases.append(Case(f"mcp {method.decode()}", method, target, [(b"accept", b"text/event-stream")]))
    for label, raw_id in (("unknown", b"ep_nope"), ("long", b"e" * 12_000), ("percent", b"%ff%ED%A0%80")):
        other = b"/episodes/" + raw_id + b"/mcp"
        cases.append(Case(f"mcp {label} episode", b"POST", other, LEGACY, json.dumps(call).encode()))
    cases.append(Case("mcp chunked over the limit", b"POST", target, LEGACY, RAW_BODIES["over the limit"], True))
    return cases


# -- the pass --------------------------------------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    clean: int = 0
    parser: int = 0  # refused by uvicorn's HTTP parser before the app saw it (plain text, 400)
    statuses: Counter[int] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)


def run(server: Server, cases: list[Case], tally: Tally) -> None:
    for i, case in enumerate(cases):
        tally.sent += 1
        try:
            answer = send_raw(server.address, case.method, case.target, case.headers, case.body, case.chunked)
        except (OSError, ConnectionError) as e:
            tally.problems.append(f"{case.label}: no answer ({type(e).__name__}: {e})")
            continue
        tally.statuses[answer.status] += 1
        problem = judge(case, answer)
        if problem == "parser":
            tally.parser += 1
            tally.clean += 1
        elif problem:
            tally.problems.append(f"{case.label}: {problem}")
        else:
            tally.clean += 1
        if i % 50 == 0:
            health = httpx.get(f"{server.url}/healthz", timeout=30)
            assert health.status_code == 200, f"{server.url} stopped answering after {case.label}"


def judge(case: Case, answer: Answer) -> str | None:
    """Why this answer is not clean, or None; ``"parser"`` for a refusal by uvicorn's HTTP parser."""
    if answer.status >= 500:
        return f"{answer.status} {answer.body[:300]!r}"
    if answer.status == 400 and answer.body == PARSER_REFUSAL:
        return "parser"
    if answer.status < 400 or case.method == b"HEAD":
        return None
    if not answer.headers.get(b"content-type", b"").startswith(b"application/json"):
        return f"{answer.status} not JSON: {answer.headers.get(b'content-type')!r} {answer.body[:200]!r}"
    try:
        data = json.loads(answer.body)
    except ValueError:
        return f"{answer.status} unreadable JSON {answer.body[:200]!r}"
    mcp = case.target.endswith(b"/mcp") and case.target.startswith(b"/episodes/")
    echoed_id = len(json.dumps(readable_id(case.body))) if mcp else 0  # JSON-RPC must echo the id, however long
    if len(answer.body) - echoed_id > 20_000:
        return f"{answer.status} echoes {len(answer.body)} bytes back"
    if mcp:
        if not (isinstance(data, dict) and data.get("jsonrpc") == "2.0" and isinstance(data.get("error"), dict)):
            return f"{answer.status} not a JSON-RPC error: {answer.body[:200]!r}"
        if data["id"] != readable_id(case.body):
            return f"{answer.status} JSON-RPC error without the request's id: {answer.body[:200]!r}"
    elif not (isinstance(data, dict) and "detail" in data):
        return f"{answer.status} not {{'detail': ...}}: {answer.body[:200]!r}"
    elif isinstance(data["detail"], list):
        for error in data["detail"]:
            if set(error) != {"loc", "msg", "type"}:
                return f"{answer.status} a validation error with more than loc, msg, type: {error}"
    return None


def readable_id(body: bytes) -> object:
    """The id a JSON-RPC error must carry: the request's, when Python's json can read the body (else null)."""
    if len(body) > BODY_LIMIT:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return None
    found = data.get("id") if isinstance(data, dict) else None
    if isinstance(found, bool) or not isinstance(found, str | int):
        return None
    try:
        found.encode() if isinstance(found, str) else None
    except UnicodeEncodeError:
        return None
    return found


@pytest.fixture(scope="module")
def logs() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="envfarm-hostile-") as folder:
        yield Path(folder)


def test_no_endpoint_answers_a_hostile_request_with_a_5xx_or_a_traceback(logs: Path) -> None:
    limit = ("--max-body-bytes", str(BODY_LIMIT))
    farm = start("serve", "notes", *limit, "--sandbox-workers", "2", logs=logs)
    servers = [farm]
    try:
        validator = start("validator", "notes", "--farm", farm.url, *limit, "--sandbox-workers", "1", logs=logs)
        servers.append(validator)
        router = start("router", "--worker", farm.url, *limit, logs=logs)
        servers.append(router)
        episode = httpx.post(f"{farm.url}/v1/episodes", json={"env": "notes"}, timeout=30).json()["episode_id"]
        plan = {
            "farm": (farm, control_cases(episode, True, True, False) + mcp_cases(episode)),
            "validator": (validator, control_cases(episode, False, True, False)),
            "router": (router, control_cases(episode, True, True, True) + mcp_cases(episode)),
        }
        tallies = {name: Tally() for name in plan}
        for name, (server, cases) in plan.items():
            run(server, cases, tallies[name])
            assert httpx.get(f"{server.url}/healthz", timeout=30).status_code == 200
    finally:
        outputs = {server.url: server.stop() for server in servers}
    print()
    for name, tally in tallies.items():
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(tally.statuses.items()))
        print(
            f"hostile pass, {name}: {tally.sent} cases sent, {tally.clean} answered cleanly "
            f"({tally.parser} of them refused by uvicorn's HTTP parser); statuses {statuses}"
        )
    total = sum(t.sent for t in tallies.values())
    clean = sum(t.clean for t in tallies.values())
    print(f"hostile pass, all: {total} cases sent, {clean} answered cleanly")
    problems = [p for t in tallies.values() for p in t.problems]
    assert not problems, "\n".join(problems[:40])
    for url, output in outputs.items():
        assert "Traceback" not in output and "Exception in ASGI application" not in output, f"{url}:\n{output[-5000:]}"
