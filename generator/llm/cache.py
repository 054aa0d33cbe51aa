"""The on-disk answer cache: one JSON file per request, ``<dir>/<key[:2]>/<key>.json``.

A killed run resumes without paying twice, and a finished run's cache directory is a
recording that ``ReplayProvider`` answers from. Entries are written to a temporary file in
the same folder and moved into place with ``os.replace``, so a reader sees a whole entry or
none, even if the process dies mid-write.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from envfarm.generator.llm.request import Request, Response

log = logging.getLogger("envfarm.generator.llm")
FORMAT = 1


def entry_path(cache_dir: Path, key: str) -> Path:
    return cache_dir / key[:2] / f"{key}.json"


def make_entry(key: str, request: Request, provider: str, model: str, response: Response) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "key": key,
        "provider": provider,
        "model": model,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "request": request.as_dict(),
        "response": response.as_dict(),
    }


def read_entry(cache_dir: Path, key: str) -> dict[str, Any] | None:
    """The stored entry, or None. An unreadable file counts as missing (it is rewritten after the next call)."""
    path = entry_path(cache_dir, key)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        log.warning("ignoring unreadable cache entry %s: %s", path, e)
        return None
    if not isinstance(entry, dict) or entry.get("key") != key or "response" not in entry:
        log.warning("ignoring cache entry %s: not an entry for this key", path)
        return None
    return entry


def write_entry(cache_dir: Path, entry: dict[str, Any]) -> Path:
    """Write atomically: a temporary file next to the target, flushed to disk, then renamed over it."""
    path = entry_path(cache_dir, entry["key"])
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem[:16]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(entry, f, ensure_ascii=False, indent=1)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def iter_entries(cache_dir: Path) -> Iterator[dict[str, Any]]:
    """Every readable entry under ``cache_dir`` (temporary files of an interrupted write are skipped)."""
    for path in sorted(cache_dir.glob("*/*.json")):
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            log.warning("skipping unreadable cache entry %s: %s", path, e)
            continue
        if isinstance(entry, dict) and "request" in entry and "response" in entry:
            yield entry
