"""The sandbox worker: a zygote process that forks hardened children to run check code.

Run by :class:`envfarm.validators.sandbox.SandboxPool` as
``python -m envfarm.validators.sandbox.worker --cpu S --memory BYTES --wall S``;
never run it by hand. See docs/sandbox.md for the guarantees.

Processes. The zygote never runs check code and never holds job data in its own
memory. Once, at start, before anything untrusted exists, it imports what checks
may use (:data:`PREIMPORT`) and warms their lazy imports, moves itself into a new
network namespace (no interface up: no network for it or its children), compiles
the seccomp filter to BPF, and writes a hello frame listing the protections.

A child is forked per *check set* (the sha256 of a job's check ids and sources and of
the initial tables sent, computed by the service): it serves jobs of that check set only
(parsing their shared initial state once), up to
:data:`MAX_JOBS_PER_CHILD` jobs or :data:`CHILD_CPU_BUDGET` CPU seconds, and is
killed as soon as a job with another check set comes, when a job times out or
when it breaks the protocol. Check code can rewrite anything in its own process
(``run_check``, ``json``, builtins); this way it can only ever affect jobs of its
own check set, that is of its own scenario, whose scoring its author decides
anyway, never another scenario's jobs or states. (One process per job would be
stricter but costs a fork, a teardown and ~1000 page faults per job: 4x slower.)

The child hardens itself before reading any job: parent-death signal; file
descriptors cut down to 0 = its private job pipe, 1/2 = /dev/null, 3 = its
status pipe (never the service's pipes); rlimits (address space, a CPU
backstop, file size 0, no new fds, no core, no processes); root becomes nobody;
unsafe modules are made unimportable; the seccomp filter is loaded last:
default EPERM, an allow-list of memory, time, signal and read/write syscalls
(:data:`ALLOWED_SYSCALLS`), so no open, socket, exec, fork/clone, kill, ptrace.
It then runs each job: every check with :func:`envfarm.validators.checks.run_check` (its
``compile`` cached per child), a copy of the tables it reads per check, a per-check CPU
timer; each outcome is appended as a JSON line to a shared-memory page, then
a byte ``c`` on the status pipe says a check is done, ``d`` that the job is. The
zygote enforces each check's wall deadline (SIGKILL), then forwards a header and
the raw result bytes to the service, unparsed.

The wire format is in :mod:`envfarm.validators.sandbox.protocol`; what a child may do,
and how it is held to it, in :mod:`envfarm.validators.sandbox.policy`.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import gc
import json
import mmap
import os
import select
import signal
import struct
import sys
import time
import traceback
from typing import Any, NoReturn

from envfarm.validators.checks import CheckOutcome, run_check
from envfarm.validators.sandbox.policy import (
    CHILD_CPU_BUDGET,
    PR_SET_PDEATHSIG,
    Config,
    PythonRestrictions,
    SeccompInstaller,
    compile_seccomp_filter,
    enter_network_namespace,
    harden,
    preimport,
)
from envfarm.validators.sandbox.protocol import (
    EXIT_HARDENING_FAILED,
    JOB_HEADER,
    KEY_BYTES,
    MAX_ERROR_CHARS,
    SHM_SIZE,
    WITHOUT_INITIAL,
    Results,
    apply_splices,
    drain,
    read_exact,
    send_frame,
    write_all,
)

MAX_JOBS_PER_CHILD = 1000


# --- the child: the jobs of one check set ---------------------------------------------------


class _CpuTimeExceeded(BaseException):
    """Raised into a check by the CPU timer; a BaseException so ``except Exception`` keeps out of the way."""


def _copy_table(rows: Any) -> Any:
    """A per-check copy of a table: a fresh list of fresh row dicts (values are JSON scalars)."""
    if type(rows) is list:
        return [r.copy() if type(r) is dict else r for r in rows]
    return json.loads(json.dumps(rows))


def _view(state: Any, tables: list[str] | None, copy: bool = True) -> Any:
    """One check's view of a state: the tables it reads (``None``: every table sent), copied unless
    the service found the check's code cannot change them (``copy`` False)."""
    if type(state) is not dict:
        return json.loads(json.dumps(state))
    return {t: _copy_table(rows) if copy else rows for t, rows in state.items() if tables is None or t in tables}


class Job:
    """One job, read from its bytes; the initial state is parsed once per child (a child serves one
    key, which covers the initial tables sent, so every job it gets carries the same ones)."""

    def __init__(self, job: bytes, cached_initial: Any) -> None:
        (size,) = struct.unpack_from(">I", job, 0)
        checks, order, same = json.loads(job[4 : 4 + size])
        self.checks = [
            (str(cid), str(code), None if reads is None else list(reads), copy is not False)
            for cid, code, reads, copy in checks
        ]
        start = 8 + size
        (size,) = struct.unpack_from(">I", job, start - 4)
        if cached_initial is None:  # the child's first job: the zygote forwards only whole ones to a new child
            self.initial = json.loads(job[start : start + size])
        else:  # the same initial tables as its first job (the key covers them), or left out
            self.initial = cached_initial
        rest = json.loads(job[start + size :])
        if order is None or type(self.initial) is not dict:
            self.final = rest
        else:
            full, spliced = rest
            initial, shared = self.initial, set(same)
            self.final = {
                t: initial[t] if t in shared else full[t] if t in full else apply_splices(initial[t], spliced[t])
                for t in order
            }


def _explain(outcome: CheckOutcome, config: Config) -> CheckOutcome:
    """Say which sandbox limit an error comes from."""
    error = outcome.error
    if error is None:
        return outcome
    if error.startswith("raised MemoryError"):
        error = f"raised MemoryError: exceeded the sandbox memory limit ({config.memory_bytes // 2**20} MiB)"
    elif "Operation not permitted" in error:
        error += " (the check sandbox allows no files, network or programs)"
    elif error.startswith("raised RecursionError"):
        error += " (recursion without end?)"
    if len(error) > MAX_ERROR_CHARS:
        error = error[:MAX_ERROR_CHARS] + "..."
    return CheckOutcome(outcome.id, outcome.passed, error)


class CompileCache:
    """``compile`` for :func:`envfarm.validators.checks.run_check`, remembering code objects by source.

    A child only ever runs one check set, so this never grows past it; ``run_check`` still
    executes each check in a fresh namespace every time.
    """

    def __init__(self) -> None:
        self.codes: dict[tuple[str, str, str], Any] = {}

    def __call__(self, source: str, filename: str, mode: str) -> Any:
        key = (source, filename, mode)
        code = self.codes.get(key)
        if code is None:
            code = self.codes[key] = compile(source, filename, mode)
        return code


def run_job(job: bytes, results: Results, config: Config, compiler: CompileCache, cache: dict[str, Any]) -> None:
    """Run every check of one job, appending each outcome as soon as it is known and saying so
    on the status pipe (``c``), which starts the next check's wall-clock deadline.

    ``cache`` keeps the child's parsed initial state between its jobs. Each check gets its own
    copy of the tables it reads, so a check that changes them changes nothing another check (or
    a later job) sees; a check whose code cannot change them (``may_change_views``) reads them
    uncopied."""
    try:
        parsed = Job(job, cache.get("initial"))
        checks = parsed.checks
    except BaseException as e:  # noqa: BLE001 - malformed, or too large for the memory limit
        results.add({"fatal": f"could not load the job: {type(e).__name__}: {e}"[:MAX_ERROR_CHARS]})
        return
    del job
    cache["initial"] = initial = parsed.initial
    final = parsed.final
    results.add({"loaded": len(checks)})
    armed = [False]

    def on_cpu_timer(signum: int, frame: object) -> None:
        if armed[0]:
            raise _CpuTimeExceeded

    signal.signal(signal.SIGPROF, on_cpu_timer)
    for i, (check_id, code, tables, copy) in enumerate(checks):
        ini, fin = _view(initial, tables, copy), _view(final, tables, copy)
        try:
            armed[0] = True
            signal.setitimer(signal.ITIMER_PROF, config.cpu_seconds, 0.1)
            outcome = run_check(check_id, code, ini, fin, compiler)
            armed[0] = False
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
        except _CpuTimeExceeded:
            armed[0] = False
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            outcome = CheckOutcome(check_id, False, f"timed out after {config.cpu_seconds:g} s of CPU time (CPU limit)")
        except BaseException as e:  # noqa: BLE001 - SystemExit, KeyboardInterrupt ... raised by the check
            armed[0] = False
            signal.setitimer(signal.ITIMER_PROF, 0, 0)
            outcome = CheckOutcome(check_id, False, f"raised {type(e).__name__}: {e}")
        outcome = _explain(outcome, config)
        results.add({"i": i, "p": outcome.passed is True, "e": outcome.error})
        os.write(3, b"c")
        del ini, fin


def child_main(
    config: Config,
    installer: SeccompInstaller,
    restrictions: PythonRestrictions,
    job_r: int,
    status_w: int,
    shm: mmap.mmap,
    devnull: int,
) -> NoReturn:
    """A forked child: harden, then run jobs of one check set from its private pipe. Never returns.

    File descriptors left: 0 its job pipe (from the zygote), 1 and 2 /dev/null, 3 its
    status pipe (``c`` per check finished, ``d`` per job done). Nothing else: not the service's pipes.
    """
    try:
        installer.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        job_fd, status_fd, null_fd = (fcntl.fcntl(fd, fcntl.F_DUPFD, 64) for fd in (job_r, status_w, devnull))
        os.dup2(job_fd, 0)
        os.dup2(null_fd, 1)
        os.dup2(null_fd, 2)
        os.dup2(status_fd, 3)
        os.closerange(4, 1 << 16)
        harden(config, installer, restrictions)
    except BaseException:  # noqa: BLE001
        try:
            os.write(3, b"F" + traceback.format_exc().encode()[-4000:])
        finally:
            os._exit(EXIT_HARDENING_FAILED)
    results = Results(shm)
    compiler = CompileCache()
    cache: dict[str, Any] = {}
    while True:
        try:
            (size,) = struct.unpack(">I", read_exact(0, 4))
            job = read_exact(0, size)
        except (EOFError, OSError):
            os._exit(0)  # retired by the zygote
        results.reset()
        try:
            run_job(job, results, config, compiler, cache)
        except BaseException:  # noqa: BLE001 - e.g. MemoryError outside a check: reported as a crash
            os._exit(1)
        del job
        os.write(3, b"d")


# --- the zygote ------------------------------------------------------------------------------


def _move(src: int, dst: int, count: int) -> bool:
    """Move ``count`` bytes between pipes in the kernel (splice): job data never enters the zygote's memory.

    False when the reader went away (the child died); the rest is then read and dropped,
    so the next job still starts at a frame boundary.
    """
    while count:
        try:
            moved = os.splice(src, dst, count)
        except BrokenPipeError:
            drain(src, count)
            return False
        if not moved:
            raise EOFError
        count -= moved
    return True


def _cpu_used(pid: int) -> float:
    """User + system seconds a child has used, from /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("inf")


class _Child:
    """A hardened child forked by the zygote, serving the jobs of one check set."""

    def __init__(self, zygote: Zygote, key: bytes) -> None:
        self.key = key
        self.jobs = 0
        job_r, self.job_w = os.pipe()
        with contextlib.suppress(OSError):
            fcntl.fcntl(self.job_w, fcntl.F_SETPIPE_SZ, 1 << 20)  # fewer round trips for big states
        self.status_r, status_w = os.pipe()
        self.shm = mmap.mmap(-1, SHM_SIZE)
        pid = os.fork()
        if pid == 0:
            child_main(zygote.config, zygote.installer, zygote.restrictions, job_r, status_w, self.shm, zygote.devnull)
        self.pid = pid
        os.close(job_r)
        os.close(status_w)
        self.pidfd = os.pidfd_open(pid)
        self.status = b""

    def wait_done(self, per_check: float, checks: int) -> str:
        """Until the child reports the job done: "done", "timeout", "exit" or "protocol".

        Each check gets ``per_check`` wall-clock seconds from the end of the one before (a ``c``
        on the status pipe); the job as a whole never more than ``checks`` of them, whatever a
        check writes to the pipe itself.
        """
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        poller.register(self.status_r, select.POLLIN)
        start = time.monotonic()
        cap = start + per_check * max(1, checks)
        deadline = min(start + per_check, cap)
        while True:
            events = poller.poll(max(0.0, deadline - time.monotonic()) * 1000)
            if not events:
                return "timeout"
            if any(fd == self.status_r for fd, _ in events):
                chunk = os.read(self.status_r, 4096)
                if chunk and not chunk.strip(b"c"):
                    deadline = min(time.monotonic() + per_check, cap)
                    continue
                if chunk.endswith(b"d") and not chunk[:-1].strip(b"c"):
                    return "done"
                if chunk.startswith(b"F"):
                    self.status = chunk[1:]
                    poller.unregister(self.status_r)
                    continue
                if not chunk:  # closed: by its exit, or by a check; only the exit matters now
                    poller.unregister(self.status_r)
                    continue
                return "protocol"
            return "exit"

    def end(self, kill: bool = True) -> int:
        """Kill (or let exit) and reap; the exit code (negative: killed by that signal)."""
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
        _, status = os.waitpid(self.pid, 0)
        for fd in (self.job_w, self.status_r, self.pidfd):
            with contextlib.suppress(OSError):
                os.close(fd)
        return os.waitstatus_to_exitcode(status)  # the shared memory stays until its results are sent


class Zygote:
    """Reads jobs from the service and hands each to the child of its check set."""

    def __init__(self, config: Config, out: int, devnull: int) -> None:
        self.config = config
        self.out = out
        self.devnull = devnull
        self.installer = SeccompInstaller(compile_seccomp_filter())
        self.restrictions = PythonRestrictions()
        self.child: _Child | None = None
        # A child is retired (and a fresh one forked) after this much CPU: together with its
        # RLIMIT_CPU (see set_limits) that keeps any one child under about a minute of CPU.
        self.cpu_budget = CHILD_CPU_BUDGET

    def probe(self) -> None:
        """Fork one child that hardens itself and exits: raises if hardening cannot work here."""
        child = _Child(self, bytes(KEY_BYTES))
        os.close(child.job_w)  # no job: it exits as soon as it is hardened and reads EOF
        child.job_w = -1
        child.wait_done(30, 1)
        code = child.end(kill=False)
        child.shm.close()
        if code != 0:
            why = child.status.decode(errors="replace").strip() or f"exit status {code}"
            raise RuntimeError(f"a sandbox child could not harden itself: {why}")

    def serve(self) -> int:
        while True:
            try:
                header = read_exact(0, JOB_HEADER.size + KEY_BYTES)
            except EOFError:
                if self.child is not None:
                    self.child.end()
                    self.child.shm.close()
                return 0
            size, checks, flags = JOB_HEADER.unpack(header[: JOB_HEADER.size])
            key = header[JOB_HEADER.size :]
            child = self.child
            if child is not None and (
                child.key != key or child.jobs >= MAX_JOBS_PER_CHILD or _cpu_used(child.pid) >= self.cpu_budget
            ):
                child.end()
                child.shm.close()
                child = self.child = None
            if child is None and flags & WITHOUT_INITIAL:  # a new child would have no initial state
                try:
                    drain(0, size)
                    send_frame(self.out, json.dumps({"status": "resend"}).encode())
                    send_frame(self.out, b"")
                except (EOFError, BrokenPipeError):
                    return 0
                continue
            if child is None:
                child = self.child = _Child(self, key)
            child.jobs += 1
            try:
                try:
                    write_all(child.job_w, struct.pack(">I", size))
                except BrokenPipeError:  # the child died (hardening failed?) before reading its job
                    drain(0, size)
                    delivered = False
                else:
                    delivered = _move(0, child.job_w, size)
            except EOFError:  # the service closed its end in the middle of a job
                child.end()
                child.shm.close()
                return 0
            result = child.wait_done(self.config.wall_seconds, checks) if delivered else "exit"
            reply: dict[str, Any] = {"status": result}
            if result != "done":
                code = child.end(kill=True)
                self.child = None
                if code == EXIT_HARDENING_FAILED:
                    why = child.status.decode(errors="replace").strip()
                    send_frame(
                        self.out, json.dumps({"fatal": f"sandbox child could not harden itself: {why}"}).encode()
                    )
                    return 1
                if result == "exit":
                    reply.update({"exit": code if code >= 0 else None, "signal": -code if code < 0 else None})
            # The results, straight from shared memory (the child's bytes: untrusted, unparsed here).
            shm = child.shm
            (used,) = struct.unpack_from("<I", shm, 0)
            whole = memoryview(shm)
            part = whole[4 : 4 + min(used, SHM_SIZE - 4)]
            try:
                send_frame(self.out, json.dumps(reply).encode())
                send_frame(self.out, part)
            except BrokenPipeError:
                return 0
            finally:
                part.release()
                whole.release()
                if self.child is not child:
                    shm.close()


def zygote_main(config: Config) -> int:
    out = os.dup(1)  # the service's pipe; fd 1 becomes /dev/null so nothing else writes to it
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    try:
        preimport()
        netns = enter_network_namespace()
        zygote = Zygote(config, out, devnull)
        zygote.probe()
    except Exception as e:  # noqa: BLE001
        send_frame(out, json.dumps({"fatal": f"sandbox worker setup failed: {type(e).__name__}: {e}"}).encode())
        return 1
    hello = {
        "pid": os.getpid(),
        "seccomp": "allow-list, default EPERM",
        "network_namespace": netns,
        "drops_root": os.geteuid() == 0,
        "rlimits": ["AS", "CPU", "FSIZE=0", "NOFILE=4", "CORE=0", "NPROC=0"],
        "process_per": "check set",
    }
    send_frame(out, json.dumps({"hello": hello}).encode())
    gc.collect()
    gc.freeze()  # keep the children's copy-on-write pages shared
    return zygote.serve()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--cpu", type=float, required=True, help="CPU seconds per check")
    parser.add_argument("--memory", type=int, required=True, help="address-space bytes per job process")
    parser.add_argument("--wall", type=float, required=True, help="wall-clock seconds per check")
    args = parser.parse_args(argv)
    return zygote_main(Config(cpu_seconds=args.cpu, memory_bytes=args.memory, wall_seconds=args.wall))


if __name__ == "__main__":
    sys.exit(main())
