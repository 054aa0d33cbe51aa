"""Generated code runs contained: hostile or broken tools, run by real worker processes, touch nothing.

The packages here skip the code gate on purpose (they import os, socket, subprocess ...): the
worker must hold on its own, for code that got past the gate. Every attack is a crash result,
sent back as the probes send it, and nothing of the generator's process or machine changes.
"""

from __future__ import annotations

import os
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from envfarm.core.environments import PackageError
from envfarm.generator.contained import ContainedEnv, RunnerLimits
from envfarm.generator.packages import write_skeleton
from envfarm.validators.sandbox.pool import worker_environment
from tests.generator.recording import CLOCK, MODELS_PY, STATE_ROWS, TOOLS_PY

SECRET = "sk-ant-contained-test-secret"
LIMITS = RunnerLimits(call_seconds=1.0, grace_seconds=3.0)

HEADER = """\
import itertools
import os
import posix
import socket
import subprocess
"""


def attack(name: str, body: str) -> str:
    """A query tool ``name`` whose body is ``body`` (one line per statement, indented by this function)."""
    lines = "\n".join(f"    {line}" for line in body.strip().splitlines())
    return f'''

@tool(kind="query")
def {name}(ctx: ToolContext, target: str = "") -> Any:
    """An attack.

    Args:
        target: what it aims at
    """
{lines}
'''


ATTACKS = {
    "read_secret": "return [os.environ.get('ANTHROPIC_API_KEY'), os.environ.get('ENVFARM_TEST_SECRET')]",
    "environment": "return dict(os.environ)",
    "parent_environ": "return open(f'/proc/{os.getppid()}/environ', 'rb').read().decode(errors='replace')",
    "connect": "return str(socket.create_connection(('127.0.0.1', int(target)), timeout=2))",
    "raw_read": "return posix.open('/etc/hostname', posix.O_RDONLY)",
    "write_file": "open(target, 'w').write('written by a generated tool')\nreturn 'wrote'",
    "raw_write": "fd = posix.open(target, posix.O_WRONLY | posix.O_CREAT, 0o666)\nreturn posix.write(fd, b'x')",
    "fork": "return os.fork()",
    "raw_fork": "return posix.fork()",
    "run_program": "subprocess.run(['/bin/sh', '-c', 'touch ' + target], check=True)\nreturn 'ran'",
    "spin": "while True:\n    pass",
    "spin_in_c": "return sum(itertools.count())",
    "hog_memory": "return len(bytearray(8 * 2**30))",
    "exit_worker": "os._exit(3)",
}


def hostile_tools() -> str:
    tools = TOOLS_PY.replace("from typing import Any\n", "from typing import Any\n" + HEADER, 1)
    return tools + "".join(attack(name, body) for name, body in ATTACKS.items())


@pytest.fixture(scope="module")
def secret_in_parent() -> Iterator[None]:
    """Secrets in the generator's own environment, as a real run has them."""
    saved = {k: os.environ.get(k) for k in ("ANTHROPIC_API_KEY", "ENVFARM_TEST_SECRET")}
    os.environ["ANTHROPIC_API_KEY"] = SECRET
    os.environ["ENVFARM_TEST_SECRET"] = SECRET
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
async def hostile(tmp_path: Path, secret_in_parent: None) -> AsyncIterator[ContainedEnv]:
    path = write_skeleton(
        tmp_path, "hostile_env", "Hostile", "Tools that attack.", {"r": "r"}, MODELS_PY, hostile_tools()
    )
    async with await ContainedEnv.start(path, limits=LIMITS) as env:
        yield env


async def call(env: ContainedEnv, tool: str, target: str = "") -> tuple[bool, bool, str]:
    """(ok, crashed, value or error) of one call on a fresh episode."""
    episode = await env.episode(STATE_ROWS, CLOCK)
    try:
        result = (await episode.call(tool, {"target": target})).result
    finally:
        await episode.close()
    return result.ok, result.crashed, str(result.value if result.ok else result.error)


async def test_the_worker_sees_nothing_of_the_generators_environment(hostile: ContainedEnv) -> None:
    assert os.environ["ANTHROPIC_API_KEY"] == SECRET  # the generator has it ...
    ok, _, value = await call(hostile, "read_secret")
    assert ok and value == "[None, None]"  # ... the generated code does not
    ok, _, value = await call(hostile, "environment")
    assert ok and SECRET not in value
    assert sorted(eval(value)) == sorted(worker_environment())  # noqa: S307 - the repr of a dict of str
    assert hostile.protections["environment_variables"] == sorted(worker_environment())
    if os.geteuid() == 0:
        assert hostile.protections["user"] == "nobody"
    ok, crashed, error = await call(hostile, "parent_environ")  # not through /proc either
    assert crashed and "PermissionError" in error and SECRET not in error


async def test_no_network_not_even_loopback(hostile: ContainedEnv) -> None:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.2)
    accepted: list[object] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept())
            except OSError:
                continue

    listener = threading.Thread(target=accept, daemon=True)
    listener.start()
    try:
        ok, crashed, error = await call(hostile, "connect", str(server.getsockname()[1]))
    finally:
        stop.set()
        listener.join(5)
        server.close()
    assert crashed and not ok
    assert "PermissionError" in error or "Network is unreachable" in error, error
    assert accepted == []
    if os.geteuid() == 0:
        assert hostile.protections["network_namespace"] == "net"


async def test_no_file_is_read_or_written_and_no_program_runs(hostile: ContainedEnv) -> None:
    target = Path("/tmp") / f"envfarm-contained-{uuid.uuid4().hex}"  # world-writable: only the worker stops it
    for tool in ("write_file", "raw_write", "run_program"):
        ok, crashed, error = await call(hostile, tool, str(target))
        assert crashed and not ok, (tool, error)
        assert "PermissionError" in error or "Operation not permitted" in error, (tool, error)
        assert not target.exists(), tool
    ok, crashed, error = await call(hostile, "raw_read")  # raw posix.open, past every Python-level block
    assert crashed and "Operation not permitted" in error


async def test_no_new_process(hostile: ContainedEnv) -> None:
    ok, crashed, error = await call(hostile, "fork")
    assert crashed and "os.fork is not allowed in generated tool code" in error
    ok, crashed, error = await call(hostile, "raw_fork")  # the kernel refuses it (seccomp, RLIMIT_NPROC)
    assert crashed and ("Operation not permitted" in error or "Resource temporarily unavailable" in error), error


async def test_loops_and_memory_end_as_crash_results_and_the_worker_goes_on(hostile: ContainedEnv) -> None:
    ok, crashed, error = await call(hostile, "spin")  # Python loop: interrupted inside the worker
    assert crashed and "ToolTimeout" in error and "endless loop" in error
    ok, crashed, error = await call(hostile, "hog_memory")
    assert crashed and "MemoryError" in error
    replaced = hostile.replaced
    ok, crashed, error = await call(hostile, "spin_in_c")  # never returns to Python: the worker is killed
    assert crashed and "the worker was killed" in error and "no answer within" in error, error
    assert hostile.replaced == replaced + 1
    ok, crashed, error = await call(hostile, "exit_worker")
    assert crashed and "exited with status 3" in error, error
    episode = await hostile.episode(STATE_ROWS, CLOCK)  # a fresh worker serves the package as before
    assert (await episode.call("find_member", {"name": "Maya Chen"})).result.value["credits"] == 3
    await episode.close()


async def test_an_episode_survives_the_loss_of_its_worker(hostile: ContainedEnv) -> None:
    """Calls made before the worker died are replayed on the new one: the probe's state goes on."""
    episode = await hostile.episode(STATE_ROWS, CLOCK)
    booked = await episode.call("book_class", {"member_name": "Maya Chen", "class_id": 1}, view=True)
    assert booked.result.ok
    lost = await episode.call("exit_worker", {}, view=True)
    assert lost.result.crashed and lost.view == booked.view
    after = await episode.call("list_bookings", {"member_name": "Maya Chen"}, view=True)
    assert after.result.ok and any(b["class_id"] == 1 and b["status"] == "booked" for b in after.result.value)
    assert after.view == booked.view
    await episode.close()


async def test_hostile_code_at_import_time_is_held_too(tmp_path: Path) -> None:
    """Module-level code runs under the import filter: it may read the package, nothing else."""
    target = Path("/tmp") / f"envfarm-contained-{uuid.uuid4().hex}"
    tools = TOOLS_PY.replace(
        "from typing import Any\n", f"from typing import Any\nimport os\nopen({str(target)!r}, 'w').write('x')\n", 1
    )
    path = write_skeleton(tmp_path, "import_attack", "Hostile", "At import.", {"r": "r"}, MODELS_PY, tools)
    with pytest.raises(PackageError) as raised:
        await ContainedEnv.start(path, limits=LIMITS)
    assert any("tools.py" in p and "Operation not permitted" in p for p in raised.value.problems), raised.value
    assert not target.exists()
    assert "envfarm.servers.import_attack" not in sys.modules


async def test_a_package_that_does_not_import_says_why(tmp_path: Path) -> None:
    tools = TOOLS_PY + "\nraise RuntimeError('broken at import')\n"
    path = write_skeleton(tmp_path, "import_error", "Broken", "At import.", {"r": "r"}, MODELS_PY, tools)
    with pytest.raises(PackageError) as raised:
        await ContainedEnv.start(path, limits=LIMITS)
    assert any("RuntimeError: broken at import" in p for p in raised.value.problems), raised.value


async def test_the_quality_gate_replays_in_the_worker(tmp_path: Path) -> None:
    """The gate's Replayer: the same numbers as replaying in process would give, from the worker."""
    from envfarm.core.scenarios import Scenario
    from envfarm.validators.gate import gate_scenario
    from envfarm.validators.sandbox import SandboxPool
    from tests.generator.recording import SCENARIO_1

    path = write_skeleton(tmp_path, "gated_env", "Fitness", "Gate test.", {"r": "r"}, MODELS_PY, TOOLS_PY)
    scenario = Scenario.model_validate({k: v for k, v in SCENARIO_1.items() if k != "checklist"})
    async with await ContainedEnv.start(path, limits=LIMITS) as env, SandboxPool(workers=1) as pool:
        report = await gate_scenario(env, scenario, pool)
    assert report.passed, report.reasons
    assert report.numbers["mutants"] > 0 and report.numbers["mutants_caught"] == report.numbers["mutants"]
