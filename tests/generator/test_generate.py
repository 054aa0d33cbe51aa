"""`envfarm generate` end to end against fake Anthropic and OpenAI servers on 127.0.0.1.

The real ``anthropic`` SDK and ``httpx`` talk to tests/fakes/llm_server.py, which
answers from tests/generator/recording.py. Each run is the real CLI in its own
process; what it writes is then gated, served over MCP and scored.
"""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURE_ENVS, REPO, start_farm
from fakes.llm_server import FakeLLMServer

from envfarm.client import BlockingFarm as FarmClient
from tests.generator import recording
from tests.generator.runs import CORPUS, generate, last_line, report, tree

ENV = "fitness_classes"
FULL_RUN_CALLS = 8  # judgements, design, code, state, tester, checker, 2 scenarios


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(recording.script()) as server:
        yield server


@pytest.fixture(scope="module")
def baseline(fake: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One uninterrupted run with the good recording: the reference the other runs are compared with."""
    fake.reset(recording.script())
    tmp = tmp_path_factory.mktemp("baseline")
    done = generate(fake, tmp)
    assert done.returncode == 0, done.stderr
    assert fake.stats()["answered"] == FULL_RUN_CALLS
    return tmp


def test_generates_an_environment_that_passes_the_gate_is_served_and_scored(baseline: Path) -> None:
    package = baseline / "out" / ENV
    assert sorted(p.name for p in (package / "scenarios").iterdir()) == [
        "morning-yoga-brooklyn.json",
        "swap-hiit-for-zumba.json",
    ]
    for scenario in (package / "scenarios").iterdir():
        assert json.loads(scenario.read_text())["gate"]["mutants_caught"] > 0
    data = report(baseline)
    assert data["status"] == "complete"
    assert data["environments"][ENV]["accepted"] is True
    assert data["llm"]["totals"]["calls"] == FULL_RUN_CALLS
    assert data["llm"]["totals"]["input_tokens"] > 0 and data["llm"]["totals"]["cost_usd"] > 0
    assert "| fitness_classes | yes |" in (baseline / "work" / "report.md").read_text()

    path = os.pathsep.join([str(FIXTURE_ENVS), str(baseline / "out")])
    env = {**os.environ, "ENVFARM_ENV_PATH": path}
    gate = subprocess.run(
        [sys.executable, "-m", "envfarm.cli", "check", ENV], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert gate.returncode == 0, gate.stdout + gate.stderr

    os.environ["ENVFARM_ENV_PATH"] = path
    try:
        farm = start_farm(ENV)
    finally:
        os.environ["ENVFARM_ENV_PATH"] = str(FIXTURE_ENVS)
    try:
        with FarmClient(farm.url) as client, client.episode(ENV, "morning-yoga-brooklyn") as episode:
            assert {t["name"] for t in episode.tools()} >= {"find_classes", "book_class", "cancel_booking"}
            found = episode.call("find_classes", {"city": "New York", "style": "yoga", "date": "2026-05-05"})
            assert "Morning Vinyasa" in found.text
            booked = episode.call("book_class", {"member_name": "Maya Chen", "class_id": 1})
            assert not booked.is_error, booked.text
            scored = episode.score()
            assert scored["reward"] == 1.0, scored
    finally:
        farm.process.send_signal(signal.SIGTERM)
        farm.process.wait(timeout=30)


def test_an_openai_compatible_server_gives_the_same_environment(
    fake: FakeLLMServer, baseline: Path, tmp_path: Path
) -> None:
    fake.reset(recording.script())
    done = generate(fake, tmp_path, provider="openai")
    assert done.returncode == 0, done.stderr
    assert fake.last()["path"] == "/v1/chat/completions"  # type: ignore[index]
    assert tree(tmp_path / "out") == tree(baseline / "out")
    assert report(tmp_path)["model"] == "recorded-model"


def test_the_stages_one_by_one_give_what_all_gives(fake: FakeLLMServer, baseline: Path, tmp_path: Path) -> None:
    fake.reset(recording.script())
    for stage, answered in (("topics", 1), ("skeletons", 6), ("scenarios", FULL_RUN_CALLS)):
        done = generate(fake, tmp_path, stage=stage)
        assert done.returncode == 0, done.stderr
        assert fake.stats()["answered"] == answered, stage
    assert json.loads((tmp_path / "work" / "topics.json").read_text())["topics"][0]["id"] == ENV
    assert tree(tmp_path / "out") == tree(baseline / "out")


def test_a_recorded_run_replays_with_no_server(baseline: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "envfarm.cli", "generate", "all", "--provider", "replay"]
    cmd += ["--recording", str(baseline / "work" / "cache"), "--corpus", str(CORPUS), "--envs", "1"]
    cmd += ["--scenarios", "2", "--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "OPENAI_"))}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert tree(tmp_path / "out") == tree(baseline / "out")
    assert report(tmp_path)["llm"]["spent_usd"] == 0


def test_a_killed_run_resumes_without_repeating_a_call(fake: FakeLLMServer, baseline: Path, tmp_path: Path) -> None:
    fake.reset(recording.script())
    fake.hold(after=4)  # the design, code and state answers are in; the tester's call will hang
    first = generate(fake, tmp_path, wait=False)
    assert isinstance(first, subprocess.Popen)
    deadline = time.monotonic() + 120

    def waiting() -> bool:  # the fifth request has arrived and is held
        stats = fake.stats()
        return bool(stats["held"] and stats["in_flight"])

    while not waiting() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, first.communicate()
    first.kill()
    first.communicate()
    answered_before_kill = fake.stats()["answered"]
    assert answered_before_kill == 4
    fake.release()  # the killed run's last request is answered into the void
    while fake.stats()["in_flight"]:
        time.sleep(0.01)
    fake.reset(recording.script())

    second = generate(fake, tmp_path)
    assert second.returncode == 0, second.stderr
    assert fake.stats()["requests"] == FULL_RUN_CALLS - answered_before_kill  # nothing finished is asked again
    assert tree(tmp_path / "out") == tree(baseline / "out")
    totals = report(tmp_path)["llm"]["totals"]
    assert (totals["calls"], totals["cached"]) == (FULL_RUN_CALLS, answered_before_kill)

    fake.reset(recording.script())
    third = generate(fake, tmp_path)
    assert third.returncode == 0, third.stderr
    assert fake.stats()["requests"] == 0  # everything is in the cache now
    assert tree(tmp_path / "out") == tree(baseline / "out")


def _code(**replace: str) -> dict[str, str]:
    code = dict(recording.CODE)
    for old, new in replace.items():
        code["tools_py"] = code["tools_py"].replace(old.replace("_SP_", " "), new)
    return code


def _scenario(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(base)
    out.update(changes)
    return out


def test_malformed_answers_are_sent_back_with_the_error_then_repaired(
    fake: FakeLLMServer, baseline: Path, tmp_path: Path
) -> None:
    env = "Environment: fitness_classes"
    crashing = recording.TOOLS_PY.replace(
        "    return _member(ctx, name)\n",
        '    return dict(ctx.one("SELECT id, name, credits FROM members WHERE name = ?", (name,)))\n',
    )
    assert crashing != recording.TOOLS_PY
    always_true = _scenario(
        recording.SCENARIO_1,
        checks=[
            *recording.SCENARIO_1["checks"],
            {
                "id": "has-members",
                "description": "there are members",
                "code": "def check(initial, final):\n    return len(final['members']) > 0",
            },
        ],
    )
    bad = [
        {"tool": "submit_design", "match": [env], "raw": '{"title": "Fitness classes", "entities": ['},
        {"tool": "submit_code", "match": [env], "answer": {**recording.CODE, "tools_py": "def broken(:\n"}},
        {
            "tool": "submit_code",
            "match": [env],
            "answer": {**recording.CODE, "tools_py": "import os\n" + recording.TOOLS_PY},
        },
        {"tool": "submit_code", "match": [env], "answer": {**recording.CODE, "tools_py": crashing}},
        {"tool": "submit_scenario", "match": [env, "Scenario 1 of"], "answer": always_true},
    ]
    bad_oracle = _scenario(
        recording.SCENARIO_2,
        oracle=[{"tool": "cancel_booking", "arguments": {"member_name": "Sam Okafor", "class_id": 5}}],
    )
    script = recording.script(before=bad)
    script["entries"].insert(
        len(bad), {"tool": "submit_scenario", "match": [env, "Scenario 2 of"], "answer": bad_oracle}
    )
    fake.reset(script)
    done = generate(fake, tmp_path, provider="openai")
    assert done.returncode == 0, done.stderr

    sent = [json.dumps(r["body"]["messages"]) for r in fake.requests()]
    expected_feedback = [
        "not valid JSON",
        "tools.py: line 1: does not compile",
        "import 'os' is not allowed",
        "crashed: find_member: internal error (TypeError",
        "check 'has-members' is already true on the initial state",
        "oracle step 0 (cancel_booking) returns an error",
    ]
    for text in expected_feedback:
        assert any(text in s for s in sent), f"no request carried the feedback {text!r}"

    data = report(tmp_path)["environments"][ENV]
    assert data["accepted"] is True
    assert data["skeleton"]["repairs"] == 3  # design once, code twice within the first round
    assert len(data["skeleton"]["rounds"]) == 2  # the probe's crash sent the code back once more
    assert data["scenarios"]["accepted"] == ["morning-yoga-brooklyn"]
    (rejected,) = data["scenarios"]["rejected"]
    assert rejected["index"] == 2 and len(rejected["reasons"]) == 3  # asked, then two repairs, then given up
    assert all("returns an error" in r for r in rejected["reasons"])
    written = tmp_path / "out" / ENV
    assert [p.name for p in (written / "scenarios").iterdir()] == ["morning-yoga-brooklyn.json"]
    assert "import os" not in (written / "tools.py").read_text()
    assert (written / "tools.py").read_text() == tree(baseline / "out")[f"{ENV}/tools.py"].decode()


def test_an_environment_whose_code_stays_bad_is_rejected_and_nothing_is_written(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    env = "Environment: fitness_classes"
    forbidden = {**recording.CODE, "tools_py": "import subprocess\n" + recording.TOOLS_PY}
    fake.reset(recording.script(before=[{"tool": "submit_code", "match": [env], "answer": forbidden, "uses": 3}]))
    done = generate(fake, tmp_path)
    assert done.returncode == 4, done.stderr  # nothing was made: every answer was rejected
    assert last_line(done.stderr).startswith("error: skeletons: no environment was accepted (fitness_classes: ")
    assert "import 'subprocess' is not allowed" in last_line(done.stderr) and "Traceback" not in done.stderr
    assert report(tmp_path)["status"] == "rejected"
    data = report(tmp_path)["environments"][ENV]
    assert data["accepted"] is False
    assert len(data["reasons"]) == 3 and all("import 'subprocess' is not allowed" in r for r in data["reasons"])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert "import 'subprocess' is not allowed" in (tmp_path / "work" / "report.md").read_text()


def test_rate_limits_and_overload_are_retried_and_counted(fake: FakeLLMServer, baseline: Path, tmp_path: Path) -> None:
    fake.reset(recording.script(faults=[{"status": 429, "count": 2}, {"status": 529, "count": 1}]))
    done = generate(fake, tmp_path)
    assert done.returncode == 0, done.stderr
    assert fake.stats()["faults"] == 3
    stages = report(tmp_path)["llm"]["stages"]
    assert stages["topics"]["retries"] == 3
    assert sum(s["retries"] for s in stages.values()) == 3
    assert tree(tmp_path / "out") == tree(baseline / "out")


def test_a_missing_key_is_a_clear_error_not_a_traceback(fake: FakeLLMServer, tmp_path: Path) -> None:
    done = generate(fake, tmp_path, key=False)
    assert done.returncode == 2
    assert "ANTHROPIC_API_KEY" in last_line(done.stderr)
    assert "Traceback" not in done.stderr
    failure = report(tmp_path)["failure"]
    assert failure["kind"] == "input" and "ANTHROPIC_API_KEY" in failure["message"]


def test_the_budget_stops_the_run_cleanly_and_a_bigger_one_goes_on(
    fake: FakeLLMServer, baseline: Path, tmp_path: Path
) -> None:
    fake.reset(recording.script())
    stopped = generate(fake, tmp_path, "--budget-usd", "0.02")
    assert stopped.returncode == 3, stopped.stderr
    assert "--budget-usd" in stopped.stderr and "Traceback" not in stopped.stderr
    data = report(tmp_path)
    assert data["status"] == "budget"
    paid = fake.stats()["answered"]
    assert 0 < paid < FULL_RUN_CALLS
    assert data["llm"]["spent_usd"] >= 0.02

    fake.reset(recording.script())
    resumed = generate(fake, tmp_path, "--budget-usd", "5")
    assert resumed.returncode == 0, resumed.stderr
    assert fake.stats()["answered"] == FULL_RUN_CALLS - paid
    assert tree(tmp_path / "out") == tree(baseline / "out")


def test_an_environment_the_checker_keeps_failing_is_rejected_with_its_report(
    fake: FakeLLMServer, tmp_path: Path
) -> None:
    env = "Environment: fitness_classes"
    verdicts = copy.deepcopy(recording.VERDICTS)
    verdicts["verdicts"][3] = {"index": 3, "verdict": "fail", "reason": "a second booking should have been refused"}
    fake.reset(recording.script(before=[{"tool": "submit_verdicts", "match": [env], "answer": verdicts, "uses": 9}]))
    done = generate(fake, tmp_path)
    assert done.returncode == 4, done.stderr
    assert "a second booking should have been refused" in last_line(done.stderr)
    data = report(tmp_path)["environments"][ENV]
    assert data["accepted"] is False
    assert data["reasons"] == ["tester call 3 (book_class): a second booking should have been refused"]
    assert [r["verdicts"]["fail"] for r in data["skeleton"]["rounds"]] == [1, 1, 1]  # three rounds, then given up
    assert fake.stats()["by_tool"]["submit_code"] == 3  # each round sent the finding back to the code stage
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize(
    ("corpus", "expected"),
    [
        ("empty.jsonl", "empty.jsonl: no tasks"),
        ("missing.jsonl", "missing.jsonl: no such corpus file (bundled corpora: api-bank-lv3, api-bank-lv3-sample)"),
        ("bad.jsonl", "bad.jsonl:2: not valid JSON"),
        ("empty-task.jsonl", 'empty-task.jsonl:1: each line needs a non-empty "task" string'),
        ("not-a-name", "not-a-name: no such corpus file (bundled corpora: "),
    ],
)
def test_a_bad_corpus_is_a_clear_error(fake: FakeLLMServer, tmp_path: Path, corpus: str, expected: str) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    (tmp_path / "bad.jsonl").write_text('{"task": "Book a table."}\n{"task": \n')
    (tmp_path / "empty-task.jsonl").write_text('{"id": "x", "task": "  "}\n')
    fake.reset(recording.script())
    path = corpus if corpus == "not-a-name" else str(tmp_path / corpus)
    cmd = [sys.executable, "-m", "envfarm.cli", "generate", "topics", "--work", str(tmp_path / "work")]
    cmd += ["--corpus", path]
    env = {**os.environ, "ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": fake.url}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert expected in last_line(done.stderr) and "Traceback" not in done.stderr
    assert fake.stats()["requests"] == 0
    written = report(tmp_path)
    assert written["status"] == "failed" and written["failure"]["kind"] == "input"
    assert expected in written["failure"]["message"]
    assert "## Failure" in (tmp_path / "work" / "report.md").read_text()
