"""Shared helpers for the benchmark scripts (not a test module; the scripts import it by path).

- which environment to measure: ``library`` when it loads, else the ``notes`` test fixture;
- the workload per environment: a query tool and a mutation tool that succeed call after call;
- scaled states (``~1 MB``, ``~10 MB``) made from a scenario's own rows;
- starting servers as subprocesses, reading their CPU time and RSS from /proc;
- percentiles and markdown tables.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURE_ENVS = REPO / "tests" / "fixtures" / "envs"

# The fixture envs are found through ENVFARM_ENV_PATH, here and in every server process we start.
# This must happen before envfarm.servers is first imported.
_paths = [p for p in os.environ.get("ENVFARM_ENV_PATH", "").split(os.pathsep) if p]
if str(FIXTURE_ENVS) not in _paths:
    os.environ["ENVFARM_ENV_PATH"] = os.pathsep.join([*_paths, str(FIXTURE_ENVS)])

from envfarm.core.environments import Environment, load_environment  # noqa: E402

# ---------------------------------------------------------------------------------------------
# Environments and workloads


@dataclass(frozen=True)
class Workload:
    """How the benchmarks drive one environment.

    ``query(client, i)`` and ``mutation(client, i)`` return ``(tool, arguments)`` for the
    i-th call of that kind by client number ``client``. Both must succeed when called over and
    over on one episode, and on one database shared by many clients (the baseline server),
    without the state growing in a way that slows the query down.
    """

    env: str
    scenario: str
    query: Callable[[int, int], tuple[str, dict[str, Any]]]
    mutation: Callable[[int, int], tuple[str, dict[str, Any]]]
    # Scaled states only: free-text columns given text of about this many characters in the
    # copies, so rows have a realistic size (a scenario's own rows are often terse).
    filler: tuple[tuple[str, str, int], ...] = ()

    def call(self, client: int, i: int) -> tuple[str, dict[str, Any]]:
        """The i-th call of a 50/50 mix: even calls query, odd calls mutate."""
        return self.query(client, i // 2) if i % 2 == 0 else self.mutation(client, i // 2)


LIBRARY_SEARCHES = ["fantasy", "the", "Austen", "mystery", "children", "science fiction"]

WORKLOADS: dict[str, Workload] = {
    # notes: list a folder that never grows; add notes with unique titles to another folder.
    "notes": Workload(
        env="notes",
        scenario="file-two",
        query=lambda c, i: ("list_notes", {"folder": "home"}),
        mutation=lambda c, i: ("add_note", {"folder": "work", "title": f"bench-c{c}-{i}"}),
        filler=(("notes", "body", 160),),
    ),
    # library: a catalogue search (rotating terms), and a contact update that flips a member's
    # phone between two numbers (always succeeds, never grows the state, safe on a shared DB).
    "library": Workload(
        env="library",
        scenario="return-and-pay",
        query=lambda c, i: ("search_books", {"query": LIBRARY_SEARCHES[i % len(LIBRARY_SEARCHES)]}),
        mutation=lambda c, i: (
            "update_member_contact",
            {"member_id": 1 + (c + i) % 10, "phone": f"555-{2000 + i % 2}"},
        ),
    ),
}


def pick_env(requested: str) -> tuple[Environment, Workload]:
    """``auto``: the ``library`` env when it loads and its workload runs, else ``notes``."""
    if requested != "auto":
        env = load_environment(requested)
        check_workload(env, WORKLOADS[requested])
        return env, WORKLOADS[requested]
    try:
        env = load_environment("library")
        check_workload(env, WORKLOADS["library"])
        return env, WORKLOADS["library"]
    except Exception as e:  # a half-written package: fall back, loudly
        first = str(e).splitlines()[:3]
        note(f"library is not usable ({' / '.join(first)}); using the notes fixture")
    env = load_environment("notes")
    check_workload(env, WORKLOADS["notes"])
    return env, WORKLOADS["notes"]


def check_workload(env: Environment, workload: Workload) -> None:
    """The workload's calls must succeed again and again on one episode; raise if not."""
    from envfarm.core.episodes import Episode

    episode = Episode(env, env.scenarios[workload.scenario], "bench-check")
    try:
        for i in range(8):
            for c in (0, 1):
                tool, args = workload.call(c, i)
                result = episode.call(tool, args)
                if not result.ok:
                    raise RuntimeError(f"workload call {tool}({args}) fails: {result.error}")
    finally:
        episode.close()


def note(message: str) -> None:
    print(f"note: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Numbers and tables


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, nearest-rank."""
    if not sorted_values:
        return float("nan")
    k = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[k]


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A markdown table; floats printed with 3 significant-ish digits."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if v != v:
                return "-"
            if abs(v) >= 100:
                return f"{v:,.0f}"
            if abs(v) >= 10:
                return f"{v:.1f}"
            if abs(v) >= 1:
                return f"{v:.2f}"
            return f"{v:.3f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[fmt(v) for v in row] for row in rows]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in cells]
    return "\n".join(lines)


def machine() -> str:
    """One line about where the numbers come from."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{os.cpu_count()} cores ({cpu}), Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}"
    )


def target_line(name: str, met: bool, detail: str) -> str:
    return f"TARGET {name}: {'MET' if met else 'MISSED'} ({detail})"


# ---------------------------------------------------------------------------------------------
# Processes

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc/PID/statm."""
    fields = Path(f"/proc/{pid or 'self'}/statm").read_text().split()
    return int(fields[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int | None = None) -> list[int]:
    """Pids whose parent is ``pid`` (this process by default)."""
    parent = pid or os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """An HTTP server we started as a subprocess."""

    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(name: str, cmd: list[str], port: int, ready_path: str) -> Server:
    """Start ``cmd`` (which binds 127.0.0.1:port) and wait until GET ready_path answers at all."""
    import httpx

    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{err}")
        try:
            httpx.get(url + ready_path, timeout=1)
            # From here on nobody reads stderr; a chatty server must not block on a full pipe.
            _drain(process)
            return Server(name, url, process)
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not answer on {url} within 60 s")


def _drain(process: subprocess.Popen[bytes]) -> None:
    """Read the server's stderr from now on; pass on the first lines of any error report."""
    import threading

    def run() -> None:
        assert process.stderr is not None
        shown = 0
        in_error = False
        for line in process.stderr:
            text = line.decode(errors="replace")
            if "Traceback" in text or "ERROR" in text or "Error" in text:
                in_error = True
            if in_error and shown < 80:
                sys.stderr.write(f"[server {process.pid}] {text}")
                shown += 1

    threading.Thread(target=run, daemon=True).start()


def start_farm(env_id: str) -> Server:
    """``envfarm serve ENV`` on a free port (uvicorn access log off, as in production)."""
    port = free_port()
    cmd = [sys.executable, "-m", "envfarm.cli", "serve", env_id, "--port", str(port), "--log-level", "warning"]
    return start_server("envfarm", cmd, port, "/healthz")


def start_baseline(env_id: str, scenario: str, db: Path) -> Server:
    """The same tools as a decorator-based ``MCPServer`` over one SQLite file, on a free port."""
    port = free_port()
    cmd = [
        sys.executable,
        str(HERE / "_baseline_server.py"),
        "--env",
        env_id,
        "--scenario",
        scenario,
        "--db",
        str(db),
        "--transport",
        "http",
        "--port",
        str(port),
    ]
    return start_server("baseline", cmd, port, "/mcp")


# ---------------------------------------------------------------------------------------------
# MCP over HTTP without the SDK client

PROTOCOL = "2026-07-28"


def call_body(request_id: int, tool: str, args: dict[str, Any]) -> bytes:
    """A 2026-07-28 ``tools/call`` as the SDK client sends it (captured from mcp 2.3)."""
    meta = {
        "io.modelcontextprotocol/protocolVersion": PROTOCOL,
        "io.modelcontextprotocol/clientInfo": {"name": "bench-raw", "version": "0"},
        "io.modelcontextprotocol/clientCapabilities": {},
    }
    body = {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "tools/call",
        "params": {"name": tool, "arguments": args, "_meta": meta},
    }
    return json.dumps(body, separators=(",", ":")).encode()


def call_headers(tool: str) -> dict[str, str]:
    """The headers the SDK client sends with a 2026-07-28 ``tools/call``."""
    return {
        "content-type": "application/json",
        "accept": "application/json, text/event-stream",
        "mcp-protocol-version": PROTOCOL,
        "mcp-method": "tools/call",
        "mcp-name": tool,
    }


def response_ok(body: bytes) -> bool:
    data = json.loads(body)
    return "result" in data and not data["result"].get("isError", False)


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the least a load generator can do.

    Sends one POST at a time on its own connection and reads a Content-Length (or chunked)
    response. Exists so the load generator's own CPU does not hide the server's capacity.
    """

    def __init__(self, url: str) -> None:
        rest = url.split("://", 1)[1]
        hostport, _, path = rest.partition("/")
        self.host, _, port = hostport.partition(":")
        self.port = int(port or 80)
        self.path = "/" + path
        self.hostport = hostport
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, body: bytes, headers: dict[str, str], path: str | None = None) -> tuple[int, bytes]:
        """POST ``body`` to the URL's path (or ``path`` on the same host); (status, body)."""
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = f"POST {path or self.path} HTTP/1.1\r\nhost: {self.hostport}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        head += f"content-length: {len(body)}\r\n\r\n"
        self.writer.write(head.encode() + body)
        raw = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        fields = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
        if "content-length" in fields:
            data = await self.reader.readexactly(int(fields["content-length"]))
        elif fields.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                chunks.append(await self.reader.readexactly(size + 2))
                if size == 0:
                    break
            data = b"".join(c[:-2] for c in chunks)
        else:
            raise RuntimeError(f"response without a length: {fields}")
        if fields.get("connection") == "close":
            self.close()
        return status, data

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


# ---------------------------------------------------------------------------------------------
# Scaled states


@dataclass
class ScaledState:
    """A database made of ``copies`` copies of a scenario's rows, keys shifted so they stay unique."""

    ddl: list[str]  # CREATE TABLE / CREATE INDEX statements, in creation order
    rows: dict[str, tuple[list[str], list[tuple[Any, ...]]]]  # table -> (columns, rows), parents first
    snapshot: bytes  # the database as SQLite bytes, what an episode deserializes
    copies: int

    @property
    def row_count(self) -> int:
        return sum(len(r) for _, r in self.rows.values())

    def build(self) -> sqlite3.Connection:
        """Rebuild the database from its DDL and rows (DDL + executemany in one transaction)."""
        db = sqlite3.connect(":memory:", isolation_level=None)
        db.executescript(";\n".join(self.ddl) + ";")
        db.execute("BEGIN")
        for table_name, (columns, rows) in self.rows.items():
            names = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" for _ in columns)
            db.executemany(f'INSERT INTO "{table_name}" ({names}) VALUES ({marks})', rows)
        db.execute("COMMIT")
        return db


def _key_columns(env: Environment) -> dict[str, dict[str, tuple[str, str]]]:
    """Per table: the columns whose values must stay unique or consistent across copies.

    Maps column -> (table, column) whose value range it is shifted by: itself for primary
    keys and unique columns, the referenced column for foreign keys.
    """
    keys: dict[str, dict[str, tuple[str, str]]] = {}
    for table in env.metadata.sorted_tables:
        cols: dict[str, tuple[str, str]] = {}
        unique = {c.name for c in table.columns if c.primary_key or c.unique}
        for constraint in table.constraints:
            if constraint.__class__.__name__ == "UniqueConstraint":
                unique |= {c.name for c in constraint.columns}
        for index in table.indexes:
            if index.unique:
                unique |= {c.name for c in index.columns}
        for name in unique:
            cols[name] = (table.name, name)
        for column in table.columns:
            for fk in column.foreign_keys:
                cols[column.name] = (fk.column.table.name, fk.column.name)
        keys[table.name] = cols
    return keys


WORDS = [
    "the",
    "a",
    "member",
    "book",
    "copy",
    "loan",
    "due",
    "renewed",
    "returned",
    "shelf",
    "branch",
    "fine",
    "paid",
    "hold",
    "ready",
    "author",
    "title",
    "edition",
    "reading",
    "room",
    "quiet",
    "study",
    "desk",
    "card",
    "renew",
    "overdue",
    "catalog",
]


def _text(seed: int, length: int) -> str:
    rng = random.Random(seed)
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < length:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:length]


def scaled_state(
    env: Environment, scenario_id: str, target_bytes: int, filler: Sequence[tuple[str, str, int]] = ()
) -> ScaledState:
    """About ``target_bytes`` of SQLite made of copies of the scenario's initial rows.

    ``filler`` (table, column, length): in the copies, that column gets generated text of
    about ``length`` characters (different per row), so rows are not unrealistically small.
    """
    base = sqlite3.connect(":memory:")
    base.deserialize(env.snapshot(scenario_id))
    ddl = [
        sql
        for (name, sql) in base.execute("SELECT name, sql FROM sqlite_master ORDER BY rowid")
        if sql and not name.startswith("sqlite_")
    ]
    tables = [t.name for t in env.metadata.sorted_tables]
    source: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
    for t in tables:
        cur = base.execute(f'SELECT * FROM "{t}"')
        source[t] = ([c[0] for c in cur.description], cur.fetchall())
    base.close()
    keys = _key_columns(env)
    spans: dict[tuple[str, str], int] = {}  # (table, int key column) -> shift per copy
    for t, (columns, rows) in source.items():
        for ci, c in enumerate(columns):
            values = [r[ci] for r in rows if isinstance(r[ci], int)]
            spans[(t, c)] = (max(values) + 1) if values else 1

    def make(copies: int) -> ScaledState:
        out: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for t, (columns, rows) in source.items():
            shifted = [(ci, keys[t][c]) for ci, c in enumerate(columns) if c in keys[t]]
            fills = [(columns.index(c), n) for (ft, c, n) in filler if ft == t and c in columns]
            made: list[tuple[Any, ...]] = []
            for j in range(copies):
                for row in rows:
                    if j == 0 or not (shifted or fills):
                        made.append(row)
                        continue
                    new = list(row)
                    for ci, n in fills:
                        new[ci] = _text(j * 7919 + len(made), n)
                    for ci, origin in shifted:
                        v = new[ci]
                        if isinstance(v, bool) or v is None:
                            continue
                        if isinstance(v, int):
                            new[ci] = v + j * spans.get(origin, 1)
                        elif isinstance(v, str):
                            new[ci] = f"{v}~{j}"
                    made.append(tuple(new))
            out[t] = (columns, made)
        state = ScaledState(ddl=ddl, rows=out, snapshot=b"", copies=copies)
        db = state.build()
        bad = db.execute("PRAGMA foreign_key_check").fetchall()
        if bad:
            raise RuntimeError(f"scaled state of {env.id} breaks a foreign key: {bad[:3]}")
        state.snapshot = db.serialize()
        db.close()
        return state

    probe = make(64)
    one = make(1)
    per_copy = max(1.0, (len(probe.snapshot) - len(one.snapshot)) / 63)
    copies = max(1, round((target_bytes - len(one.snapshot)) / per_copy))
    state = make(copies)
    # One correction step: page fill is not quite linear.
    if abs(len(state.snapshot) - target_bytes) > 0.05 * target_bytes:
        copies = max(1, round(copies * target_bytes / len(state.snapshot)))
        state = make(copies)
    return state
