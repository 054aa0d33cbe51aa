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
from urllib.parse import quote

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


# Connections kept open to the farm: enough for every episode in flight, each idle one closed by the client after
# KEEPALIVE seconds, before the server does (uvicorn closes idle connections after 5 s): a request never goes out
# on a connection the server is closing at that very moment.
MAX_CONNECTIONS = 1024
KEEPALIVE = 2.0


def _repeatable(method: str, path: str) -> bool:
    """Whether sending a request twice does what sending it once does (reads, deletes, scoring, resets)."""
    return method in ("GET", "DELETE") or (method == "POST" and path.endswith(("/score", "/reset", "/score/batch")))


@dataclass
class CallResult:
    """What a tool call gave the agent."""

    text: str
    is_error: bool
    structured: dict[str, Any] | None = None


@dataclass
class ParsedCall:
    """A tool call as a model wrote it, read: ``problem`` says why it cannot be sent (``arguments`` is then None).

    ``kind`` names the problem: ``"bad_json"`` (arguments that are not a JSON object) or ``"malformed"``
    (not a tool call at all: no name, not an object).
    """

    id: str | None
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str
    problem: str | None = None
    kind: str | None = None


def read_tool_call(call: Any) -> ParsedCall:
    """Read a tool call in any shape a model emits, never raising.

    Accepted: ``{"name", "arguments"}`` (arguments an object, a JSON string, or absent; or ``raw_arguments``, the
    text as the model sent it), an OpenAI tool call
    ``{"id", "type": "function", "function": {"name", "arguments": "<JSON>"}}``, an Anthropic ``tool_use``
    block ``{"type": "tool_use", "id", "name", "input"}``.
    """
    if not isinstance(call, dict):
        return ParsedCall(None, "", None, "", f"a tool call must be an object, not {type(call).__name__}", "malformed")
    if isinstance(call.get("function"), dict):  # OpenAI
        body, call_id = call["function"], call.get("id")
    else:
        body, call_id = call, call.get("id")
    name = body.get("name")
    raw = body.get("input", body.get("arguments")) if body.get("type") == "tool_use" else body.get("arguments")
    if raw is None and isinstance(body.get("raw_arguments"), str):  # envfarm's own format (envfarm.agents)
        raw = body["raw_arguments"]
    call_id = str(call_id) if call_id is not None else None
    if not isinstance(name, str) or not name:
        return ParsedCall(call_id, "", None, _text(raw), "a tool call needs a tool name ('name')", "malformed")
    if raw is None:
        return ParsedCall(call_id, name, {}, "{}")
    if isinstance(raw, str):
        try:
            value = json.loads(raw) if raw.strip() else {}
        except (ValueError, RecursionError) as e:
            detail = f" (line {e.lineno} column {e.colno}: {e.msg})" if isinstance(e, json.JSONDecodeError) else ""
            return ParsedCall(call_id, name, None, raw, f"{name}: the arguments are not valid JSON{detail}", "bad_json")
    else:
        value = raw
    if not isinstance(value, dict):
        problem = f"{name}: the arguments must be a JSON object, not {type(value).__name__}"
        return ParsedCall(call_id, name, None, _text(raw), problem, "bad_json")
    return ParsedCall(call_id, name, value, raw if isinstance(raw, str) else _text(raw))


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


class AsyncFarm:
    """A farm at ``url`` (with its bearer ``token``, if it has one)."""

    def __init__(self, url: str = "http://127.0.0.1:8000", token: str | None = None, timeout: float = 60) -> None:
        self.url = url.rstrip("/")
        self.headers = {"authorization": f"Bearer {token}"} if token else {}
        limits = httpx.Limits(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS, keepalive_expiry=KEEPALIVE
        )
        self.http = httpx.AsyncClient(base_url=self.url, headers=self.headers, timeout=timeout, limits=limits)
        self._tls: Any = None  # one TLS context for every episode's MCP client: building one costs ~50 ms of CPU
        self._manifests: dict[str, dict[str, Any]] = {}

    def mcp_http(self) -> Any:
        """A new HTTP client (the MCP SDK's httpx2) for one episode's MCP session, with the farm's token.

        Each episode has its own connection pool, closed with the episode (nothing it cancels on the way out
        can touch another episode's requests); the TLS context is built once per farm client.
        """
        import httpx2

        if self._tls is None:
            self._tls = httpx2.create_ssl_context()
        return httpx2.AsyncClient(
            headers=self.headers,
            timeout=httpx2.Timeout(30, read=300),  # the SDK's own defaults
            verify=self._tls,
            limits=httpx2.Limits(keepalive_expiry=KEEPALIVE),
        )

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        try:
            response = await self.http.request(method, path, json=body)
        except (httpx.RemoteProtocolError, httpx.ReadError):
            # A kept-alive connection the server closed as it was reused: send again what is safe to repeat.
            if not _repeatable(method, path):
                raise
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

    async def manifest(self, env: str) -> dict[str, Any]:
        """The environment's manifest (description, rules, tools), fetched once per client."""
        if env not in self._manifests:
            self._manifests[env] = dict(await self.request("GET", f"/v1/envs/{quote(env, safe='')}"))
        return self._manifests[env]

    async def scenarios(self, env: str) -> list[dict[str, Any]]:
        """The environment's scenarios as an agent may see them: ``[{"id", "task", "split"}]``."""
        return list(await self.request("GET", f"/v1/envs/{quote(env, safe='')}/scenarios"))

    async def scenario(self, env: str, scenario: str) -> dict[str, Any]:
        """A whole scenario with its checks and oracle: the operator's view, never to be shown to an agent."""
        return dict(await self.request("GET", f"/v1/envs/{quote(env, safe='')}/scenarios/{quote(scenario, safe='')}"))

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
        from mcp.client.streamable_http import streamable_http_client

        http = await self._stack.enter_async_context(self.farm.mcp_http())
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

    async def score(self, messages: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """Score the episode's live state: reward, success, checks, collateral.

        ``messages`` (the conversation: ``{"role", "content"}`` ...) go along for checks that judge what the
        agent said (kind ``said``).
        """
        body = {"messages": messages} if messages is not None else None
        return dict(await self.farm.request("POST", f"/v1/episodes/{self.id}/score", body))

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

    ``reset()`` returns the task and the tools; ``step(tool_call)`` returns the tool's result text,
    reward 0 (the reward comes at the end), terminated False (the agent decides when it is done),
    truncated once ``max_steps`` steps are made, and the result in ``info``. ``end()`` ends the
    episode and scores it (as does the step that truncates it): its reward is the score's.

    ``step`` never raises because of what the model wrote: a call that is not a tool call, or whose
    arguments are not a JSON object, gives an error observation (``info["is_error"]``, with
    ``info["error_kind"]`` ``"malformed"`` or ``"bad_json"``) and counts as a step, as the farm's own
    refusals (an unknown tool, arguments that break the schema, a rule) do.
    """

    def __init__(
        self,
        farm: AsyncFarm,
        env: str,
        scenario: str | None = None,
        shape: Shape = "openai",
        max_steps: int = 50,
    ) -> None:
        if max_steps < 1:
            raise ValueError("max_steps must be at least 1")
        self.episode = farm.episode(env, scenario)
        self.shape = shape
        self.max_steps = max_steps
        self.steps = 0
        self.result: dict[str, Any] | None = None  # the score, once ended

    async def reset(self) -> tuple[str, dict[str, Any]]:
        if self.episode.id:
            await self.episode.reset()
        else:
            await self.episode.open()
        self.steps, self.result = 0, None
        return self.episode.task, {"tools": await self.episode.tools(self.shape), "episode_id": self.episode.id}

    @property
    def truncated(self) -> bool:
        return self.steps >= self.max_steps

    async def step(self, tool_call: Any) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """One tool call, in any shape :func:`read_tool_call` reads (arguments may be a JSON string, as OpenAI
        sends them)."""
        if self.result is not None or self.truncated:
            info = {"is_error": True, "error_kind": "ended", "score": self.result}
            return "the episode is over: reset() to start again", 0.0, self.result is not None, self.truncated, info
        self.steps += 1
        call = read_tool_call(tool_call)
        if call.arguments is None:
            observation, info = call.problem or "not a tool call", {"is_error": True, "error_kind": call.kind}
        else:
            result = await self.episode.call(call.name, call.arguments)
            observation = result.text
            info = {"is_error": result.is_error, "error_kind": None, "structured": result.structured}
        if not self.truncated:
            return observation, 0.0, False, False, info
        score = await self._score(None)
        return observation, float(score["reward"]), False, True, {**info, "score": score}

    async def end(self, messages: list[dict[str, Any]] | None = None) -> tuple[str, float, bool, bool, dict[str, Any]]:
        """End the episode (the agent is done) and score it: ``("", reward, True, truncated, {"score": ...})``.

        ``messages`` are passed on to the scorer for checks on what the agent said. Ending twice scores once.
        """
        score = self.result if self.result is not None else await self._score(messages)
        return "", float(score["reward"]), True, self.truncated, {"score": score}

    async def _score(self, messages: list[dict[str, Any]] | None) -> dict[str, Any]:
        self.result = await self.episode.score(messages)
        return self.result

    async def score(self) -> float:
        """The reward of the episode's state now (the episode goes on)."""
        return float((await self.episode.score())["reward"])

    async def close(self) -> None:
        await self.episode.close()
