"""examples/openenv_grpo.py: TRL's rollout_func shape, over OpenEnv, with the fake model server playing the policy."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from types import ModuleType

import pytest
from conftest import REPO, FarmProcess

INSTALL = "pip install --no-deps openenv-core==0.3.0"
if not os.environ.get("CI"):  # CI installs it (.ci/run): there a missing package fails, never skips
    pytest.importorskip(
        "openenv.core.mcp_client", reason="openenv-core is not installed: pip install --no-deps openenv-core==0.3.0"
    )

from fakes.agent_scripts import oracle_agent  # noqa: E402
from fakes.llm_server import FakeLLMServer  # noqa: E402

from envfarm.core.environments import load_catalog  # noqa: E402

EXAMPLE = REPO / "examples" / "openenv_grpo.py"
LIBRARY = load_catalog(["library"])["library"]
PICKED = ["return-and-pay", "hold-pickup", "renew-what-you-can"]


def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("openenv_grpo", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fake() -> FakeLLMServer:
    with FakeLLMServer(oracle_agent(LIBRARY.scenarios.values())) as server:
        yield server


def test_rollout_func_returns_trl_fields_and_rewards(farm: FarmProcess, fake: FakeLLMServer) -> None:
    grpo = example()
    picked = PICKED
    rollout_func = grpo.make_rollout_func(farm.url, "library", fake.openai_url, "fake-policy", generations=2)
    prompts = [picked[0], [{"role": "user", "content": LIBRARY.scenarios[picked[1]].task}], *picked[2:]]
    out = rollout_func(prompts, None)
    assert {"prompt_ids", "completion_ids", "logprobs", "env_mask", "env_reward"} <= set(out)
    assert all(len(values) == 2 * len(prompts) for values in out.values())
    assert out["env_reward"] == [1.0] * (2 * len(prompts)) and all(out["env_success"])
    assert grpo.reward_from_env([None] * len(out["env_reward"]), **out) == out["env_reward"]
    asked = fake.requests()
    assert asked and all(r["body"]["tools"] for r in asked)  # the model was given the tools
    assert any(LIBRARY.scenarios[picked[0]].task in str(r["body"]["messages"]) for r in asked)


def test_a_model_that_does_nothing_gets_less(farm: FarmProcess) -> None:
    grpo = example()
    idle = [{"side": "agent", "match": [LIBRARY.scenarios["return-and-pay"].task], "turns": [{"text": "Done!"}]}]
    with FakeLLMServer(idle) as lazy:
        out = grpo.make_rollout_func(farm.url, "library", lazy.openai_url, "fake-policy", generations=3)(
            ["return-and-pay"], type("Trainer", (), {"num_generations": 3})()
        )
    assert len(out["env_reward"]) == 3 and all(r < 1.0 for r in out["env_reward"]) and not any(out["env_success"])


def test_the_command_line_plays_a_batch(farm: FarmProcess, fake: FakeLLMServer) -> None:
    cmd = [sys.executable, str(EXAMPLE), "--farm", farm.url, "--env", "library", "--policy", fake.openai_url]
    cmd += ["--model", "fake-policy", "--prompts", "return-and-pay", "--generations", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    assert done.stdout.count('"reward": 1.0') == 2 and "mean reward 1.000 over 2 episodes" in done.stdout
