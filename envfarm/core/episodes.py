"""Episodes: one live, isolated copy of a scenario's state, and the tool runtime over it.

An episode is an in-memory SQLite connection filled by ``deserialize`` from the
scenario's snapshot bytes (built once per scenario), so creating or resetting
one costs a memory copy, not a rebuild. Every tool call runs inside a
SAVEPOINT: a call that fails for any reason is rolled back whole.

Tools are plain synchronous functions over an in-memory database, so calls run
on the caller's thread; the farm calls them from its event loop, which also
means two calls on one episode never interleave.
"""

from __future__ import annotations

import logging
import random
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

from jsonschema.exceptions import best_match

from envfarm.core.changes import Tracker
from envfarm.core.environments import Environment
from envfarm.core.errors import Conflict, InvalidInput, NotFound
from envfarm.core.scenarios import Scenario
from envfarm.core.state import (
    StateView,
    canonical_json,
    canonical_view,
    diff,
    state_hash,
)
from envfarm.core.tools import ToolContext, ToolError, ToolSpec

log = logging.getLogger(__name__)


@dataclass
class ToolResult:
    """The outcome of one tool call, as the agent sees it."""

    tool: str
    ok: bool
    value: Any = None
    error: str | None = None
    rule: str | None = None
    arguments: Any = None
    crashed: bool = False  # the tool raised something other than ToolError: a bug in the tool, not in the call

    def text(self) -> str:
        """The result as text for the agent: the JSON value, or the error message."""
        if self.ok:
            return self.value if isinstance(self.value, str) else canonical_json(self.value)
        return self.error or "error"

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"tool": self.tool, "arguments": self.arguments, "ok": self.ok}
        if self.ok:
            out["result"] = self.value
        else:
            out["error"] = self.error
            if self.rule:
                out["rule"] = self.rule
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolResult:
        """The inverse of :meth:`as_dict` (for results read back over HTTP)."""
        return cls(
            tool=data["tool"],
            ok=data["ok"],
            value=data.get("result"),
            error=data.get("error"),
            rule=data.get("rule"),
            arguments=data.get("arguments"),
        )


# What SQLite says when an argument, not the tool, is the problem (a 50,000-character LIKE pattern ...).
_INPUT_LIMITS = ("too complex", "too big", "too large", "too many", "too long", "stack overflow")

# SQL a tool may not run: attaching a database file would reach outside the episode's memory.
_FORBIDDEN_SQL = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH}


def _inside_the_episode(action: int, *_: object) -> int:
    """SQLite authorizer: tools' SQL stays inside the episode's in-memory database."""
    return sqlite3.SQLITE_DENY if action in _FORBIDDEN_SQL else sqlite3.SQLITE_OK


class Episode:
    """A scenario's state that one agent acts on: call tools, read, reset, close."""

    def __init__(self, env: Environment, scenario: Scenario, episode_id: str, seed: int | None = None) -> None:
        self.id = episode_id
        self.env = env
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.created = time.time()
        self.last_used = self.created
        self.log: list[ToolResult] = []
        self._snapshot = env.snapshot(scenario.id)
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self.ended: str | None = None  # why the episode ended (deleted, reaped ...), once it has
        self.tracker: Tracker | None = None
        self.reset()

    def touch(self) -> None:
        """Note that the episode is in use (calls, requests about it), for the idle reaper."""
        self.last_used = time.time()

    def reset(self) -> None:
        """Put the state back to the scenario's initial state, and the randomness to its seed."""
        self._db.set_authorizer(None)  # sqlite3_deserialize attaches the image internally
        self._db.deserialize(self._snapshot)
        self._db.set_authorizer(_inside_the_episode)
        self._db.execute("PRAGMA foreign_keys = ON")
        self._ctx = ToolContext(self._db, self.scenario.clock, random.Random(self.seed))
        self.log = []
        self.last_used = time.time()
        self.tracker = None  # the snapshot came without the triggers

    def track_changes(self) -> Tracker:
        """Note the key of every row written from now on (until the next reset): replay does, on a
        large state, so its final view costs what the calls changed (:mod:`envfarm.core.changes`)."""
        self.tracker = Tracker(self._db, self.env.keys())
        return self.tracker

    @property
    def calls(self) -> int:
        """Tool calls made since the episode was opened or last reset."""
        return len(self.log)

    def call(self, tool: str, arguments: dict[str, Any] | None = None) -> ToolResult:
        """Validate the arguments, run the tool atomically, record and return its result.

        Never raises because of the call: only :class:`EpisodeNotFound` when the episode ended
        before the call reached it (deleted or reaped while the request was on its way).
        """
        if self.ended is not None:
            raise EpisodeNotFound(self.id, self.ended)
        self.touch()
        result = self._run(tool, arguments)
        result.arguments = arguments
        self.log.append(result)
        return result

    def _run(self, tool: str, arguments: dict[str, Any] | None) -> ToolResult:
        spec = self.env.tools.get(tool)
        if spec is None:
            known = ", ".join(self.env.tools)
            name = repr(tool) if len(tool) <= _QUOTED_CHARS else f"{tool[:_QUOTED_CHARS]!r}... ({len(tool)} long)"
            return ToolResult(tool, False, error=f"unknown tool {name} in {self.env.id!r}; tools are: {known}")
        args = {} if arguments is None else arguments
        if not isinstance(args, dict):
            return ToolResult(tool, False, error=f"{tool}: arguments must be a JSON object, got {type(args).__name__}")
        if _too_deep(args):
            return ToolResult(tool, False, error=f"{tool}: invalid arguments: nested deeper than {MAX_DEPTH} levels")
        # The first few problems only: a huge argument can have thousands, each costly to find.
        found = islice(spec.validator.iter_errors(args), _PROBLEMS_LOOKED_AT)
        problems = sorted(found, key=lambda e: list(map(str, e.absolute_path)))
        if problems:
            described = "; ".join(_describe(p) for p in problems[:3])
            return ToolResult(tool, False, error=f"{tool}: invalid arguments: {described}")
        return self._execute(spec, _whole_numbers(spec.input_schema, args))

    def _execute(self, spec: ToolSpec, args: dict[str, Any]) -> ToolResult:
        """Run a tool on valid arguments inside a SAVEPOINT: any failure rolls the whole call back."""
        tool = spec.name
        self._db.execute("SAVEPOINT tool_call")
        try:
            value = spec.func(self._ctx, **args)
        except ToolError as e:
            if e.keep_writes:  # an imported environment's tool that fails half-way, as its original does
                self._db.execute("RELEASE tool_call")
            else:
                self._rollback()
            error = self.env.error_format.format(tool=tool, message=e.message)
            return ToolResult(tool, False, error=error, rule=e.rule)
        except sqlite3.IntegrityError as e:
            self._rollback()
            return ToolResult(tool, False, error=f"{tool}: refused by the database: {e}")
        except (OverflowError, UnicodeEncodeError) as e:  # JSON allows what SQLite cannot store
            self._rollback()
            return ToolResult(tool, False, error=f"{tool}: invalid arguments: a value SQLite cannot store ({e})")
        except sqlite3.Error as e:  # SQLite refused the tool's statement: too big an input, or a bug in the tool
            self._rollback()
            limit = any(words in str(e) for words in _INPUT_LIMITS)
            if not limit:
                log.warning("tool %s.%s: SQLite error in episode %s: %s", self.env.id, tool, self.id, e)
            reason = "an argument is too large for the database" if limit else "the database refused the call"
            return ToolResult(tool, False, error=f"{tool}: {reason} ({e})", crashed=not limit)
        except Exception as e:  # a bug in the tool must not end the episode; report it to the agent
            self._rollback()
            log.exception("tool %s.%s crashed in episode %s", self.env.id, tool, self.id)
            return ToolResult(tool, False, error=f"{tool}: internal error ({type(e).__name__}: {e})", crashed=True)
        self._db.execute("RELEASE tool_call")
        return ToolResult(tool, True, value=value)

    def _rollback(self) -> None:
        self._db.execute("ROLLBACK TO tool_call")
        self._db.execute("RELEASE tool_call")

    def view(self, tables: list[str] | None = None) -> StateView:
        """The canonical state view ``{table: [rows by primary key]}`` (of these tables only, when given)."""
        keys = self.env.keys()
        return canonical_view(self._db, keys if tables is None else {t: keys[t] for t in tables})

    def state_hash(self) -> str:
        return state_hash(self.view())

    def serialize(self) -> bytes:
        """The current state as SQLite bytes (the final state of an episode)."""
        return self._db.serialize()

    def initial_view(self) -> StateView:
        """The scenario's initial state view (shared: treat it as read-only)."""
        return self.env.initial_view(self.scenario.id)

    def diff_from_initial(self) -> dict[str, dict[str, Any]]:
        """What changed since the scenario's initial state."""
        return diff(self.initial_view(), self.view(), self.env.keys())

    def close(self, reason: str = "closed") -> None:
        """Free the state; a call that arrives later gets :class:`EpisodeNotFound` saying ``reason``."""
        self.ended = reason
        self._db.close()


MAX_DEPTH = 32
"""How deeply arguments may nest: far past any tool's schema, far short of the interpreter's limits."""

_PROBLEMS_LOOKED_AT = 10
_QUOTED_CHARS = 60  # an argument quoted in a refusal is cut to this many characters


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests lists and objects deeper than :data:`MAX_DEPTH` (counted without recursion)."""
    level: list[Any] = [value]
    for _ in range(MAX_DEPTH + 1):
        level = [
            child
            for item in level
            if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
        ]
        if not level:
            return False
    return True


def _whole_numbers(schema: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """Arguments with JSON numbers like 1.0 given to integer parameters as ints.

    JSON Schema counts 1.0 as an integer, so validation lets it through; a tool must still
    receive the int its signature declares.
    """
    properties = schema.get("properties", {})
    return {name: _as_declared(properties.get(name, {}), value) for name, value in args.items()}


def _as_declared(schema: dict[str, Any], value: Any) -> Any:
    if isinstance(value, float) and value.is_integer() and _admits_integer(schema):
        return int(value)
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_as_declared(schema["items"], v) for v in value]
    return value


def _admits_integer(schema: dict[str, Any]) -> bool:
    """Whether the schema declares an integer (directly or as a branch), and not a float."""
    types = [schema.get("type"), *(branch.get("type") for branch in schema.get("anyOf", []))]
    return "integer" in types and "number" not in types


def _shorten(text: str, error: Any) -> str:
    """jsonschema's message with the argument it quotes cut short: a refusal never repeats a huge value."""
    quoted = repr(error.instance)
    if len(quoted) <= _QUOTED_CHARS:
        return text
    size = len(error.instance) if isinstance(error.instance, str | list | dict) else len(quoted)
    return text.replace(quoted, f"{quoted[:_QUOTED_CHARS]}... ({size} long)")


def _describe(error: Any) -> str:
    """A jsonschema error as 'argument 'x': problem'."""
    path = list(error.absolute_path)
    if error.validator == "required":
        return f"missing required argument: {error.message.split(' is a required')[0]}"
    if error.validator == "additionalProperties":
        return f"unexpected argument(s): {_shorten(error.message, error).split('(')[-1].rstrip(')')}"
    if error.context:  # anyOf / oneOf (e.g. an optional date): say what the value's own branch wanted
        branches = [c for c in error.context if not (c.validator == "type" and c.validator_value == "null")]
        error = best_match(branches or error.context)
    message = _shorten(error.message, error)
    if not path:
        return message
    where = str(path[0]) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path[1:])
    return f"argument '{where}': {message}"


class EpisodeNotFound(NotFound):
    """No live episode has this id; ``reason`` says why (never existed, deleted, reaped)."""

    def __init__(self, episode_id: str, reason: str) -> None:
        super().__init__(f"episode {episode_id!r} not found: {reason}")
        self.episode_id = episode_id
        self.reason = reason


EPISODE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
"""What an episode id may be: safe in a URL path and a log line, short enough to hash and index."""


def new_episode_id() -> str:
    """A fresh random episode id (``ep_`` + 24 hex digits), the one way ids are minted (farm and router)."""
    return "ep_" + secrets.token_hex(12)


class EpisodeExists(Conflict):
    """A caller chose an id that a live episode already has."""

    def __init__(self, episode_id: str) -> None:
        super().__init__(
            f"episode {episode_id!r} is already live on this farm; choose another id, "
            f"or end it first with DELETE /v1/episodes/{episode_id}"
        )
        self.episode_id = episode_id


class EpisodeStore:
    """The live episodes of one process, by id."""

    def __init__(self) -> None:
        self._episodes: dict[str, Episode] = {}
        self._ended: dict[str, str] = {}

    def create(
        self, env: Environment, scenario: Scenario, seed: int | None = None, episode_id: str | None = None
    ) -> Episode:
        """Open an episode under a fresh id, or under ``episode_id`` (chosen by a client or a router).

        A chosen id must match :data:`EPISODE_ID_PATTERN` and not be live (:class:`EpisodeExists`); the id of
        an ended episode may be used again.
        """
        if episode_id is None:
            episode_id = new_episode_id()
        elif not re.fullmatch(EPISODE_ID_PATTERN, episode_id):
            raise InvalidInput(f"episode id {episode_id!r} does not match {EPISODE_ID_PATTERN}")
        elif episode_id in self._episodes:
            raise EpisodeExists(episode_id)
        episode = Episode(env, scenario, episode_id, seed)
        self._episodes[episode.id] = episode
        self._ended.pop(episode.id, None)
        return episode

    def get(self, episode_id: str) -> Episode:
        episode = self._episodes.get(episode_id)
        if episode is None:
            reason = self._ended.get(episode_id, "no such episode in this farm process")
            raise EpisodeNotFound(episode_id, reason)
        return episode

    def delete(self, episode_id: str, reason: str = "deleted") -> None:
        episode = self.get(episode_id)
        del self._episodes[episode_id]
        episode.close(f"episode was {reason}")
        self._ended[episode_id] = f"episode was {reason}"
        if len(self._ended) > 100_000:  # remember recent ends only; an old id then reads as unknown
            self._ended.pop(next(iter(self._ended)))

    def __len__(self) -> int:
        return len(self._episodes)

    def __iter__(self) -> Iterator[Episode]:
        return iter(list(self._episodes.values()))

    def close_all(self, reason: str = "closed") -> None:
        """End every episode (at shutdown, or when a test is done with its store)."""
        for episode_id in list(self._episodes):
            self.delete(episode_id, reason)
