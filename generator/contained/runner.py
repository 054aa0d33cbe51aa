"""The generator's side of the contained worker: start it, ask it, bound it, replace it.

:class:`ContainedEnv` is a generated package loaded in a worker process
(:mod:`envfarm.generator.contained.worker`), never in the generator's: the generator holds API
keys, a network and the user's files, and the package is code a model wrote. It offers what
the generator's stages need (the environment's description, episodes on any state, replays
for the quality gate) and nothing runs the code but the worker.

Every request has a wall-clock deadline: a tool call gets ``call_seconds`` inside the worker
(past it the tool is interrupted and the call is a crash result) and ``grace_seconds`` more
here, after which the worker is killed (a loop in C code, a wedged process). A worker that
dies or is killed is replaced on the next request, with the package loaded again; an episode
that was open on it is rebuilt by replaying its calls, so a probe goes on after a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from envfarm.core.environments import PackageError
from envfarm.core.episodes import ToolResult
from envfarm.core.errors import EnvfarmError
from envfarm.core.scenarios import Call, Scenario
from envfarm.core.state import StateView, diff, state_hash
from envfarm.generator.contained.protocol import HEADER, MAX_FRAME, ProtocolError, decode, encode, expect, expect_view
from envfarm.validators.replay import Replay
from envfarm.validators.sandbox.pool import worker_environment

_STDERR_TAIL = 4000


class ContainedError(EnvfarmError):
    """The contained worker could not do what was asked (it would not start, or broke the protocol)."""


class RunnerUnavailable(ContainedError):
    """The contained worker cannot harden itself on this machine (no seccomp, no libseccomp ...):
    generated code is then not run at all."""


class StateError(ValueError):
    """A state that does not build: a type, a required column, a foreign key; the message names the row."""


class _WorkerLost(Exception):
    """The worker died, was killed at its deadline, or broke the protocol during a request."""


@dataclass(frozen=True)
class RunnerLimits:
    """Limits of one contained worker.

    ``call_seconds``: wall-clock time of one tool call before the worker interrupts it (a crash
    result); ``grace_seconds``: how much longer the generator waits before killing the worker;
    ``start_seconds``: to start, harden and import the package; ``state_seconds``: to build a
    state; ``memory_bytes``: address space; ``cpu_seconds``: CPU of the whole process (past it
    the kernel kills it and it is replaced).
    """

    call_seconds: float = 5.0
    grace_seconds: float = 5.0
    start_seconds: float = 60.0
    state_seconds: float = 30.0
    memory_bytes: int = 1024 * 2**20
    cpu_seconds: int = 600

    def __post_init__(self) -> None:
        if min(self.call_seconds, self.grace_seconds, self.start_seconds, self.state_seconds) <= 0:
            raise ValueError("the runner's time limits must be positive")
        if self.memory_bytes < 256 * 2**20 or self.cpu_seconds < 10:
            raise ValueError("the runner needs at least 256 MiB and 10 CPU seconds")


@dataclass(frozen=True)
class ToolInfo:
    """A tool as the generator sees it (satisfies the gate's ``ToolShape``)."""

    kind: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class Step:
    """One call's outcome: the result, the state's hash after it, and the state (when asked for)."""

    result: ToolResult
    state_hash: str
    view: StateView | None = None


def make_readable(package: Path) -> None:
    """Files 0644 and folders 0755 in the package, so the worker can read them once it is ``nobody``.

    Only the package's own tree: the worker enters it while still root and reads it by relative
    paths, so the work folder around it may stay private.
    """
    package.chmod(0o755)
    for path in package.rglob("*"):
        if path.is_symlink():
            continue
        path.chmod(0o755 if path.is_dir() else 0o644)


class _Worker:
    """One worker process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr = b""
        self.killed_because: str | None = None
        assert process.stderr is not None
        self._stderr_task = asyncio.ensure_future(self._collect(process.stderr))

    @classmethod
    async def start(cls, package: Path, with_scenarios: bool, limits: RunnerLimits) -> tuple[_Worker, dict[str, Any]]:
        args = [
            "--package",
            str(package.resolve()),
            "--memory",
            str(limits.memory_bytes),
            "--cpu",
            str(limits.cpu_seconds),
        ]
        if with_scenarios:
            args.append("--with-scenarios")
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "envfarm.generator.contained.worker",
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=worker_environment(),  # nothing of the generator's environment: no key, no token
            start_new_session=True,  # its own process group: killed as one
        )
        worker = cls(process)
        try:
            hello = await asyncio.wait_for(worker._frame(), limits.start_seconds)
        except TimeoutError:
            worker.kill(f"it did not start within {limits.start_seconds:g} s")
            await worker.wait()
            raise ContainedError(f"the contained worker did not start: {worker.death()}") from None
        except _WorkerLost:
            await worker.wait()
            raise ContainedError(f"the contained worker did not start: {worker.death()}") from None
        return worker, hello

    async def _collect(self, stream: asyncio.StreamReader) -> None:
        """Keep the end of what the worker wrote to stderr before it set itself up (for errors)."""
        with contextlib.suppress(Exception):
            while chunk := await stream.read(65536):
                self.stderr = (self.stderr + chunk)[-_STDERR_TAIL:]

    async def _frame(self) -> dict[str, Any]:
        stdout = self.process.stdout
        assert stdout is not None
        try:
            (size,) = HEADER.unpack(await stdout.readexactly(HEADER.size))
            if size > MAX_FRAME:
                raise ProtocolError(f"a reply of {size} bytes (the limit is {MAX_FRAME})")
            return decode(await stdout.readexactly(size))
        except (asyncio.IncompleteReadError, ConnectionError):
            await self.wait()
            raise _WorkerLost(self.death()) from None
        except ProtocolError as e:
            self.kill(f"it broke the protocol: {e}")
            raise _WorkerLost(self.death()) from None

    async def request(self, message: dict[str, Any], seconds: float) -> dict[str, Any]:
        """Send one request and read its reply, all within ``seconds`` (else the worker is killed)."""
        try:
            return await asyncio.wait_for(self._exchange(message), seconds)
        except TimeoutError:
            self.kill(f"no answer within {seconds:g} s (a loop that never gives control back?)")
            await self.wait()
            raise _WorkerLost(self.death()) from None

    async def _exchange(self, message: dict[str, Any]) -> dict[str, Any]:
        stdin = self.process.stdin
        assert stdin is not None
        try:
            stdin.write(encode(message))
            await stdin.drain()
        except (ConnectionError, RuntimeError):
            await self.wait()
            raise _WorkerLost(self.death()) from None
        return await self._frame()

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and self.killed_because is None

    def kill(self, why: str) -> None:
        if self.killed_because is None:
            self.killed_because = why
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def wait(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.process.wait(), 10)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stderr_task, 1)

    def death(self) -> str:
        """Why the worker is gone, in words."""
        if self.killed_because is not None:
            return f"the worker was killed: {self.killed_because}"
        code = self.process.returncode
        tail = self.stderr.decode(errors="replace").strip().splitlines()[-1:] if self.stderr else []
        said = f" ({tail[0][:300]})" if tail else ""
        if code is None:
            return "the worker stopped answering"
        if code < 0:
            number = -code
            causes: dict[int, str] = {
                signal.SIGXCPU: "it used up its CPU time",
                signal.SIGSEGV: "it crashed (SIGSEGV)",
                signal.SIGKILL: "it was killed (out of memory?)",
                signal.SIGXFSZ: "it tried to write a file",
                signal.SIGSYS: "it made a forbidden system call",
            }
            try:
                name = signal.Signals(number).name
            except ValueError:
                name = f"signal {number}"
            return f"the worker died: {causes.get(number, 'killed')} ({name}){said}"
        return f"the worker exited with status {code}{said}"

    async def stop(self) -> None:
        """Close its stdin (it exits when it reads the end), then make sure it is gone."""
        if self.process.stdin is not None:
            with contextlib.suppress(Exception):
                self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 2)
        except TimeoutError:
            self.kill("stopped")
        await self.wait()


@dataclass
class ContainedEnv:
    """A generated package loaded in a contained worker; see the module docstring.

    Made with :meth:`start`; raises :class:`~envfarm.core.environments.PackageError` with the
    problems when the package does not load (an import error is one), :class:`ContainedError`
    when the worker cannot run it at all.
    """

    path: Path
    with_scenarios: bool
    limits: RunnerLimits
    info: dict[str, Any]  # the worker's description of the environment (checked field by field)
    protections: dict[str, Any]
    tools: dict[str, ToolInfo]
    generation: int = 0
    replaced: int = 0  # workers lost and replaced so far
    _worker: _Worker | None = field(default=None, repr=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @classmethod
    async def start(
        cls, path: Path, *, with_scenarios: bool = False, limits: RunnerLimits | None = None
    ) -> ContainedEnv:
        limits = limits or RunnerLimits()
        make_readable(path)
        worker, hello = await _Worker.start(path, with_scenarios, limits)
        try:
            info, protections = _read_hello(path, hello)
            tools = {
                str(name): ToolInfo(
                    expect(t, "kind", str), expect(t, "description", str), expect(t, "input_schema", dict)
                )
                for name, t in info["tools"].items()
                if isinstance(t, dict)
            }
        except BaseException as e:
            await worker.stop()
            if isinstance(e, ProtocolError):
                raise ContainedError(f"the contained worker broke the protocol: {e}") from None
            raise
        return cls(path, with_scenarios, limits, info, protections, tools, _worker=worker)

    # --- what the package is ---------------------------------------------------------------------

    @property
    def id(self) -> str:
        return str(self.info["id"])

    @property
    def title(self) -> str:
        return str(self.info["title"])

    @property
    def version(self) -> str:
        return str(self.info["version"])

    @property
    def tables(self) -> list[str]:
        return [str(t) for t in self.info["tables"]]

    @property
    def rules(self) -> dict[str, str]:
        return {str(k): str(v) for k, v in self.info["rules"].items()}

    def keys(self) -> dict[str, list[str]]:
        """Primary-key columns per table."""
        return {str(t): [str(c) for c in k] for t, k in self.info["keys"].items() if isinstance(k, list)}

    def manifest(self) -> dict[str, Any]:
        """The manifest the package's code derives (what ``manifest.json`` must hold)."""
        return copy.deepcopy(self.info["manifest"])  # type: ignore[no-any-return]

    # --- running it ------------------------------------------------------------------------------

    async def episode(
        self, state: dict[str, list[dict[str, Any]]] | str, clock: str, seed: int = 0
    ) -> ContainedEpisode:
        """A fresh episode on ``state`` (rows, or the name of one of the package's state files)."""
        episode = ContainedEpisode(self, state, clock, seed)
        await episode.open()
        return episode

    async def replay(self, scenario: Scenario, calls: Sequence[Call], seed: int | None = None) -> Replay:
        """Apply ``calls`` to a fresh episode of ``scenario`` (the quality gate's ``Replayer``)."""
        episode = await self.episode(
            scenario.state, scenario.clock.isoformat(), scenario.seed if seed is None else seed
        )
        try:
            results = [(await episode.call(c.tool, c.arguments)).result for c in calls]
            final = await episode.view()
        finally:
            await episode.close()
        keys = self.keys()
        return Replay(results, episode.initial, final, state_hash(final), diff(episode.initial, final, keys), keys)

    async def check_calls(self, calls: Sequence[Call]) -> list[str | None]:
        """Why each call's arguments do not fit its tool's schema (None: they do), without running it."""
        message = {"op": "check_calls", "calls": [{"tool": c.tool, "arguments": c.arguments} for c in calls]}
        try:
            reply = await self.request(message, self.limits.state_seconds)
        except _WorkerLost as e:
            raise ContainedError(f"checking the calls killed the runner: {e}") from None
        errors = reply.get("errors")
        if (
            not isinstance(errors, list)
            or len(errors) != len(calls)
            or not all(e is None or isinstance(e, str) for e in errors)
        ):
            self.lose("it answered check_calls with the wrong shape")
            raise ContainedError("the contained worker answered check_calls with the wrong shape")
        return errors

    async def request(self, message: dict[str, Any], seconds: float) -> dict[str, Any]:
        """One request to the worker (started again first if it was lost); raises ``_WorkerLost``."""
        async with self._lock:
            worker = await self._ready()
            try:
                reply = await worker.request(message, seconds)
            except _WorkerLost:
                self._worker = None
                self.replaced += 1
                raise
        if reply.get("ok") is not True:
            error = reply.get("error")
            raise _Refused(error if isinstance(error, str) else "the worker refused the request")
        return reply

    async def _ready(self) -> _Worker:
        if self._worker is not None and self._worker.alive:
            return self._worker
        if self._worker is not None:
            await self._worker.wait()
            self._worker = None
        worker, hello = await _Worker.start(self.path, self.with_scenarios, self.limits)
        try:
            info, _ = _read_hello(self.path, hello)
            if info.get("version") != self.version:
                raise ContainedError(f"{self.path}: the package changed on disk while it was being tested")
        except BaseException as e:
            await worker.stop()
            if isinstance(e, ProtocolError):
                raise ContainedError(f"the contained worker broke the protocol: {e}") from None
            raise
        self._worker = worker
        self.generation += 1
        return worker

    def lose(self, why: str) -> None:
        """Kill the worker (it answered something the protocol does not allow); the next request starts another."""
        if self._worker is not None:
            self._worker.kill(why)
            self._worker = None
            self.replaced += 1

    async def close(self) -> None:
        """Stop the worker (it exits when its stdin closes; killed if it does not)."""
        async with self._lock:
            if self._worker is not None:
                await self._worker.stop()
                self._worker = None

    async def __aenter__(self) -> ContainedEnv:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class _Refused(ContainedError):
    """The worker answered, but could not do it (a state that does not build, an unknown episode)."""


class ContainedEpisode:
    """An episode in the worker. Calls on it never raise because of the code: a crash, a timeout or
    a lost worker is a crashed result, and the episode goes on (rebuilt from its calls if need be)."""

    def __init__(self, env: ContainedEnv, state: dict[str, list[dict[str, Any]]] | str, clock: str, seed: int) -> None:
        self.env = env
        self.state = state
        self.clock = clock
        self.seed = seed
        self.initial: StateView = {}
        self.history: list[tuple[str, Any]] = []  # the calls that ran to an end, to rebuild the episode
        self.last_hash = ""
        self.last_view: StateView = {}
        self._number = 0
        self._generation = -1

    async def open(self) -> None:
        message = {"op": "open", "state": self.state, "clock": self.clock, "seed": self.seed}
        try:
            reply = await self.env.request(message, self.env.limits.state_seconds)
        except _Refused as e:
            raise StateError(str(e)) from None
        except _WorkerLost as e:
            raise StateError(f"building the state killed the runner: {e}") from None
        try:
            self._number = expect(reply, "episode", int)
            self.initial = self.last_view = expect_view(reply.get("view"))
        except ProtocolError as e:
            self.env.lose(f"it broke the protocol: {e}")
            raise ContainedError(f"the contained worker broke the protocol: {e}") from None
        self._generation = self.env.generation
        self.last_hash = state_hash(self.initial)

    async def _current(self) -> None:
        """Reopen on a new worker and replay the calls so far, when the one it lived on was lost."""
        if self._generation == self.env.generation and self.env._worker is not None:
            return
        await self.open()
        for tool, arguments in self.history:
            await self._call(tool, arguments, view=False)

    async def _call(self, tool: str, arguments: Any, *, view: bool) -> dict[str, Any]:
        message = {
            "op": "call",
            "episode": self._number,
            "tool": tool,
            "arguments": arguments,
            "seconds": self.env.limits.call_seconds,
            "view": view,
        }
        return await self.env.request(message, self.env.limits.call_seconds + self.env.limits.grace_seconds)

    async def call(self, tool: str, arguments: Any, *, view: bool = False) -> Step:
        """Run one tool call; ``view=True`` also returns the state after it."""
        try:
            await self._current()
            reply = await self._call(tool, arguments, view=view)
            result = _tool_result(expect(reply, "result", dict), arguments)
            after = expect(reply, "hash", str)
            seen = expect_view(reply.get("view")) if view else None
        except (_WorkerLost, ProtocolError) as e:
            if isinstance(e, ProtocolError):
                self.env.lose(f"it broke the protocol: {e}")
            self._generation = -1  # rebuilt on the next call
            lost = ToolResult(tool, False, error=f"{tool}: internal error ({e})", arguments=arguments, crashed=True)
            return Step(lost, self.last_hash, self.last_view if view else None)
        except (_Refused, StateError) as e:
            raise ContainedError(f"the contained worker could not run the call: {e}") from None
        self.last_hash = after
        if seen is not None:
            self.last_view = seen
        if not result.crashed:
            self.history.append((tool, arguments))
        return Step(result, self.last_hash, self.last_view if view else None)

    async def view(self) -> StateView:
        """The state now."""
        try:
            await self._current()
            reply = await self.env.request({"op": "view", "episode": self._number}, self.env.limits.state_seconds)
            self.last_view = expect_view(reply.get("view"))
        except (_WorkerLost, _Refused, StateError, ProtocolError) as e:
            raise ContainedError(f"reading the state failed: {e}") from None
        return self.last_view

    async def close(self) -> None:
        """Free it in the worker (nothing to do when the worker it lived on is gone); closing twice is fine."""
        if self._generation == self.env.generation and self.env._worker is not None:
            self._generation = -1
            with contextlib.suppress(_WorkerLost, ContainedError):
                await self.env.request({"op": "close", "episode": self._number}, self.env.limits.state_seconds)


def _read_hello(path: Path, hello: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The environment's description and the protections in force, from the worker's first frame."""
    if "fatal" in hello:
        raise RunnerUnavailable(f"cannot run generated code contained on this machine: {hello['fatal']}")
    protections = expect(hello, "hello", dict)
    if "problems" in hello:
        problems = expect(hello, "problems", list)
        raise PackageError(path.name, [str(p) for p in problems] or ["the package does not load"])
    description = expect(hello, "env", dict)
    for key, kind in (
        ("id", str),
        ("title", str),
        ("description", str),
        ("version", str),
        ("rules", dict),
        ("tables", list),
        ("keys", dict),
        ("manifest", dict),
        ("tools", dict),
    ):
        expect(description, key, kind)
    return description, protections


def _tool_result(data: dict[str, Any], arguments: Any) -> ToolResult:
    error = data.get("error")
    rule = data.get("rule")
    return ToolResult(
        tool=expect(data, "tool", str),
        ok=expect(data, "ok", bool),
        value=data.get("value"),
        error=error if isinstance(error, str) else None,
        rule=rule if isinstance(rule, str) else None,
        arguments=arguments,
        crashed=expect(data, "crashed", bool),
    )
