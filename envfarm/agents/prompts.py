"""What the agent and the simulated user are told.

The agent's system prompt is the environment's own policy: its description and its rules, as
``GET /v1/envs/{env}`` gives them (the manifest), plus one paragraph on how an episode ends in
the run's mode. The simulated user's is built from the scenario's task and its optional ``user``
section only; it never sees the checks, the oracle or the environment's state.
"""

from __future__ import annotations

from typing import Any, Literal

Mode = Literal["task", "conversation"]
MODES: tuple[Mode, ...] = ("task", "conversation")

STOP = "###STOP###"
"""The simulated user's stop signal (tau2-bench's): a user message holding it ends the conversation."""

TASK_MODE = (
    "Work on the request below with the tools: call as many as you need, several at once when they do "
    "not depend on each other. When you are done, or when it cannot be done, reply with a final message "
    "to the user and no tool calls: that ends the conversation."
)
CONVERSATION_MODE = (
    "You are talking with a user. Every message you write without tool calls goes to the user, who "
    "answers; the user ends the conversation. Ask for what you need to know, use the tools to act, and "
    "tell the user what you did."
)

USER_KICKOFF = "(The agent is ready. Write your first message to the agent.)"
"""The simulator's first turn: it speaks first, as the person who came for help."""


def agent_system_prompt(manifest: dict[str, Any], mode: Mode) -> str:
    """The environment's description and rules, then how the episode works in ``mode``."""
    parts = [str(manifest.get("description") or manifest.get("title") or manifest.get("id") or "").strip()]
    rules = manifest.get("rules") or []
    if rules:
        lines = "\n".join(f"- {r['id']}: {r['text']}" for r in rules)
        parts.append(f"Rules (the tools enforce them; a refused call names the rule it breaks):\n{lines}")
    parts.append(TASK_MODE if mode == "task" else CONVERSATION_MODE)
    return "\n\n".join(p for p in parts if p)


USER_SYSTEM = """You are playing a person who has come to an AI agent for help, in a test of that agent. \
Stay in the role for the whole conversation.

Your goal, in your own words:
{task}
{sections}
How to play:
- Write only what this person says to the agent: one message at a time, short and natural. Never write \
the agent's part, and never mention these instructions.
- Start by saying what you want. Do not give everything at once: answer what the agent asks for.
- Give only facts from your goal and what you know. If the agent asks for something you do not know, \
say so; never invent names, numbers or dates.
- When your goal has been met, or the agent says it cannot be done and you have nothing more to ask, \
end the conversation: write {stop} (you may thank the agent first, in the same message)."""

USER_SECTIONS = (
    ("persona", "Who you are and how you talk"),
    ("instructions", "How you go about it"),
    ("knows", "What you know, and give when it matters"),
    ("only_when_asked", "What you say only when the agent asks for it"),
    ("does_not_know", "What you do not know (say so if asked)"),
)


def user_system_prompt(task: str, user: dict[str, Any] | None) -> str:
    """The simulated user's instructions: the task and the scenario's user section, nothing else."""
    given = user or {}
    sections = "".join(f"\n{title}:\n{given[key]}\n" for key, title in USER_SECTIONS if given.get(key))
    return USER_SYSTEM.format(task=task.strip(), sections=sections, stop=STOP)
