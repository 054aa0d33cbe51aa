"""Write envfarm/generator/data/fitness-classes.recording.json: the recorded run that ships with envfarm.

    python -m tests.generator.make_recording

Runs the real ``envfarm generate all`` (Anthropic provider, default model) against the project's
scripted fake LLM server, which answers from tests/generator/recording.py: answers written by
hand, not by a model. The run's cache (its recording) is then bundled into one JSON file, with a
note saying so, that ``--provider replay --recording fitness-classes`` plays with no key and no
network. Run it again whenever a prompt changes (tests/generator/test_bundled.py fails until then).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from fakes.llm_server import FakeLLMServer  # noqa: E402

from envfarm.generator import bundled  # noqa: E402
from envfarm.generator.llm.cache import iter_entries  # noqa: E402
from tests.generator import recording  # noqa: E402

NAME = "fitness-classes"
CORPUS = "api-bank-lv3-sample"
ABOUT = (
    "A recorded run of `envfarm generate all --envs 1 --scenarios 2` on the bundled corpus api-bank-lv3-sample. "
    "Its answers were written by hand for envfarm's tests (tests/generator/recording.py) and served by the "
    "project's scripted fake LLM server (tests/fakes/llm_server.py) to a real run of the generator: no model "
    "wrote them. Token counts are the fake's estimate (characters / 4), priced at claude-sonnet-4-6's list "
    "price. Made by `python -m tests.generator.make_recording`."
)


def record(work: Path) -> list[dict[str, Any]]:
    """One real generator run against the scripted fake; its cache entries."""
    with FakeLLMServer(recording.script()) as fake:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
        env.update({"ANTHROPIC_BASE_URL": fake.url, "ANTHROPIC_API_KEY": "recording-key"})
        cmd = [sys.executable, "-m", "envfarm.cli", "generate", "all", "--corpus", CORPUS, "--envs", "1"]
        cmd += ["--scenarios", "2", "--out", str(work / "out"), "--work", str(work / "work")]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise SystemExit(f"the recorded run failed:\n{done.stderr}")
    entries = list(iter_entries(work / "work" / "cache"))
    for entry in entries:
        entry["created"] = "recorded"  # no date: the file changes only when an answer or a prompt does
    return sorted(entries, key=lambda e: (e["request"]["stage"], e["key"]))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        entries = record(Path(tmp))
    data = {"format": 1, "about": ABOUT, "corpus": CORPUS, "entries": entries}
    target = bundled.DATA / f"{NAME}{bundled.RECORDING_SUFFIX}"
    target.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {target.relative_to(REPO)}: {len(entries)} answers, {target.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
