"""Answers from a recording: the cache directory of an earlier run, so tests and demos need no key.

Entries are looked up by the request alone (not by provider and model), so a run recorded with
Claude replays whatever provider name the replaying run uses. A recording that holds answers
from several models needs ``model`` to say whose to use.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from envfarm.generator.llm.cache import iter_entries
from envfarm.generator.llm.errors import LLMError, ReplayMiss
from envfarm.generator.llm.request import Request, Response


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
        if not self.recording.is_dir():
            raise LLMError(f"recording {self.recording} is not a directory (expected an LLM cache directory)")
        self._entries: dict[str, dict[str, Any]] = {}
        models: set[str] = set()
        for entry in sorted(iter_entries(self.recording), key=lambda e: str(e.get("created", ""))):
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
