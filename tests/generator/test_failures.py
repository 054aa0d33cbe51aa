"""Every way a generator run can fail ends cleanly: one line on stderr, a documented exit code, the report.

Each case is the real `envfarm generate` in its own process against the fake LLM server
(tests/fakes/llm_server.py), the way a careless user or a bad day would have it: a model that
never answers what was asked (at each stage), a provider that refuses or breaks (401, 404,
500 forever, timeouts, nothing listening), a spent budget, missing or unwritable folders, and
Ctrl-C or SIGTERM in the middle of a call.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import REPO, free_port
from fakes.llm_server import FakeLLMServer

from envfarm.generator.failures import EXIT_CODES
from tests.generator import recording
from tests.generator.runs import CORPUS, generate, last_line, report

ENV = "Environment: fitness_classes"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLMServer]:
    with FakeLLMServer(recording.script()) as server:
        yield server


def assert_failed(done: subprocess.CompletedProcess[str], tmp: Path, kind: str, *said: str) -> dict:
    """The run failed as ``kind``: its exit code, one clear last line, no traceback, the report written."""
    assert done.returncode == EXIT_CODES[kind], done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    line = last_line(done.stderr)
    assert line.startswith("error: ") and line.endswith(f"(report: {tmp / 'work' / 'report.md'})"), line
    for text in said:
        assert text in line, (text, line)
    data = report(tmp)
    assert data["failure"]["kind"] == kind and data["failure"]["exit_code"] == EXIT_CODES[kind]
    assert data["status"] == {"budget": "budget", "rejected": "rejected"}.get(kind, "failed")
    md = (tmp / "work" / "report.md").read_text()
    assert "## Failure" in md and f"exit code {EXIT_CODES[kind]}" in md
    return data


# --- the model never answers what was asked -------------------------------------------------------


def test_a_model_that_never_judges_the_topics_ends_with_what_it_said(fake: FakeLLMServer, tmp_path: Path) -> None:
    chatty = {"tool": "submit_judgements", "content": "These all look like great tasks to me!", "uses": 3}
    fake.reset(recording.script(before=[chatty]))
    done = generate(fake, tmp_path)
    data = assert_failed(done, tmp_path, "rejected", "topics: the model's answers were rejected 3 time(s)")
    failure = data["failure"]
    assert failure["stage"] == "topics"
    assert failure["asked"]["tool"] == "submit_judgements" and "cardiologist" in failure["asked"]["prompt"]
    assert [a["answer"] for a in failure["attempts"]] == ["These all look like great tasks to me!"] * 3
    assert all(a["problem"] for a in failure["attempts"])
    assert data["llm"]["totals"]["calls"] == 3 and data["llm"]["totals"]["input_tokens"] > 0
    assert data["llm"]["totals"]["cost_usd"] > 0
    assert "These all look like great tasks to me!" in (tmp_path / "work" / "report.md").read_text()


def test_a_model_that_never_designs_the_environment_makes_nothing(fake: FakeLLMServer, tmp_path: Path) -> None:
    musing = {"tool": "submit_design", "match": [ENV], "content": "Let me think about the design first.", "uses": 3}
    fake.reset(recording.script(before=[musing]))
    done = generate(fake, tmp_path)
    data = assert_failed(done, tmp_path, "rejected", "skeletons: no environment was accepted (fitness_classes: ")
    entry = data["environments"]["fitness_classes"]
    assert entry["accepted"] is False and len(entry["reasons"]) == 3
    rejected = entry["skeleton"]["rejected"]
    assert rejected["asked"]["tool"] == "submit_design"
    assert {a["answer"] for a in rejected["attempts"]} == {"Let me think about the design first."}
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_model_that_never_writes_a_valid_scenario_publishes_nothing(fake: FakeLLMServer, tmp_path: Path) -> None:
    broken = {"tool": "submit_scenario", "match": [ENV], "raw": '{"id": "half a scenario', "uses": 6}
    fake.reset(recording.script(before=[broken]))
    done = generate(fake, tmp_path)
    data = assert_failed(done, tmp_path, "rejected", "scenarios: no environment got a scenario that passed the gate")
    scenarios = data["environments"]["fitness_classes"]["scenarios"]
    assert scenarios["accepted"] == [] and len(scenarios["rejected"]) == 2
    assert all(a["answer"] == '{"id": "half a scenario' for r in scenarios["rejected"] for a in r["attempts"])
    assert not (tmp_path / "out" / "fitness_classes").exists()


def test_a_tool_that_never_returns_is_sent_back_to_the_model_and_repaired(fake: FakeLLMServer, tmp_path: Path) -> None:
    """Code that passes the static gate can still loop: the contained worker stops it, the probe reports it,
    the model gets the finding, and its next version is accepted."""
    looping = recording.TOOLS_PY.replace("    return _member(ctx, name)\n", "    while True:\n        pass\n")
    first = {"tool": "submit_code", "match": [ENV], "answer": {**recording.CODE, "tools_py": looping}}
    fake.reset(recording.script(before=[first]))
    done = generate(fake, tmp_path, "--call-seconds", "0.3")
    assert done.returncode == 0, done.stderr
    sent = [str(r["body"]["messages"]) for r in fake.requests()]
    assert any("crashed: find_member: internal error (ToolTimeout: ran longer than 0.3 s" in s for s in sent)
    entry = report(tmp_path)["environments"]["fitness_classes"]
    assert entry["accepted"] is True and len(entry["skeleton"]["rounds"]) == 2
    assert "while True" not in (tmp_path / "out" / "fitness_classes" / "tools.py").read_text()


def test_a_bug_in_envfarm_is_reported_with_its_traceback_not_shown() -> None:
    from envfarm.generator.failures import classify

    try:
        {}["missing"]
    except KeyError as e:
        failure = classify(e, "skeletons")
    assert failure.kind == "internal" and failure.exit_code == 1
    assert failure.line() == "skeletons: internal error (a bug in envfarm): KeyError: 'missing'"
    assert "Traceback" in failure.details["traceback"] and "test_failures.py" in failure.details["traceback"]


# --- the provider fails ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "said"),
    [
        ({"status": 401, "message": "invalid x-api-key"}, "Anthropic rejected the API key (401 authentication_error)"),
        ({"status": 404, "message": "model: claude-nope"}, "Anthropic answered 404 (not_found_error): model: claude-"),
        ({"status": 500, "count": 50, "retry_after": 0}, "anthropic still failing after 3 attempts: 500"),
    ],
    ids=["401-bad-key", "404-no-model", "500-forever"],
)
def test_a_provider_that_refuses_or_breaks_is_a_provider_failure(
    fake: FakeLLMServer, tmp_path: Path, fault: dict, said: str
) -> None:
    fake.reset(recording.script(faults=[fault]))
    done = generate(fake, tmp_path, "--retries", "2")
    data = assert_failed(done, tmp_path, "provider", "topics: the LLM call failed: ", said)
    assert data["failure"]["asked"]["tool"] == "submit_judgements"
    assert data["llm"]["stages"]["topics"]["errors"] == 1


def test_an_openai_compatible_server_that_keeps_failing_too(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.reset(recording.script(faults=[{"status": 503, "count": 50, "retry_after": 0}]))
    done = generate(fake, tmp_path, "--retries", "1", provider="openai")
    data = assert_failed(done, tmp_path, "provider", "openai still failing after 2 attempts: 503")
    assert data["llm"]["stages"]["topics"]["retries"] == 1


def test_a_provider_that_never_answers_times_out(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.reset(recording.script())
    fake.hold()  # every request waits for a release that does not come in time
    try:
        done = generate(fake, tmp_path, "--timeout", "1", "--retries", "1")
    finally:
        fake.release()
    assert_failed(done, tmp_path, "provider", "still failing after 2 attempts", "Timeout")


def test_nothing_listening_is_a_provider_failure(fake: FakeLLMServer, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANTHROPIC_")}
    env.update({"ANTHROPIC_API_KEY": "test-key", "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    cmd = [sys.executable, "-m", "envfarm.cli", "generate", "all", "--corpus", str(CORPUS), "--retries", "0"]
    cmd += ["--out", str(tmp_path / "out"), "--work", str(tmp_path / "work")]
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert_failed(done, tmp_path, "provider", "still failing after 1 attempts: connection: APIConnectionError")


def test_a_recording_without_the_answer_is_a_provider_failure(tmp_path: Path) -> None:
    (tmp_path / "empty-recording").mkdir()
    cmd = [sys.executable, "-m", "envfarm.cli", "generate", "topics", "--provider", "replay"]
    cmd += ["--recording", str(tmp_path / "empty-recording"), "--corpus", str(CORPUS)]
    cmd += ["--work", str(tmp_path / "work")]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert_failed(done, tmp_path, "provider", "does not contain this request")


# --- the budget, the input, the folders ------------------------------------------------------------


def test_a_budget_of_nothing_stops_before_the_first_call(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.reset(recording.script())
    done = generate(fake, tmp_path, "--budget-usd", "0")
    assert_failed(done, tmp_path, "budget", "LLM budget spent: $0.0000 of $0.0000", "--budget-usd")
    assert fake.stats()["requests"] == 0


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (("--provider", "nobody"), "unknown LLM provider 'nobody'; known: anthropic, openai, replay"),
        (("--provider", "replay"), "the replay provider needs a recording"),
        (("--provider", "replay", "--recording", "no-such-run"), "no-such-run: no such recording"),
    ],
)
def test_bad_usage_is_an_input_failure_with_a_report(
    fake: FakeLLMServer, tmp_path: Path, extra: tuple[str, ...], said: str
) -> None:
    fake.reset(recording.script())
    done = generate(fake, tmp_path, *extra)
    assert_failed(done, tmp_path, "input", said)
    assert fake.stats()["requests"] == 0


def test_an_out_folder_that_cannot_be_written_fails_before_paying(fake: FakeLLMServer, tmp_path: Path) -> None:
    (tmp_path / "out").write_text("a file where the folder should be")  # even root cannot write into a file
    fake.reset(recording.script())
    done = generate(fake, tmp_path)
    assert_failed(done, tmp_path, "input", f"--out {tmp_path / 'out'}: cannot write there")
    assert fake.stats()["requests"] == 0


def test_a_work_folder_that_cannot_be_written_says_so(fake: FakeLLMServer, tmp_path: Path) -> None:
    (tmp_path / "work").write_text("a file where the folder should be")
    fake.reset(recording.script())
    done = generate(fake, tmp_path)
    assert done.returncode == EXIT_CODES["input"] and "Traceback" not in done.stderr
    assert last_line(done.stderr).startswith(f"error: --work {tmp_path / 'work'}: cannot write there")
    assert "no report could be written" in last_line(done.stderr)
    assert fake.stats()["requests"] == 0


def test_an_earlier_stage_that_never_ran_is_an_input_failure(fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.reset(recording.script())
    done = generate(fake, tmp_path, stage="skeletons")
    assert_failed(done, tmp_path, "input", "no topics yet; run `envfarm generate topics` first")


# --- killed in the middle ----------------------------------------------------------------------------


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)], ids=["SIGINT", "SIGTERM"])
def test_a_run_stopped_mid_call_writes_its_report(fake: FakeLLMServer, tmp_path: Path, sig: int, code: int) -> None:
    fake.reset(recording.script())
    fake.hold(after=1)  # the topics are answered; the design request then waits
    run = generate(fake, tmp_path, wait=False)
    assert isinstance(run, subprocess.Popen)
    deadline = time.monotonic() + 120
    while not (fake.stats()["held"] and fake.stats()["in_flight"]) and run.poll() is None:
        assert time.monotonic() < deadline, "the design request never arrived"
        time.sleep(0.05)
    run.send_signal(sig)
    _, stderr = run.communicate(timeout=120)
    fake.release()
    assert run.returncode == code, stderr
    assert "Traceback" not in stderr
    line = last_line(stderr)
    assert line.startswith("error: skeletons: interrupted; run the same command again to resume"), line
    data = report(tmp_path)
    assert data["status"] == "interrupted" and data["failure"]["stage"] == "skeletons"
    assert data["llm"]["totals"]["calls"] == 1  # the topics' answer, paid for and in the cache
    assert "## Failure" in (tmp_path / "work" / "report.md").read_text()
