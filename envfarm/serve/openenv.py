"""OpenEnv's protocol for every environment of the farm, under ``/openenv/{env}``.

OpenEnv (``openenv-core``, meta-pytorch/OpenEnv) is the environment interface that TRL,
torchforge, SkyRL and others drive: a server answers ``reset``, ``step`` and ``state`` over
HTTP and over a WebSocket session, and an MCP-style environment takes ``ListToolsAction`` /
``CallToolAction`` steps. Here each environment of the farm is such a server, so that
``MCPToolClient(base_url=f"{farm}/openenv/library")`` (or ``GenericEnvClient``) works as it is.
The message shapes are openenv-core 0.3's (``openenv.core.env_server.http_server`` and
``types``/``mcp_types``); docs/openenv.md describes them with envfarm's additions.

Routes, under ``/openenv/{env}``:

- ``WS /ws``: one session; messages ``reset``, ``step``, ``state``, ``close`` (and ``mcp``, a
  JSON-RPC ``tools/list`` or ``tools/call`` on the session's episode). The session holds one
  episode at a time: ``reset`` ends the one it had and opens a fresh envfarm episode; closing the
  session (or losing the connection) ends it.
- ``POST /reset``, ``POST /step``, ``GET /state``: the same over plain HTTP. Unlike OpenEnv's own
  server, whose HTTP reset and step each act on a throwaway environment, here ``/reset`` opens an
  episode that lives on (until a done step, ``DELETE /v1/episodes/{id}`` or the reaper) and
  ``/step`` and ``/state`` act on the one named by ``episode_id``.
- ``GET /health``, ``GET /schema`` (action, observation and state JSON Schemas), ``GET /metadata``.

Actions: ``{"type": "list_tools"}``, ``{"type": "call_tool", "tool_name", "arguments"}`` and the
terminal ``{"type": "done", "messages"?}``; a ``call_tool`` of ``done`` is the terminal action too,
unless the environment has a tool of that name, so ``MCPToolClient.call_tool("done")`` ends an
episode with nothing but OpenEnv's own classes. The terminal step scores the episode with the
farm's validator (the route ``POST /v1/episodes/{id}/score``, called in process), ends it, and
answers ``done: true`` with the score's reward.

Tool calls go through :meth:`~envfarm.core.episodes.Episode.call`, the runtime MCP uses, with the
same metrics; episodes are opened and ended by the :class:`~envfarm.serve.farm.Farm`, so limits
(``ENVFARM_MAX_EPISODES``), reaping and episode metrics apply as they do to MCP. The app's guard
checks every HTTP request; a WebSocket handshake, which it lets through, is put to the very same
checks here (:meth:`OpenEnvServer.refusal`) before it is accepted.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import logging
import random
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

import httpx
from fastapi import FastAPI, Query, Response, WebSocket
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError
from starlette.types import Message, Receive, Scope, Send

from envfarm.core.environments import Environment
from envfarm.core.episodes import Episode, EpisodeNotFound, ToolResult
from envfarm.core.errors import Conflict, EnvfarmError, InvalidInput, NotFound, Unavailable
from envfarm.core.scenarios import split_of
from envfarm.serve import metrics
from envfarm.serve.errors import SafeJSONResponse, render_json, status_of, validation_errors
from envfarm.serve.farm import Farm
from envfarm.serve.inputs import NOT_PARSED, brief, inspect_body, tidy
from envfarm.serve.security import guard

log = logging.getLogger("envfarm.openenv")

PREFIX = "/openenv/{env_id}"
OPENENV_VERSION = "0.3"
"""The openenv-core release whose protocol this module speaks (and tests/serve/test_openenv.py drives)."""

DONE_TOOL = "done"
"""A ``call_tool`` of this name is the terminal action, unless the environment has a tool of that name."""

SESSIONS = Gauge("envfarm_openenv_sessions", "OpenEnv WebSocket sessions open now.", registry=metrics.REGISTRY)
MESSAGES = Counter(
    "envfarm_openenv_messages_total",
    "OpenEnv messages and HTTP calls answered, by kind (reset, list_tools, call_tool, done, state, mcp, close, "
    "invalid) and outcome (ok, error).",
    ["kind", "outcome"],
    registry=metrics.REGISTRY,
)


# -- wire shapes (openenv-core 0.3) ---------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ListToolsAction(_Strict):
    """List the episode's MCP tools (no episode needed: tools are the environment's)."""

    type: Literal["list_tools"] = "list_tools"
    metadata: dict[str, Any] = Field(default_factory=dict, description="ignored")


class CallToolAction(_Strict):
    """Call one tool on the session's episode, as ``tools/call`` does over MCP."""

    type: Literal["call_tool"] = "call_tool"
    tool_name: str = Field(description=f"the tool; {DONE_TOOL!r} ends the episode unless the env has such a tool")
    arguments: dict[str, Any] = Field(default_factory=dict, description="the tool's arguments")
    metadata: dict[str, Any] = Field(default_factory=dict, description="ignored")


class DoneAction(_Strict):
    """End the episode: score it with the validator; the observation carries the score, ``reward`` its reward."""

    type: Literal["done"] = "done"
    messages: list[dict[str, Any]] | None = Field(
        default=None,
        description="the conversation ({role, content} ...), passed to the scorer for checks on what was said",
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="ignored")


AnyAction = Annotated[ListToolsAction | CallToolAction | DoneAction, Field(discriminator="type")]
ACTIONS: TypeAdapter[ListToolsAction | CallToolAction | DoneAction] = TypeAdapter(AnyAction)


class ResetParams(_Strict):
    """What ``reset`` may ask for (WebSocket ``data``, HTTP body); nothing picks the next scenario of the env."""

    scenario: str | None = Field(default=None, description="a scenario id; else one drawn by seed, else the next one")
    seed: int | None = Field(default=None, description="draws the scenario (when none is named) and seeds the tools")
    split: Literal["train", "test"] | None = Field(default=None, description="draw or cycle within this split only")
    episode_id: str | None = Field(default=None, description="the new episode's id (the farm mints one otherwise)")


class StepBody(_Strict):
    """``POST /step``: OpenEnv's StepRequest, plus the episode it acts on."""

    action: dict[str, Any] = Field(description="list_tools, call_tool or done (see /schema)")
    episode_id: str | None = Field(default=None, description="the episode from /reset; list_tools needs none")
    timeout_s: float | None = Field(default=None, gt=0, description="accepted, unused: tool calls are not timed")
    request_id: str | None = Field(default=None, max_length=255, description="echoed nowhere; for the caller's logs")


class ToolModel(_Strict):
    name: str
    description: str
    input_schema: dict[str, Any]


class ToolErrorModel(_Strict):
    error_type: Literal["execution_error", "invalid_args", "transport_error", "tool_not_found", "timeout"]
    message: str


class ResetObservation(_Strict):
    metadata: dict[str, Any] = Field(
        description="episode_id, env, scenario, split, task, title, description, rules ({id: text})"
    )


class ListToolsObservation(_Strict):
    tools: list[ToolModel]


class CallToolObservation(_Strict):
    tool_name: str
    result: dict[str, Any] | None = Field(
        description="content [{type: text, text}], structured_content, data (the tool's value), is_error"
    )
    error: ToolErrorModel | None = Field(default=None, description="set when the call was refused (result.is_error)")
    metadata: dict[str, Any] = Field(default_factory=dict, description="on the terminal step: the score")


class DoneObservation(_Strict):
    metadata: dict[str, Any] = Field(
        description="episode_id and the score: reward, success, checks, collateral, final_state_hash"
    )


class EpisodeState(BaseModel):
    """What ``state`` answers (OpenEnv's State: ``episode_id``, ``step_count``, and more fields)."""

    model_config = ConfigDict(extra="allow")

    episode_id: str | None = None
    step_count: int = Field(default=0, description="steps since reset: list_tools, call_tool and done alike")
    env: str | None = None
    scenario: str | None = None
    state_hash: str | None = Field(default=None, description="sha256 of the canonical state (the final one once done)")
    tool_calls: int = 0
    done: bool = False
    reward: float | None = Field(default=None, description="the score's reward, once done")


# -- errors ---------------------------------------------------------------------------------------------


class SessionProblem(Conflict):
    """The session has no episode to act on (never reset, or its episode is done)."""


class ActionInvalid(InvalidInput):
    """An action or a message that does not validate; ``errors`` in FastAPI's shape, never echoing input."""

    def __init__(self, what: str, errors: list[dict[str, Any]], loc: tuple[str | int, ...] = ()) -> None:
        self.errors = [{**e, "loc": [*loc, *e["loc"]]} for e in errors]
        first = self.errors[0] if self.errors else {"loc": [], "msg": "invalid"}
        where = ".".join(str(p) for p in first["loc"]) or what
        super().__init__(f"invalid {what}: {where}: {first['msg']}")


def _invalid(what: str, error: ValidationError, loc: tuple[str | int, ...] = ()) -> ActionInvalid:
    return ActionInvalid(what, validation_errors(error.errors(include_input=False)), loc)


def ws_error(error: Exception) -> dict[str, Any]:
    """An error as OpenEnv's WSErrorResponse ``data``: ``message`` and ``code`` (and what else helps)."""
    if isinstance(error, ActionInvalid):
        return {"message": tidy(str(error)), "code": "VALIDATION_ERROR", "errors": error.errors}
    if isinstance(error, Unavailable):
        return {"message": tidy(str(error)), "code": "CAPACITY_REACHED", "retry_after": error.retry_after}
    if isinstance(error, SessionProblem | EpisodeNotFound):
        return {"message": tidy(str(error)), "code": "SESSION_ERROR"}
    if isinstance(error, EnvfarmError):  # a caller's mistake (404, 409, 421, 422 over HTTP), or the server's side
        code = "VALIDATION_ERROR" if 400 <= status_of(error) < 500 else "EXECUTION_ERROR"
        return {"message": tidy(str(error)), "code": code}
    log.exception("OpenEnv message failed", exc_info=error)
    message = f"internal error ({type(error).__name__}); the server log has the details"
    return {"message": message, "code": "EXECUTION_ERROR"}


# -- episodes as OpenEnv sees them ----------------------------------------------------------------------


@dataclass
class Slot:
    """One episode's OpenEnv bookkeeping: its step count, and its score once done.

    Holds the episode's id, never the episode: the farm owns it, and a slot is found from the
    episode in a weak mapping, so an episode ended elsewhere (deleted, reaped) takes its slot along.
    """

    episode_id: str
    env: str
    scenario: str
    steps: int = 0
    score: dict[str, Any] | None = None  # the terminal step's score (without the call log)
    calls: int = 0  # tool calls made, counted once done (the episode is gone then)


@dataclass
class Outcome:
    """What a step answers: OpenEnv's ``{"observation", "reward", "done"}``."""

    observation: dict[str, Any]
    reward: float | None = None
    done: bool = False

    def wire(self) -> dict[str, Any]:
        return {"observation": self.observation, "reward": self.reward, "done": self.done}


@dataclass
class Session:
    """A WebSocket session: the environment, and the episode it holds (at most one)."""

    env: Environment
    slot: Slot | None = None


class OpenEnvServer:
    """The OpenEnv routes of one farm app; see the module docstring."""

    def __init__(self, api: FastAPI, farm: Farm) -> None:
        self.api = api
        self.farm = farm
        self.slots: weakref.WeakKeyDictionary[Episode, Slot] = weakref.WeakKeyDictionary()
        self.cursors: dict[tuple[str, str], Iterator[int]] = {}
        # The app's own guard, for WebSocket handshakes (it checks HTTP requests only): one set of rules.
        self.checks = guard(_reached, farm.settings)
        self.inner: httpx.AsyncClient | None = None

    # -- lifecycle ------------------------------------------------------------------------------------

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """While the app runs: an in-process client of the app itself, to score through the validator's route."""
        transport = httpx.ASGITransport(app=self.api, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://envfarm.internal", timeout=None) as inner:
            self.inner = inner
            try:
                yield
            finally:
                self.inner = None

    # -- the operations, shared by HTTP and WebSocket ----------------------------------------------------

    def open(self, env: Environment, params: ResetParams, scenario_id: str | None = None) -> tuple[Slot, Outcome]:
        """Open a fresh episode as ``params`` ask; its observation carries the task, description and rules."""
        scenario_id = scenario_id or self.pick(env, params)
        episode = self.farm.open(env.id, scenario_id, params.seed, params.episode_id)
        slot = Slot(episode.id, env.id, episode.scenario.id)
        self.slots[episode] = slot
        scenario = episode.scenario
        metadata = {
            "episode_id": episode.id,
            "env": env.id,
            "scenario": scenario.id,
            "split": split_of(scenario),
            "task": scenario.task,
            "title": env.title,
            "description": env.description,
            "rules": dict(env.rules),
        }
        return slot, Outcome({"metadata": metadata})

    def pick(self, env: Environment, params: ResetParams) -> str:
        """The scenario: named, else drawn by seed, else the next one (of the split, or of every scenario)."""
        if params.scenario is not None:
            scenario = self.farm.scenario(env, params.scenario)
            if params.split is not None and split_of(scenario) != params.split:
                raise InvalidInput(f"scenario {scenario.id!r} is in the {split_of(scenario)} split, not {params.split}")
            return scenario.id
        ids = sorted(s.id for s in env.scenarios.values() if params.split in (None, split_of(s)))
        if not ids:
            raise NotFound(f"{env.id!r} has no scenario in the {params.split} split")
        if params.seed is not None:
            return random.Random(params.seed).choice(ids)
        cursor = self.cursors.setdefault((env.id, params.split or "all"), itertools.count())
        return ids[next(cursor) % len(ids)]

    def episode(self, slot: Slot | None) -> tuple[Slot, Episode]:
        """The live episode of a slot, marked as in use; why not, as an error the caller can act on."""
        if slot is None:
            raise SessionProblem("no episode: send reset first (list_tools needs none)")
        if slot.score is not None:
            raise SessionProblem(
                f"episode {slot.episode_id!r} is done (reward {slot.score['reward']}); send reset to start another"
            )
        return slot, self.farm.episode(slot.episode_id)

    async def step(self, env: Environment, slot: Slot | None, data: Any) -> Outcome:
        """Run one action; a refused tool call is an observation (with ``error``), not a failed step."""
        action = parse_action(data)
        if isinstance(action, ListToolsAction):
            if slot is not None and slot.score is None:
                slot.steps += 1
            MESSAGES.labels("list_tools", "ok").inc()
            return Outcome({"tools": tools_of(env)})
        if isinstance(action, DoneAction):
            return await self.finish(slot, action.messages, None)
        if action.tool_name == DONE_TOOL and DONE_TOOL not in env.tools:
            return await self.finish(slot, None, DONE_TOOL)
        slot, episode = self.episode(slot)
        slot.steps += 1
        result = call_tool(episode, action.tool_name, action.arguments)
        MESSAGES.labels("call_tool", "ok").inc()
        return Outcome(call_observation(env, result))

    async def finish(self, slot: Slot | None, messages: list[dict[str, Any]] | None, tool: str | None) -> Outcome:
        """The terminal step: score with the validator, end the episode, answer the reward."""
        slot, episode = self.episode(slot)
        score = await self.score(episode.id, messages)
        summary = {k: v for k, v in score.items() if k != "calls"}
        slot.score = {"episode_id": episode.id, **summary}
        slot.calls = len(score.get("calls") or ())
        slot.steps += 1
        with contextlib.suppress(EpisodeNotFound):  # deleted or reaped while being scored: the score stands
            self.farm.end(episode.id, "done (scored at an OpenEnv done step)")
        MESSAGES.labels("done", "ok").inc()
        reward = float(score["reward"])
        if tool is None:
            return Outcome({"metadata": slot.score}, reward, True)
        text = json.dumps(slot.score, separators=(",", ":"))
        result = {"content": [{"type": "text", "text": text}], "structured_content": slot.score}
        observation = {"tool_name": tool, "result": {**result, "data": slot.score, "is_error": False}, "error": None}
        return Outcome({**observation, "metadata": slot.score}, reward, True)

    async def score(self, episode_id: str, messages: list[dict[str, Any]] | None) -> dict[str, Any]:
        """The validator's score of the live episode, through its own route in this app."""
        if self.inner is None:
            raise Unavailable("the farm is not running (starting or shutting down); retry shortly")
        body = {"messages": messages} if messages is not None else None
        answer = await self.inner.post(f"/v1/episodes/{quote(episode_id, safe='')}/score", json=body)
        if answer.status_code == 200:
            score: dict[str, Any] = answer.json()
            return score
        detail = _detail(answer)
        if answer.status_code == 404 and detail is None:
            raise EnvfarmError("this farm scores nothing (no validator is mounted; `envfarm serve` mounts one)")
        if answer.status_code == 503:
            raise Unavailable(detail or "the validator is busy; retry shortly")
        if answer.status_code == 404:
            raise EpisodeNotFound(episode_id, detail or "not found")
        raise EnvfarmError(f"scoring failed ({answer.status_code}): {detail or 'no detail'}")

    def state(self, slot: Slot | None) -> dict[str, Any]:
        """OpenEnv's State of a slot, with the env, scenario, state hash and tool calls."""
        if slot is None:
            return EpisodeState().model_dump()
        if slot.score is not None:
            return EpisodeState(
                episode_id=slot.episode_id,
                step_count=slot.steps,
                env=slot.env,
                scenario=slot.scenario,
                state_hash=slot.score.get("final_state_hash"),
                tool_calls=slot.calls,
                done=True,
                reward=slot.score.get("reward"),
            ).model_dump()
        episode = self.farm.episode(slot.episode_id)
        return EpisodeState(
            episode_id=episode.id,
            step_count=slot.steps,
            env=slot.env,
            scenario=slot.scenario,
            state_hash=episode.state_hash(),
            tool_calls=episode.calls,
        ).model_dump()

    def slot_of(self, env: Environment, episode_id: str) -> Slot:
        """The slot of a live episode named over HTTP (any episode of this env: opened here or by POST /v1/episodes)."""
        episode = self.farm.episode(episode_id)
        if episode.env.id != env.id:
            raise InvalidInput(f"episode {episode_id!r} is of {episode.env.id!r}, not {env.id!r}")
        slot = self.slots.get(episode)
        if slot is None:
            slot = self.slots[episode] = Slot(episode.id, env.id, episode.scenario.id)
        return slot

    def end(self, slot: Slot | None, reason: str) -> None:
        """End a slot's episode if it is still live (a session's reset or close)."""
        if slot is None or slot.score is not None:
            return
        with contextlib.suppress(EpisodeNotFound):  # deleted or reaped already
            self.farm.end(slot.episode_id, reason)

    # -- WebSocket ------------------------------------------------------------------------------------

    async def refusal(self, scope: Scope) -> tuple[int, bytes, list[tuple[bytes, bytes]]] | None:
        """Put a WebSocket handshake to the guard's checks (Host, Origin, token); the refusal it would answer.

        OpenEnv's clients cannot send headers, so the token may come as the URL's password
        (``ws://user:TOKEN@host/...`` makes the client send it as HTTP Basic credentials).
        """
        headers = [(k, _bearer_from_basic(v) if k == b"authorization" else v) for k, v in scope["headers"]]
        probe = {**scope, "type": "http", "method": "GET", "headers": headers, "query_string": b""}
        answer: dict[str, Any] = {}

        async def receive() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["headers"] = [(k, v) for k, v in message.get("headers", []) if k != b"content-length"]
            elif message["type"] == "http.response.body":
                answer["body"] = answer.get("body", b"") + message.get("body", b"")

        await self.checks(probe, receive, send)
        if probe.get(_REACHED):
            return None
        return answer.get("status", 403), answer.get("body", b""), answer.get("headers", [])

    async def websocket(self, ws: WebSocket, env_id: str) -> None:
        refused = await self.refusal(ws.scope)
        if refused is not None:
            await _deny(ws, *refused)
            return
        env = self.farm.envs.get(env_id)
        if env is None:
            message = f"no environment {brief(env_id)}; this farm serves {sorted(self.farm.envs)}"
            await _deny(ws, 404, render_json({"detail": tidy(message)}), [])
            return
        await ws.accept()
        session = Session(env)
        SESSIONS.inc()
        try:
            while True:
                event = await ws.receive()
                if event["type"] == "websocket.disconnect":
                    break
                text = event.get("text")
                raw = text.encode() if text is not None else event.get("bytes", b"")
                reply, close = await self.handle(session, raw)
                if reply is not None:
                    await ws.send_text(reply)
                if close:
                    break
        except Exception as e:  # the connection went away mid-send; nothing is left to answer
            log.debug("OpenEnv session ended: %s", e)
        finally:
            SESSIONS.dec()
            self.end(session.slot, "closed with its OpenEnv session")
            with contextlib.suppress(Exception):  # already closed by the client
                await ws.close()

    async def handle(self, session: Session, raw: bytes) -> tuple[str | None, bool]:
        """Answer one WebSocket message: (the reply's text, whether to close the session)."""
        kind = "invalid"
        try:
            if len(raw) > self.farm.settings.max_body_bytes:
                limit = self.farm.settings.max_body_bytes
                raise InvalidInput(f"message is over the limit of {limit} bytes (ENVFARM_MAX_BODY_BYTES)")
            verdict = inspect_body(raw)
            if verdict.problem is not None:
                p = verdict.problem
                raise ActionInvalid("message", [{"loc": list(p.loc), "msg": p.msg, "type": p.type}])
            try:
                data = json.loads(raw) if verdict.parsed is NOT_PARSED else verdict.parsed
            except (ValueError, RecursionError) as e:
                return _error_text({"message": f"Invalid JSON: {_json_problem(e)}", "code": "INVALID_JSON"}), False
            if not isinstance(data, dict):
                message = "a message is a JSON object with a type: reset, step, state, close or mcp"
                return _error_text({"message": message, "code": "INVALID_JSON"}), False
            kind = str(data["type"]) if isinstance(data.get("type"), str) else "invalid"
            if kind == "reset":
                params = _read(ResetParams, _envelope(data, "data", {}), "reset data", ("data",))
                scenario_id = self.pick(session.env, params)  # a wrong scenario or split leaves the episode be
                self.end(session.slot, "replaced at its OpenEnv session's next reset")
                session.slot = None
                session.slot, outcome = self.open(session.env, params, scenario_id)
                MESSAGES.labels("reset", "ok").inc()
                return _text({"type": "observation", "data": outcome.wire()}), False
            if kind == "step":
                outcome = await self.step(session.env, session.slot, _envelope(data, "data", None))
                return _text({"type": "observation", "data": outcome.wire()}), False
            if kind == "state":
                _envelope(data, None, None)
                answer = self.state(session.slot)
                MESSAGES.labels("state", "ok").inc()
                return _text({"type": "state", "data": answer}), False
            if kind == "close":
                MESSAGES.labels("close", "ok").inc()
                return None, True
            if kind == "mcp":
                return _text({"type": "mcp", "data": self.mcp(session, _envelope(data, "data", None))}), False
            kind = "invalid"
            known = "reset, step, state, close, mcp"
            message = f"Unknown message type: {brief(data.get('type'))}; the types are {known}"
            return _error_text({"message": message, "code": "UNKNOWN_TYPE"}), False
        except Exception as e:  # one message's failure is answered on the session, never closes it;
            # ws_error words the farm's own errors and logs anything else (a bug) with its traceback
            MESSAGES.labels(kind if kind in _KINDS else "invalid", "error").inc()
            return _error_text(ws_error(e)), False

    def mcp(self, session: Session, request: Any) -> dict[str, Any]:
        """A JSON-RPC ``tools/list`` or ``tools/call`` on the session's episode, answered as JSON-RPC."""
        request_id = request.get("id") if isinstance(request, dict) else None
        if isinstance(request_id, bool) or not isinstance(request_id, str | int):
            request_id = None

        def error(code: int, message: str) -> dict[str, Any]:
            MESSAGES.labels("mcp", "error").inc()
            return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": tidy(message)}}

        is_request = isinstance(request, dict) and request.get("jsonrpc") == "2.0"
        if not (is_request and isinstance(request.get("method"), str)):
            return error(-32600, "Invalid Request: send a JSON-RPC 2.0 request {jsonrpc, method, params, id}")
        params = request.get("params", {})
        if not isinstance(params, dict):
            return error(-32602, "Invalid params: params must be an object")
        if request["method"] == "tools/list":
            MESSAGES.labels("mcp", "ok").inc()
            tools = [
                {"name": t["name"], "description": t["description"], "inputSchema": t["input_schema"]}
                for t in tools_of(session.env)
            ]
            return {"jsonrpc": "2.0", "id": request_id, "result": {"tools": tools}}
        if request["method"] != "tools/call":
            return error(-32601, f"Method not found: {brief(request['method'])} (tools/list and tools/call are served)")
        name, arguments = params.get("name"), params.get("arguments", {})
        if not isinstance(name, str):
            return error(-32602, "Invalid params: 'name' (a string) is required")
        try:
            slot, episode = self.episode(session.slot)
        except EnvfarmError as e:
            return error(-32001, str(e))
        slot.steps += 1
        result = call_tool(episode, name, arguments)
        MESSAGES.labels("mcp", "ok").inc()
        content = [{"type": "text", "text": result.text()}]
        answer: dict[str, Any] = {"content": content, "isError": not result.ok}
        if result.ok and isinstance(result.value, dict):
            answer["structuredContent"] = result.value
        return {"jsonrpc": "2.0", "id": request_id, "result": answer}

    # -- routes ---------------------------------------------------------------------------------------

    def install(self) -> None:
        api, server = self.api, self

        @api.get(PREFIX + "/health", tags=["openenv"])
        async def health(env_id: str) -> dict[str, Any]:
            """OpenEnv's health check: ``{"status": "healthy"}``."""
            server.farm.env(env_id)
            return {"status": "healthy"}

        @api.get(PREFIX + "/metadata", tags=["openenv"])
        async def env_metadata(env_id: str) -> dict[str, Any]:
            """OpenEnv's EnvironmentMetadata: name, description, a readme (the rules), version."""
            env = server.farm.env(env_id)
            return {
                "name": env.id,
                "description": f"{env.title}: {env.description}",
                "readme_content": readme(env),
                "version": env.version,
                "author": None,
                "documentation_url": None,
            }

        @api.get(PREFIX + "/schema", tags=["openenv"])
        async def schema(env_id: str) -> dict[str, Any]:
            """OpenEnv's SchemaResponse: JSON Schemas of the actions, observations and state."""
            server.farm.env(env_id)
            return SCHEMAS

        @api.post(PREFIX + "/reset", tags=["openenv"])
        async def reset(env_id: str, body: ResetParams | None = None) -> dict[str, Any]:
            """Open a fresh episode (it lives until a done step, DELETE /v1/episodes/{id}, or the reaper)."""
            env = server.farm.env(env_id)
            try:
                _, outcome = server.open(env, body or ResetParams.model_validate({}))
            except Exception:
                MESSAGES.labels("reset", "error").inc()
                raise
            MESSAGES.labels("reset", "ok").inc()
            return outcome.wire()

        @api.post(PREFIX + "/step", tags=["openenv"])
        async def step(env_id: str, body: StepBody) -> Response:
            """Run one action on the episode named by ``episode_id``; ``list_tools`` needs none."""
            env = server.farm.env(env_id)
            try:
                slot = server.slot_of(env, body.episode_id) if body.episode_id is not None else None
                outcome = await server.step(env, slot, body.action)
            except ActionInvalid as e:
                MESSAGES.labels("step", "error").inc()
                errors = [{**err, "loc": ["body", "action", *err["loc"]]} for err in e.errors]
                return SafeJSONResponse({"detail": errors}, 422)
            except EnvfarmError as e:
                MESSAGES.labels("step", "error").inc()
                headers = {"Retry-After": f"{e.retry_after:g}"} if isinstance(e, Unavailable) else None
                status = 409 if isinstance(e, SessionProblem) else status_of(e)
                return SafeJSONResponse({"detail": tidy(str(e))}, status, headers=headers)
            return SafeJSONResponse(outcome.wire())

        @api.get(PREFIX + "/state", tags=["openenv"])
        async def state(
            env_id: str, episode_id: Annotated[str | None, Query(description="the episode from /reset")] = None
        ) -> dict[str, Any]:
            """The state of the episode named by ``episode_id``: id, step count, state hash; empty without one."""
            env = server.farm.env(env_id)
            MESSAGES.labels("state", "ok").inc()
            return server.state(server.slot_of(env, episode_id) if episode_id is not None else None)

        @api.websocket(PREFIX + "/ws")
        async def ws(websocket: WebSocket, env_id: str) -> None:
            """The OpenEnv session: reset, step, state, close (and mcp) messages; one episode at a time."""
            await server.websocket(websocket, env_id)


def openenv_extension(api: FastAPI, farm: Farm) -> Any:
    """Serve OpenEnv's protocol for every environment of the farm (an :data:`~envfarm.serve.app.Extension`)."""
    server = OpenEnvServer(api, farm)
    server.install()
    return server.running()


# -- helpers --------------------------------------------------------------------------------------------

_KINDS = {"reset", "step", "state", "close", "mcp", "list_tools", "call_tool", "done"}
_REACHED = "envfarm.openenv.reached"


async def _reached(scope: Scope, receive: Receive, send: Send) -> None:
    """The app behind the guard's probe: reaching it means every check passed."""
    scope[_REACHED] = True


def _bearer_from_basic(value: bytes) -> bytes:
    """``Basic base64(user:TOKEN)`` as ``Bearer TOKEN``; anything else as it is."""
    scheme, _, credentials = value.partition(b" ")
    if scheme.lower() != b"basic":
        return value
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True)
    except ValueError:
        return value
    return b"Bearer " + decoded.partition(b":")[2]


async def _deny(ws: WebSocket, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """Refuse a handshake with an HTTP answer (the client sees its status), or a policy close where unsupported."""
    if "websocket.http.response" in ws.scope.get("extensions", {}):
        kept = [(k, v) for k, v in headers if k.lower() not in (b"content-type", b"content-length")]
        response = Response(body, status, media_type="application/json")
        response.raw_headers.extend(kept)
        await ws.send_denial_response(response)
    else:
        await ws.close(code=1008, reason=body[:120].decode("utf-8", "replace"))


def _envelope(message: dict[str, Any], key: str | None, default: Any) -> Any:
    """A message's ``key`` (its ``data``), refusing any other field, as OpenEnv's message models do."""
    allowed = {"type"} | ({key} if key else set())
    extra = sorted(set(message) - allowed)
    if extra:
        errors = [{"loc": [safe], "msg": "Extra inputs are not permitted", "type": "extra_forbidden"} for safe in extra]
        raise ActionInvalid(f"{message['type']} message", validation_errors(errors))
    if key is None:
        return None
    if key not in message:
        if default is None:
            raise ActionInvalid(
                f"{message['type']} message", [{"loc": [key], "msg": "Field required", "type": "missing"}]
            )
        return default
    return message[key]


def _read(model: type[BaseModel], data: Any, what: str, loc: tuple[str | int, ...]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise _invalid(what, e, loc) from None


def parse_action(data: Any) -> ListToolsAction | CallToolAction | DoneAction:
    """An action from its JSON: ``type`` picks the kind (a ``tool_name`` without one is a call_tool)."""
    if isinstance(data, dict) and "type" not in data and "tool_name" in data:
        data = {"type": "call_tool", **data}
    if isinstance(data, dict) and "type" in data and data["type"] not in ("list_tools", "call_tool", "done"):
        message = f"unknown action type {brief(data['type'])}: list_tools, call_tool or done"
        raise ActionInvalid("action", [{"loc": ["type"], "msg": message, "type": "union_tag_invalid"}])
    try:
        return ACTIONS.validate_python(data)
    except ValidationError as e:
        error = _invalid("action", e)
    for item in error.errors:  # the union's tag (call_tool ...) is pydantic's, not a place in the action
        if item["loc"][:1] and item["loc"][0] in ("list_tools", "call_tool", "done"):
            item["loc"] = item["loc"][1:]
    raise ActionInvalid("action", error.errors)


def tools_of(env: Environment) -> list[dict[str, Any]]:
    """The environment's tools in OpenEnv's Tool shape (the same tools, descriptions and schemas as MCP's)."""
    return [
        {"name": spec.name, "description": spec.description, "input_schema": spec.input_schema}
        for spec in env.tools.values()
    ]


def call_tool(episode: Episode, tool: str, arguments: Any) -> ToolResult:
    """One tool call through the episode's runtime, counted as the MCP endpoint counts it."""
    start = time.perf_counter()
    result = episode.call(tool, arguments)
    metrics.TOOL_CALL_SECONDS.labels(episode.env.id).observe(time.perf_counter() - start)
    known = tool if tool in episode.env.tools else "(unknown)"  # the caller's text: one label for unknown names
    metrics.TOOL_CALLS.labels(episode.env.id, known, "ok" if result.ok else "error").inc()
    return result


def call_observation(env: Environment, result: ToolResult) -> dict[str, Any]:
    """OpenEnv's CallToolObservation: ``result`` as fastmcp's CallToolResult serializes, ``error`` when refused."""
    text = result.text()
    structured = result.value if result.ok and isinstance(result.value, dict) else None
    body = {
        "content": [{"type": "text", "text": text}],
        "structured_content": structured,
        "data": result.value if result.ok else None,
        "is_error": not result.ok,
    }
    error = None if result.ok else {"error_type": error_type(env, result), "message": text}
    return {"tool_name": result.tool, "result": body, "error": error}


def error_type(env: Environment, result: ToolResult) -> str:
    """OpenEnv's ToolErrorType of a refused call: tool_not_found, invalid_args or execution_error."""
    if result.tool not in env.tools:
        return "tool_not_found"
    text = result.error or ""
    if result.rule is None and text.startswith((f"{result.tool}: invalid arguments", f"{result.tool}: arguments must")):
        return "invalid_args"
    return "execution_error"


def readme(env: Environment) -> str:
    """The environment as markdown: title, description, rules."""
    rules = "\n".join(f"- **{rule_id}**: {text}" for rule_id, text in env.rules.items())
    return f"# {env.title}\n\n{env.description}\n\n## Rules\n\n{rules}\n"


def _text(payload: dict[str, Any]) -> str:
    return render_json(payload).decode("utf-8")


def _error_text(data: dict[str, Any]) -> str:
    return _text({"type": "error", "data": data})


def _json_problem(error: Exception) -> str:
    if isinstance(error, json.JSONDecodeError):
        return f"{error.msg} (line {error.lineno}, column {error.colno})"
    if isinstance(error, RecursionError):
        return "nested too deeply"
    return "not JSON this server reads"


def _detail(answer: httpx.Response) -> str | None:
    try:
        detail = answer.json().get("detail")
    except (ValueError, AttributeError):
        return None
    return detail if isinstance(detail, str) else None


def _union(models: tuple[type[BaseModel], ...]) -> Any:
    union: Any = models[0]
    for model in models[1:]:
        union = union | model
    return union


SCHEMAS: dict[str, Any] = {
    "action": TypeAdapter(AnyAction).json_schema(),
    "observation": TypeAdapter(
        _union((ResetObservation, ListToolsObservation, CallToolObservation, DoneObservation))
    ).json_schema(),
    "state": EpisodeState.model_json_schema(),
}
"""``GET /schema``: the same for every environment (tools and their schemas are listed by list_tools)."""

__all__ = ["OPENENV_VERSION", "OpenEnvServer", "openenv_extension"]
