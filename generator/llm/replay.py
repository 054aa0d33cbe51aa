"""Answers from a recording: the cache directory of an earlier run, so tests and demos need no key.

Entries are looked up by the request alone (not by provider and model), so a run recorded with
Claude replays whatever provider name the replaying run uses. A recording that holds answers
from several models needs ``model`` to say whose to use.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from envfarm.generator.llm.cache import iter_entries
from envfarm.generator.llm.errors import LLMError, ReplayMiss
from envfarm.generator.llm.request import Request, Response


def recorded_entries(recording: Path) -> list[dict[str, Any]]:
    """The entries of a recording: a run's cache directory, or one JSON file ``{"entries": [...]}``
    (how a recording ships in a package: ``envfarm.generator.data``; :func:`read_recording_file`)."""
    if recording.is_dir():
        return list(iter_entries(recording))
    if recording.is_file():
        return read_recording_file(recording)["entries"]  # type: ignore[no-any-return]
    raise LLMError(f"recording {recording} is neither an LLM cache directory nor a recording file")


def read_recording_file(path: Path) -> dict[str, Any]:
    """A recording file, ``{"about", "corpus", "entries": [cache entries]}``; LLMError saying what is wrong."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise LLMError(f"recording {path}: cannot be read as JSON ({e})") from None
    entries = data.get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not all(
        isinstance(e, dict) and isinstance(e.get("request"), dict) and isinstance(e.get("response"), dict)
        for e in entries
    ):
        raise LLMError(f'recording {path}: expected {{"entries": [{{"request": ..., "response": ...}}, ...]}}')
    return data


def content_key(request: Request) -> str:
    """The key of the request alone, whatever answered it."""
    return request.key("", "")


class ReplayProvider:
    """Serves recorded answers; a request the recording lacks raises ``ReplayMiss``.

    Answers come back ``cached=True`` with their recorded usage and cost: the run used them but paid nothing.
    """

    name = "replay"

    def __init__(self, recording_dir: str | Path, model: str | None = None) -> None:
        self.recording = Path(recording_dir)
        self._entries: dict[str, dict[str, Any]] = {}
        models: set[str] = set()
        for entry in sorted(recorded_entries(self.recording), key=lambda e: str(e.get("created", ""))):
            if entry["request"].get("kind") == "chat":  # an agent run's chat turns (envfarm.generator.llm.chat)
                continue
            if model is not None and entry.get("model") != model:
                continue
            models.add(str(entry.get("model")))
            self._entries[content_key(Request.from_dict(entry["request"]))] = entry  # the newest answer wins
        self.model = model or (models.pop() if len(models) == 1 else "recorded")

    def __len__(self) -> int:
        return len(self._entries)

    async def complete(self, request: Request) -> Response:
        entry = self._entries.get(content_key(request))
        if entry is None:
            raise ReplayMiss(request.stage, request.key(self.name, self.model), str(self.recording))
        return Response.from_dict(entry["response"], cached=True)
