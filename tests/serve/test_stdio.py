"""`envfarm stdio ENV --scenario ID`: one episode over stdio, with the official SDK client."""

from __future__ import annotations

import os
import sys

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
