"""How the contained worker holds generated code: what it prepares, the limits, and two seccomp filters.

The worker (:mod:`.worker`) applies these in order, and each holds on its own:

1. while still trusted (nothing generated is loaded yet): :func:`preload` imports and warms
   everything the environment's code and the episode runtime use, because nothing can be loaded
   from disk once privileges are dropped; :func:`enter_network_namespace` (the check sandbox's)
   leaves the process with no network interface; both seccomp filters are compiled;
2. :func:`set_limits`: address space, CPU, no file writes (RLIMIT_FSIZE 0), no new processes
   (RLIMIT_NPROC 0), no core dumps, a few file descriptors;
3. the working directory becomes the package folder, then root becomes ``nobody``
   (``drop_privileges``), so the package is read through relative paths only;
4. the **import filter** (:func:`compile_filter` with ``reading=True``): the check sandbox's
   allow-list plus read-only ``openat`` (write, create, truncate and append flags refused
   by argument), ``fstat``/``newfstatat``/``lseek``/``getdents64``, and ``prctl`` only to
   load the stricter filter of step 6: importing the package needs to read its files,
   nothing else. No socket, exec, fork, kill, write to a file;
5. the package is imported and the environment built (``worker.load``), and warmed;
6. :class:`Restrictions` (Python-level, for clear errors) and the **run filter** (the
   check sandbox's allow-list alone: no file access at all) for every tool call after.

Measured (strace of a worker through load, probes, replays and state builds, see
docs/generator.md): after step 6 the worker makes only read/write on its two pipes, memory
(mmap, munmap, mremap, brk, madvise), futex, clock and signal calls; SQLite in memory needs
nothing else, so the tool runner keeps the very allow-list the check children use.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.machinery
import os
import resource
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any, NoReturn

from envfarm.validators.sandbox.policy import ALLOWED_SYSCALLS, UNIMPORTABLE_PREFIXES, PythonRestrictions

#: Modules that generated code may import (generator/codegate.py) and the runtime under it.
PRELOAD: tuple[str, ...] = (
    "typing",
    "datetime",
    "math",
    "re",
    "json",
    "decimal",
    "enum",
    "random",
    "sqlite3",
    "sqlite3.dbapi2",
    "sqlmodel",
    "sqlalchemy",
    "sqlalchemy.orm",
    "sqlalchemy.pool",
    "sqlalchemy.dialects.sqlite",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "pydantic",
    "pydantic._internal._dataclasses",
    "jsonschema",
    "envfarm.core.tools",
    "envfarm.core.state",
    "envfarm.core.scenarios",
    "envfarm.core.environments",
    "envfarm.core.episodes",
    "envfarm.servers",
)

#: Modules the episode runtime itself imports while it runs: kept importable (SQLAlchemy's
#: ``create_engine`` imports ``sqlite3.dbapi2`` on each state it builds).
STILL_IMPORTABLE: tuple[str, ...] = ("sqlite3", "_sqlite3", "threading", "_thread")

#: Read-only file access, for importing the package (the import filter only).
READING_SYSCALLS: tuple[str, ...] = ("fstat", "newfstatat", "statx", "lseek", "getdents64")

_PR_SET_SECCOMP = 22
_PR_SET_NO_NEW_PRIVS = 38
_WRITING_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND | (os.O_TMPFILE & ~os.O_DIRECTORY)


@dataclass(frozen=True)
class Limits:
    """What one worker process may use: address space, CPU seconds in all, file descriptors."""

    memory_bytes: int
    cpu_seconds: int
    files: int = 8


def set_limits(limits: Limits) -> None:
    """rlimits, hard = soft so they cannot be raised: memory, CPU, no file writes, no processes, no core."""
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds))
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits.files, limits.files))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))
    resource.setrlimit(resource.RLIMIT_MEMLOCK, (0, 0))
    resource.setrlimit(resource.RLIMIT_MSGQUEUE, (0, 0))


def compile_filter(*, reading: bool, allowed: Sequence[str] = ALLOWED_SYSCALLS) -> bytes:
    """The BPF program of an allow-list filter (default EPERM) for this machine's architecture.

    ``reading`` adds read-only file access: ``openat``/``open`` only without any flag that
    writes, creates, truncates or appends (checked on the flags argument by the kernel).
    """
    import pyseccomp

    filt = pyseccomp.SyscallFilter(pyseccomp.ERRNO(errno.EPERM))
    names = [*allowed, *(READING_SYSCALLS if reading else ())]
    for name in names:
        if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) >= 0:  # "time" is not a syscall on arm64
            filt.add_rule(pyseccomp.ALLOW, name)
    if reading:
        for name, flags_arg in (("openat", 2), ("open", 1)):
            if pyseccomp.resolve_syscall(pyseccomp.Arch.NATIVE, name) >= 0:
                filt.add_rule(pyseccomp.ALLOW, name, pyseccomp.Arg(flags_arg, pyseccomp.MASKED_EQ, _WRITING_FLAGS, 0))
        # Loading the run filter on top: prctl for PR_SET_NO_NEW_PRIVS and PR_SET_SECCOMP only (a filter
        # can only ever be made stricter).
        for option in (_PR_SET_NO_NEW_PRIVS, _PR_SET_SECCOMP):
            filt.add_rule(pyseccomp.ALLOW, "prctl", pyseccomp.Arg(0, pyseccomp.EQ, option))
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


def preload() -> None:
    """Import and exercise everything generated code and the episode runtime use, while still trusted.

    Lazy imports (pydantic builds parts of itself on the first model, SQLAlchemy loads the SQLite
    dialect on the first engine) happen here, on a throw-away table and tool, so that none is
    needed once the process can no longer read the virtual environment's files.
    """
    from envfarm.validators.sandbox.policy import preimport

    preimport()
    for name in PRELOAD:
        importlib.import_module(name)
    from sqlalchemy.orm import registry
    from sqlmodel import Field, SQLModel

    from envfarm.core.scenarios import build_database
    from envfarm.core.state import canonical_view
    from envfarm.core.tools import ToolContext, ToolError, collect_tools, tool

    class Base(SQLModel, registry=registry()):
        pass

    class Row(Base, table=True):
        __tablename__ = "rows"
        id: int = Field(primary_key=True)
        name: str
        score: float = 0.0
        active: bool = True
        note: str | None = None

    @tool(kind="mutation")
    def rename(ctx: ToolContext, row_id: int, name: str) -> dict[str, Any]:
        """Rename a row.

        Args:
            row_id: the row
            name: its new name
        """
        if ctx.one("SELECT id FROM rows WHERE id = ?", (row_id,)) is None:
            raise ToolError(f"no row {row_id}")
        ctx.update("rows", {"id": row_id}, {"name": name})
        return {"id": row_id, "name": name}

    module = ModuleType("envfarm_warmup")
    module.rename = rename  # type: ignore[attr-defined]
    specs = collect_tools(module)
    for spec in specs:
        list(spec.validator.iter_errors({"row_id": "x"}))
    data = build_database(Base.metadata, {"rows": Row}, {"rows": [{"id": 1, "name": "a"}]}, "warm-up")
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.deserialize(data)
    canonical_view(db, {"rows": ["id"]})
    db.close()
    with contextlib.suppress(ValueError):  # the error path (pydantic's messages) is warmed too
        build_database(Base.metadata, {"rows": Row}, {"rows": [{"id": "x"}]}, "warm-up")


class _RelativePackageFinder:
    """Finds ``envfarm.servers.<env>`` and its modules in the working directory, by relative paths.

    The standard finders turn every path absolute, and ``nobody`` may not be able to walk the
    work folder's parents (a private home or temporary folder): the worker changes into the
    package folder while still root, then opens ``__init__.py``, ``models.py`` ... relative to it.
    """

    def __init__(self, env_id: str) -> None:
        self.package = f"envfarm.servers.{env_id}"

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname == self.package:
            return self._spec(fullname, "__init__.py", package=True)
        prefix = self.package + "."
        if fullname.startswith(prefix):
            sub = fullname[len(prefix) :]
            if "." not in sub and sub.isidentifier() and os.path.isfile(f"{sub}.py"):
                return self._spec(fullname, f"{sub}.py", package=False)
        return None

    @staticmethod
    def _spec(fullname: str, file: str, *, package: bool) -> importlib.machinery.ModuleSpec:
        loader = importlib.machinery.SourceFileLoader(fullname, file)
        spec = importlib.machinery.ModuleSpec(fullname, loader, origin=file, is_package=package)
        spec.has_location = True
        if package:
            spec.submodule_search_locations = []
        return spec


def install_finder(env_id: str) -> None:
    """Put the relative finder first, so the package is found in the working directory."""
    sys.meta_path.insert(0, _RelativePackageFinder(env_id))  # type: ignore[arg-type]


def _forbidden(name: str) -> Callable[..., NoReturn]:
    def stub(*args: object, **kwargs: object) -> NoReturn:
        raise PermissionError(f"os.{name} is not allowed in generated tool code (no programs, no processes)")

    return stub


class _ImportBlocker:
    """The last meta-path finder once the package is loaded: say why nothing else can be imported."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        raise ModuleNotFoundError(f"module {name!r} is not available to generated tool code", name=name)


class Restrictions(PythonRestrictions):
    """The check sandbox's Python-level restrictions, worded for tool code, sparing what the runtime imports.

    Clear errors only: the run filter is what the kernel enforces.
    """

    hidden_names: list[str]
    stubs: dict[str, Callable[..., NoReturn]]

    def __init__(self) -> None:
        super().__init__()
        self.hidden_names = [
            name
            for name in self.hidden_names
            if not any(name == keep or name.startswith(keep + ".") for keep in STILL_IMPORTABLE)
        ]
        self.stubs = {name: _forbidden(name) for name in self.stubs}

    def apply(self) -> None:
        super().apply()
        sys.meta_path[-1] = _ImportBlocker  # type: ignore[assignment]


def hidden_modules() -> list[str]:
    """The module prefixes made unimportable (for the hello frame)."""
    return [p for p in UNIMPORTABLE_PREFIXES if p not in STILL_IMPORTABLE]
