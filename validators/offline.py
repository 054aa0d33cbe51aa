"""Offline scoring (``envfarm score FILE...``): the same requests as ``POST /v1/score``, read from files.

Each file is JSON (one request object, or a list of them) or JSONL (one request
per line). Checks still run in the sandbox: a one-off pool is started for the run.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

from pydantic import ValidationError

from envfarm.core.environments import Environment, load_environment
from envfarm.core.errors import EnvfarmError, InvalidInput
from envfarm.validators.replay_pool import ReplayPool
from envfarm.validators.sandbox import SandboxPool
from envfarm.validators.scoring import ScoreResponse
from envfarm.validators.service import ScoreRequest, ScoringLimits, score_request

IN_FLIGHT = 64
IN_PROCESS_BELOW = 64  # fewer records than this are replayed here: starting replay processes costs ~1 s
"""Records scored at once: enough to keep every sandbox worker busy."""


def read_requests(files: list[Path]) -> list[tuple[str, ScoreRequest]]:
    """Every request in the files, each with where it came from (``file:line`` or ``file[index]``)."""
    out: list[tuple[str, ScoreRequest]] = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as e:
            raise InvalidInput(f"{file}: cannot read ({e.strerror})") from None
        records: list[tuple[str, object]] = []
        if file.suffix == ".jsonl":
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    records.append((f"{file}:{n}", _json(line, f"{file}:{n}")))
        else:
            data = _json(text, str(file))
            items = data if isinstance(data, list) else [data]
            records.extend(
                (f"{file}[{i}]" if isinstance(data, list) else str(file), item) for i, item in enumerate(items)
            )
        for where, record in records:
            try:
                out.append((where, ScoreRequest.model_validate(record)))
            except ValidationError as e:
                first = e.errors()[0]
                field = ".".join(str(p) for p in first["loc"]) or "(record)"
                raise InvalidInput(f"{where}: {field}: {first['msg']}") from None
    return out


def _json(text: str, where: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidInput(f"{where}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None


def score_files(
    files: list[Path], on_start: Callable[[int], None] | None = None, on_done: Callable[[], None] | None = None
) -> list[tuple[str, ScoreResponse]]:
    """Score every request in the files; raise InvalidInput naming the first bad record.

    ``on_start(count)`` is called once the records are read, ``on_done()`` as each one is scored
    (the CLI's progress bar). Replays run in a :class:`ReplayPool` (one process per CPU) once there
    are ``IN_PROCESS_BELOW`` records or more. At most ``IN_FLIGHT`` records are scored at once, so
    a file of 10,000 does not hold 10,000 replays in memory together."""
    requests = read_requests(files)
    if on_start is not None:
        on_start(len(requests))
    envs: dict[str, Environment] = {}
    for where, request in requests:
        if request.env not in envs:
            try:
                envs[request.env] = load_environment(request.env)
            except Exception as e:
                raise InvalidInput(f"{where}: env: {e}") from None
    limits = ScoringLimits(max_calls=10**6)

    async def run() -> list[ScoreResponse]:
        room = asyncio.Semaphore(IN_FLIGHT)

        replayer = ReplayPool() if len(requests) >= IN_PROCESS_BELOW else None

        async def one(request: ScoreRequest, pool: SandboxPool) -> ScoreResponse:
            async with room:
                result = await score_request(envs, request, limits, pool, replayer=replayer)
            if on_done is not None:
                on_done()
            return result

        try:
            async with SandboxPool() as pool:
                return list(await asyncio.gather(*(one(r, pool) for _, r in requests)))
        finally:
            if replayer is not None:
                await replayer.close()

    try:
        results = asyncio.run(run())
    except EnvfarmError as e:  # an unknown scenario or a bad trajectory, named by the record it is in
        raise InvalidInput(str(e)) from None
    return [(where, result) for (where, _), result in zip(requests, results, strict=True)]
