"""A Python client for a farm: open episodes, call their tools over MCP, read state, score.

Async first (``AsyncFarm``), with a blocking twin (``BlockingFarm``) for scripts and
trainers that are not async. An episode is a context manager: leaving it
deletes the episode on the farm. ``GymEpisode`` wraps one in the Gymnasium
shape (``reset()``, ``step()``) for RL loops::

    async with AsyncFarm("http://127.0.0.1:8000") as farm:
        async with farm.episode("library", "return-and-pay") as episode:
            tools = await episode.tools(shape="anthropic")   # ready for messages.create(tools=...)
            result = await episode.call("find_member", {"query": "Ada Okafor"})
            score = await episode.score()
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from mcp import Client

from envfarm.core.errors import EnvfarmError

Shape = Literal["mcp", "anthropic", "openai"]
T = TypeVar("T")


class FarmError(EnvfarmError):
    """The farm refused a request; ``status`` is the HTTP status and the message its reason."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass
class CallResult:
    """What a tool call gave the agent."""

    text: str
    is_error: bool
    structured: dict[str, Any] | None = None


class AsyncFarm:
    """A farm at ``url`` (with its bearer ``token``, if it has one)."""

    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.headers = {"authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout)

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        response = await self.http.request(method, path, json=body)
        if response.status_code >= 400:
            try:
                detail = response.json().get("detail", response.text)
            except ValueError:
                detail = response.text
            raise FarmError(response.status_code, detail if isinstance(detail, str) else json.dumps(detail))
        return response.json() if response.content else None

    async def envs(self) -> list[dict[str, Any]]:
        return list(await self.request("GET", "/v1/envs"))

    def episode(self, env: str, scenario: str | None = None, seed: int | None = None) -> AsyncEpisode:
        """An episode to open with ``async with`` (or ``await episode.open()``)."""
        return AsyncEpisode(self, env, scenario, seed)

    async def score(self, env: str, scenario: str, trajectory: Any) -> dict[str, Any]:
        """Replay and score a trajectory (any accepted shape) without an episode."""
        body = {"env": env, "scenario": scenario, "trajectory": trajectory}
        return dict(await self.request("POST", "/v1/score", body))

    async def aclose(self) -> None:
        await self.http.aclose()

    async def __aenter__(self) -> AsyncFarm:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class AsyncEpisode:
    """One isolated episode: its task, its tools over MCP, its state and its score."""

    def __init__(self, farm: AsyncFarm, env: str, scenario: str | None, seed: int | None) -> None:
        self.farm = farm
        self.env, self.scenario, self.seed = env, scenario, seed
        self.id = ""
        self.task = ""
        self.mcp_url = ""
        self._stack: AsyncExitStack | None = None
        self._mcp: Client | None = None

    async def open(self) -> AsyncEpisode:
        body = {"env": self.env, "scenario": self.scenario, "seed": self.seed}
        created = await self.farm.request("POST", "/v1/episodes", {k: v for k, v in body.items() if v is not None})
        self.id, self.scenario, self.task, self.mcp_url = (
            created["episode_id"],
            created["scenario"],
            created["task"],
            created["mcp_url"],
        )
        self._stack = AsyncExitStack()
        transport: Any = self.mcp_url
        if self.farm.headers:  # the bearer token on MCP requests too (the SDK's own HTTP client, httpx2)
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            http = await self._stack.enter_async_context(httpx2.AsyncClient(headers=self.farm.headers, timeout=60))
            transport = streamable_http_client(self.mcp_url, http_client=http)
        self._mcp = await self._stack.enter_async_context(Client(transport))
        return self

    async def tools(self, shape: Shape = "mcp") -> list[dict[str, Any]]:
        """The episode's tools, as MCP lists them or in the shape Anthropic or OpenAI tool use expects."""
        listed = (await self._client().list_tools()).tools
        if shape == "anthropic":
            return [
                {"name": t.name, "description": t.description or "", "input_schema": t.input_schema} for t in listed
            ]
        if shape == "openai":
            return [
                {
                    "type": "function",
                    "function": {"name": t.name, "description": t.description or "", "parameters": t.input_schema},
                }
                for t in listed
            ]
        return [t.model_dump(by_alias=True, exclude_none=True) for t in listed]

    async def call(self, tool: str, arguments: dict[str, Any] | None = None) -> CallResult:
        """Call a tool over MCP; a refused call is a result with ``is_error``, not an exception."""
        result = await self._client().call_tool(tool, arguments or {})
        text = "".join(getattr(block, "text", "") for block in result.content)
        return CallResult(text=text, is_error=bool(result.is_error), structured=result.structured_content)

    async def state(self) -> dict[str, Any]:
        return dict(await self.farm.request("GET", f"/v1/episodes/{self.id}/state"))

    async def reset(self) -> dict[str, Any]:
        return dict(await self.farm.request("POST", f"/v1/episodes/{self.id}/reset"))

    async def score(self) -> dict[str, Any]:
        """Score the episode's live state: reward, success, checks, collateral."""
        return dict(await self.farm.request("POST", f"/v1/episodes/{self.id}/score"))

    async def close(self) -> None:
        """Disconnect and delete the episode on the farm (safe to call twice)."""
        if self._stack is not None:
            stack, self._stack, self._mcp = self._stack, None, None
            await stack.aclose()
        if self.id:
            episode_id, self.id = self.id, ""
            try:
                await self.farm.request("DELETE", f"/v1/episodes/{episode_id}")
            except FarmError as e:
                if e.status != 404:  # already gone (reaped, deleted) is fine
                    raise

    def _client(self) -> Client:
        if self._mcp is None:
            raise RuntimeError("the episode is not open: use `async with farm.episode(...)` or await open()")
        return self._mcp

    async def __aenter__(self) -> AsyncEpisode:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Loop:
    """An event loop on a background thread, for the blocking client."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="envfarm-client", daemon=True)
        self.thread.start()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


class BlockingFarm:
    """The blocking client: the same calls as ``AsyncFarm``, without ``await``."""

    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 60) -> None:
        self._loop = _Loop()
        self._farm = self._loop.run(_make_farm(url, token, timeout))

    def envs(self) -> list[dict[str, Any]]:
        return self._loop.run(self._farm.envs())

    def episode(self, env: str, scenario: str | None = None, seed: int | None = None) -> BlockingEpisode:
        return BlockingEpisode(self._loop, self._farm.episode(env, scenario, seed))

    def score(self, env: str, scenario: str, trajectory: Any) -> dict[str, Any]:
        return self._loop.run(self._farm.score(env, scenario, trajectory))

    def close(self) -> None:
        self._loop.run(self._farm.aclose())
        self._loop.stop()

    def __enter__(self) -> BlockingFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


async def _make_farm(url: str, token: str | None, timeout: float) -> AsyncFarm:
    return AsyncFarm(url, token, timeout)  # built on the loop's thread, where it will be used


class BlockingEpisode:
    """The blocking twin of ``AsyncEpisode``.

    The MCP session lives in one task on the client's loop from open to close
    (anyio requires a session to end in the task that began it); each blocking
    call is handed to that task and waited for.
    """

    def __init__(self, loop: _Loop, episode: AsyncEpisode) -> None:
        self._loop = loop
        self._episode = episode
        self._inbox: asyncio.Queue[tuple[Callable[[], Awaitable[Any]], asyncio.Future[Any]] | None] | None = None
        self._driver: asyncio.Task[None] | None = None

    @property
    def id(self) -> str:
        return self._episode.id

    @property
    def task(self) -> str:
        return self._episode.task

    def open(self) -> BlockingEpisode:
        self._loop.run(self._start())
        return self

    async def _start(self) -> None:
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._inbox = asyncio.Queue()
        self._driver = asyncio.create_task(self._drive(self._inbox, ready))
        await ready

    async def _drive(self, inbox: asyncio.Queue[Any], ready: asyncio.Future[None]) -> None:
        try:
            await self._episode.open()
        except Exception as e:
            ready.set_exception(e)
            return
        ready.set_result(None)
        try:
            while (job := await inbox.get()) is not None:
                work, answer = job
                try:
                    answer.set_result(await work())
                except Exception as e:  # handed back to the caller's thread, raised there
                    answer.set_exception(e)
        finally:
            await self._episode.close()

    def _ask(self, work: Callable[[], Awaitable[T]]) -> T:
        async def ask() -> T:
            if self._inbox is None:
                raise RuntimeError("the episode is not open: use `with farm.episode(...)` or open()")
            answer: asyncio.Future[T] = asyncio.get_running_loop().create_future()
            await self._inbox.put((work, answer))
            return await answer

        return self._loop.run(ask())

    def tools(self, shape: Shape = "mcp") -> list[dict[str, Any]]:
        return self._ask(lambda: self._episode.tools(shape))

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> CallResult:
        return self._ask(lambda: self._episode.call(tool, arguments))

    def state(self) -> dict[str, Any]:
        return self._ask(self._episode.state)

    def reset(self) -> dict[str, Any]:
        return self._ask(self._episode.reset)

    def score(self) -> dict[str, Any]:
        return self._ask(self._episode.score)

    def close(self) -> None:
        async def stop() -> None:
            if self._inbox is not None and self._driver is not None:
                await self._inbox.put(None)
                await self._driver
                self._inbox = self._driver = None

        self._loop.run(stop())

    def __enter__(self) -> BlockingEpisode:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()


class GymEpisode:
    """Gymnasium's shape over an async episode, for RL rollouts.

    ``reset()`` returns the task and the tools; ``step(tool_call)`` returns the tool's
    result text, reward 0 (the reward comes at the end), terminated False (the agent
    decides when it is done) and the result in ``info``; ``score()`` gives the reward.
    """

    def __init__(self, farm: AsyncFarm, env: str, scenario: str | None = None, shape: Shape = "openai") -> None:
        self.episode = farm.episode(env, scenario)
        self.shape = shape

    async def reset(self) -> tuple[str, dict[str, Any]]:
        if self.episode.id:
            await self.episode.reset()
        else:
            await self.episode.open()
        return self.episode.task, {"tools": await self.episode.tools(self.shape), "episode_id": self.episode.id}

    async def step(self, tool_call: dict[str, Any]) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """``tool_call`` is ``{"name", "arguments"}`` (arguments may be a JSON string, as OpenAI sends them)."""
        arguments = tool_call.get("arguments") or {}
        if isinstance(arguments, str):
            arguments = json.loads(arguments or "{}")
        result = await self.episode.call(tool_call["name"], arguments)
        return result.text, 0.0, False, False, {"is_error": result.is_error, "structured": result.structured}

    async def score(self) -> float:
        return float((await self.episode.score())["reward"])

    async def close(self) -> None:
        await self.episode.close()
