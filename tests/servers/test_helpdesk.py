"""The bundled helpdesk environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the state
untouched, SLA due times follow the priority, and bad input must come back as an error
result. What every environment must do (tables, docs, procedural steps, scenarios) is
tested for all of them in test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode

BASE = "teams-audio-fixed"  # any scenario on states/base.json with the shared clock (2026-02-16T11:00)


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("helpdesk")


# --- the package -----------------------------------------------------------------------------------


def test_enums_and_formats_are_in_the_schema(env: Environment) -> None:
    props = env.tools["create_ticket"].input_schema["properties"]
    assert props["priority"]["enum"] == ["low", "medium", "high", "critical"]
    assert props["category"]["enum"] == ["hardware", "software", "network", "access", "email"]
    as_of = env.tools["list_overdue_tickets"].input_schema["properties"]["as_of"]
    assert {"type": "string", "format": "date-time", "maxLength": 64} in as_of["anyOf"]
    email = env.tools["find_user"].input_schema["properties"]["email"]
    assert {"type": "string", "format": "email", "maxLength": 254} in email["anyOf"]
    ticket_id = env.tools["get_ticket"].input_schema["properties"]["ticket_id"]
    assert ticket_id["minimum"] == 1 and ticket_id["maximum"] == 2**63 - 1


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); all on the base state at 2026-02-16T11:00.
REFUSALS: list[Refusal] = [
    # Jonas Weber is off duty; Rachel Green has no network skill (HD-1002 is a network ticket).
    ("assign-on-duty", "assign_ticket", {"ticket_id": 2, "agent_id": 4}, ["Jonas Weber", "off duty", "HD-1002"]),
    ("assign-skill", "assign_ticket", {"ticket_id": 2, "agent_id": 1}, ["Rachel Green", "network", "HD-1002"]),
    ("resolution-note-required", "resolve_ticket", {"ticket_id": 4, "resolution": "  "}, ["HD-1004", "resolution"]),
    # HD-1011 was resolved on 2026-02-05, 11 days ago.
    ("reopen-window", "reopen_ticket", {"ticket_id": 11, "reason": "no wifi again"}, ["HD-1011", "7 days"]),
    # Lucia Moreno already holds LT-0003.
    ("one-laptop-per-user", "assign_asset", {"tag": "LT-0004", "user_id": 3}, ["Lucia Moreno", "LT-0003"]),
    (
        "escalation-raises-priority",
        "escalate_ticket",
        {"ticket_id": 5, "priority": "medium", "reason": "x"},
        ["HD-1005", "already high"],
    ),
    (
        "escalation-raises-priority",
        "escalate_ticket",
        {"ticket_id": 10, "priority": "high", "reason": "x"},
        ["HD-1010", "closed"],
    ),
    (
        "escalation-raises-priority",
        "escalate_ticket",
        {"ticket_id": 2, "priority": "high", "reason": " "},
        ["reason", "HD-1002"],
    ),
    ("status-flow", "start_work", {"ticket_id": 1}, ["HD-1001", "new", "assigned"]),
    ("status-flow", "resolve_ticket", {"ticket_id": 1, "resolution": "fixed"}, ["HD-1001", "new"]),
    ("status-flow", "close_ticket", {"ticket_id": 4}, ["HD-1004", "only a resolved ticket"]),
    ("asset-available", "assign_asset", {"tag": "LT-0007", "user_id": 4}, ["LT-0007", "in repair"]),
    ("asset-available", "assign_asset", {"tag": "PH-0001", "user_id": 4}, ["PH-0001", "assigned"]),
]

COMPUTING_RULES = {"sla-due-time"}


def test_every_rule_is_tested(env: Environment) -> None:
    assert {r for r, *_ in REFUSALS} | COMPUTING_RULES == set(env.rules)


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_sla_due_time_on_create_and_escalation(episode: Episode) -> None:
    made = episode.call(
        "create_ticket",
        {
            "user_id": 9,
            "title": "Badge reader down",
            "description": "Door badge reader offline",
            "category": "hardware",
            "priority": "critical",
        },
    )
    assert made.ok, made.error
    assert made.value["number"] == "HD-1017" and made.value["due_at"] == "2026-02-16T15:00:00+00:00"
    low = episode.call(
        "create_ticket",
        {
            "user_id": 9,
            "title": "New mouse",
            "description": "Mouse wheel broken",
            "category": "hardware",
            "priority": "low",
        },
    )
    assert low.value["due_at"] == "2026-02-19T11:00:00+00:00"
    up = episode.call("escalate_ticket", {"ticket_id": low.value["ticket_id"], "priority": "high", "reason": "urgent"})
    assert up.ok and up.value["due_at"] == "2026-02-16T19:00:00+00:00"
    row_ = row(episode.view(), "tickets", low.value["ticket_id"])
    assert (row_["priority"], row_["due_at"]) == ("high", "2026-02-16T19:00:00+00:00")


def test_reopen_within_window_goes_back_to_the_agent(episode: Episode) -> None:
    result = episode.call("reopen_ticket", {"ticket_id": 12, "reason": "locked out again"})
    assert result.ok and result.value["status"] == "assigned"
    ticket = row(episode.view(), "tickets", 12)
    assert ticket["closed_at"] is None and ticket["resolution"] is None and ticket["agent_id"] == 3


def test_laptop_swap_after_return(episode: Episode) -> None:
    assert episode.call("return_asset", {"tag": "LT-0003", "condition": "good"}).ok
    assert episode.call("assign_asset", {"tag": "LT-0004", "user_id": 3}).ok
    view = episode.view()
    assert row(view, "assets", 3)["status"] == "in_stock" and row(view, "assets", 4)["user_id"] == 3


def test_lookups(episode: Episode) -> None:
    assert [u["name"] for u in episode.call("find_user", {"query": "moreno"}).value] == ["Lucia Moreno"]
    by_mail = episode.call("find_user", {"email": "TOM.BECKER@harborlogistics.com"}).value
    assert by_mail[0]["user_id"] == 2
    access = episode.call("find_agents", {"skill": "access", "on_duty": True}).value
    assert [a["name"] for a in access] == ["Fatima Noor"]
    found = episode.call("search_tickets", {"number": "hd-1004"}).value
    assert found[0]["ticket_id"] == 4 and found[0]["agent_name"] == "Victor Chen"
    overdue = episode.call("list_overdue_tickets", {}).value
    assert [t["number"] for t in overdue] == ["HD-1006"]
    later = episode.call("list_overdue_tickets", {"as_of": "2026-02-16T17:00:00+00:00"}).value
    assert {"HD-1001", "HD-1005", "HD-1007"} <= {t["number"] for t in later}
    ticket = episode.call("get_ticket", {"ticket_id": 5}).value
    assert len(ticket["comments"]) == 2
    asset = episode.call("get_asset", {"tag": "lt-0003"}).value
    assert asset["user_name"] == "Lucia Moreno" and asset["tickets"][0]["number"] == "HD-1001"
    stock = episode.call("find_assets", {"kind": "laptop", "status": "in_stock"}).value
    assert [a["tag"] for a in stock] == ["LT-0004", "LT-0006", "LT-0010"]
    assert episode.call("get_sla_policy", {}).value["sla_hours"]["critical"] == 4
    user = episode.call("get_user", {"user_id": 1}).value
    assert {a["tag"] for a in user["assets"]} == {"LT-0001", "MN-0001"}


BAD_CALLS: list[BadCall] = [
    ("get_user", {"user_id": 999}, "no user with id 999"),
    ("get_ticket", {"ticket_id": 999}, "no ticket with id 999"),
    ("get_asset", {"tag": "XX-1"}, "no asset with tag"),
    ("assign_ticket", {"ticket_id": 1, "agent_id": 999}, "no agent with id 999"),
    ("assign_ticket", {"ticket_id": 10, "agent_id": 1}, "reopen it"),
    ("reopen_ticket", {"ticket_id": 1, "reason": "x"}, "nothing to reopen"),
    ("return_asset", {"tag": "LT-0004", "condition": "good"}, "not assigned"),
    ("set_agent_duty", {"agent_id": 1, "on_duty": True}, "already on duty"),
    (
        "create_ticket",
        {"user_id": 1, "title": " ", "description": "d", "category": "email", "priority": "low"},
        "title is empty",
    ),
    (
        "create_ticket",
        {"user_id": 1, "title": "t", "description": "d", "category": "printing", "priority": "low"},
        "category",
    ),
    ("find_user", {}, "query is empty"),
    ("list_overdue_tickets", {"as_of": "2026-02-16T25:00"}, "as_of"),
    ("list_overdue_tickets", {"as_of": "2026-02-16T12:00:00"}, "UTC offset"),
    ("get_ticket", {"ticket_id": 2**70}, "ticket_id"),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)
