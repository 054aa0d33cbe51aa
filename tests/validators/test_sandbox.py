"""The check sandbox: every hostile check is contained, reported on itself, and harmless to the rest.

Each containment test runs the bad check between two good checks of the same job, with
another job in flight at the same time, and asserts the bad check fails with a clear
reason while everything else passes. Tests marked "kernel" bypass the Python-level
conveniences (blocked imports, ``os.system`` stubs) through the built-in ``posix``
module, to show the kernel-level protection underneath holds by itself; the layer tests
at the end check the namespace, rlimits and seccomp filter one at a time, in a plain
subprocess, with nothing else in place.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from envfarm.validators.checks import CheckOutcome
from envfarm.validators.sandbox import SandboxError, SandboxLimits, SandboxPool, run_checks_sync

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="the sandbox needs Linux (seccomp, namespaces)")

LIMITS = SandboxLimits(cpu_seconds=0.5, memory_bytes=256 * 2**20, wall_seconds=3.0)
INITIAL = {"notes": [{"id": 1, "title": "standup", "done": False}], "users": [{"id": 1, "name": "ann"}]}
FINAL = {
    "notes": [{"id": 1, "title": "standup", "done": True}, {"id": 2, "title": "lunch", "done": False}],
    "users": [{"id": 1, "name": "ann"}],
}
GOOD_BEFORE = ("good_before", "def check(initial, final):\n    return len(final['notes']) == 2")
GOOD_AFTER = (
    "good_after",
    "def check(initial, final):\n    return final['notes'][0]['done'] and not initial['notes'][0]['done']",
)


def code(source: str) -> str:
    return textwrap.dedent(source).strip() + "\n"


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(2, LIMITS) as p:
        yield p


async def contained(pool: SandboxPool, bad: str, *expected: str) -> CheckOutcome:
    """Run ``bad`` between two good checks, next to a concurrent good job; return the bad outcome."""
    job = pool.run_checks([GOOD_BEFORE, ("bad", code(bad)), GOOD_AFTER], INITIAL, FINAL)
    other = pool.run_checks([GOOD_AFTER], INITIAL, FINAL)
    outcomes, concurrent = await asyncio.gather(job, other)
    assert [o.id for o in outcomes] == ["good_before", "bad", "good_after"]
    before, outcome, after = outcomes
    assert before == CheckOutcome("good_before", True), before
    assert outcome.passed is False and outcome.error, outcome
    for text in expected:
        assert text in outcome.error, outcome.error
    assert after == CheckOutcome("good_after", True), after
    assert concurrent == [CheckOutcome("good_after", True)]
    # And the pool goes on serving.
    assert await pool.run_checks([GOOD_BEFORE], INITIAL, FINAL) == [CheckOutcome("good_before", True)]
    return outcome


# --- ordinary checks ---------------------------------------------------------------------------


async def test_outcomes_in_order(pool: SandboxPool) -> None:
    checks = [
        ("c1", "def check(initial, final):\n    return True"),
        ("c2", "def check(initial, final):\n    return False"),
        ("c3", "def check(initial, final):\n    return final['users'] == initial['users']"),
    ]
    assert await pool.run_checks(checks, INITIAL, FINAL) == [
        CheckOutcome("c1", True),
        CheckOutcome("c2", False),
        CheckOutcome("c3", True),
    ]
    assert await pool.run_checks([], INITIAL, FINAL) == []


async def test_envscaler_check_func_with_global_initial_state(pool: SandboxPool) -> None:
    envscaler = code(
        """
        def check_func(final_state):
            before = {n["id"] for n in initial_state["notes"]}
            return [n["title"] for n in final_state["notes"] if n["id"] not in before] == ["lunch"]
        """
    )
    assert await pool.run_checks([("es", envscaler), GOOD_AFTER], INITIAL, FINAL) == [
        CheckOutcome("es", True),
        CheckOutcome("good_after", True),
    ]


async def test_stdlib_modules_checks_use(pool: SandboxPool) -> None:
    uses_stdlib = code(
        """
        import collections, datetime, decimal, fractions, functools, itertools, json, math, re, statistics, string
        def check(initial, final):
            datetime.datetime.strptime("2024-05-01", "%Y-%m-%d")
            datetime.datetime.now()
            assert re.fullmatch(r"\\w+", final["users"][0]["name"])
            assert statistics.mean([1, 2, 3]) == 2 and math.isclose(0.1 + 0.2, 0.3)
            assert decimal.Decimal("1.10") + decimal.Decimal("2.20") == decimal.Decimal("3.30")
            assert fractions.Fraction(1, 3) * 3 == 1 and string.ascii_lowercase[0] == "a"
            assert json.loads(json.dumps(final)) == final
            counts = collections.Counter(n["done"] for n in final["notes"])
            print("checks may print; it goes nowhere")
            return counts[True] == 1 and functools.reduce(max, itertools.chain([1], [2])) == 2
        """
    )
    assert await pool.run_checks([("stdlib", uses_stdlib)], INITIAL, FINAL) == [CheckOutcome("stdlib", True)]


async def test_a_check_that_mutates_the_state_does_not_change_what_the_next_sees(pool: SandboxPool) -> None:
    mutate = "def check(initial, final):\n    final['notes'].clear()\n    initial.pop('users')\n    return True"
    see = "def check(initial, final):\n    return len(final['notes']) == 2 and 'users' in initial"
    assert await pool.run_checks([("mutate", mutate), ("see", see)], INITIAL, FINAL) == [
        CheckOutcome("mutate", True),
        CheckOutcome("see", True),
    ]


# --- hostile or broken checks: one test per case -----------------------------------------------


async def test_infinite_loop(pool: SandboxPool) -> None:
    await contained(pool, "def check(initial, final):\n    while True:\n        pass", "timed out after 0.5 s", "CPU")


async def test_infinite_loop_that_swallows_the_timeout(pool: SandboxPool) -> None:
    stubborn = """
    def check(initial, final):
        while True:
            try:
                while True:
                    pass
            except BaseException:
                pass
    """
    job = await pool.run_checks([GOOD_BEFORE, ("stubborn", code(stubborn)), GOOD_AFTER], INITIAL, FINAL)
    assert job[0] == CheckOutcome("good_before", True)
    assert job[1].passed is False and "timed out after 3 s" in (job[1].error or "")
    assert job[2] == CheckOutcome("good_after", True)  # judged on its own, after the stubborn one
    assert await pool.run_checks([GOOD_AFTER], INITIAL, FINAL) == [CheckOutcome("good_after", True)]


async def test_allocating_8_gb(pool: SandboxPool) -> None:
    await contained(
        pool, "def check(initial, final):\n    return len(bytearray(8 * 2**30)) > 0", "MemoryError", "256 MiB"
    )


async def test_allocating_little_by_little(pool: SandboxPool) -> None:
    hog = "def check(initial, final):\n    blocks = []\n    while True:\n        blocks.append(bytearray(2**26))"
    outcome = await contained(pool, hog)
    # Whichever limit comes first (page faults are slow in a VM: CPU may run out before memory).
    assert "MemoryError" in (outcome.error or "") or "CPU time" in (outcome.error or ""), outcome


async def test_recursion_without_end(pool: SandboxPool) -> None:
    await contained(pool, "def check(initial, final):\n    return check(initial, final)", "RecursionError")


async def test_recursion_without_end_and_no_recursion_limit(pool: SandboxPool) -> None:
    deep = "import sys\nsys.setrecursionlimit(10**9)\ndef check(initial, final):\n    return check(initial, final)"
    outcomes = await pool.run_checks([GOOD_BEFORE, ("deep", deep)], INITIAL, FINAL)
    assert outcomes[0] == CheckOutcome("good_before", True)
    assert outcomes[1].passed is False and outcomes[1].error, outcomes[1]
    assert await pool.run_checks([GOOD_AFTER], INITIAL, FINAL) == [CheckOutcome("good_after", True)]


async def test_reading_etc_passwd(pool: SandboxPool) -> None:
    await contained(
        pool, "def check(initial, final):\n    return 'root' in open('/etc/passwd').read()", "PermissionError"
    )


async def test_reading_a_file_kernel(pool: SandboxPool) -> None:
    await contained(
        pool,
        "import posix\ndef check(initial, final):\n    return posix.open('/etc/passwd', 0) >= 0",
        "Operation not permitted",
    )


async def test_listing_a_directory(pool: SandboxPool) -> None:
    await contained(pool, "import os\ndef check(initial, final):\n    return bool(os.listdir('/'))", "PermissionError")


async def test_writing_a_file(pool: SandboxPool, tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)  # so that only the sandbox can be what stops the write
    target = tmp_path / "written"
    await contained(
        pool,
        f"def check(initial, final):\n    open({str(target)!r}, 'w').write('x')\n    return True",
        "PermissionError",
    )
    assert not target.exists()


async def test_socket_connect_to_localhost(pool: SandboxPool) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        connect = f"socket.create_connection(('127.0.0.1', {port}))"
        bad = f"import socket\ndef check(initial, final):\n    {connect}\n    return True"
        outcome = await contained(pool, bad, "socket")
        assert "not available inside the check sandbox" in (outcome.error or "")
        with pytest.raises(BlockingIOError):
            server.accept()  # nobody came


async def test_os_system(pool: SandboxPool, tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o777)
    marker = tmp_path / "ran"
    await contained(
        pool, f"import os\ndef check(initial, final):\n    return os.system('touch {marker}') == 0", "os.system"
    )
    assert not marker.exists()


async def test_os_system_kernel(pool: SandboxPool, tmp_path: Path) -> None:
    """posix.system is libc's system(): the clone and exec under it are refused by the kernel."""
    os.chmod(tmp_path, 0o777)
    marker = tmp_path / "ran"
    system = f"status = posix.system('touch {marker}')"
    bad = f"import posix\ndef check(initial, final):\n    {system}\n    raise RuntimeError(status)"
    outcome = await contained(pool, bad, "RuntimeError")
    assert outcome.error != "raised RuntimeError: 0"
    assert not marker.exists()


async def test_subprocess(pool: SandboxPool) -> None:
    bad = "import subprocess\ndef check(initial, final):\n    return subprocess.run(['true']).returncode == 0"
    await contained(pool, bad, "subprocess", "not available inside the check sandbox")


async def test_exec_kernel(pool: SandboxPool) -> None:
    await contained(
        pool,
        "import posix\ndef check(initial, final):\n    posix.execv('/bin/true', ['true'])",
        "Operation not permitted",
    )


async def test_fork_in_a_loop(pool: SandboxPool) -> None:
    bomb = "import os\ndef check(initial, final):\n    while True:\n        os.fork()"
    await contained(pool, bomb, "PermissionError")


async def test_fork_in_a_loop_kernel(pool: SandboxPool) -> None:
    bomb = "import posix\ndef check(initial, final):\n    while True:\n        posix.fork()"
    await contained(pool, bomb, "PermissionError", "Operation not permitted")


async def test_threads(pool: SandboxPool) -> None:
    """Threads are clone() too: refused (the module is not there, and the syscall would fail)."""
    await contained(pool, "import threading\ndef check(initial, final):\n    return True", "threading")


async def test_kill_the_worker_kernel(pool: SandboxPool) -> None:
    bad = "import posix\ndef check(initial, final):\n    posix.kill(posix.getppid(), 9)\n    return True"
    await contained(pool, bad, "Operation not permitted")


async def test_import_ctypes(pool: SandboxPool) -> None:
    outcome = await contained(pool, "import ctypes\ndef check(initial, final):\n    return True", "ctypes")
    assert outcome.error == "raised ModuleNotFoundError: module 'ctypes' is not available inside the check sandbox"


async def test_returning_a_non_bool(pool: SandboxPool) -> None:
    outcome = await contained(pool, "def check(initial, final):\n    return 1", "returned int, not bool")
    assert outcome.error == "returned int, not bool"


async def test_raising(pool: SandboxPool) -> None:
    outcome = await contained(pool, "def check(initial, final):\n    raise ValueError('boom')", "ValueError")
    assert outcome.error == "raised ValueError: boom"


async def test_sys_exit(pool: SandboxPool) -> None:
    await contained(pool, "import sys\ndef check(initial, final):\n    sys.exit(3)", "SystemExit")


async def test_no_root_and_no_service_pipes(pool: SandboxPool) -> None:
    """Checks run as nobody; fds 1 and 2 are /dev/null, and nothing else above 3 is open."""
    probe = code(
        """
        import os
        def check(initial, final):
            os.write(1, b"x" * 100000)
            open_fds = []
            for fd in range(4, 64):
                try:
                    os.write(fd, b"")
                    open_fds.append(fd)
                except OSError:
                    pass
            return os.getuid() == 65534 and os.getgid() == 65534 and open_fds == []
        """
    )
    if os.geteuid() != 0:
        pytest.skip("drops to nobody only when the service runs as root")
    assert await pool.run_checks([("probe", probe)], INITIAL, FINAL) == [CheckOutcome("probe", True)]


# --- workers dying, timing out, being tampered with ----------------------------------------------


async def test_hang_in_c_is_killed_at_the_wall_deadline_and_the_other_checks_still_run(pool: SandboxPool) -> None:
    hang = "import time\ndef check(initial, final):\n    time.sleep(100)\n    return True"
    outcomes = await pool.run_checks([GOOD_BEFORE, ("hang", hang), GOOD_AFTER], INITIAL, FINAL)
    assert outcomes[0] == CheckOutcome("good_before", True)
    assert outcomes[1].error == "timed out after 3 s (wall-clock limit of a check); the worker was killed"
    assert outcomes[2] == CheckOutcome("good_after", True)  # the check after the hang is judged on its own
    assert await pool.run_checks([GOOD_BEFORE, GOOD_AFTER], INITIAL, FINAL) == [
        CheckOutcome("good_before", True),
        CheckOutcome("good_after", True),
    ]


async def test_bad_checks_decide_only_their_own_verdicts(pool: SandboxPool) -> None:
    """Two hangs and a crash among good checks: every good check passes, every bad one fails alone."""
    hang = "import time\ndef check(initial, final):\n    time.sleep(100)"
    crash = "import os\ndef check(initial, final):\n    os._exit(3)"
    checks = [("hang1", hang), GOOD_BEFORE, ("crash", crash), ("hang2", hang), GOOD_AFTER]
    outcomes = await pool.run_checks(checks, INITIAL, FINAL)
    assert [o.id for o in outcomes] == ["hang1", "good_before", "crash", "hang2", "good_after"]
    assert [o.passed for o in outcomes] == [False, True, False, False, True]
    assert "wall-clock limit of a check" in (outcomes[0].error or "")
    assert outcomes[2].error == "the worker exited with status 3 while this check ran"


async def test_the_wall_deadline_is_per_check_not_per_trajectory(pool: SandboxPool) -> None:
    """Three checks of 1.2 s each take longer than one deadline (3 s) together, and all pass."""
    slow = "import time\ndef check(initial, final):\n    time.sleep(1.2)\n    return True"
    outcomes = await pool.run_checks([("a", slow), ("b", slow), ("c", slow)], INITIAL, FINAL)
    assert outcomes == [CheckOutcome("a", True), CheckOutcome("b", True), CheckOutcome("c", True)]


async def test_a_check_cannot_buy_itself_more_time_through_the_status_pipe(pool: SandboxPool) -> None:
    """Writing the 'check finished' byte itself extends a job at most to one deadline per check."""
    stall = "import os, time\ndef check(initial, final):\n    while True:\n        os.write(3, b'c')\n        time.sleep(0.5)"  # noqa: E501
    outcomes = await asyncio.wait_for(pool.run_checks([("stall", stall), GOOD_AFTER], INITIAL, FINAL), 20)
    assert outcomes[0].passed is False and "timed out" in (outcomes[0].error or "")
    assert outcomes[1] == CheckOutcome("good_after", True)


async def test_a_crashing_check_is_reported_and_the_pool_recovers(pool: SandboxPool) -> None:
    crash = "import os\ndef check(initial, final):\n    os._exit(3)"
    outcomes = await pool.run_checks([GOOD_BEFORE, ("crash", crash), GOOD_AFTER], INITIAL, FINAL)
    assert outcomes[0] == CheckOutcome("good_before", True)
    assert outcomes[1].error == "the worker exited with status 3 while this check ran"
    assert outcomes[2] == CheckOutcome("good_after", True)
    assert await pool.run_checks([GOOD_AFTER], INITIAL, FINAL) == [CheckOutcome("good_after", True)]


async def test_a_killed_worker_is_replaced_transparently(pool: SandboxPool) -> None:
    for slot in pool._slots:  # the zygotes themselves die (OOM killer, operator...)
        assert slot.worker is not None
        os.killpg(slot.worker.process.pid, 9)
    results = await asyncio.gather(*(pool.run_checks([GOOD_BEFORE], INITIAL, FINAL) for _ in range(6)))
    assert results == [[CheckOutcome("good_before", True)]] * 6
    assert pool.replaced == 2


async def test_the_service_kills_a_worker_that_stops_answering(pool: SandboxPool) -> None:
    """If the zygote itself hangs, the service's own deadline kills and replaces it."""
    slot = pool._slots[0]
    assert slot.worker is not None
    os.kill(slot.worker.process.pid, 19)  # SIGSTOP: the zygote cannot enforce anything now
    outcomes = await asyncio.gather(*(pool.run_checks([GOOD_BEFORE], INITIAL, FINAL) for _ in range(4)))
    assert all(o[0].passed or "timed out after 3 s" in (o[0].error or "") for o in outcomes), outcomes
    assert await pool.run_checks([GOOD_AFTER], INITIAL, FINAL) == [CheckOutcome("good_after", True)]


async def test_tampering_cannot_reach_other_check_sets(pool: SandboxPool) -> None:
    """A check that rewrites its own process only ever affects jobs of its own check set."""
    tamper = code(
        """
        import sys, os
        def check(initial, final):
            checks = sys.modules["envfarm.validators.checks"]
            worker = sys.modules["__main__"]  # the worker loop (python -m envfarm.validators.sandbox.worker)
            worker.run_check = lambda check_id, *a: checks.CheckOutcome(check_id, True)
            raise ValueError(os.getpid())
        """
    )
    always_false = ("false", "def check(initial, final):\n    return False")
    first = await pool.run_checks([("tamper", tamper), always_false], INITIAL, FINAL)
    assert first[1] == CheckOutcome("false", True)  # its own check set: tampered with, as its author chose
    # Any other check set runs in a fresh process, untouched.
    for _ in range(4):
        assert await pool.run_checks([always_false], INITIAL, FINAL) == [CheckOutcome("false", False)]


async def test_forged_status_bytes_kill_the_child_and_nothing_else(pool: SandboxPool) -> None:
    forge = "import os\ndef check(initial, final):\n    os.write(3, b'dd' * 1000)\n    return True"
    outcomes = await pool.run_checks([("forge", forge), GOOD_AFTER, GOOD_BEFORE], INITIAL, FINAL)
    assert all(not o.passed and "broke the sandbox protocol" in (o.error or "") for o in outcomes), outcomes
    for _ in range(3):
        assert await pool.run_checks([GOOD_BEFORE, GOOD_AFTER], INITIAL, FINAL) == [
            CheckOutcome("good_before", True),
            CheckOutcome("good_after", True),
        ]


# --- what a check can see: only the tables the job's checks name --------------------------------


def hunt(prefix: str) -> tuple[str, str]:
    """A check that walks every object in its process for a vault row whose word starts with
    ``prefix`` (its source spells neither the column nor the prefix whole, so it cannot find itself)."""
    half = len(prefix) // 2
    source = f"""
from gc import get_objects as every_object
KEY = "wo" + "rd"
PREFIX = {prefix[:half]!r} + {prefix[half:]!r}

def rows(thing):
    return thing if type(thing) is list else list(thing.values()) if type(thing) is dict else []

def check(initial, final):
    # Rows of scalars are not tracked by the collector: look inside every list and dict that is.
    return any(
        type(r) is dict and KEY in r and str(r[KEY]).startswith(PREFIX) for t in every_object() for r in rows(t)
    )
"""
    return ("hunt", source)


NAMES_NOTES = ("notes", "def check(initial, final):\n    return len(final['notes']) == 2")
NAMES_VAULT = ("vault", "def check(initial, final):\n    return final.get('vault') is not None")


def with_vault(state: dict[str, list[dict[str, object]]], word: str) -> dict[str, list[dict[str, object]]]:
    return {**state, "vault": [{"id": 1, "word": word}]}


async def test_a_table_no_check_names_never_reaches_the_sandbox(pool: SandboxPool) -> None:
    """Containment: a check sees only tables that a check of its job reads by name, whatever it does.

    The hunting check walks every object in its process; the vault table (not named by any check
    of the job) must not be among them. The control job names the vault, and the same hunt finds
    it: the hunt works, so the first result means the rows were never there.
    """
    initial, final = with_vault(INITIAL, "SECRET-1"), with_vault(FINAL, "SECRET-2")
    hidden = await pool.run_checks([NAMES_NOTES, hunt("SECRET")], initial, final)
    assert hidden == [CheckOutcome("notes", True), CheckOutcome("hunt", False)]
    shown = await pool.run_checks([NAMES_NOTES, NAMES_VAULT, hunt("SECRET")], initial, final)
    assert shown == [CheckOutcome("notes", True), CheckOutcome("vault", True), CheckOutcome("hunt", True)]


async def test_a_check_gets_only_the_tables_it_names(pool: SandboxPool) -> None:
    """Within a job, each check's views hold the tables it names; another check's are not in them."""
    looks = code(
        """
        def check(initial, final):
            assert final['notes'] and initial['notes']
            return sorted(locals()['final']) == ['notes']
        """
    )
    names_only_notes = code(
        """
        def check(initial, final):
            return final['notes'] is not None and 'users' not in repr(final.get('users'))
        """
    )
    # `locals` makes the analysis give up: that check gets every table, as before.
    assert await pool.run_checks([("looks", looks)], INITIAL, FINAL) == [CheckOutcome("looks", False)]
    assert await pool.run_checks([("only", names_only_notes), NAMES_VAULT], INITIAL, with_vault(FINAL, "v")) == [
        CheckOutcome("only", True),
        CheckOutcome("vault", True),
    ]


async def test_another_initial_state_gets_another_process(pool: SandboxPool) -> None:
    """A process keeps the initial state it parsed for the next jobs of the same key; a job with
    other initial tables (another scenario with the same checks) never runs beside them."""
    first = await pool.run_checks([NAMES_VAULT, hunt("OLD-SECRET")], with_vault(INITIAL, "OLD-SECRET"), FINAL)
    assert first == [CheckOutcome("vault", False), CheckOutcome("hunt", True)]
    for _ in range(3):
        later = await pool.run_checks([NAMES_VAULT, hunt("OLD-SECRET")], with_vault(INITIAL, "new"), FINAL)
        assert later == [CheckOutcome("vault", False), CheckOutcome("hunt", False)]


async def test_a_check_that_mutates_its_views_changes_nothing_for_later_jobs(pool: SandboxPool) -> None:
    """The initial state a process keeps between jobs is never handed out itself, only copies."""
    mutate = code(
        """
        def check(initial, final):
            seen = len(initial['notes']), len(final['notes'])
            initial['notes'].clear()
            final['notes'].clear()
            return seen == (1, 2)
        """
    )
    for _ in range(4):
        assert await pool.run_checks([("mutate", mutate), GOOD_AFTER], INITIAL, FINAL) == [
            CheckOutcome("mutate", True),
            CheckOutcome("good_after", True),
        ]


async def test_a_final_state_that_shares_rows_with_the_initial_arrives_whole(pool: SandboxPool) -> None:
    """Replay's change tracking leaves the final tables made of the initial's own rows plus a few
    new ones; they are sent as splices of the initial table, and the checks see every row."""
    rows = [{"id": i, "v": i % 7} for i in range(500)]
    initial = {"big": rows, "small": [{"id": 1}]}
    final_rows = rows[:3] + [{"id": 3, "v": -1}] + rows[4:100] + [{"id": 100.5, "v": 0}] + rows[100:498]
    final = {"big": final_rows, "small": [{"id": 1}, {"id": 2}]}
    exact = code(
        f"""
        def check(initial, final):
            return final['big'] == {final_rows!r} and initial['big'] == {rows!r} and len(final['small']) == 2
        """
    )
    for _ in range(3):  # the first job parses the initial tables, the next ones reuse them
        assert await pool.run_checks([("exact", exact)], initial, final) == [CheckOutcome("exact", True)]


async def test_a_job_sent_without_its_initial_state_is_sent_whole_when_its_process_is_gone() -> None:
    """The service leaves the initial tables out of a job when the worker's process served the same
    key last. If the zygote replaced that process meanwhile (it does alone after 1000 jobs or
    30 s of CPU), it says so, and the job is sent again whole: the checks still see the state."""
    count = ("count", "def check(initial, final):\n    return len(initial['notes']) == 1 and len(final['notes']) == 2")
    other = ("other", "def check(initial, final):\n    return True")
    async with SandboxPool(1, LIMITS) as one:
        assert await one.run_checks([count], INITIAL, FINAL) == [CheckOutcome("count", True)]
        assert await one.run_checks([count], INITIAL, FINAL) == [CheckOutcome("count", True)]  # lean: kept state
        assert await one.run_checks([other], INITIAL, FINAL) == [CheckOutcome("other", True)]  # a new process
        one._slots[0].key = (await one._encode([count], INITIAL, FINAL)).key  # as if it still served `count`
        assert await one.run_checks([count], INITIAL, FINAL) == [CheckOutcome("count", True)]
        assert one.replaced == 0


async def test_same_check_set_reuses_a_process_and_another_gets_a_fresh_one(pool: SandboxPool) -> None:
    pid = ("pid", "import os\ndef check(initial, final):\n    raise ValueError(os.getpid())")
    other = ("pid2", pid[1])
    async with SandboxPool(1, LIMITS) as one:
        a = (await one.run_checks([pid], INITIAL, FINAL))[0].error
        b = (await one.run_checks([pid], INITIAL, FINAL))[0].error
        c = (await one.run_checks([other], INITIAL, FINAL))[0].error
    assert a == b and a != c


async def test_many_concurrent_jobs_all_complete(pool: SandboxPool) -> None:
    loop = ("loop", "def check(initial, final):\n    while True:\n        pass")
    jobs = [pool.run_checks([GOOD_BEFORE, GOOD_AFTER], INITIAL, FINAL) for _ in range(60)]
    jobs += [pool.run_checks([GOOD_BEFORE, loop], INITIAL, FINAL) for _ in range(3)]
    results = await asyncio.gather(*jobs)
    assert all(r == [CheckOutcome("good_before", True), CheckOutcome("good_after", True)] for r in results[:60])
    assert all(r[0].passed and not r[1].passed for r in results[60:])


async def test_a_cancelled_caller_leaves_the_pool_consistent(pool: SandboxPool) -> None:
    slow = ("slow", "import time\ndef check(initial, final):\n    time.sleep(0.5)\n    return True")
    task = asyncio.ensure_future(pool.run_checks([slow], INITIAL, FINAL))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await pool.run_checks([GOOD_BEFORE], INITIAL, FINAL) == [CheckOutcome("good_before", True)]


# --- lifecycle ------------------------------------------------------------------------------------


async def test_lazy_start_close_and_protections() -> None:
    pool = SandboxPool(1, LIMITS)
    assert await pool.run_checks([GOOD_BEFORE], INITIAL, FINAL) == [CheckOutcome("good_before", True)]
    assert pool.protections["seccomp"].startswith("allow-list")
    if os.geteuid() == 0:
        assert pool.protections["network_namespace"] == "net"
        assert pool.protections["drops_root"] is True
    processes = [s.worker.process for s in pool._slots if s.worker]
    await pool.close()
    assert all(p.returncode is not None for p in processes)
    with pytest.raises(SandboxError):
        await pool.run_checks([GOOD_BEFORE], INITIAL, FINAL)


def test_run_checks_sync() -> None:
    assert run_checks_sync([GOOD_BEFORE, ("bad", "def check(i, f):\n    return 'x'")], INITIAL, FINAL, LIMITS) == [
        CheckOutcome("good_before", True),
        CheckOutcome("bad", False, "returned str, not bool"),
    ]


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        SandboxLimits(cpu_seconds=0)
    with pytest.raises(ValueError):
        SandboxLimits(memory_bytes=2**20)


# --- each protection alone, in a plain process -----------------------------------------------------

LAYER_PRELUDE = """
import json, os, resource, socket, sys, threading
out = int(sys.argv[1])
from envfarm.validators.sandbox import policy as w
result = {}
def attempt(name, fn):
    try:
        result[name] = "ok: " + repr(fn())
    except BaseException as e:
        result[name] = f"{type(e).__name__}: {e}"
"""


def run_layer(body: str) -> dict[str, str]:
    script = LAYER_PRELUDE + textwrap.dedent(body) + "\nos.write(out, json.dumps(result).encode())\n"
    r, wfd = os.pipe()
    proc = subprocess.Popen(
        [sys.executable, "-c", script, str(wfd)], pass_fds=(wfd,), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    os.close(wfd)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, err = proc.communicate(timeout=60)
    assert data, f"layer script failed (exit {proc.returncode}):\n{err.decode()[-3000:]}"
    return json.loads(data)


@pytest.mark.skipif(os.geteuid() != 0, reason="a user namespace may be unavailable without root")
def test_layer_network_namespace_alone() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        result = run_layer(
            f"""
            attempt("before", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=5).close())
            attempt("netns", w.enter_network_namespace)
            attempt("after", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=5))
            """
        )
    assert result["before"] == "ok: None"
    assert result["netns"] == "ok: 'net'"
    assert result["after"].startswith("OSError") and "unreachable" in result["after"], result


def test_layer_rlimits_alone(tmp_path: Path) -> None:
    target = tmp_path / "big"
    result = run_layer(
        f"""
        import signal
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of the default kill
        f = open({str(target)!r}, "wb", buffering=0)
        w.set_limits(w.Config(cpu_seconds=1, memory_bytes=256 * 2**20, wall_seconds=1))
        attempt("write", lambda: f.write(b"x"))
        attempt("alloc", lambda: len(bytearray(2**30)))
        attempt("open_fd", lambda: open("/etc/hostname"))
        """
    )
    assert "File too large" in result["write"], result
    assert result["alloc"].startswith("MemoryError"), result
    assert "Too many open files" in result["open_fd"], result
    assert target.stat().st_size == 0


def test_layer_rlimit_cpu_alone() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (1, 2))\nwhile True: pass"],
        timeout=30,
    )
    assert proc.returncode == -24  # SIGXCPU


def test_layer_seccomp_alone(tmp_path: Path) -> None:
    """The filter alone (no namespace, no rlimits, no Python-level blocks) refuses each thing."""
    os.chmod(tmp_path, 0o777)
    result = run_layer(
        f"""
        import subprocess, posix
        w.SeccompInstaller(w.compile_seccomp_filter()).install()
        attempt("open", lambda: open("/etc/passwd").read())
        attempt("create", lambda: open({str(tmp_path / "x")!r}, "w"))
        attempt("listdir", lambda: os.listdir("/"))
        attempt("unlink", lambda: os.unlink({str(tmp_path)!r}))
        attempt("socket", lambda: socket.socket())
        attempt("fork", os.fork)
        attempt("exec", lambda: os.execv("/bin/true", ["true"]))
        attempt("subprocess", lambda: subprocess.run(["true"]))
        attempt("system", lambda: os.system("true"))
        attempt("thread", lambda: threading.Thread(target=print).start())
        attempt("kill", lambda: os.kill(os.getppid(), 0))
        attempt("setrlimit", lambda: resource.setrlimit(resource.RLIMIT_CORE, (0, 0)))  # lowering: only seccomp says no
        attempt("setuid", lambda: os.setuid(0))
        attempt("compute", lambda: sum(i * i for i in range(1000)))
        """
    )
    for name in ("open", "create", "listdir", "unlink", "socket", "fork", "exec", "subprocess", "kill", "setuid"):
        assert "Operation not permitted" in result[name], (name, result[name])
    assert result["setrlimit"] == "ValueError: not allowed to raise maximum limit"  # CPython's words for EPERM
    assert result["system"] != "ok: 0", result["system"]  # libc's system() could not clone
    assert result["thread"].startswith("RuntimeError"), result["thread"]
    assert result["compute"] == "ok: 332833500"
    assert not (tmp_path / "x").exists()
