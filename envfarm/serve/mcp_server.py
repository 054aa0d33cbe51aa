"""The farm's one generic MCP server: every episode's tools, served over Streamable HTTP or stdio.

One low-level ``mcp.server.lowlevel.Server`` serves every environment. Which
episode a request acts on is set per request by the transport, in the
``current_episode`` context variable: the HTTP app sets it from the
``/episodes/{episode_id}/mcp`` path before handing the request to the SDK, and
the stdio runner (:mod:`envfarm.serve.stdio`) sets it once for its single episode. The handlers read it,
list that episode's tools and call them through the episode's runtime.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

import mcp_types as types
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError

from envfarm import __version__
from envfarm.core.episodes import Episode, EpisodeNotFound
from envfarm.serve import metrics
from envfarm.serve.errors import EPISODE_UNAVAILABLE

current_episode: contextvars.ContextVar[Episode] = contextvars.ContextVar("envfarm_current_episode")


def _episode() -> Episode:
    try:
        return current_episode.get()
    except LookupError:
        raise MCPError(types.INVALID_REQUEST, "no episode is bound to this connection") from None


def tool_definitions(episode: Episode) -> list[types.Tool]:
    """The episode's tools in MCP form, read-only hints from each tool's kind."""
    return [
        types.Tool(
            name=spec.name,
            description=spec.description,
            input_schema=spec.input_schema,
            annotations=types.ToolAnnotations(
                read_only_hint=spec.kind == "query",
                destructive_hint=False if spec.kind == "query" else None,
                open_world_hint=False,
            ),
        )
        for spec in episode.env.tools.values()
    ]


async def _list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=tool_definitions(_episode()))


async def _call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
    episode = _episode()
    start = time.perf_counter()
    try:
        result = episode.call(params.name, params.arguments)
    except EpisodeNotFound as e:  # ended (deleted, reaped) after this request was bound to it
        raise MCPError(EPISODE_UNAVAILABLE, str(e)) from None
    metrics.TOOL_CALL_SECONDS.labels(episode.env.id).observe(time.perf_counter() - start)
    # An unknown tool name is the caller's text: count it under one label so it cannot grow the series.
    tool = params.name if params.name in episode.env.tools else "(unknown)"
    metrics.TOOL_CALLS.labels(episode.env.id, tool, "ok" if result.ok else "error").inc()
    structured = result.value if result.ok and isinstance(result.value, dict) else None
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=result.text())],
        structured_content=structured,
        is_error=not result.ok,
    )


def _tool_input_schema(name: str) -> dict[str, Any] | None:
    """Schema lookup for the SDK's Mcp-Param header validation, without a tools/list round trip."""
    episode = current_episode.get(None)
    spec = episode.env.tools.get(name) if episode is not None else None
    return spec.input_schema if spec is not None else None


def build_server() -> Server[Any]:
    """The generic server: tools/list and tools/call on the current episode."""
    return Server(
        "envfarm",
        version=__version__,
        title="envfarm episode",
        instructions="Tools of one envfarm episode. Each call acts on this episode's own state.",
        on_list_tools=_list_tools,
        on_call_tool=_call_tool,
        get_tool_input_schema=_tool_input_schema,
    )


def session_manager(server: Server[Any], max_body_bytes: int) -> StreamableHTTPSessionManager:
    """Streamable HTTP for all protocol revisions, without transport sessions.

    The episode is named in the path, so nothing needs an ``Mcp-Session-Id``:
    2026-07-28 requests are self-contained, and legacy (2025-06-18 / 2025-11-25)
    requests are served statelessly, each one on its own. Responses are plain
    JSON since no tool streams. Host/Origin checks are done once for the whole
    app by :mod:`envfarm.serve.security`, so the SDK's own copy is off here.
    """
    return StreamableHTTPSessionManager(
        app=server,
        json_response=True,
        stateless=True,
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        max_request_body_size=max_body_bytes,
    )
