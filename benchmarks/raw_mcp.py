"""MCP ``tools/call`` over HTTP without the SDK client: the request bytes and a bare HTTP/1.1 client.

Exists so the load generator's own CPU does not hide the server's capacity: the bodies
and headers are the ones the SDK client sends, written by hand.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

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
    """A JSON-RPC result that is not a tool error."""
    data = json.loads(body)
    return "result" in data and not data["result"].get("isError", False)


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client on asyncio streams: the least a load generator can do.

    Sends one POST at a time on its own connection and reads a Content-Length (or chunked)
    response.
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
