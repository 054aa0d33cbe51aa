"""The generic MCP server's handlers, on episodes in this process."""

from __future__ import annotations

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from envfarm.core.environments import load_environment
from envfarm.core.episodes import EpisodeStore
from envfarm.serve.errors import EPISODE_UNAVAILABLE
from envfarm.serve.mcp_server import _call_tool, current_episode


async def test_a_call_bound_to_an_episode_deleted_on_its_way_is_a_jsonrpc_error() -> None:
    """The request was bound to the episode, then the episode was deleted before the tool ran."""
    notes = load_environment("notes")
    store = EpisodeStore()
    episode = store.create(notes, notes.scenarios["file-two"])
    token = current_episode.set(episode)
    try:
        store.delete(episode.id)
        with pytest.raises(MCPError) as info:
            await _call_tool(None, types.CallToolRequestParams(name="list_notes", arguments={"folder": "work"}))
    finally:
        current_episode.reset(token)
    assert info.value.error.code == EPISODE_UNAVAILABLE
    assert info.value.error.message == f"episode {episode.id!r} not found: episode was deleted"
