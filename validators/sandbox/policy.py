"""The sandbox's policy: what a check may use, and how a job's child is held to it.

Everything here is prepared by the zygote before anything untrusted exists
(:func:`preimport`, :func:`enter_network_namespace`, :func:`compile_seccomp_filter`,
:class:`SeccompInstaller`, :class:`PythonRestrictions`) and applied by each forked
child before it reads a job (:func:`harden`): rlimits, no root, no module loading,
then the seccomp allow-list, last. See docs/sandbox.md for the guarantees.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import resource
import signal
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

#: Modules a check may import: pre-imported here because nothing can be loaded from disk later.
PREIMPORT: tuple[str, ...] = (
    "json",
    "math",
    "cmath",
    "re",
    "datetime",
    "time",
    "calendar",
    "collections",
    "collections.abc",
    "itertools",
    "functools",
    "operator",
    "statistics",
    "decimal",
    "fractions",
    "numbers",
    "string",
    "textwrap",
    "unicodedata",
    "copy",
    "heapq",
    "bisect",
    "random",
    "typing",
    "dataclasses",
    "enum",
    "hashlib",
    "base64",
    "difflib",
    "_strptime",
    "traceback",
)

#: Modules removed from the child's ``sys.modules`` (some are loaded as dependencies of the
#: zygote's own setup); with the path finder gone, importing them fails with a clear ImportError.
#: This is for clear errors only: the seccomp filter is what stops their system calls.
UNIMPORTABLE_PREFIXES: tuple[str, ...] = (
    "ctypes",
    "_ctypes",
    "pyseccomp",
    "subprocess",
    "_posixsubprocess",
    "socket",
    "_socket",
    "ssl",
    "_ssl",
    "select",
    "selectors",
    "asyncio",
    "multiprocessing",
    "_multiprocessing",
    "concurrent",
    "threading",
    "_thread",
    "signal",
    "_signal",
    "resource",
    "fcntl",
    "mmap",
    "shutil",
    "tempfile",
    "pty",
    "sqlite3",
    "_sqlite3",
    "importlib.util",
    "zipimport",
    "faulthandler",
)

#: System calls the child may make once hardened; every other one fails with EPERM.
#: Deliberately absent (a sample): open/openat/openat2/creat, stat family, getdents, unlink,
#: rename, mkdir, chmod, socket/connect/bind, execve/execveat, fork/vfork/clone/clone3,
#: kill/tkill/tgkill, ptrace, process_vm_*, mount, unshare/setns, setrlimit/prlimit64,
#: setuid family, prctl, seccomp, bpf, io_uring_*, ioctl, fcntl, dup*, pipe*, memfd_create.
ALLOWED_SYSCALLS: tuple[str, ...] = (
    "read",
    "write",
    "readv",
    "writev",
    "close",
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "sigaltstack",
    "restart_syscall",
    "futex",
    "clock_gettime",
    "clock_getres",
    "gettimeofday",
    "time",
    "nanosleep",
    "clock_nanosleep",
    "setitimer",
    "getitimer",
    "getrusage",
    "times",
    "getpid",
    "gettid",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getrandom",
    "sched_yield",
    "sched_getaffinity",
    "exit",
    "exit_group",
)

CHILD_CPU_BUDGET = 30.0  # CPU seconds after which a child is retired (its RLIMIT_CPU is this + a job's worth)
NOBODY = 65534

_CLONE_NEWUSER = 0x10000000
_CLONE_NEWNET = 0x40000000
PR_SET_PDEATHSIG = 1
_PR_SET_NO_NEW_PRIVS = 38
_PR_SET_SECCOMP = 22
_SECCOMP_MODE_FILTER = 2


@dataclass(frozen=True)
class Config:
    cpu_seconds: float
    memory_bytes: int
    wall_seconds: float


# --- setup (zygote, before anything untrusted exists) ---------------------------------------


def preimport() -> None:
    """Import every module checks may use and run their lazy imports once."""
    for name in PREIMPORT:
        importlib.import_module(name)
    import datetime
    import decimal
    import re
    import statistics

    # Lazy imports and caches that would otherwise need the file system inside a check.
    datetime.datetime.strptime("2024-01-02 03:04", "%Y-%m-%d %H:%M")
    time.strptime("2024", "%Y")
    datetime.datetime.now().astimezone()
    time.localtime()
    decimal.Decimal("1.10").quantize(decimal.Decimal("0.1"))
    statistics.mean([1, 2, 3])
    re.compile(r"(?i)\w+@\w+\.com").search("A@b.com")
    for encoding in ("ascii", "latin-1", "utf-16", "utf-32", "cp1252", "idna", "unicode_escape", "raw_unicode_escape"):
        "x".encode(encoding).decode(encoding)
    json.loads(json.dumps({"a": [1.5, None, "é"]}, sort_keys=True, indent=1))
    "{:,.2f} {!r}".format(1234.5, "x")


def enter_network_namespace() -> str | None:
    """Move this process into a new, empty network namespace; the namespace kind, or None if impossible."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    if os.geteuid() == 0 and libc.unshare(_CLONE_NEWNET) == 0:
        return "net"
    if libc.unshare(_CLONE_NEWUSER | _CLONE_NEWNET) == 0:
        return "user+net"
    return None


def compile_seccomp_filter(allowed: Sequence[str] = ALLOWED_SYSCALLS) -> bytes:
    """The BPF program (``struct sock_filter[]``) of the allow-list filter, for this machine's arch."""
    import errno

    import pyseccomp

    filt = pyseccomp.SyscallFilter(pyseccomp.ERRNO(errno.EPERM))
    for name in allowed:
        nr = pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name)
        if nr < 0:  # not a syscall on this architecture (e.g. "time" on arm64)
            continue
        filt.add_rule(pyseccomp.ALLOW, nr)
    r, w = os.pipe()
    try:
        with os.fdopen(w, "wb", closefd=True) as out:
            filt.export_bpf(out)
        chunks = []
        while chunk := os.read(r, 65536):
            chunks.append(chunk)
    finally:
        os.close(r)
    program = b"".join(chunks)
    if not program or len(program) % 8:
        raise RuntimeError(f"libseccomp exported a malformed BPF program ({len(program)} bytes)")
    return program


class SeccompInstaller:
    """Everything the child needs to load the filter, prepared in the zygote (ctypes calls only)."""

    def __init__(self, program: bytes) -> None:
        import ctypes

        class SockFilter(ctypes.Structure):
            _fields_ = [
                ("code", ctypes.c_ushort),
                ("jt", ctypes.c_ubyte),
                ("jf", ctypes.c_ubyte),
                ("k", ctypes.c_uint32),
            ]

        class SockFprog(ctypes.Structure):
            _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(SockFilter))]

        count = len(program) // 8
        self._filters = (SockFilter * count).from_buffer_copy(program)
        self._prog = SockFprog(count, ctypes.cast(self._filters, ctypes.POINTER(SockFilter)))
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
        self._prog_address = ctypes.addressof(self._prog)
        self._get_errno = ctypes.get_errno

    def prctl(self, option: int, arg2: int) -> None:
        if self._libc.prctl(option, arg2, 0, 0, 0) != 0:
            e = self._get_errno()
            raise OSError(e, f"prctl({option}): {os.strerror(e)}")

    def install(self) -> None:
        """Load the filter into this process (irreversible; inherited by anything it could start)."""
        self.prctl(_PR_SET_NO_NEW_PRIVS, 1)
        if self._libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, self._prog_address, 0, 0) != 0:
            e = self._get_errno()
            raise OSError(e, f"loading the seccomp filter: {os.strerror(e)}")


# --- hardening (child, after fork, before reading the job) -----------------------------------


def set_limits(config: Config) -> None:
    """rlimits: address space, a CPU backstop, no file writes, no new fds, no core dumps, no processes."""
    # The zygote kills a job at its wall deadline and retires a child past CHILD_CPU_BUDGET; the
    # rlimit is a backstop only (it fires if that machinery fails), so it sits just above both.
    cpu_backstop = math.ceil(CHILD_CPU_BUDGET + max(config.wall_seconds, config.cpu_seconds)) + 1
    resource.setrlimit(resource.RLIMIT_AS, (config.memory_bytes, config.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_backstop, cpu_backstop + 1))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (4, 4))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))


def drop_privileges() -> bool:
    """Root becomes nobody with no groups (and so no capabilities); anyone else stays as is."""
    if os.geteuid() != 0:
        return False
    os.setgroups([])
    os.setgid(NOBODY)
    os.setuid(NOBODY)
    return True


class _SandboxImportBlocker:
    """The last meta-path finder: nothing can be loaded from disk in the sandbox, so say so."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        raise ModuleNotFoundError(f"module {name!r} is not available inside the check sandbox", name=name)


def _forbidden(name: str) -> Callable[..., NoReturn]:
    def stub(*args: object, **kwargs: object) -> NoReturn:
        raise PermissionError(f"os.{name} is not allowed in the check sandbox (no programs, no processes)")

    return stub


class PythonRestrictions:
    """Clear errors for what the kernel forbids anyway: no module loading, no process functions.

    Prepared in the zygote; :meth:`apply` in the child only swaps references (the hidden
    modules stay alive in this object, so nothing is deallocated: that keeps forks cheap).
    """

    def __init__(self) -> None:
        self.hidden_names = [
            name for name in sys.modules if any(name == p or name.startswith(p + ".") for p in UNIMPORTABLE_PREFIXES)
        ]
        self.hidden: list[object] = []
        self.finders = [f for f in sys.meta_path if getattr(f, "__name__", "") in ("BuiltinImporter", "FrozenImporter")]
        self.stubs = {
            name: _forbidden(name)
            for name in dir(os)
            if name in ("system", "popen", "fork", "forkpty", "kill", "killpg", "posix_spawn", "posix_spawnp")
            or (name.startswith(("exec", "spawn")) and callable(getattr(os, name)))
        }

    def apply(self) -> None:
        modules = sys.modules
        self.hidden = [modules.pop(name, None) for name in self.hidden_names]
        sys.meta_path[:] = [*self.finders, _SandboxImportBlocker]  # type: ignore[list-item]
        self.hidden.append(list(sys.path_importer_cache.values()))
        sys.path_importer_cache.clear()
        self.hidden.append(list(sys.path_hooks))
        sys.path_hooks.clear()
        for name, stub in self.stubs.items():
            setattr(os, name, stub)


def harden(config: Config, installer: SeccompInstaller, restrictions: PythonRestrictions) -> None:
    """Everything but the file descriptors: limits, no root, Python restrictions, then seccomp (last)."""
    set_limits(config)
    drop_privileges()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    restrictions.apply()
    installer.install()
