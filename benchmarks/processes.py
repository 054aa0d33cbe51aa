"""Servers as subprocesses (``envfarm serve``, ``envfarm router``, the baseline), and their CPU and RSS.

Servers run in their own processes so their CPU time can be read apart from the load
generator's (from /proc, Linux only). They inherit this process's environment, so
ENVFARM_ENV_PATH set by ``workloads.use_fixture_envs()`` reaches them.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BASELINE_SERVER = Path(__file__).resolve().parent / "_baseline_server.py"

PAGE = os.sysconf("SC_PAGE_SIZE")
TICK = os.sysconf("SC_CLK_TCK")


def rss_bytes(pid: int | None = None) -> int:
    """Resident set size of a process (this one by default), from /proc/PID/statm."""
    fields = Path(f"/proc/{pid or 'self'}/statm").read_text().split()
    return int(fields[1]) * PAGE


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far, from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def children(pid: int | None = None) -> list[int]:
    """Pids whose parent is ``pid`` (this process by default)."""
    parent = pid or os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == parent:
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """An HTTP server we started as a subprocess."""

    name: str
    url: str
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_server(name: str, cmd: list[str], port: int, ready_path: str) -> Server:
    """Start ``cmd`` (which binds 127.0.0.1:port) and wait until GET ready_path answers at all."""
    import httpx

    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    # One client for all the polls: a new httpx client builds an SSL context (~0.2 s of CPU),
    # which would take CPU from the server that is starting.
    with httpx.Client(timeout=1) as poll:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                err = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"{name} exited with {process.returncode}:\n{err}")
            try:
                poll.get(url + ready_path)
                # From here on nobody reads stderr; a chatty server must not block on a full pipe.
                _drain(process)
                return Server(name, url, process)
            except httpx.TransportError:
                time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"{name} did not answer on {url} within 60 s")


def _drain(process: subprocess.Popen[bytes]) -> None:
    """Read the server's stderr from now on; pass on the first lines of any error report."""

    def run() -> None:
        assert process.stderr is not None
        shown = 0
        in_error = False
        for line in process.stderr:
            text = line.decode(errors="replace")
            if "Traceback" in text or "ERROR" in text or "Error" in text:
                in_error = True
            if in_error and shown < 80:
                sys.stderr.write(f"[server {process.pid}] {text}")
                shown += 1

    threading.Thread(target=run, daemon=True).start()


def start_farm(env_id: str) -> Server:
    """``envfarm serve ENV`` on a free port (uvicorn access log off, as in production)."""
    port = free_port()
    cmd = [sys.executable, "-m", "envfarm.cli", "serve", env_id, "--port", str(port), "--log-level", "warning"]
    return start_server("envfarm", cmd, port, "/healthz")


def start_router(workers: list[str]) -> Server:
    """``envfarm router --worker URL ...`` on a free port."""
    port = free_port()
    flags = [part for url in workers for part in ("--worker", url)]
    cmd = [sys.executable, "-m", "envfarm.cli", "router", *flags, "--port", str(port), "--log-level", "warning"]
    return start_server("router", cmd, port, "/healthz")


def baseline_args(env_id: str, scenario: str, db: Path, transport: str, port: int | None = None) -> list[str]:
    """The arguments to ``python`` that run the baseline server (benchmarks/_baseline_server.py)."""
    args = [str(BASELINE_SERVER), "--env", env_id, "--scenario", scenario, "--db", str(db), "--transport", transport]
    return args if port is None else [*args, "--port", str(port)]


def start_baseline(env_id: str, scenario: str, db: Path) -> Server:
    """The same tools as a decorator-based ``MCPServer`` over one SQLite file, on a free port."""
    port = free_port()
    cmd = [sys.executable, *baseline_args(env_id, scenario, db, "http", port)]
    return start_server("baseline", cmd, port, "/mcp")
