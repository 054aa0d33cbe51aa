"""The corpus and the recorded run that ship with envfarm: present, honest about their origin, and playable.

The documented command (docs/generator.md) is run as a user would, from an empty folder, with no
key and no server: it must play the recorded run end to end and leave an environment that passes
the quality gate.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import REPO

from envfarm.generator import bundled
from envfarm.generator.topics import read_corpus

DOCUMENTED = ["generate", "all", "--provider", "replay", "--recording", "fitness-classes", "--envs", "1"]
DOCUMENTED += ["--scenarios", "2"]
RECORDING = bundled.DATA / "fitness-classes.recording.json"
REMAKE = "python -m tests.generator.make_recording"


def test_the_documented_replay_command_plays_from_an_empty_folder(tmp_path: Path) -> None:
    docs = (REPO / "docs" / "generator.md").read_text(encoding="utf-8")
    assert "envfarm " + " ".join(DOCUMENTED) in docs  # the command below is the one the docs give
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_", "ENVFARM_"))}
    envfarm = Path(sys.executable).with_name("envfarm")
    done = subprocess.run([str(envfarm), *DOCUMENTED], cwd=tmp_path, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.fail(f"the bundled recording does not play; re-record: {REMAKE}\n{done.stderr}")
    package = tmp_path / "servers" / "fitness_classes"
    assert sorted(p.name for p in (package / "scenarios").iterdir()) == [
        "morning-yoga-brooklyn.json",
        "swap-hiit-for-zumba.json",
    ]
    report = json.loads((tmp_path / ".envfarm-generate" / "report.json").read_text())
    assert report["status"] == "complete" and report["provider"] == "replay"
    assert report["llm"]["spent_usd"] == 0 and report["llm"]["totals"]["calls"] == 8
    assert report["topics"]["corpus"].endswith("api-bank-lv3-sample.jsonl")  # the recording's own corpus
    check = subprocess.run(
        [str(envfarm), "check", "fitness_classes"],
        cwd=tmp_path,
        env={**env, "ENVFARM_ENV_PATH": str(tmp_path / "servers")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_the_corpora_are_whole_and_the_sample_is_part_of_the_corpus() -> None:
    assert bundled.corpora() == ["api-bank-lv3", "api-bank-lv3-sample"]
    full = read_corpus(bundled.corpus_path("api-bank-lv3"))
    sample = read_corpus(bundled.corpus_path("api-bank-lv3-sample.jsonl"))
    assert len(full) == 324 and len({t["task"] for t in full}) == 324
    assert len(sample) == 14 and all(t in full for t in sample)
    assert bundled.corpus_path(bundled.DEFAULT_CORPUS) == bundled.DATA / "api-bank-lv3.jsonl"
    readme = (bundled.DATA / "README.md").read_text(encoding="utf-8")
    assert "MIT" in readme and "Copyright (c) 2022 Alibaba Research" in readme and "EMNLP 2023" in readme


def test_the_recording_is_small_and_says_no_model_wrote_it() -> None:
    assert bundled.recordings() == ["fitness-classes"]
    assert RECORDING.stat().st_size < 1_000_000
    data = json.loads(RECORDING.read_text(encoding="utf-8"))
    assert "written by hand" in data["about"] and "no model wrote them" in data["about"]
    assert data["corpus"] == "api-bank-lv3-sample"
    assert len(data["entries"]) == 8


def test_no_doc_points_outside_the_repository() -> None:
    for doc in ("generator.md", "benchmarks.md"):
        text = (REPO / "docs" / doc).read_text(encoding="utf-8")
        assert "../shared" not in text and "shared/data" not in text, doc


def test_the_wheel_ships_the_data(tmp_path: Path) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for name in ["pyproject.toml", "setup.py", "README.md", "envfarm", "servers", "validators", "generator"]:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path)]
    subprocess.run([*command, str(source)], check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("envfarm-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for file in ("api-bank-lv3.jsonl", "api-bank-lv3-sample.jsonl", "fitness-classes.recording.json"):
        assert f"envfarm/generator/data/{file}" in names
