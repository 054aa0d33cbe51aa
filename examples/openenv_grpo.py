"""A GRPO rollout function over envfarm's OpenEnv endpoints, in the shape TRL's ``GRPOTrainer(rollout_func=...)`` takes.

Nothing here is envfarm's: the environment is reached with openenv-core's ``MCPToolClient`` at
``{farm}/openenv/{env}`` and the policy with the ``openai`` SDK at any OpenAI-compatible endpoint (the
trainer's vLLM server). Each prompt names a scenario; for each, ``num_generations`` episodes are played
at once: ``reset(scenario=...)`` opens an episode, the model calls the tools it is given (each call a
``CallToolAction`` step) until it answers without a tool call, and a ``done`` step scores the episode
with the farm's validator and returns its reward. With TRL::

    from trl import GRPOConfig, GRPOTrainer

    dataset = Dataset.from_list(scenario_rows("http://127.0.0.1:8000", "library", split="train"))
    trainer = GRPOTrainer(
        model=MODEL, args=GRPOConfig(use_vllm=True, vllm_mode="server", num_generations=8, ...),
        train_dataset=dataset, reward_funcs=[reward_from_env],
        rollout_func=make_rollout_func("http://127.0.0.1:8000", "library", "http://127.0.0.1:8001/v1", MODEL),
    )

The function returns ``prompt_ids``, ``completion_ids`` and ``logprobs`` (TRL's required keys) plus
``env_mask`` (1 for the model's tokens, 0 for the tool results between its turns) and ``env_reward``,
which TRL passes on to the reward functions. Token ids and logprobs come from the endpoint: vLLM gives
them when asked (``return_token_ids`` and ``logprobs``, which this sends); an endpoint that gives none
(the fake model server envfarm's tests use) leaves those lists empty, and only the rewards are meaningful.

On the command line, one batch against a running farm, printing each episode's reward::

    python examples/openenv_grpo.py --farm http://127.0.0.1:8000 --env library \\
        --policy http://127.0.0.1:8001/v1 --model my-policy --split train --prompts 4 --generations 2
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from openai import AsyncOpenAI
from openenv.core.env_server.mcp_types import CallToolAction
from openenv.core.mcp_client import MCPToolClient


@dataclass
class Played:
    """One episode: its reward, and the tokens of the model's turns with what came between them."""

    scenario: str
    episode_id: str
    reward: float
    success: bool
    turns: int
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)


def system_prompt(meta: dict[str, Any]) -> str:
    """What the model is told before the task: the environment's description and rules (from the reset observation)."""
    rules = "\n".join(f"- {text}" for text in meta["rules"].values())
    return f"{meta['description']}\n\nRules:\n{rules}\n\nUse the tools to do what the user asks; answer when done."


async def play(
    farm: str,
    env: str,
    scenario: str,
    policy: AsyncOpenAI,
    model: str,
    *,
    max_turns: int = 16,
    temperature: float = 1.0,
) -> Played:
    """Play one episode of ``scenario`` with the model, over OpenEnv, and return its reward and tokens."""
    async with MCPToolClient(base_url=f"{farm}/openenv/{env}") as client:
        meta = (await client.reset(scenario=scenario)).observation.metadata
        tools = [
            {
                "type": "function",
                "function": {"name": t.name, "description": t.description, "parameters": t.input_schema},
            }
            for t in await client.list_tools()
        ]
        messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt(meta)},
            {"role": "user", "content": meta["task"]},
        ]
        played = Played(scenario, meta["episode_id"], 0.0, False, 0)
        for _ in range(max_turns):
            answer = await policy.chat.completions.create(
                model=model,
                messages=messages,  # type: ignore[arg-type]
                tools=tools,  # type: ignore[arg-type]
                temperature=temperature,
                logprobs=True,
                extra_body={"return_token_ids": True},  # vLLM: the prompt's and the completion's token ids
            )
            played.turns += 1
            add_tokens(played, answer)
            message = answer.choices[0].message
            calls = message.tool_calls or []
            messages.append(
                {
                    "role": "assistant",
                    "content": message.content,
                    **({"tool_calls": [c.model_dump() for c in calls]} if calls else {}),
                }
            )
            if not calls:
                break
            for call in calls:
                messages.append({"role": "tool", "tool_call_id": call.id, "content": await run(client, call)})
        end = await client.step(CallToolAction(tool_name="done"))  # the terminal step: scored, the episode ends
        played.reward = float(end.reward or 0.0)
        played.success = bool(end.observation.result["data"]["success"])
        return played


def as_function(tool: Any) -> dict[str, Any]:
    """An OpenEnv Tool (name, description, input_schema) as a chat-completions function tool."""
    function = {"name": tool.name, "description": tool.description, "parameters": tool.input_schema}
    return {"type": "function", "function": function}


async def run(client: MCPToolClient, call: Any) -> str:
    """One tool call of the model as an OpenEnv step; what the model reads back (a refusal is text too)."""
    name = call.function.name
    try:
        arguments = json.loads(call.function.arguments or "{}")
    except ValueError as e:
        return f"{name}: the arguments are not JSON ({e})"
    if not isinstance(arguments, dict):
        return f"{name}: the arguments must be a JSON object"
    step = await client.step(CallToolAction(tool_name=name, arguments=arguments))
    result = getattr(step.observation, "result", None) or {}  # a refused call's result holds its message too
    return "".join(block.get("text", "") for block in result.get("content", []))


def add_tokens(played: Played, answer: Any) -> None:
    """Add one turn's tokens: the tool results since the last turn (mask 0), then the model's own (mask 1)."""
    extra = answer.model_extra or {}
    choice = answer.choices[0]
    prompt = extra.get("prompt_token_ids")
    completion = (choice.model_extra or {}).get("token_ids")
    if not prompt or completion is None:
        return  # the endpoint gives no token ids
    content = choice.logprobs.content if choice.logprobs and choice.logprobs.content else []
    logprobs = [t.logprob for t in content] if len(content) == len(completion) else [0.0] * len(completion)
    if not played.prompt_ids:
        played.prompt_ids = list(prompt)
    else:  # the new prompt repeats everything so far; what follows it is the environment's text
        seen = len(played.prompt_ids) + len(played.completion_ids)
        between = list(prompt[seen:])
        played.completion_ids += between
        played.logprobs += [0.0] * len(between)
        played.env_mask += [0] * len(between)
    played.completion_ids += list(completion)
    played.logprobs += logprobs
    played.env_mask += [1] * len(completion)


def scenario_of(prompt: Any, tasks: dict[str, str]) -> str:
    """The scenario a prompt names: a scenario id, or a chat whose last message is one (or its task)."""
    text = prompt[-1]["content"] if isinstance(prompt, list) else prompt
    return tasks.get(text, text)


async def rollout(
    farm: str,
    env: str,
    policy_url: str,
    model: str,
    prompts: list[Any],
    generations: int,
    *,
    api_key: str = "EMPTY",
    max_turns: int = 16,
    temperature: float = 1.0,
) -> dict[str, list[Any]]:
    """``generations`` episodes of each prompt's scenario, all at once, as TRL's rollout_func answers."""
    async with httpx.AsyncClient(base_url=farm, timeout=60) as http:
        tasks = {s["task"]: s["id"] for s in (await http.get(f"/v1/envs/{env}/scenarios")).raise_for_status().json()}
    policy = AsyncOpenAI(base_url=policy_url, api_key=api_key)
    try:
        scenarios = [scenario_of(p, tasks) for p in prompts for _ in range(generations)]
        played = await asyncio.gather(
            *(play(farm, env, s, policy, model, max_turns=max_turns, temperature=temperature) for s in scenarios)
        )
    finally:
        await policy.close()
    return {
        "prompt_ids": [p.prompt_ids for p in played],
        "completion_ids": [p.completion_ids for p in played],
        "logprobs": [p.logprobs for p in played],
        "env_mask": [p.env_mask for p in played],
        "env_reward": [p.reward for p in played],
        "env_success": [p.success for p in played],
    }


def make_rollout_func(
    farm: str, env: str, policy_url: str, model: str, *, generations: int = 8, **options: Any
) -> Callable[[list[Any], Any], dict[str, list[Any]]]:
    """TRL's ``rollout_func(prompts, trainer)``; the group size is the trainer's ``num_generations`` when it has one."""

    def rollout_func(prompts: list[Any], trainer: Any = None) -> dict[str, list[Any]]:
        group = getattr(trainer, "num_generations", None) or generations
        work = rollout(farm, env, policy_url, model, prompts, group, **options)
        return _run_blocking(work)

    return rollout_func


def reward_from_env(completions: list[Any], env_reward: list[float], **kwargs: Any) -> list[float]:
    """The reward function for TRL: the farm's reward of each episode (passed on from the rollout)."""
    return [float(r) for r in env_reward]


def scenario_rows(farm: str, env: str, split: str | None = None) -> list[dict[str, str]]:
    """A dataset of prompts, one per scenario of the env (of one split: ``train`` or ``test``)."""
    listed = httpx.get(f"{farm}/v1/envs/{env}/scenarios", timeout=60).raise_for_status().json()
    return [{"prompt": s["id"]} for s in listed if split is None or s.get("split") == split]


def _run_blocking(work: Any) -> Any:
    """Run a coroutine to its end from sync code, also when the caller is inside an event loop (a notebook)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(work)
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(value=asyncio.run(work)))
    thread.start()
    thread.join()
    return box["value"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--farm", default="http://127.0.0.1:8000")
    parser.add_argument("--env", default="library")
    parser.add_argument("--policy", required=True, help="the OpenAI-compatible endpoint, e.g. http://127.0.0.1:8001/v1")
    parser.add_argument("--model", required=True)
    parser.add_argument("--split", choices=["train", "test"], default=None)
    parser.add_argument("--prompts", default="4", help="how many scenarios (the first of the split), or ids a,b,c")
    parser.add_argument("--generations", type=int, default=2, help="episodes per scenario (GRPO's group size)")
    parser.add_argument("--max-turns", type=int, default=16)
    args = parser.parse_args()
    if args.prompts.isdigit():
        prompts = [row["prompt"] for row in scenario_rows(args.farm, args.env, args.split)[: int(args.prompts)]]
    else:
        prompts = args.prompts.split(",")
    rollout_func = make_rollout_func(
        args.farm, args.env, args.policy, args.model, generations=args.generations, max_turns=args.max_turns
    )
    out = rollout_func(prompts, None)
    rows = [p for p in prompts for _ in range(args.generations)]
    for scenario, reward, success in zip(rows, out["env_reward"], out["env_success"], strict=True):
        print(json.dumps({"scenario": scenario, "reward": reward, "success": success}))
    print(f"mean reward {sum(out['env_reward']) / len(out['env_reward']):.3f} over {len(rows)} episodes")


if __name__ == "__main__":
    main()
