"""The sandbox's wire protocol, both ends: frames between the service and a worker, result lines
from a job's child, and how the service reads them (defensively: a child's bytes are untrusted).

Frames are a 4-byte big-endian length, then the payload:

- service -> zygote (stdin): per job, the length, the number of checks, flags (4 bytes each,
  big-endian), a 32-byte key (:data:`KEY_BYTES`: the sha256 of the check set and of the initial
  tables sent), then the job: a length-prefixed JSON header ``[[[check_id, code, tables | null,
  copy], ...], order | null, same]`` (each check's tables, null for all, and whether it needs
  copies; the final state's table order; its tables that are the initial's), the
  length-prefixed JSON of the initial tables sent, and the JSON ``[full, spliced]`` of the final
  tables that are not the initial's: whole, or as :func:`splices` of the initial table (the
  whole final state instead when ``order`` is null). Only tables some check of the job reads
  are sent. With the flag :data:`WITHOUT_INITIAL` the initial tables are left out (length 0):
  the service does so when the worker's child served the same key last, as that child keeps
  them; if the zygote has no child for the key any more (retired, or another key came), it
  drops the job and answers ``{"status": "resend"}`` with no result lines, and the service
  sends it again whole. The zygote moves the job's bytes into the child's job pipe with
  splice(2), without reading them;
- zygote -> service (stdout): at start ``{"hello": {...}}`` or ``{"fatal": "why"}``; per job a
  JSON header ``{"status": "done" | "timeout" | "exit" | "protocol" | "resend", "exit": code, "signal":
  number}`` and a frame of the child's result lines (:class:`Results`): ``{"loaded": n}`` once
  the states are parsed, ``{"i": k, "p": bool, "e": str | null}`` per check, ``{"fatal":
  "why"}`` when the job could not be read;
- child -> zygote (its status pipe): one byte ``c`` per check finished (each starts the next
  check's wall-clock deadline), ``d`` when the job is done.
"""

from __future__ import annotations

import json
import mmap
import os
import signal
import struct
from typing import Any

from envfarm.core.cache import ByIdentity
from envfarm.validators.checks import CheckOutcome

KEY_BYTES = 32  # sha256 of the job's check set: a child only ever serves one check set
JOB_HEADER = struct.Struct(">III")  # the job's length in bytes, its number of checks, flags (then the key)
WITHOUT_INITIAL = 1  # flag: the job leaves out the initial tables, which the key's child already holds
SHM_SIZE = 4 * 2**20  # room for the result lines of one job
MAX_ERROR_CHARS = 2000
EXIT_HARDENING_FAILED = 70  # the child could not harden itself: it never read a job


# --- frames ------------------------------------------------------------------------------------


def read_exact(fd: int, n: int) -> bytes:
    """``n`` bytes from a file descriptor; EOFError when it ends first."""
    parts: list[bytes] = []
    while n:
        chunk = os.read(fd, min(n, 1 << 20))
        if not chunk:
            raise EOFError
        parts.append(chunk)
        n -= len(chunk)
    return b"".join(parts)


def send_frame(fd: int, payload: bytes | memoryview) -> None:
    """One frame. A memoryview (the child's results) is written straight from shared memory, uncopied."""
    if isinstance(payload, bytes):
        write_all(fd, struct.pack(">I", len(payload)) + payload)
    else:
        write_all(fd, struct.pack(">I", payload.nbytes))
        write_all(fd, payload)


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def drain(fd: int, count: int) -> None:
    """Read and drop ``count`` bytes, so the next frame starts where it should."""
    while count:
        chunk = os.read(fd, min(count, 1 << 16))
        if not chunk:
            raise EOFError
        count -= len(chunk)


# --- final tables as splices of the initial ones -------------------------------------------------

Splice = list[Any]  # [place, skip, rows]: initial rows[place:place + skip] are replaced by ``rows``
_SAMPLES = 3


def splices(initial: list[Any], final: list[Any]) -> list[Splice] | None:
    """How ``final`` is made from ``initial``: the rows it shares with it (the same objects, as
    change tracking leaves them) kept by place, the others given. None when few are shared.

    Runs of shared rows are found by comparing slices (in C, identity first), so the cost
    follows the runs, not the rows (once :func:`row_index` knows the initial table).
    """
    index = row_index(initial)
    n, m = len(initial), len(final)
    if not m or all(index.get(id(final[k * (m - 1) // (_SAMPLES - 1)])) is None for k in range(_SAMPLES)):
        return None
    out: list[Splice] = []
    new: list[Any] = []
    i = j = 0  # next place in initial, in final
    given = 0
    while j < m:
        k = index.get(id(final[j]))
        if k is None or k < i or initial[k] is not final[j]:
            new.append(final[j])
            j += 1
            continue
        if k > i or new:
            out.append([i, k - i, new])
            given += len(new)
            new = []
        run = _run(initial, k, final, j)
        i, j = k + run, j + run
    if i < n or new:
        out.append([i, n - i, new])
        given += len(new)
    return out if given * 2 < m else None


_indexes: ByIdentity[dict[int, int]] = ByIdentity(5000)


def row_index(rows: list[Any]) -> dict[int, int]:
    """Where each row of a table is, by identity: once per table list (an initial view's tables
    are shared objects)."""
    return _indexes.get(rows, lambda: {id(row): i for i, row in enumerate(rows)})


def _run(a: list[Any], i: int, b: list[Any], j: int) -> int:
    """How many rows from ``a[i]`` and ``b[j]`` on are equal (at least one): gallop, then halve."""
    most = min(len(a) - i, len(b) - j)
    low, step = 1, 1
    while low + step <= most and a[i + low : i + low + step] == b[j + low : j + low + step]:
        low += step
        step *= 2
    while step > 1:
        step //= 2
        if low + step <= most and a[i + low : i + low + step] == b[j + low : j + low + step]:
            low += step
    return low


def apply_splices(initial: list[Any], spliced: list[Splice]) -> list[Any]:
    """The final table from the initial one and :func:`splices` (the worker's side)."""
    rows: list[Any] = []
    start = 0
    for place, skip, given in spliced:
        rows += initial[start:place]
        rows += given
        start = place + skip
    rows += initial[start:]
    return rows


# --- result lines (written by the child) ---------------------------------------------------------


class Results:
    """Result lines in shared memory: a little-endian u32 used length, then JSON lines."""

    def __init__(self, shm: mmap.mmap) -> None:
        self.shm = shm
        self.used = 0

    def reset(self) -> None:
        self.used = 0
        struct.pack_into("<I", self.shm, 0, 0)

    def add(self, item: dict[str, Any]) -> None:
        line = json.dumps(item, separators=(",", ":")).encode() + b"\n"
        end = 4 + self.used + len(line)
        if end > len(self.shm):
            raise MemoryError("result area full")
        self.shm[4 + self.used : end] = line
        self.used += len(line)
        struct.pack_into("<I", self.shm, 0, self.used)


# --- reading a job's outcome (the service) -------------------------------------------------------


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _death(header: dict[str, Any], wall_seconds: float) -> tuple[str, str]:
    """(error for the check that was running, short cause for the checks after it)."""
    status = header.get("status")
    if status == "timeout":
        return (
            f"timed out after {wall_seconds:g} s (wall-clock limit of a check); the worker was killed",
            f"timed out after {wall_seconds:g} s",
        )
    if status == "lost":
        lost = f"the sandbox worker was lost ({header.get('detail')}); it was replaced"
        return lost, lost
    if status == "done":  # the child said so, but left results out: it was tampered with
        return "no result reported for this check", "no result reported"
    sig = header.get("signal")
    if isinstance(sig, int):
        causes: dict[int, str] = {
            signal.SIGXCPU: "used up the CPU time limit",
            signal.SIGSEGV: "crashed the worker (SIGSEGV; a stack overflow from runaway recursion?)",
            signal.SIGSYS: "made a forbidden system call",
            signal.SIGXFSZ: "tried to write a file",
        }
        cause = causes.get(sig, "killed the worker")
        return f"{cause}; the worker was killed by {_signal_name(sig)}", f"the worker was killed by {_signal_name(sig)}"
    code = header.get("exit")
    return f"the worker exited with status {code} while this check ran", f"the worker exited with status {code}"


def read_outcomes(
    ids: list[str], header: dict[str, Any], raw: bytes, wall_seconds: float
) -> tuple[list[CheckOutcome], list[int]]:
    """Outcomes from the child's result lines (untrusted: checked field by field) and how it ended.

    Also the indices of the checks that never ran because the job ended while an earlier one was
    running (a check that timed out or crashed its worker): the caller runs those again on their own,
    so one bad check decides only its own verdict.
    """
    n = len(ids)
    if header.get("status") == "protocol":  # the child was tampered with: none of its results count
        broke = "a check of this job broke the sandbox protocol (wrote to its status pipe); the worker was killed"
        return [CheckOutcome(i, False, broke) for i in ids], []
    got: dict[int, CheckOutcome] = {}
    loaded = False
    fatal: str | None = None
    for line in raw.split(b"\n"):
        if not line:
            continue
        try:
            item = json.loads(line)
        except ValueError:
            break  # a torn line (the child was killed while writing) or garbage: nothing after it counts
        if not isinstance(item, dict):
            break
        if "i" in item:
            i, passed, error = item.get("i"), item.get("p"), item.get("e")
            if type(i) is int and 0 <= i < n and type(passed) is bool and i not in got:
                text = error[:MAX_ERROR_CHARS] if isinstance(error, str) else None
                got[i] = CheckOutcome(ids[i], passed and text is None, text)
        elif "loaded" in item:
            loaded = True
        elif isinstance(item.get("fatal"), str):
            fatal = item["fatal"][:MAX_ERROR_CHARS]
    if len(got) == n:
        return [got[i] for i in range(n)], []
    culprit = next((i for i in range(n) if i not in got), None) if loaded else None
    running_error, cause = _death(header, wall_seconds)
    outcomes = []
    for i in range(n):
        if i in got:
            outcomes.append(got[i])
        elif fatal is not None:
            outcomes.append(CheckOutcome(ids[i], False, fatal))
        elif culprit is None:
            outcomes.append(CheckOutcome(ids[i], False, f"{cause} before the checks ran"))
        elif i == culprit:
            outcomes.append(CheckOutcome(ids[i], False, running_error))
        else:
            message = f"{cause}: not run, the job ended while check {ids[culprit]!r} was running"
            outcomes.append(CheckOutcome(ids[i], False, message))
    rerun = [] if culprit is None or fatal is not None else [i for i in range(culprit + 1, n) if i not in got]
    return outcomes, rerun
