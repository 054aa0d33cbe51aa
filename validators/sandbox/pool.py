"""The check sandbox: a pool of worker processes that run untrusted check code.

Scenario checks are Python written by LLMs or users; the service never runs them
itself. :class:`SandboxPool` keeps one worker process per CPU
(:mod:`envfarm.validators.sandbox.worker`): a zygote in its own network
namespace that forks a fresh, hardened child for every job (seccomp allow-list
with no open/socket/exec/fork, rlimits, no root). All checks of one trajectory
are one job; each check runs on its own
(:func:`envfarm.validators.checks.run_check`) with a CPU budget and a wall-clock
deadline, so a check that raises, loops or returns a non-bool fails alone. A check
that runs past its deadline or crashes its process takes the child down with it:
the checks that finished keep their results, and the checks after it run again in
a fresh child, so one bad check never decides another's verdict. A worker
that dies or stops answering is killed and replaced; later jobs never notice.

The parent and the workers speak length-prefixed JSON over pipes; nothing a
worker sends is unpickled or trusted. Usage::

    async with SandboxPool() as pool:
        outcomes = await pool.run_checks([("c1", "def check(initial, final): ...")], initial, final)

See docs/sandbox.md for the guarantees and limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import os
import signal
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from envfarm.core.errors import EnvfarmError, Unavailable
from envfarm.validators.checks import CheckOutcome, may_change_views, tables_read
from envfarm.validators.sandbox.protocol import (
    JOB_HEADER,
    KEY_BYTES,
    SHM_SIZE,
    WITHOUT_INITIAL,
    read_outcomes,
    splices,
)

_SPAWN_TIMEOUT = 60.0  # seconds for a new worker to import, unshare and say hello
_BACKSTOP_GRACE = 3.0  # seconds past a job's wall limits before the service kills the worker itself
_ENCODED_CACHE = 256  # initial states whose JSON is kept (one per scenario and check set being scored)
_ENCODE_IN_THREAD_ROWS = 5000  # states larger than this are encoded off the event loop
_MAX_SKIPS = 8  # a waiting job passed over this often for jobs of another check set is served next


def usable_cpus() -> int:
    """The CPUs this process may run on: how many worker processes a pool starts by default."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def worker_environment() -> dict[str, str]:
    """The whole environment a sandbox worker starts with, listed here: nothing of the service's own.

    A worker inherits no variable (tokens, API keys, anything), so its memory never holds them and
    no check can find them by any route. ``PYTHONPATH`` is passed on when set, so a worker imports
    the same envfarm as the service.
    """
    env = {"PATH": os.defpath, "LC_ALL": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1"}
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    return env


class SandboxError(Unavailable):
    """The sandbox cannot run checks at all (for example seccomp is unavailable)."""


class _WorkerLost(EnvfarmError):
    """A worker died or broke the protocol in the middle of a job."""


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of the sandbox.

    ``cpu_seconds`` is the CPU time one check may use; ``wall_seconds`` the wall-clock
    time one check may take; ``memory_bytes`` the address space of the process
    running one job (all checks of one trajectory).
    """

    cpu_seconds: float = 2.0
    memory_bytes: int = 512 * 2**20
    wall_seconds: float = 5.0

    def __post_init__(self) -> None:
        if not self.cpu_seconds > 0 or not self.wall_seconds > 0:
            raise ValueError("cpu_seconds and wall_seconds must be positive")
        if self.memory_bytes < 64 * 2**20:
            raise ValueError("memory_bytes must be at least 64 MiB (the interpreter itself needs ~30 MiB)")


class _Worker:
    """One zygote process and the pipes to it."""

    def __init__(self, process: asyncio.subprocess.Process, hello: dict[str, Any]) -> None:
        self.process = process
        self.protections = hello
        self.lost = False

    @classmethod
    async def spawn(cls, limits: SandboxLimits) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "envfarm.validators.sandbox.worker",
            "--cpu",
            repr(limits.cpu_seconds),
            "--memory",
            str(limits.memory_bytes),
            "--wall",
            repr(limits.wall_seconds),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group: killing it takes its children along
            env=worker_environment(),
        )
        worker = cls(process, {})
        try:
            frame = await asyncio.wait_for(worker._frame(65536), _SPAWN_TIMEOUT)
            hello = json.loads(frame)
        except (TimeoutError, asyncio.IncompleteReadError, _WorkerLost, ValueError) as e:
            worker.kill()
            await worker.reap()
            raise SandboxError(f"sandbox worker did not start: {type(e).__name__}: {e}") from None
        if "hello" not in hello:
            worker.kill()
            await worker.reap()
            raise SandboxError(str(hello.get("fatal", hello)))
        worker.protections = hello["hello"]
        return worker

    async def _frame(self, limit: int) -> bytes:
        assert self.process.stdout is not None
        (size,) = struct.unpack(">I", await self.process.stdout.readexactly(4))
        if size > limit:
            raise _WorkerLost(f"frame of {size} bytes (limit {limit})")
        return await self.process.stdout.readexactly(size)

    async def exchange(self, key: bytes, job: bytes, checks: int, flags: int = 0) -> tuple[dict[str, Any], bytes]:
        """Send one job of ``checks`` checks; the zygote's header and the child's raw result lines."""
        stdin = self.process.stdin
        assert stdin is not None and len(key) == KEY_BYTES
        try:
            stdin.write(JOB_HEADER.pack(len(job), checks, flags) + key)
            stdin.write(job)
            await stdin.drain()
            header = json.loads(await self._frame(65536))
            if not isinstance(header, dict) or "fatal" in header:
                raise _WorkerLost(str(header.get("fatal") if isinstance(header, dict) else header))
            raw = await self._frame(SHM_SIZE)
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as e:
            raise _WorkerLost(f"{type(e).__name__}: {e}") from None
        return header, raw

    def kill(self) -> None:
        """SIGKILL the zygote and the job child with it (its own process group)."""
        self.lost = True
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    async def reap(self) -> None:
        with contextlib.suppress(Exception):
            await self.process.wait()

    async def close(self, timeout: float) -> None:
        """Ask politely (stdin closed: the waiting child exits, then the zygote), then kill."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.kill()
            await self.reap()


@dataclass(eq=False)
class _Slot:
    """A place in the pool: a worker, or the task starting one."""

    worker: _Worker | None = None
    key: bytes | None = None  # the check set its worker's current child serves
    starting: asyncio.Task[_Worker] | None = None
    reaping: set[asyncio.Task[None]] = field(default_factory=set)


class _IdleSlots:
    """Hands slots to jobs, keeping jobs of one check set on the worker that already serves it.

    A worker's current child has that check set's checks compiled and costs no fork, so
    jobs of a few scenarios interleaved should not force a new child on every job. A freed
    slot goes to the oldest waiting job of its check set, else to the oldest job; a job
    passed over :data:`_MAX_SKIPS` times is served next whatever its check set (no starvation).
    """

    def __init__(self, slots: list[_Slot]) -> None:
        self.idle = list(slots)
        self.waiters: list[list[Any]] = []  # [key, future, times passed over], oldest first

    async def get(self, key: bytes | None) -> _Slot:
        if self.idle:
            for i, slot in enumerate(self.idle):
                if slot.key == key:
                    return self.idle.pop(i)
            return self.idle.pop(0)  # the least recently used
        future: asyncio.Future[_Slot] = asyncio.get_running_loop().create_future()
        waiter = [key, future, 0]
        self.waiters.append(waiter)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.put(future.result())  # handed over just as the caller went away
            raise
        finally:
            with contextlib.suppress(ValueError):
                self.waiters.remove(waiter)

    def put(self, slot: _Slot) -> None:
        self.waiters = [w for w in self.waiters if not w[1].done()]
        if not self.waiters:
            self.idle.append(slot)
            return
        chosen = self.waiters[0]
        if chosen[2] < _MAX_SKIPS and chosen[0] != slot.key:
            chosen = next((w for w in self.waiters if w[0] == slot.key), chosen)
        for waiter in self.waiters:
            if waiter is chosen:
                break
            waiter[2] += 1
        self.waiters.remove(chosen)
        chosen[1].set_result(slot)


class SandboxPool:
    """A pool of sandboxed worker processes running check code; see the module docstring."""

    def __init__(self, workers: int | None = None, limits: SandboxLimits = SandboxLimits()) -> None:
        if workers is None:
            workers = usable_cpus()
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.size = workers
        self.limits = limits
        self._slots = [_Slot() for _ in range(workers)]
        self._idle: _IdleSlots | None = None
        self._start_lock: asyncio.Lock | None = None
        self._closed = False
        self.protections: dict[str, Any] = {}
        self.replaced = 0  # workers killed and replaced so far (timeouts, crashes)
        self._encoded: dict[tuple[int, frozenset[str] | None], tuple[Any, bytes, bytes]] = {}

    # --- lifecycle ---

    async def start(self) -> None:
        """Start every worker; raises :class:`SandboxError` when the sandbox cannot work here."""
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._idle is not None:
                return
            results = await asyncio.gather(*(_Worker.spawn(self.limits) for _ in self._slots), return_exceptions=True)
            errors = [r for r in results if isinstance(r, BaseException)]
            for slot, result in zip(self._slots, results, strict=True):
                if isinstance(result, _Worker):
                    slot.worker = result
            if errors:
                for slot in self._slots:
                    if slot.worker is not None:
                        await slot.worker.close(5)
                        slot.worker = None
                raise errors[0] if isinstance(errors[0], SandboxError) else SandboxError(str(errors[0]))
            first = self._slots[0].worker
            self.protections = dict(first.protections) if first else {}
            self.protections.pop("pid", None)
            self._idle = _IdleSlots(self._slots)

    async def close(self) -> None:
        """Wait for jobs in flight (each is bounded by its deadline), then stop every worker."""
        if self._closed:
            return
        self._closed = True
        if self._idle is None:
            return
        backstop = self.limits.wall_seconds + _BACKSTOP_GRACE + 5
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(backstop):
                for _ in self._slots:
                    await self._idle.get(None)
        for slot in self._slots:
            if slot.starting is not None:
                slot.starting.cancel()
                with contextlib.suppress(BaseException):
                    slot.worker = await slot.starting
                slot.starting = None
            if slot.worker is not None:
                await slot.worker.close(5)
                slot.worker = None
            for task in list(slot.reaping):
                with contextlib.suppress(BaseException):
                    await task

    async def __aenter__(self) -> SandboxPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # --- jobs ---

    async def run_checks(
        self, checks: Sequence[tuple[str, str]], initial: dict[str, Any], final: dict[str, Any]
    ) -> list[CheckOutcome]:
        """Run all checks of one trajectory as one job; outcomes in the order of ``checks``.

        Never raises because of what a check does: a check that fails to run is
        reported as not passed, with the reason in ``error``.
        """
        if not checks:
            return []
        if self._idle is None:
            await self.start()
        assert self._idle is not None
        if self._closed:
            raise SandboxError("the sandbox pool is closed")
        ids = [str(check_id) for check_id, _ in checks]
        codes = [str(code) for _, code in checks]
        outcomes: list[CheckOutcome] = []
        pending = list(range(len(checks)))
        # Each round settles at least one check: the rest of a job that a check ended are run again.
        while pending:
            job = await self._encode([(ids[i], codes[i]) for i in pending], initial, final)
            slot = await self._idle.get(job.key)
            # Once a worker has the job, finish it even if the caller goes away: the slot stays consistent.
            run = self._run_job(slot, job, [ids[i] for i in pending])
            got, rerun = await asyncio.shield(asyncio.ensure_future(run))
            if not outcomes:
                outcomes = got
            else:
                for k, outcome in zip(pending, got, strict=True):
                    outcomes[k] = outcome
            pending = [pending[j] for j in rerun]
        return outcomes

    async def _encode(self, checks: list[tuple[str, str]], initial: dict[str, Any], final: dict[str, Any]) -> _Job:
        """The job's key and parts (the layout is in :mod:`envfarm.validators.sandbox.protocol`).

        Only the tables the checks read are sent (:func:`envfarm.validators.checks.tables_read`); a
        final table that is the initial's own list is sent as its name, and one that shares most
        of its rows with it (as replay's change tracking leaves it) as splices of it. The key is
        the sha256 of the check set and of the initial tables sent: a worker process serves one
        key only, so it parses the initial state once, and never holds two scenarios' states.
        """
        reads = [_reads(code) for _, code in checks]
        copies = [_copies(code) for _, code in checks]
        union = None if any(r is None for r in reads) else frozenset().union(*reads)  # type: ignore[arg-type]
        whole = type(initial) is not dict or type(final) is not dict
        if whole:
            union = None
        order = list(final) if type(final) is dict else []
        if union is not None:
            order = [t for t in order if t in union]
        same = {t for t in order if not whole and t in initial and final[t] is initial[t]}
        listed = [
            [cid, code, None if r is None else sorted(r), copy]
            for (cid, code), r, copy in zip(checks, reads, copies, strict=True)
        ]
        checks_json = _json(listed)
        header = b"[" + checks_json + b"," + _json(None if whole else order) + b"," + _json(sorted(same)) + b"]"
        initial_json, digest = self._initial_json(initial, union)
        key = hashlib.sha256(checks_json + digest).digest()

        def encode() -> bytes:
            rest: Any
            if whole:
                rest = final
            else:
                full, spliced = {}, {}
                for t in order:
                    if t in same:
                        continue
                    found = None
                    if type(initial.get(t)) is list and type(final[t]) is list:
                        found = splices(initial[t], final[t])
                    if found is None:
                        full[t] = final[t]
                    else:
                        spliced[t] = found
                rest = [full, spliced]
            return _json(rest)

        rows = sum(len(v) for v in final.values() if isinstance(v, list)) if type(final) is dict else 0
        rest = await asyncio.to_thread(encode) if rows > _ENCODE_IN_THREAD_ROWS else encode()
        return _Job(key, header, initial_json, rest)

    def _initial_json(self, initial: Any, tables: frozenset[str] | None) -> tuple[bytes, bytes]:
        """The JSON of the initial state's tables sent to checks (all when ``tables`` is None), and
        its sha256: cached by identity, for a scenario's initial view is one shared object
        (``Environment.initial_view``), so every trajectory of it would encode the same bytes
        again. The cache holds the object itself, so its id cannot be reused while cached."""
        cache_key = (id(initial), tables)
        hit = self._encoded.get(cache_key)
        if hit is not None and hit[0] is initial:
            return hit[1], hit[2]
        if tables is None or type(initial) is not dict:
            data = _json(initial)
        else:
            data = _json({t: rows for t, rows in initial.items() if t in tables})
        digest = hashlib.sha256(data).digest()
        if len(self._encoded) >= _ENCODED_CACHE:
            self._encoded.pop(next(iter(self._encoded)))
        self._encoded[cache_key] = (initial, data, digest)
        return data, digest

    async def _run_job(self, slot: _Slot, job: _Job, ids: list[str]) -> tuple[list[CheckOutcome], list[int]]:
        """Run one job on the slot's worker: without the initial tables when the worker's child served
        this key last (it keeps them), sent again whole if the zygote says that child is gone."""
        assert self._idle is not None
        key = job.key
        backstop = self.limits.wall_seconds * len(ids) + _BACKSTOP_GRACE + job.size / 20e6
        try:
            # A worker found dead (killed from outside, crashed between jobs) is replaced and the job
            # retried once: check code never runs in the zygote, so a job cannot be what killed it.
            for attempt in (1, 2):
                try:
                    worker = await self._ready(slot)
                except (SandboxError, OSError) as e:
                    return [CheckOutcome(i, False, f"sandbox unavailable: {e}") for i in ids], []
                try:
                    header: dict[str, Any] = {"status": "resend"}
                    if slot.key == key:
                        lean = worker.exchange(key, job.bytes(False), len(ids), WITHOUT_INITIAL)
                        header, raw = await asyncio.wait_for(lean, backstop)
                    if header.get("status") == "resend":
                        header, raw = await asyncio.wait_for(worker.exchange(key, job.bytes(True), len(ids)), backstop)
                except TimeoutError:
                    self._replace(slot)
                    header, raw = {"status": "timeout"}, b""
                except _WorkerLost as e:
                    self._replace(slot)
                    header, raw = {"status": "lost", "detail": str(e)}, b""
                    if attempt == 1:
                        continue
                slot.key = key if header.get("status") == "done" else None
                return read_outcomes(ids, header, raw, self.limits.wall_seconds)
            raise AssertionError("unreachable")
        finally:
            self._idle.put(slot)

    async def _ready(self, slot: _Slot) -> _Worker:
        if slot.worker is not None and not slot.worker.lost and slot.worker.process.returncode is None:
            return slot.worker
        if slot.worker is not None:
            self._replace(slot)
        if slot.starting is None:
            slot.starting = asyncio.ensure_future(_Worker.spawn(self.limits))
        try:
            slot.worker = await slot.starting
        finally:
            slot.starting = None
        return slot.worker

    def _replace(self, slot: _Slot) -> None:
        """Kill the slot's worker and start its replacement in the background."""
        worker, slot.worker, slot.key = slot.worker, None, None
        if worker is not None:
            worker.kill()
            task = asyncio.ensure_future(worker.reap())
            slot.reaping.add(task)
            task.add_done_callback(slot.reaping.discard)
            self.replaced += 1
        if slot.starting is None and not self._closed:
            slot.starting = asyncio.ensure_future(_Worker.spawn(self.limits))
            # A failed start is reported to the next job on this slot; keep asyncio from warning meanwhile.
            slot.starting.add_done_callback(lambda t: t.cancelled() or t.exception())


@dataclass(frozen=True)
class _Job:
    """A job's key and its parts; :meth:`bytes` joins them, with or without the initial tables."""

    key: bytes
    header: bytes
    initial: bytes
    rest: bytes

    @property
    def size(self) -> int:
        return len(self.header) + len(self.initial) + len(self.rest) + 8

    def bytes(self, with_initial: bool) -> bytes:
        initial = self.initial if with_initial else b""
        return b"".join([_LENGTH.pack(len(self.header)), self.header, _LENGTH.pack(len(initial)), initial, self.rest])


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


_LENGTH = struct.Struct(">I")


@functools.lru_cache(maxsize=4096)
def _reads(code: str) -> frozenset[str] | None:
    """:func:`tables_read`, once per check source (a scenario's checks are scored again and again)."""
    return tables_read(code)


@functools.lru_cache(maxsize=4096)
def _copies(code: str) -> bool:
    """:func:`may_change_views`, once per check source."""
    return may_change_views(code)


def run_checks_sync(
    checks: Sequence[tuple[str, str]],
    initial: dict[str, Any],
    final: dict[str, Any],
    limits: SandboxLimits = SandboxLimits(),
) -> list[CheckOutcome]:
    """One job in a one-worker pool started for it: for the CLI and offline scoring, not for services."""

    async def go() -> list[CheckOutcome]:
        async with SandboxPool(1, limits) as pool:
            return await pool.run_checks(checks, initial, final)

    return asyncio.run(go())
