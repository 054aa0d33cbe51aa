"""Running LLM agents in episodes: the loop, the simulated user, results, reports, training data.

The library an RL trainer calls (docs/agents.md)::

    from envfarm.agents import openai_policy
    from envfarm.agents.rollout import rollout

    policy = openai_policy("http://127.0.0.1:8001/v1", "my-policy")
    done = await rollout("http://127.0.0.1:8000", "library", "return-and-pay", policy)
    done.reward, done.success, done.messages, done.calls

Names are imported on first use, so reading a run's files (reports, exports) does not load the MCP SDK.
The functions ``rollout`` and ``run`` live in the modules of the same names (``envfarm.agents.rollout``,
``envfarm.agents.run``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from envfarm.agents.errors import AgentsError
    from envfarm.agents.policy import AgentTurn, CallablePolicy, LLMPolicy, Policy, openai_llm, openai_policy
    from envfarm.agents.prompts import STOP
    from envfarm.agents.rollout import Rollout
    from envfarm.agents.run import RunConfig, RunSummary
    from envfarm.agents.user import SimulatedUser, UserBrief

_WHERE = {
    "AgentsError": "errors",
    "AgentTurn": "policy",
    "CallablePolicy": "policy",
    "LLMPolicy": "policy",
    "Policy": "policy",
    "openai_llm": "policy",
    "openai_policy": "policy",
    "STOP": "prompts",
    "Rollout": "rollout",
    "RunConfig": "run",
    "RunSummary": "run",
    "SimulatedUser": "user",
    "UserBrief": "user",
}
__all__ = [
    "AgentTurn",
    "AgentsError",
    "CallablePolicy",
    "LLMPolicy",
    "Policy",
    "Rollout",
    "RunConfig",
    "RunSummary",
    "STOP",
    "SimulatedUser",
    "UserBrief",
    "openai_llm",
    "openai_policy",
]


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'envfarm.agents' has no attribute {name!r}")
    return getattr(importlib.import_module(f"envfarm.agents.{_WHERE[name]}"), name)
