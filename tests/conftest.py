"""Shared fixtures: the fixture environments and a real farm process on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import envfarm.servers
from envfarm.core.environments import Environment
from envfarm.core.episodes import Episode, EpisodeStore

FIXTURE_ENVS = Path(__file__).parent / "fixtures" / "envs"
REPO = Path(__file__).parent.parent

# The fixture environments (tests/fixtures/envs) are found the way users' own folders are:
# through ENVFARM_ENV_PATH, here and in every farm process the tests start.
os.environ["ENVFARM_ENV_PATH"] = str(FIXTURE_ENVS)
if str(FIXTURE_ENVS) not in envfarm.servers.__path__:
    envfarm.servers.__path__.append(str(FIXTURE_ENVS))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class FarmProcess:
    """A running `envfarm serve` process."""

    url: str
    process: subprocess.Popen[bytes]

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kwargs)  # type: ignore[arg-type]

    def open_episode(self, env: str, scenario: str | None = None) -> dict[str, str]:
        body = {"env": env} if scenario is None else {"env": env, "scenario": scenario}
        with self.client() as c:
            r = c.post("/v1/episodes", json=body)
        assert r.status_code == 201, r.text
        return r.json()


def start_farm(*args: str, command: str = "serve", env: dict[str, str] | None = None) -> FarmProcess:
    """Start `envfarm serve ARGS` (or another serving command) on a free port; wait until /healthz answers.

    ``env`` is added to the process's environment (this one's, with the fixture environments' path).
    """
    port = free_port()
    cmd = [sys.executable, "-m", "envfarm.cli", command, "--port", str(port), "--log-level", "warning", *args]
    environment = {**os.environ, **(env or {})}
    process = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment)
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(process, url, f"envfarm {command}")
    return FarmProcess(url, process)


def wait_until_healthy(process: subprocess.Popen[bytes], url: str, what: str, timeout: float = 30) -> None:
    """Wait for ``url/healthz`` to answer 200; raise with the process's output if it exits or takes too long."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            out = process.stdout.read().decode() if process.stdout else ""
            raise RuntimeError(f"{what} exited with {process.returncode}:\n{out}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"{what} did not become healthy in {timeout:g} s")


def stop_farm(farm: FarmProcess) -> None:
    farm.process.terminate()
    try:
        farm.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        farm.process.kill()


@pytest.fixture(scope="session")
def farm() -> Iterator[FarmProcess]:
    """One farm serving the fixture env and every bundled env, for the whole test session."""
    running = start_farm()
    yield running
    stop_farm(running)


@pytest.fixture
def store() -> Iterator[EpisodeStore]:
    """A store of episodes, all closed after the test."""
    episodes = EpisodeStore()
    yield episodes
    episodes.close_all()


@pytest.fixture
def episode(env: Environment, store: EpisodeStore, request: pytest.FixtureRequest) -> Episode:
    """An episode of the test module's ``BASE`` scenario in its ``env`` (the environment tests' shared setup)."""
    return store.create(env, env.scenarios[request.module.BASE])
