"""Log lines for operators: plain text by default, one JSON object per line with ``--log-format json``.

Farm events carry the episode they are about (``episode_id``, ``env``, ``scenario``
as record extras), so a log search by episode id finds its whole life.
"""

from __future__ import annotations

import json
import logging
import sys
import time

EXTRAS = ("episode_id", "env", "scenario", "tool", "reason")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any of ``EXTRAS`` it carries."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update({k: getattr(record, k) for k in EXTRAS if hasattr(record, k)})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False)


def configure(level: str, fmt: str) -> None:
    """envfarm's own log lines on stderr, at uvicorn's level, as text or JSON."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if fmt == "json" else logging.Formatter("%(levelname)s:     %(name)s: %(message)s")
    )
    root = logging.getLogger("envfarm")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
