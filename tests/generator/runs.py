"""Running `envfarm generate` as a real process against the fake LLM server, and reading what it left."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import REPO
from fakes.llm_server import FakeLLMServer

CORPUS = Path(__file__).parent / "data" / "corpus-sample.jsonl"


def generate(
    fake: FakeLLMServer,
    tmp: Path,
    *extra: str,
    provider: str = "anthropic",
    wait: bool = True,
    key: bool = True,
    stage: str = "all",
    corpus: Path | None = CORPUS,
) -> subprocess.CompletedProcess[str] | subprocess.Popen[str]:
    """Run `envfarm generate STAGE` on the corpus sample into ``tmp/out`` with its work folder ``tmp/work``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    if provider == "anthropic":
        env["ANTHROPIC_BASE_URL"] = fake.url
        if key:
            env["ANTHROPIC_API_KEY"] = "test-key"
    else:
        env["OPENAI_BASE_URL"] = fake.openai_url
    cmd = [sys.executable, "-m", "envfarm.cli", "generate", stage, "--provider", provider]
    if corpus is not None:
        cmd += ["--corpus", str(corpus)]
    cmd += ["--envs", "1", "--scenarios", "2"]
    cmd += ["--out", str(tmp / "out"), "--work", str(tmp / "work"), *extra]
    if provider == "openai":
        cmd += ["--model", "recorded-model", "--price-in", "1", "--price-out", "2"]
    if not wait:
        return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def report(tmp: Path) -> dict[str, Any]:
    return json.loads((tmp / "work" / "report.json").read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def tree(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def last_line(stderr: str) -> str:
    """The last line a run printed on stderr (a failure's one-line message)."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""
