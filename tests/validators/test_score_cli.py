"""`envfarm score FILE...`: offline scoring with no server running."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO
from test_trajectories import openai, plain

from envfarm.core.environments import load_environment


def envfarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envfarm.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=300
    )


def test_score_jsonl_and_json_files(tmp_path: Path) -> None:
    oracle = load_environment("notes").scenarios["file-two"].oracle
    jsonl = tmp_path / "runs.jsonl"
    records = [
        {"env": "notes", "scenario": "file-two", "trajectory": plain(oracle)},
        {"env": "notes", "scenario": "file-two", "trajectory": []},
    ]
    jsonl.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    single = tmp_path / "one.json"
    single.write_text(json.dumps({"env": "notes", "scenario": "file-two", "trajectory": openai(oracle[:2])}))

    run = envfarm("score", str(jsonl), str(single), "--json")
    assert run.returncode == 0, run.stderr
    results = [json.loads(line) for line in run.stdout.splitlines()]
    assert [r["reward"] for r in results] == [1.0, 0.0, 0.5]
    assert [r["success"] for r in results] == [True, False, False]

    table = envfarm("score", str(jsonl), str(single))
    assert table.returncode == 0
    assert f"{jsonl}:1" in table.stdout and "standup, retro" in table.stdout
    assert "scoring" in table.stderr and "3/3" in table.stderr  # the progress bar, on standard error


def test_a_file_of_many_trajectories_is_scored_in_order(tmp_path: Path) -> None:
    oracle = load_environment("notes").scenarios["file-two"].oracle
    many = tmp_path / "many.jsonl"
    prefixes = [0, 2, len(oracle)]  # none of the oracle, its first two calls, all of it
    records = [
        {"env": "notes", "scenario": "file-two", "trajectory": plain(oracle[: prefixes[i % 3]])} for i in range(200)
    ]
    many.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    run = envfarm("score", str(many), "--json")
    assert run.returncode == 0, run.stderr
    rewards = [json.loads(line)["reward"] for line in run.stdout.splitlines()]
    assert rewards == [[0.0, 0.5, 1.0][i % 3] for i in range(200)]  # more records than are scored at once
    assert "200/200" in run.stderr


def test_bad_record_names_file_line_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"env": "notes", "scenario": "file-two", "trajectory": []}\n{"env": "notes", "trajectory": []}\n')
    run = envfarm("score", str(bad))
    assert run.returncode == 2
    assert f"{bad}:2: scenario: Field required" in run.stderr and "Traceback" not in run.stderr

    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"env": "notes", "scenario": "file-two", "trajectory": [{"tool": 1}]}\n')
    run = envfarm("score", str(broken))
    assert run.returncode == 2 and "trajectory[0].tool: the tool name must be a non-empty string" in run.stderr
