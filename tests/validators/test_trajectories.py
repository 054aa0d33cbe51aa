"""Trajectory formats: the same calls read from every accepted shape; bad input names the position."""

from __future__ import annotations

import json

import pytest

from envfarm.core.scenarios import Call
from envfarm.validators.trajectories import TrajectoryError, parse_trajectory

CALLS = [
    Call(tool="list_notes", arguments={"folder": "work"}),
    Call(tool="add_note", arguments={"folder": "work", "title": "standup"}),
    Call(tool="add_note", arguments={"folder": "work", "title": "retro"}),
]


def plain(calls: list[Call]) -> list[dict]:
    return [{"tool": c.tool, "arguments": c.arguments} for c in calls]


def openai(calls: list[Call]) -> list[dict]:
    messages: list[dict] = [{"role": "system", "content": "You are..."}, {"role": "user", "content": "File..."}]
    for i, c in enumerate(calls):
        call_id = f"call_{i}"
        function = {"name": c.tool, "arguments": json.dumps(c.arguments)}
        messages.append(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": call_id, "type": "function", "function": function}],
            }
        )
        messages.append({"role": "tool", "tool_call_id": call_id, "content": "ok"})
    messages.append({"role": "assistant", "content": "Done."})
    return messages


def anthropic(calls: list[Call]) -> list[dict]:
    messages: list[dict] = [{"role": "user", "content": "File..."}]
    # two calls in one assistant turn, then one more: both shapes occur in real transcripts
    first = [{"type": "text", "text": "Let me look."}] + [
        {"type": "tool_use", "id": f"toolu_{i}", "name": c.tool, "input": c.arguments} for i, c in enumerate(calls[:2])
    ]
    messages.append({"role": "assistant", "content": first})
    messages.append({"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0", "content": "[]"}]})
    for i, c in enumerate(calls[2:], 2):
        block = {"type": "tool_use", "id": f"toolu_{i}", "name": c.tool, "input": c.arguments}
        messages.append({"role": "assistant", "content": [block]})
    return messages


def envscaler(calls: list[Call]) -> dict:
    steps: list[dict] = [{"step": 0, "state_snapshot": {}}]
    for i, c in enumerate(calls):
        steps.append(
            {
                "step": i + 1,
                "action": {"name": c.tool, "arguments": c.arguments},
                "observation": {"type": "tool", "content": "..."},
                "terminated": False,
                "reward": 0.0,
            }
        )
    steps.insert(2, {"step": 9, "action": {"name": "chat_with_user", "arguments": {"content": "hi"}}})
    return {"task_id": "t1", "env_id": "notes", "trajectory": steps}


@pytest.mark.parametrize("shape", [plain, openai, anthropic, envscaler])
def test_every_shape_gives_the_same_calls(shape) -> None:  # type: ignore[no-untyped-def]
    assert parse_trajectory(shape(CALLS)) == CALLS


def test_empty_trajectory_is_no_calls() -> None:
    assert parse_trajectory([]) == []


@pytest.mark.parametrize(
    ("data", "where", "says"),
    [
        ("calls", "trajectory", "expected a list"),
        ({"steps": []}, "trajectory", "EnvScaler record with 'trajectory'"),
        ([{"tool": "a"}, 3], "trajectory[1]", "must be an object"),
        ([{"tool": ""}], "trajectory[0].tool", "non-empty string"),
        ([{"tool": "a", "arguments": [1]}], "trajectory[0].arguments", "arguments must be an object, got list"),
        ([{"tool": "a", "args": {}}], "trajectory[0]", "unknown field(s) ['args']"),
        (
            [{"role": "assistant", "tool_calls": [{"function": {"name": "a", "arguments": "{bad"}}]}],
            "trajectory[0].tool_calls[0].function.arguments",
            "not valid JSON",
        ),
        (
            [{"role": "user", "content": "x"}, {"role": "assistant", "tool_calls": [{"type": "function"}]}],
            "trajectory[1].tool_calls[0]",
            "needs a 'function' object",
        ),
        (
            [{"role": "assistant", "content": [{"type": "tool_use", "name": "a", "input": "x"}]}],
            "trajectory[0].content[0].input",
            "arguments must be an object",
        ),
        ({"trajectory": [{"step": 0}, {"action": "oops"}]}, "trajectory.trajectory[1].action", "must be an object"),
    ],
)
def test_bad_trajectories_name_the_position(data: object, where: str, says: str) -> None:
    with pytest.raises(TrajectoryError) as info:
        parse_trajectory(data)
    assert info.value.where == where
    assert says in info.value.message
