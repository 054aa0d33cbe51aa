"""``envfarm export`` on the hand-written run (tests/agents/fixtures/run_a; see test_report.py for its table).

What the default filter does to run_a's 12 episodes, by hand:

| episode                          | success | reward | tool errors          | verdict                          |
|----------------------------------|---------|--------|----------------------|----------------------------------|
| library/return-and-pay trial 0   | yes     | 1      | -                    | kept                             |
| library/return-and-pay trial 1   | yes     | 1      | -                    | kept                             |
| library/return-and-pay trial 2   | no      | 0.5    | schema, refused      | kept                             |
| library/renew-loan trial 0       | yes     | 1      | 4 (one of each kind) | dropped: more than 3 tool errors |
| library/renew-loan trial 1       | yes     | 1      | -                    | kept                             |
| library/renew-loan trial 2       | yes     | 1      | -                    | dropped: same as trial 1 but ids |
| bank/transfer trial 0            | error   | -      | bad_json             | dropped: ended in an error       |
| bank/transfer trial 1            | no      | 0.25   | refused x2           | kept                             |
| bank/transfer trial 2            | no      | 0.5    | - (max_turns)        | kept, trailing result trimmed    |
| bank/open-account trial 0        | yes     | 1      | unknown_tool         | kept (greeting dropped)          |
| bank/open-account trial 1        | no      | 0.75   | bad_json             | dropped: unparseable arguments   |
| bank/open-account trial 2        | yes     | 1      | -                    | kept                             |
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from conftest import REPO
from jsonschema import Draft202012Validator
from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolUnionParam
from pydantic import TypeAdapter

from envfarm.agents import export_formats
from envfarm.agents.export import (
    BAD_ARGUMENTS,
    DUPLICATE,
    ERRORED,
    MALFORMED,
    NOT_SUCCESSFUL,
    ExportError,
    Filters,
    convert,
    export,
)
from envfarm.agents.export_formats import FORMATS, SCHEMAS, structure_problems
from envfarm.agents.run_files import load_run

RUN_A = Path(__file__).parent / "fixtures" / "run_a"
LAST_TEXTS_KEPT = [
    "Done: the fine is paid and loan L-7 is returned.",
    "All set: fine paid, L-7 returned.",
    "I paid 1.00 of the fine and returned L-7.",
    "Loan L-9 is renewed until 2026-03-01.",
    "Transferred 50.",
    None,  # bank/transfer trial 2 stopped at max_turns: it ends on the assistant's tool call
    "Opened savings account S-9 for C-3.",
    "Opened savings account S-9.",
]


def envfarm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envfarm.cli", *args], capture_output=True, text=True, cwd=REPO, timeout=120
    )


def run_export(tmp_path: Path, fmt: str, filters: Filters | None = None) -> tuple[list[dict[str, Any]], Any]:
    out = tmp_path / f"{fmt}.jsonl"
    summary = export([load_run(RUN_A)], fmt, out, filters or Filters())
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == summary.kept
    return lines, summary


def last_text(line: dict[str, Any]) -> str | None:
    last = line["messages"][-1]
    assert last["role"] == "assistant"
    return last.get("content")


# -- filters ----------------------------------------------------------------------------------------------


def test_default_filter_keeps_and_drops_what_it_says(tmp_path: Path) -> None:
    lines, summary = run_export(tmp_path, "openai")
    assert [last_text(line) for line in lines] == LAST_TEXTS_KEPT
    assert (summary.read, summary.kept) == (12, 8)
    assert summary.dropped == Counter({"more than 3 tool errors": 1, DUPLICATE: 1, ERRORED: 1, BAD_ARGUMENTS: 1})
    assert summary.notes == []


def test_success_only(tmp_path: Path) -> None:
    lines, summary = run_export(tmp_path, "openai", Filters(success_only=True))
    assert [last_text(line) for line in lines] == [LAST_TEXTS_KEPT[i] for i in (0, 1, 3, 6, 7)]
    assert summary.dropped == Counter({NOT_SUCCESSFUL: 4, ERRORED: 1, "more than 3 tool errors": 1, DUPLICATE: 1})


def test_min_reward(tmp_path: Path) -> None:
    lines, summary = run_export(tmp_path, "openai", Filters(min_reward=0.6))
    assert [last_text(line) for line in lines] == [LAST_TEXTS_KEPT[i] for i in (0, 1, 3, 6, 7)]
    assert summary.dropped["reward below 0.6"] == 3  # 0.5, 0.25, 0.5 (the errored episode goes first)
    assert summary.dropped[BAD_ARGUMENTS] == 1  # reward 0.75 passes, its bad call does not


def test_max_tool_errors(tmp_path: Path) -> None:
    lines, summary = run_export(tmp_path, "openai", Filters(max_tool_errors=1))
    assert [last_text(line) for line in lines] == [LAST_TEXTS_KEPT[i] for i in (0, 1, 3, 5, 6, 7)]
    assert summary.dropped["more than 1 tool error"] == 3
    lines, summary = run_export(tmp_path, "openai", Filters(max_tool_errors=None))
    assert summary.kept == 9 and "Loan L-9 is renewed." in [last_text(line) for line in lines]


def test_duplicates_are_the_same_messages_whatever_the_call_ids(tmp_path: Path) -> None:
    run = load_run(RUN_A)
    first, second = (e for e in run.episodes if e.scenario == "renew-loan" and e.trial in (1, 2))
    assert first.messages != second.messages  # call_e1 / call_f1 ...
    lines, _ = run_export(tmp_path, "sharegpt")
    renewals = [line for line in lines if line["conversations"][0]["value"] == "Renew Bo Lin's loan L-9."]
    assert len(renewals) == 1


def test_cli_summary_on_stderr_and_options(tmp_path: Path) -> None:
    out = tmp_path / "sft.jsonl"
    run = envfarm("export", str(RUN_A), "--format", "sharegpt", "--out", str(out), "--success-only")
    assert run.returncode == 0, run.stderr
    assert "kept 5 of 12 episodes (sharegpt)" in run.stderr
    assert "dropped 7: not successful: 4" in run.stderr and "exact duplicate: 1" in run.stderr
    assert "results.jsonl line 13: not valid JSON" in run.stderr
    assert len(out.read_text().splitlines()) == 5
    everything = envfarm("export", str(RUN_A), "--format", "openai", "--out", str(out), "--max-tool-errors", "-1")
    assert everything.returncode == 0 and "kept 9 of 12" in everything.stderr


# -- formats ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_line_validates_against_its_schema(tmp_path: Path, fmt: str) -> None:
    lines, _ = run_export(tmp_path, fmt, Filters(max_tool_errors=None))
    validator = Draft202012Validator(SCHEMAS[fmt])
    for line in lines:
        assert not list(validator.iter_errors(line))
        assert structure_problems(fmt, line) == []


def _exported(tmp_path: Path, fmt: str, scenario: str, trial: int) -> dict[str, Any]:
    run = load_run(RUN_A)
    (episode,) = [e for e in run.episodes if e.scenario == scenario and e.trial == trial]
    _, line = convert(episode, fmt)
    assert structure_problems(fmt, line) == []
    return line


BANK_TOOLS = json.loads((RUN_A / "results.jsonl").read_text().splitlines()[9])["tools"]


def test_openai_shape_exactly(tmp_path: Path) -> None:
    # bank/open-account trial 0: a greeting before the user (dropped), an unknown tool, two calls at once.
    line = _exported(tmp_path, "openai", "open-account", 0)
    assert line == {
        "messages": [
            {"role": "system", "content": "You are the bank's assistant."},
            {"role": "user", "content": "Open a savings account for customer C-3."},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_j1",
                        "type": "function",
                        "function": {"name": "open_savings_account", "arguments": '{"customer_id": "C-3"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_j1", "content": "error: unknown tool open_savings_account"},
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "call_j2",
                        "type": "function",
                        "function": {"name": "get_account", "arguments": '{"account_id": "C-3-chk"}'},
                    },
                    {
                        "id": "call_j3",
                        "type": "function",
                        "function": {"name": "open_account", "arguments": '{"customer_id": "C-3", "kind": "savings"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_j2", "content": '{"balance": 120}'},
            {"role": "tool", "tool_call_id": "call_j3", "content": '{"account_id": "S-9"}'},
            {"role": "assistant", "content": "Opened savings account S-9 for C-3."},
        ],
        "tools": [
            {
                "type": "function",
                "function": {"name": t["name"], "description": t["description"], "parameters": t["input_schema"]},
            }
            for t in BANK_TOOLS
        ],
    }


def test_anthropic_shape_exactly(tmp_path: Path) -> None:
    line = _exported(tmp_path, "anthropic", "open-account", 0)
    assert line == {
        "system": "You are the bank's assistant.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Open a savings account for customer C-3."}]},
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_j1",
                        "name": "open_savings_account",
                        "input": {"customer_id": "C-3"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_j1",
                        "content": "error: unknown tool open_savings_account",
                        "is_error": True,
                    }
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "call_j2", "name": "get_account", "input": {"account_id": "C-3-chk"}},
                    {
                        "type": "tool_use",
                        "id": "call_j3",
                        "name": "open_account",
                        "input": {"customer_id": "C-3", "kind": "savings"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_j2", "content": '{"balance": 120}'},
                    {"type": "tool_result", "tool_use_id": "call_j3", "content": '{"account_id": "S-9"}'},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Opened savings account S-9 for C-3."}]},
        ],
        "tools": BANK_TOOLS,
    }


def test_sharegpt_shape_exactly(tmp_path: Path) -> None:
    line = _exported(tmp_path, "sharegpt", "open-account", 0)
    assert line == {
        "conversations": [
            {"from": "human", "value": "Open a savings account for customer C-3."},
            {"from": "function_call", "value": '{"name": "open_savings_account", "arguments": {"customer_id": "C-3"}}'},
            {"from": "observation", "value": "error: unknown tool open_savings_account"},
            {
                "from": "function_call",
                "value": '[{"name": "get_account", "arguments": {"account_id": "C-3-chk"}}, '
                '{"name": "open_account", "arguments": {"customer_id": "C-3", "kind": "savings"}}]',
            },
            {"from": "observation", "value": '{"balance": 120}\n\n{"account_id": "S-9"}'},
            {"from": "gpt", "value": "Opened savings account S-9 for C-3."},
        ],
        "system": "You are the bank's assistant.",
        "tools": json.dumps(
            [{"name": t["name"], "description": t["description"], "parameters": t["input_schema"]} for t in BANK_TOOLS]
        ),
    }
    # Text written beside a tool call has no place in this shape (bank/open-account trial 2); the other two keep it.
    beside = _exported(tmp_path, "sharegpt", "open-account", 2)
    assert beside["conversations"][1] == {
        "from": "function_call",
        "value": '{"name": "get_account", "arguments": {"account_id": "C-3-chk"}}',
    }
    assert (
        _exported(tmp_path, "openai", "open-account", 2)["messages"][2]["content"]
        == "Let me look up the customer first."
    )
    assert _exported(tmp_path, "anthropic", "open-account", 2)["messages"][1]["content"][0] == {
        "type": "text",
        "text": "Let me look up the customer first.",
    }


def test_truncated_episode_ends_on_its_last_call(tmp_path: Path) -> None:
    line = _exported(tmp_path, "sharegpt", "transfer", 2)
    assert [t["from"] for t in line["conversations"]] == ["human"] + ["function_call", "observation"] * 6 + [
        "function_call"
    ]


# -- the real consumers -------------------------------------------------------------------------------------


def _capture(response: dict[str, Any]) -> tuple[httpx2.Client, list[dict[str, Any]]]:
    """An HTTP client (the SDKs' own: httpx2) that records each request body and answers ``response``:
    nothing leaves the machine."""
    bodies: list[dict[str, Any]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content))
        return httpx2.Response(200, json=response)

    return httpx2.Client(transport=httpx2.MockTransport(handle)), bodies


def materialize(value: Any) -> Any:
    """A value the SDK's request types validated, read out whole. Their ``Iterable[...]`` fields validate each
    item as it is read (and raise there); TypedDicts keep only the keys they know, so a value that comes out
    equal to what went in was accepted as it is, nothing dropped."""
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return [materialize(v) for v in value]


@pytest.mark.filterwarnings("error")  # a value the SDK's types do not expect fails, instead of warning
def test_openai_lines_are_what_the_openai_sdk_sends(tmp_path: Path) -> None:
    lines, _ = run_export(tmp_path, "openai", Filters(max_tool_errors=None))
    messages_type = TypeAdapter(list[ChatCompletionMessageParam])
    tools_type = TypeAdapter(list[ChatCompletionToolUnionParam])
    http, bodies = _capture(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": "ft-check",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "ok"}}],
        }
    )
    client = openai.OpenAI(api_key="not-used", base_url="http://openai.invalid/v1", http_client=http, max_retries=0)
    for line in lines:
        # The SDK's own request types accept every message and tool, and drop nothing.
        assert materialize(messages_type.validate_python(line["messages"])) == line["messages"]
        assert materialize(tools_type.validate_python(line["tools"])) == line["tools"]
        client.chat.completions.create(model="ft-check", messages=line["messages"], tools=line["tools"])
        assert bodies[-1]["messages"] == line["messages"] and bodies[-1]["tools"] == line["tools"]
    assert len(bodies) == len(lines) == 9


@pytest.mark.filterwarnings("error")
def test_anthropic_lines_are_what_the_anthropic_sdk_sends(tmp_path: Path) -> None:
    from anthropic.types.message_create_params import MessageCreateParamsNonStreaming

    lines, _ = run_export(tmp_path, "anthropic", Filters(max_tool_errors=None))
    request_type = TypeAdapter(MessageCreateParamsNonStreaming)
    http, bodies = _capture(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "ft-check",
            "content": [{"type": "text", "text": "ok"}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    )
    client = anthropic.Anthropic(
        api_key="not-used", base_url="http://anthropic.invalid", http_client=http, max_retries=0
    )
    for line in lines:
        request = {"model": "ft-check", "max_tokens": 16, **line}
        assert materialize(request_type.validate_python(request)) == request
        client.messages.create(
            model="ft-check", max_tokens=16, system=line["system"], messages=line["messages"], tools=line["tools"]
        )
        assert {k: bodies[-1][k] for k in ("system", "messages", "tools")} == line
    assert len(bodies) == len(lines) == 9


def test_sharegpt_lines_follow_llama_factorys_reader(tmp_path: Path) -> None:
    """LLaMA-Factory itself needs torch: these are the rules of its SharegptDatasetConverter and FunctionFormatter."""
    lines, _ = run_export(tmp_path, "sharegpt", Filters(max_tool_errors=None))
    for line in lines:
        turns = line["conversations"]
        accept = (("human", "observation"), ("gpt", "function_call"))
        assert all(t["from"] in accept[i % 2] for i, t in enumerate(turns)) and len(turns) % 2 == 0
        for t in turns:
            if t["from"] == "function_call":
                calls = json.loads(t["value"])
                for call in calls if isinstance(calls, list) else [calls]:
                    json.dumps(call["arguments"])  # FunctionCall(name, json.dumps(arguments))
                    assert isinstance(call["name"], str)
        tools = json.loads(line["tools"])
        assert all({"name", "description", "parameters"} <= set(t) for t in tools)


# -- checks and errors --------------------------------------------------------------------------------------


def test_a_line_that_does_not_validate_stops_the_export_naming_the_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.jsonl"
    out.write_text("before\n")
    broken = export_formats.to_openai

    def bad(d: export_formats.Dialogue) -> dict[str, Any]:
        line = broken(d)
        line["messages"][1]["role"] = "customer"
        return line

    monkeypatch.setitem(export_formats.RENDER, "openai", bad)
    with pytest.raises(ExportError) as caught:
        export([load_run(RUN_A)], "openai", out, Filters())
    message = str(caught.value)
    assert f"{RUN_A / 'results.jsonl'}:1 (library/return-and-pay trial 0, ep_a0)" in message
    assert "does not validate" in message and "messages/1" in message
    assert out.read_text() == "before\n"  # left as it was
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left behind


def test_structure_checks_catch_what_a_schema_cannot() -> None:
    line = {
        "messages": [
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "tool_calls": [{"id": "a", "type": "function", "function": {"name": "f", "arguments": "[1]"}}],
            },
            {"role": "tool", "tool_call_id": "b", "content": "x"},
        ]
    }
    problems = structure_problems("openai", line)
    assert any("is not a JSON object" in p for p in problems)
    assert any("'b' answers no call" in p for p in problems)
    assert any("last message is not the assistant's" in p for p in problems)
    odd = {
        "conversations": [{"from": "gpt", "value": "x"}, {"from": "human", "value": "y"}, {"from": "gpt", "value": "z"}]
    }
    assert len(structure_problems("sharegpt", odd)) == 4  # every turn in the wrong place, and an odd count


def test_messages_that_form_no_example_are_dropped_with_a_warning(tmp_path: Path) -> None:
    good = json.loads((RUN_A / "results.jsonl").read_text().splitlines()[0])
    orphan = dict(good, trial=1, episode_id="ep_orphan")
    orphan["messages"] = [
        *good["messages"][:2],
        {"role": "tool", "tool_call_id": "nobody", "content": "x", "is_error": False},
    ]
    odd_ids = dict(good, trial=2, episode_id="ep_ids")
    odd_ids["messages"] = json.loads(json.dumps(good["messages"]).replace("call_a1", "call a/1"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in (good, orphan, odd_ids)))
    out = tmp_path / "out.jsonl"
    summary = export([load_run(run_dir)], "anthropic", out, Filters())
    assert summary.dropped == Counter({MALFORMED: 1, DUPLICATE: 1})  # the renamed ids make no new example
    assert summary.notes == [
        f"{run_dir / 'results.jsonl'}:2 (library/return-and-pay trial 1, ep_orphan): "
        "message 2: a tool result for 'nobody', which no call awaits"
    ]
    converted = export_formats.dialogue(odd_ids["messages"], odd_ids["tools"])
    assert converted.turns[1].calls[0].id == "call_0" and converted.turns[2].results[0].call_id == "call_0"


def test_cli_errors_are_clear_and_without_a_traceback(tmp_path: Path) -> None:
    unknown = envfarm("export", str(RUN_A), "--format", "alpaca", "--out", str(tmp_path / "x.jsonl"))
    assert unknown.returncode == 2 and "'alpaca' is not one of" in unknown.stderr
    missing = envfarm("export", str(tmp_path / "nope"), "--format", "openai", "--out", str(tmp_path / "x.jsonl"))
    assert missing.returncode == 2 and "no such run directory" in missing.stderr
    into_dir = envfarm("export", str(RUN_A), "--format", "openai", "--out", str(tmp_path))
    assert into_dir.returncode == 2 and "is a directory" in into_dir.stderr
    for run in (unknown, missing, into_dir):
        assert "Traceback" not in run.stderr
    assert not (tmp_path / "x.jsonl").exists()


def test_the_docs_example_lines_validate() -> None:
    docs = (REPO / "docs" / "agents.md").read_text().split("## Exporting training data")[1]
    for fmt in FORMATS:
        block = docs.split(f"**`{fmt}`**")[1].split("```json\n")[1].split("\n```")[0]
        assert structure_problems(fmt, json.loads(block)) == [], fmt
