"""The farm served inside a run (``envfarm run`` without ``--farm``): real uvicorn on 127.0.0.1, a free port.

The run reaches it exactly as it would reach any farm: the control API and each episode's MCP endpoint
over HTTP, scoring through ``POST /v1/episodes/{id}/score``. It shares the run's event loop; checks run
in the validator's sandbox worker processes, as in ``envfarm serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from envfarm.agents.errors import AgentsError

if TYPE_CHECKING:
    from envfarm.core.environments import Environment


@contextlib.asynccontextmanager
async def serve_in_process(
    catalog: dict[str, Environment], *, sandbox_workers: int | None = None, max_episodes: int = 10_000
) -> AsyncIterator[str]:
    """Serve ``catalog`` (with scoring) until the block ends; yields the farm's base URL."""
    import uvicorn

    from envfarm.serve.app import create_app
    from envfarm.serve.settings import FarmSettings
    from envfarm.validators.service import ScoringService, farm_extension

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # Ctrl-C belongs to the run, not to its farm
            yield

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = int(sock.getsockname()[1])
    settings = FarmSettings(host="127.0.0.1", port=port, max_episodes=max_episodes)
    app = create_app(catalog, settings, [farm_extension(ScoringService(workers=sandbox_workers))])
    config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=5, timeout_keep_alive=30)
    server = Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                problem = task.exception() if not task.cancelled() else None
                raise AgentsError(f"the in-process farm did not start: {problem!r}")
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception, SystemExit):  # uvicorn exits its task with SystemExit on a failed start
            await task
        sock.close()
