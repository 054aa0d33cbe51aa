"""The Python client against a real `envfarm serve`: episodes, tool shapes, Gym loop, isolation at scale."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest
from conftest import REPO, FarmProcess, start_farm, stop_farm

from envfarm.client import AsyncFarm, BlockingFarm, FarmError, GymEpisode

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_async_episode_tools_calls_state_score_and_delete(farm: FarmProcess) -> None:
    async with AsyncFarm(farm.url) as client:
        async with client.episode("notes", "file-two") as episode:
            assert episode.task.startswith("File two notes")
            anthropic = await episode.tools("anthropic")
            openai = await episode.tools("openai")
            assert anthropic[1]["name"] == "add_note" and "properties" in anthropic[1]["input_schema"]
            assert openai[1] == {
                "type": "function",
                "function": {
                    "name": "add_note",
                    "description": anthropic[1]["description"],
                    "parameters": anthropic[1]["input_schema"],
                },
            }
            ok = await episode.call("add_note", {"folder": "work", "title": "standup"})
            refused = await episode.call("add_note", {"folder": "work", "title": "standup"})
            assert not ok.is_error and ok.structured == {"id": 2, "title": "standup", "created": "2026-03-14"}
            assert refused.is_error and "already has a note" in refused.text
            await episode.call("add_note", {"folder": "work", "title": "retro"})
            assert (await episode.score())["reward"] == 1.0
            assert len((await episode.state())["state"]["notes"]) == 3
            episode_id = episode.id
        with pytest.raises(FarmError) as gone:
            await client.request("GET", f"/v1/episodes/{episode_id}")
        assert gone.value.status == 404 and "deleted" in str(gone.value)


def test_blocking_client(farm: FarmProcess) -> None:
    with BlockingFarm(farm.url) as client, client.episode("notes") as episode:
        assert [t["name"] for t in episode.tools()] == ["list_notes", "add_note"]
        assert not episode.call("add_note", {"folder": "home", "title": "x"}).is_error
        before = episode.state()["state_hash"]
        assert episode.reset()["state_hash"] != before
        assert client.score("notes", "file-two", [])["reward"] == 0.0


async def test_gym_episode_loop(farm: FarmProcess) -> None:
    async with AsyncFarm(farm.url) as client:
        gym = GymEpisode(client, "notes", "file-two")
        task, info = await gym.reset()
        assert "standup" in task and [t["function"]["name"] for t in info["tools"]] == ["list_notes", "add_note"]
        for title in ("standup", "retro"):
            observation, reward, terminated, truncated, step = await gym.step(
                {"name": "add_note", "arguments": f'{{"folder": "work", "title": "{title}"}}'}
            )
            assert (reward, terminated, truncated, step["is_error"]) == (0.0, False, False, False)
        assert await gym.score() == 1.0
        await gym.reset()
        assert await gym.score() == 0.0
        await gym.close()


async def test_200_concurrent_episodes_do_not_leak_into_each_other() -> None:
    served = start_farm("notes")
    try:
        async with AsyncFarm(served.url) as client:

            async def one(i: int) -> tuple[int, list[str]]:
                async with client.episode("notes", "file-two") as episode:
                    for n in range(3):
                        result = await episode.call("add_note", {"folder": "home", "title": f"e{i}-n{n}"})
                        assert not result.is_error, result.text
                    titles = [r["title"] for r in (await episode.state())["state"]["notes"]]
                    return i, titles

            results = await asyncio.gather(*(one(i) for i in range(200)))
        for i, titles in results:  # each final state is exactly what its own calls imply
            assert titles == ["groceries", f"e{i}-n0", f"e{i}-n1", f"e{i}-n2"]
        with served.client() as c:
            assert c.get("/healthz").json()["episodes"] == 0  # every episode deleted on exit
    finally:
        stop_farm(served)


def test_rollout_example_runs(farm: FarmProcess) -> None:
    run = subprocess.run(
        [
            sys.executable,
            str(REPO / "examples" / "rollout.py"),
            "--farm",
            farm.url,
            "--env",
            "library",
            "--episodes",
            "8",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "8 episodes in" in run.stdout and "mean reward 1.000" in run.stdout


async def test_gym_step_answers_malformed_model_output_with_an_error_observation(farm: FarmProcess) -> None:
    async with AsyncFarm(farm.url) as client:
        gym = GymEpisode(client, "notes", "file-two", max_steps=10)
        await gym.reset()
        steps = [
            {"name": "add_note", "arguments": '{"folder": "work", "title": '},  # not JSON
            {"name": "add_note", "arguments": "[1, 2]"},  # JSON, not an object
            "add_note(folder='work')",  # not a tool call at all
            {"arguments": {"folder": "work"}},  # no name
            {"name": "no_such_tool", "arguments": {}},  # the farm refuses it
        ]
        kinds = []
        for step in steps:
            observation, reward, terminated, truncated, info = await gym.step(step)
            assert info["is_error"] and observation and (reward, terminated, truncated) == (0.0, False, False)
            kinds.append(info["error_kind"])
        assert kinds == ["bad_json", "bad_json", "malformed", "malformed", None]
        openai_call = {
            "id": "call_1",
            "type": "function",
            "function": {"name": "add_note", "arguments": '{"folder": "work", "title": "standup"}'},
        }
        anthropic_block = {
            "type": "tool_use",
            "id": "toolu_1",
            "name": "add_note",
            "input": {"folder": "work", "title": "retro"},
        }
        for call in (openai_call, anthropic_block):
            observation, _, _, _, info = await gym.step(call)
            assert not info["is_error"], observation
        observation, reward, terminated, truncated, info = await gym.end()
        assert (observation, reward, terminated, truncated) == ("", 1.0, True, False)
        assert info["score"]["success"] is True
        assert (await gym.step(openai_call))[4]["error_kind"] == "ended"  # ended: nothing more reaches the farm
        await gym.close()


async def test_gym_episode_is_truncated_at_max_steps_and_scored(farm: FarmProcess) -> None:
    async with AsyncFarm(farm.url) as client:
        gym = GymEpisode(client, "notes", "file-two", max_steps=2)
        await gym.reset()
        first = await gym.step({"name": "add_note", "arguments": {"folder": "work", "title": "standup"}})
        assert first[1:4] == (0.0, False, False)
        _, reward, terminated, truncated, info = await gym.step({"name": "list_notes", "arguments": {"folder": "x"}})
        assert (reward, terminated, truncated) == (0.5, False, True) and info["score"]["reward"] == 0.5
        over = await gym.step({"name": "add_note", "arguments": {"folder": "work", "title": "retro"}})
        assert over[3] is True and over[4]["error_kind"] == "ended"
        assert (await gym.end())[1] == 0.5  # the score of the state at truncation: the late call never ran
        await gym.reset()  # a new start: steps and score cleared
        assert gym.steps == 0 and gym.result is None
        await gym.close()
