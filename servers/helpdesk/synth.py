"""Procedural steps for the helpdesk: each picks a mutation that will succeed on the current state.

Requests name tickets by their number (as staff do), people by name and assets by tag.
"""

from __future__ import annotations

import random
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, StepMaker, by_id

PRIORITIES = ["low", "medium", "high", "critical"]
OPEN = ("new", "assigned", "in_progress")
REASONS = [
    "the whole team is blocked",
    "a customer deadline is tomorrow",
    "it now affects the month-end close",
    "the user is travelling to a client this week",
]
RESOLUTIONS = [
    "Reinstalled the application and confirmed it works",
    "Replaced the faulty cable",
    "Reset the account and verified sign-in with the user",
    "Applied the latest update and rebooted",
]
NOTES = [
    "Called the user; waiting for them to test",
    "Ordered a replacement part",
    "Checked the logs; no errors since this morning",
]

State = StateView


def _skills(agent: dict[str, Any]) -> list[str]:
    return [s.strip() for s in agent["skills"].split(",") if s.strip()]


def _ticket_lookup(ticket: dict[str, Any]) -> Call:
    return Call(tool="search_tickets", arguments={"number": ticket["number"]})


def _about(state: State, ticket: dict[str, Any]) -> str:
    user = by_id(state, "users")[ticket["user_id"]]
    return f"ticket {ticket['number']} ({user['name']}'s {ticket['title']!r})"


def assign_ticket(state: State, rng: random.Random) -> Step | None:
    agents = state["agents"]
    options = [
        (t, a)
        for t in state["tickets"]
        if t["status"] in OPEN
        for a in agents
        if a["on_duty"] and t["category"] in _skills(a) and a["id"] != t["agent_id"]
    ]
    if not options:
        return None
    ticket, agent = rng.choice(options)
    return Step(
        arguments={"ticket_id": ticket["id"], "agent_id": agent["id"]},
        request=f"assign {_about(state, ticket)} to {agent['name']}",
        lookups=[_ticket_lookup(ticket), Call(tool="find_agents", arguments={"name": agent["name"]})],
    )


def start_work(state: State, rng: random.Random) -> Step | None:
    tickets = [t for t in state["tickets"] if t["status"] == "assigned"]
    if not tickets:
        return None
    ticket = rng.choice(tickets)
    return Step(
        arguments={"ticket_id": ticket["id"]},
        request=f"mark {_about(state, ticket)} as in progress",
        lookups=[_ticket_lookup(ticket)],
    )


def escalate_ticket(state: State, rng: random.Random) -> Step | None:
    tickets = [t for t in state["tickets"] if t["status"] in OPEN and t["priority"] != "critical"]
    if not tickets:
        return None
    ticket = rng.choice(tickets)
    priority = rng.choice(PRIORITIES[PRIORITIES.index(ticket["priority"]) + 1 :])
    reason = rng.choice(REASONS)
    return Step(
        arguments={"ticket_id": ticket["id"], "priority": priority, "reason": reason},
        request=f"escalate {_about(state, ticket)} to {priority} priority, because {reason}",
        lookups=[_ticket_lookup(ticket)],
    )


def resolve_ticket(state: State, rng: random.Random) -> Step | None:
    tickets = [t for t in state["tickets"] if t["status"] in ("assigned", "in_progress")]
    if not tickets:
        return None
    ticket = rng.choice(tickets)
    resolution = rng.choice(RESOLUTIONS)
    return Step(
        arguments={"ticket_id": ticket["id"], "resolution": resolution},
        request=f"resolve {_about(state, ticket)} with the note '{resolution}'",
        lookups=[_ticket_lookup(ticket)],
    )


def close_ticket(state: State, rng: random.Random) -> Step | None:
    tickets = [t for t in state["tickets"] if t["status"] == "resolved"]
    if not tickets:
        return None
    ticket = rng.choice(tickets)
    return Step(
        arguments={"ticket_id": ticket["id"]},
        request=f"close the resolved {_about(state, ticket)}",
        lookups=[_ticket_lookup(ticket)],
    )


def add_comment(state: State, rng: random.Random) -> Step | None:
    tickets = [t for t in state["tickets"] if t["status"] in OPEN]
    if not tickets:
        return None
    ticket = rng.choice(tickets)
    body = rng.choice(NOTES)
    internal = rng.random() < 0.5
    kind = "an internal note (agents only)" if internal else "a note the user can see"
    return Step(
        arguments={"ticket_id": ticket["id"], "body": body, "internal": internal},
        request=f"add {kind} to {_about(state, ticket)}: '{body}'",
        lookups=[_ticket_lookup(ticket)],
    )


def assign_asset(state: State, rng: random.Random) -> Step | None:
    laptop_holders = {a["user_id"] for a in state["assets"] if a["kind"] == "laptop" and a["user_id"] is not None}
    options = [
        (a, u)
        for a in state["assets"]
        if a["status"] == "in_stock"
        for u in state["users"]
        if a["kind"] != "laptop" or u["id"] not in laptop_holders
    ]
    if not options:
        return None
    asset, user = rng.choice(options)
    return Step(
        arguments={"tag": asset["tag"], "user_id": user["id"]},
        request=f"give the {asset['kind']} {asset['tag']} ({asset['model']}) to {user['name']}",
        lookups=[
            Call(tool="find_user", arguments={"query": user["name"]}),
            Call(tool="get_asset", arguments={"tag": asset["tag"]}),
        ],
    )


def return_asset(state: State, rng: random.Random) -> Step | None:
    assets = [a for a in state["assets"] if a["status"] == "assigned"]
    if not assets:
        return None
    asset = rng.choice(assets)
    user = by_id(state, "users")[asset["user_id"]]
    condition = rng.choice(["good", "damaged"])
    how = "it is in good shape, so put it back in stock" if condition == "good" else "it is damaged, send it to repair"
    return Step(
        arguments={"tag": asset["tag"], "condition": condition},
        request=f"take {asset['tag']} ({asset['model']}) back from {user['name']}; {how}",
        lookups=[Call(tool="get_asset", arguments={"tag": asset["tag"]})],
    )


def set_agent_duty(state: State, rng: random.Random) -> Step | None:
    if not state["agents"]:
        return None
    agent = rng.choice(state["agents"])
    on_duty = not bool(agent["on_duty"])
    return Step(
        arguments={"agent_id": agent["id"], "on_duty": on_duty},
        request=f"{'put' if on_duty else 'take'} {agent['name']} {'on' if on_duty else 'off'} duty",
        lookups=[Call(tool="find_agents", arguments={"name": agent["name"]})],
    )


STEPS: dict[str, StepMaker] = {
    "assign_ticket": assign_ticket,
    "start_work": start_work,
    "escalate_ticket": escalate_ticket,
    "resolve_ticket": resolve_ticket,
    "close_ticket": close_ticket,
    "add_comment": add_comment,
    "assign_asset": assign_asset,
    "return_asset": return_asset,
    "set_agent_duty": set_agent_duty,
}
