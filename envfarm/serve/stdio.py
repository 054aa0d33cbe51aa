"""One episode over stdin/stdout: MCP's stdio transport, framed and drained by envfarm.

``envfarm stdio ENV`` reads newline-delimited JSON-RPC from stdin and writes one
JSON-RPC message per line to stdout, serving the farm's generic MCP server
(:mod:`envfarm.serve.mcp_server`) on one episode. The MCP SDK's own stdio
transport is not used, for two reasons found on its 2.x line:

- **Requests in flight were dropped at EOF.** The SDK closes the server's read
  stream as soon as stdin ends, and its dispatcher then cancels every handler
  still running (or not yet started: a task cancelled before its first step
  never reaches the code that would answer ``Connection closed``). A client that
  pipes ``initialize``, ``tools/list``, ``tools/call`` and closes stdin got one
  or two answers. Here the read stream closes only once every request read
  before EOF has been answered (or cancelled by the client with
  ``notifications/cancelled``, which the protocol says is never answered), with
  :data:`DRAIN_SECONDS` as a bound for a handler that never returns.
- **Bad input went unanswered.** A line that is not JSON reached the SDK as an
  exception it logs at debug level and drops. Here every line is answered by the
  JSON-RPC rules: not UTF-8 or not JSON is ``-32700`` (parse error, id null); JSON
  that is not one JSON-RPC message (a batch, a request whose id is null, a bool
  or a fraction, params that are not an object, a line longer than
  :data:`MAX_LINE_BYTES`) is ``-32600`` (invalid request), with the request's id
  when it can be read. An unknown method is the SDK's ``-32601``. Blank lines are
  ignored. Nothing is written to stderr for any of these.

While serving, fd 0 reads the null device and fd 1 writes to stderr (as in the
SDK's transport), so a stray ``print`` in an environment's tool cannot corrupt
the wire; both are restored on exit.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, BinaryIO

import anyio
import anyio.from_thread
import anyio.lowlevel
import anyio.to_thread
import mcp_types as types
import pydantic_core
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from pydantic import ValidationError

from envfarm.core.episodes import Episode
from envfarm.serve.mcp_server import build_server, current_episode

log = logging.getLogger(__name__)

MAX_LINE_BYTES = 16 * 2**20
"""The longest message read, in bytes (the HTTP endpoint's default body limit); a longer line is refused."""

DRAIN_SECONDS = 60.0
"""After stdin ends, how long requests already read may take to be answered before the server stops anyway."""

READ_CHUNK = 2**16

Id = str | int


def _request_key(request_id: Id) -> Id:
    """Ids ``7`` and ``"7"`` are one request for matching answers (as the SDK's dispatcher matches them)."""
    if isinstance(request_id, str):
        try:
            return int(request_id)
        except ValueError:
            return request_id
    return request_id


def _readable_id(raw: dict[str, Any]) -> Id | None:
    """The id of a JSON-RPC object when it is a valid one (a string or an integer), else None."""
    found = raw.get("id")
    return found if isinstance(found, str | int) and not isinstance(found, bool) else None


class _TooLong:
    """Stands for a line longer than the limit, read and dropped."""


TOO_LONG = _TooLong()


class _Lines:
    """Splits bytes into lines, holding at most ``limit`` bytes of an unfinished one."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._partial = bytearray()
        self._dropping = False  # inside a line already known to be too long

    def feed(self, chunk: bytes) -> list[bytes | _TooLong]:
        lines: list[bytes | _TooLong] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            piece = chunk[start:end]
            if self._dropping or len(self._partial) + len(piece) > self.limit:
                lines.append(TOO_LONG)
            else:
                lines.append(bytes(self._partial + piece))
            self._partial.clear()
            self._dropping = False
            start = end + 1
        rest = chunk[start:]
        if not self._dropping and len(self._partial) + len(rest) > self.limit:
            self._dropping = True
            self._partial.clear()
        elif not self._dropping:
            self._partial += rest
        return lines

    def end(self) -> list[bytes | _TooLong]:
        """The last line, when stdin ends without a newline."""
        if self._dropping:
            return [TOO_LONG]
        return [bytes(self._partial)] if self._partial.strip() else []


class _Wire:
    """The transport: lines in, messages to the server; the server's messages out, one per line."""

    def __init__(self, source: BinaryIO, sink: BinaryIO, max_line_bytes: int) -> None:
        self._source = source
        self._sink = sink
        self._read = getattr(source, "read1", source.read)
        self._lines = _Lines(max_line_bytes)
        self._max_line_bytes = max_line_bytes
        self._unanswered: Counter[Id] = Counter()  # requests read and not yet answered, by id
        self._answered = anyio.Event()  # set (and replaced) whenever an answer goes out
        self._sink_gone = False
        self._writing = anyio.Lock()  # the reader answers bad lines while the writer writes the server's answers

    async def read_loop(self, to_server: MemoryObjectSendStream[SessionMessage | Exception]) -> None:
        """Read stdin to its end, pass messages to the server and answer bad lines; then wait for the answers."""
        chunks, received = anyio.create_memory_object_stream[bytes](4)
        token = anyio.lowlevel.current_token()
        # A daemon thread, not a worker of anyio's pool: a read blocked on a terminal must not keep the process
        # alive after the server stopped (Ctrl-C), since the interpreter waits for non-daemon threads.
        threading.Thread(target=self._pump, args=(chunks, token), name="envfarm-stdio-reader", daemon=True).start()
        async with to_server, received:
            try:
                async for chunk in received:
                    for line in self._lines.feed(chunk):
                        await self._take(line, to_server)
                for line in self._lines.end():
                    await self._take(line, to_server)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                return  # the server stopped reading: nothing left to wait for
            await self._drain()

    def _pump(self, chunks: MemoryObjectSendStream[bytes], token: anyio.lowlevel.EventLoopToken) -> None:
        """The reader thread: stdin's bytes to the event loop, until EOF (or the loop is gone)."""
        try:
            while chunk := self._read(READ_CHUNK):
                anyio.from_thread.run(chunks.send, chunk, token=token)
        except OSError as e:
            log.warning("stdio: stdin failed (%s); serving what was read", e)
        except (RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            return  # the server stopped: nobody reads the chunks any more
        with suppress(RuntimeError):
            anyio.from_thread.run_sync(chunks.close, token=token)

    async def _drain(self) -> None:
        with anyio.move_on_after(DRAIN_SECONDS):
            while self._unanswered:
                await self._answered.wait()
        if self._unanswered:
            waiting = ", ".join(map(repr, sorted(self._unanswered, key=str)))
            log.warning("stdio: stdin closed; no answer to request(s) %s after %ss, stopping", waiting, DRAIN_SECONDS)

    async def _take(
        self, line: bytes | _TooLong, to_server: MemoryObjectSendStream[SessionMessage | Exception]
    ) -> None:
        message = self._parse(line)
        if isinstance(message, types.JSONRPCError):  # the line's answer, from here: the server never sees the line
            await self._write(message)
            return
        if message is None:
            return
        if isinstance(message, types.JSONRPCRequest):
            self._unanswered[_request_key(message.id)] += 1
        elif isinstance(message, types.JSONRPCNotification) and message.method == "notifications/cancelled":
            # A cancelled request is never answered (the protocol says so): stop waiting for it.
            params = message.params or {}
            cancelled = params.get("requestId")
            if isinstance(cancelled, str | int) and not isinstance(cancelled, bool):
                self._settle(cancelled)
        await to_server.send(SessionMessage(message))

    def _parse(self, line: bytes | _TooLong) -> types.JSONRPCMessage | None:
        """The message on a line; a JSON-RPC error to answer instead; None for a blank line."""
        if isinstance(line, _TooLong):
            return _error(
                None, types.INVALID_REQUEST, f"Invalid request: a message is at most {self._max_line_bytes:,} bytes"
            )
        line = line.strip()
        if not line:
            return None
        try:
            line.decode("utf-8")
        except UnicodeDecodeError as e:
            return _error(
                None, types.PARSE_ERROR, f"Parse error: not UTF-8 text (byte 0x{line[e.start]:02x} at offset {e.start})"
            )
        try:
            raw = pydantic_core.from_json(line, allow_inf_nan=False)
        except ValueError as e:
            return _error(None, types.PARSE_ERROR, f"Parse error: {e}")
        if isinstance(raw, list):
            return _error(None, types.INVALID_REQUEST, "Invalid request: batches are not supported; send one message")
        if not isinstance(raw, dict):
            return _error(None, types.INVALID_REQUEST, "Invalid request: a message is a JSON object")
        request_id = _readable_id(raw)
        if "method" in raw and "id" in raw and request_id is None:
            return _error(None, types.INVALID_REQUEST, "Invalid request: an id is a string or an integer")
        try:
            return types.jsonrpc_message_adapter.validate_python(raw, by_name=False)
        except ValidationError:
            what = "a request" if "method" in raw and "id" in raw else "one JSON-RPC 2.0 message"
            return _error(request_id, types.INVALID_REQUEST, f"Invalid request: not {what}")

    def _settle(self, request_id: Id) -> None:
        key = _request_key(request_id)
        if self._unanswered[key] > 1:
            self._unanswered[key] -= 1
        else:
            self._unanswered.pop(key, None)
        self._answered.set()
        self._answered = anyio.Event()

    async def write_loop(self, from_server: MemoryObjectReceiveStream[SessionMessage]) -> None:
        """Write every message to stdout, one per line, until the server and the reader are done."""
        async with from_server:
            async for item in from_server:
                message = item.message
                await self._write(message)
                if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) and message.id is not None:
                    self._settle(message.id)

    async def _write(self, message: types.JSONRPCMessage) -> None:
        try:
            data = message.model_dump_json(by_alias=True, exclude_unset=True)
        except pydantic_core.PydanticSerializationError as e:  # e.g. a lone surrogate in a handler's text
            log.warning("stdio: an answer could not be encoded as JSON (%s)", e)
            request_id = message.id if isinstance(message, types.JSONRPCResponse | types.JSONRPCError) else None
            if request_id is None:
                return
            data = _error(request_id, types.INTERNAL_ERROR, "the answer could not be encoded as JSON").model_dump_json(
                by_alias=True, exclude_unset=True
            )
        async with self._writing:
            if self._sink_gone:
                return
            try:
                await anyio.to_thread.run_sync(self._put, data.encode("utf-8") + b"\n")
            except OSError as e:  # the client closed its end of stdout: drop what is left, keep reading to EOF
                self._sink_gone = True
                log.info("stdio: stdout closed (%s); answers are dropped from now on", e)

    def _put(self, data: bytes) -> None:
        self._sink.write(data)
        self._sink.flush()


def _error(request_id: Id | None, code: int, message: str) -> types.JSONRPCError:
    return types.JSONRPCError(jsonrpc="2.0", id=request_id, error=types.ErrorData(code=code, message=message))


@contextmanager
def _claimed_stdio() -> Iterator[tuple[BinaryIO, BinaryIO]]:
    """The wire as private copies of fd 0 and 1; meanwhile fd 0 reads the null device and fd 1 goes to stderr."""
    sys.stdout.flush()
    wire_in, wire_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.dup2(2, 1)
    source = os.fdopen(wire_in, "rb", buffering=0)
    sink = os.fdopen(wire_out, "wb")
    try:
        yield source, sink
    finally:
        sys.stdout.flush()
        os.dup2(wire_out, 1)
        os.dup2(wire_in, 0)
        source.close()
        with suppress(OSError):  # the client closed its end: what was buffered cannot go anywhere
            sink.close()


async def serve_stdio(
    episode: Episode,
    *,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> None:
    """Serve one episode over stdin/stdout (or the given binary streams) until stdin ends and all is answered."""
    if stdin is None or stdout is None:
        with _claimed_stdio() as (source, sink):
            await serve_stdio(episode, stdin=stdin or source, stdout=stdout or sink, max_line_bytes=max_line_bytes)
        return
    server = build_server()
    current_episode.set(episode)
    wire = _Wire(stdin, stdout, max_line_bytes)
    to_server, from_client = anyio.create_memory_object_stream[SessionMessage | Exception](0)
    to_client, from_server = anyio.create_memory_object_stream[SessionMessage](0)
    async with anyio.create_task_group() as tg:
        tg.start_soon(wire.write_loop, from_server)
        tg.start_soon(wire.read_loop, to_server)
        await server.run(from_client, to_client, server.create_initialization_options())
