"""The helpdesk's tools: look-ups for users, agents, tickets and assets, and the desk's mutations.

Every refusing rule in ``RULES`` (``__init__.py``) is enforced here and named in the
``ToolError``; ``sla-due-time`` is applied by ``create_ticket`` and ``escalate_ticket``.
Time is the scenario clock (``ctx.now``), never the wall clock.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import Code, Email, Id, Name, Note, SearchText, like
from envfarm.core.tools import ToolContext, ToolError, tool

SLA_HOURS = {"critical": 4, "high": 8, "medium": 24, "low": 72}
PRIORITY_ORDER = ["low", "medium", "high", "critical"]
REOPEN_DAYS = 7
SEARCH_LIMIT = 25
OPEN_STATUSES = ("new", "assigned", "in_progress")

DateTimeStr = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
Category = Literal["hardware", "software", "network", "access", "email"]
Priority = Literal["low", "medium", "high", "critical"]
Status = Literal["new", "assigned", "in_progress", "resolved", "closed"]
AssetKind = Literal["laptop", "phone", "monitor"]
AssetStatus = Literal["in_stock", "assigned", "in_repair", "retired"]


# --- helpers (not tools) -------------------------------------------------------------------------


def _now(ctx: ToolContext) -> str:
    return ctx.now.isoformat(timespec="seconds")


def _due(opened_at: str, priority: str) -> str:
    return (datetime.fromisoformat(opened_at) + timedelta(hours=SLA_HOURS[priority])).isoformat(timespec="seconds")


def _user(ctx: ToolContext, user_id: int) -> dict[str, Any]:
    user = ctx.one("SELECT * FROM users WHERE id = ?", (user_id,))
    if user is None:
        raise ToolError(f"no user with id {user_id}; look users up with find_user")
    return user


def _agent(ctx: ToolContext, agent_id: int) -> dict[str, Any]:
    agent = ctx.one("SELECT * FROM agents WHERE id = ?", (agent_id,))
    if agent is None:
        raise ToolError(f"no agent with id {agent_id}; look agents up with find_agents")
    return agent


def _ticket(ctx: ToolContext, ticket_id: int, select: str = "SELECT * FROM tickets t ") -> dict[str, Any]:
    """The ticket's row; ``select`` may join more onto ``tickets t`` (as ``_TICKETS_SQL`` does)."""
    ticket = ctx.one(f"{select}WHERE t.id = ?", (ticket_id,))
    if ticket is None:
        raise ToolError(f"no ticket with id {ticket_id}; look tickets up with search_tickets")
    return ticket


def _asset(ctx: ToolContext, tag: str) -> dict[str, Any]:
    asset = ctx.one("SELECT * FROM assets WHERE upper(tag) = ?", (tag.strip().upper(),))
    if asset is None:
        raise ToolError(f"no asset with tag {tag!r}; tags look like LT-0003 (see find_assets)")
    return asset


def _what(ticket: dict[str, Any]) -> str:
    return f"ticket {ticket['number']} ({ticket['title']!r})"


def _skills(agent: dict[str, Any]) -> list[str]:
    return [s.strip() for s in agent["skills"].split(",") if s.strip()]


def _agent_row(agent: dict[str, Any]) -> dict[str, Any]:
    return {
        "agent_id": agent["id"],
        "name": agent["name"],
        "email": agent["email"],
        "skills": _skills(agent),
        "on_duty": bool(agent["on_duty"]),
    }


_TICKETS_SQL = (
    "SELECT t.*, u.name AS user_name, a.name AS agent_name, s.tag AS asset_tag FROM tickets t "
    "JOIN users u ON u.id = t.user_id LEFT JOIN agents a ON a.id = t.agent_id "
    "LEFT JOIN assets s ON s.id = t.asset_id "
)


def _ticket_row(ctx: ToolContext, t: dict[str, Any]) -> dict[str, Any]:
    open_ = t["status"] in OPEN_STATUSES
    return {
        "ticket_id": t["id"],
        "number": t["number"],
        "title": t["title"],
        "user_id": t["user_id"],
        "user_name": t["user_name"],
        "category": t["category"],
        "priority": t["priority"],
        "status": t["status"],
        "agent_id": t["agent_id"],
        "agent_name": t["agent_name"],
        "asset_tag": t["asset_tag"],
        "opened_at": t["opened_at"],
        "due_at": t["due_at"],
        "overdue": open_ and t["due_at"] < _now(ctx),
        "resolved_at": t["resolved_at"],
        "closed_at": t["closed_at"],
    }


def _asset_row(a: dict[str, Any]) -> dict[str, Any]:
    return {
        "tag": a["tag"],
        "kind": a["kind"],
        "model": a["model"],
        "serial": a["serial"],
        "status": a["status"],
        "user_id": a["user_id"],
        "user_name": a.get("user_name"),
        "assigned_on": a["assigned_on"],
        "purchased": a["purchased"],
        "cost_cents": a["cost_cents"],
    }


def _text(value: str, what: str) -> str:
    value = value.strip()
    if not value:
        raise ToolError(f"{what} is empty")
    return value


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_user(ctx: ToolContext, query: SearchText | None = None, email: Email | None = None) -> list[dict[str, Any]]:
    """Find staff members (users) by part of their name or department, or by exact email.

    Args:
        query: part of the user's name or department, e.g. "Moreno" or "Finance"
        email: the user's exact email address
    """
    if email is not None:
        rows = ctx.all("SELECT * FROM users WHERE lower(email) = lower(?) ORDER BY id", (email.strip(),))
    else:
        if query is None or not query.strip():
            raise ToolError("query is empty: give part of a name or department, or an email")
        pattern = like(query.strip())
        rows = ctx.all(
            "SELECT * FROM users WHERE name LIKE ? ESCAPE '\\' OR department LIKE ? ESCAPE '\\' ORDER BY id LIMIT ?",
            (pattern, pattern, SEARCH_LIMIT),
        )
    return [
        {"user_id": u["id"], **{k: u[k] for k in ("name", "email", "department", "location", "phone")}} for u in rows
    ]


@tool(kind="query")
def get_user(ctx: ToolContext, user_id: Id) -> dict[str, Any]:
    """A user's details with the assets they hold and their open tickets.

    Args:
        user_id: the user's id (from find_user)
    """
    user = _user(ctx, user_id)
    assets = ctx.all("SELECT * FROM assets WHERE user_id = ? ORDER BY id", (user_id,))
    tickets = ctx.all(
        f"{_TICKETS_SQL}WHERE t.user_id = ? AND t.status IN ('new', 'assigned', 'in_progress') ORDER BY t.id",
        (user_id,),
    )
    return {
        "user_id": user_id,
        **{k: user[k] for k in ("name", "email", "department", "location", "phone")},
        "assets": [_asset_row(a) for a in assets],
        "open_tickets": [_ticket_row(ctx, t) for t in tickets],
    }


@tool(kind="query")
def find_agents(
    ctx: ToolContext, name: Name | None = None, skill: Category | None = None, on_duty: bool | None = None
) -> list[dict[str, Any]]:
    """List support agents, optionally by name, skill and duty status, with their open ticket counts.

    Args:
        name: part of the agent's name
        skill: only agents who handle this ticket category
        on_duty: true for agents on duty now, false for those off duty; all if left out
    """
    rows = ctx.all("SELECT * FROM agents ORDER BY id")
    out = []
    for agent in rows:
        if name is not None and name.strip().lower() not in agent["name"].lower():
            continue
        if skill is not None and skill not in _skills(agent):
            continue
        if on_duty is not None and bool(agent["on_duty"]) != on_duty:
            continue
        count = ctx.scalar(
            "SELECT COUNT(*) FROM tickets WHERE agent_id = ? AND status IN ('assigned', 'in_progress')", (agent["id"],)
        )
        out.append({**_agent_row(agent), "open_tickets": int(count)})
    return out


@tool(kind="query")
def search_tickets(
    ctx: ToolContext,
    number: Code | None = None,
    text: SearchText | None = None,
    user_id: Id | None = None,
    agent_id: Id | None = None,
    status: Status | None = None,
    category: Category | None = None,
    priority: Priority | None = None,
) -> list[dict[str, Any]]:
    """Search tickets; every filter given must match. Newest first.

    Args:
        number: the ticket number, e.g. HD-1004
        text: words in the ticket's title or description
        user_id: only tickets raised by this user (from find_user)
        agent_id: only tickets assigned to this agent (from find_agents)
        status: only tickets in this status
        category: only tickets in this category
        priority: only tickets of this priority
    """
    where: list[str] = []
    params: list[Any] = []
    if number is not None:
        where.append("upper(t.number) = ?")
        params.append(number.strip().upper())
    if text is not None and text.strip():
        where.append("(t.title LIKE ? ESCAPE '\\' OR t.description LIKE ? ESCAPE '\\')")
        params += [like(text.strip())] * 2
    filters: dict[str, object] = {
        "user_id": user_id,
        "agent_id": agent_id,
        "status": status,
        "category": category,
        "priority": priority,
    }
    for column, value in filters.items():
        if value is not None:
            where.append(f"t.{column} = ?")
            params.append(value)
    sql = _TICKETS_SQL + (f"WHERE {' AND '.join(where)} " if where else "") + "ORDER BY t.opened_at DESC, t.id DESC"
    rows = ctx.all(f"{sql} LIMIT ?", (*params, SEARCH_LIMIT))
    return [_ticket_row(ctx, t) for t in rows]


@tool(kind="query")
def get_ticket(ctx: ToolContext, ticket_id: Id) -> dict[str, Any]:
    """A ticket in full: description, resolution and all comments, oldest first.

    Args:
        ticket_id: the ticket's id (from search_tickets)
    """
    t = _ticket(ctx, ticket_id, _TICKETS_SQL)
    comments = ctx.all(
        "SELECT c.*, a.name AS agent_name FROM comments c LEFT JOIN agents a ON a.id = c.agent_id "
        "WHERE c.ticket_id = ? ORDER BY c.created_at, c.id",
        (ticket_id,),
    )
    return {
        **_ticket_row(ctx, t),
        "description": t["description"],
        "resolution": t["resolution"],
        "comments": [
            {
                "comment_id": c["id"],
                "kind": c["kind"],
                "agent_name": c["agent_name"],
                "body": c["body"],
                "internal": bool(c["internal"]),
                "created_at": c["created_at"],
            }
            for c in comments
        ],
    }


@tool(kind="query")
def list_overdue_tickets(
    ctx: ToolContext, as_of: DateTimeStr | None = None, agent_id: Id | None = None
) -> list[dict[str, Any]]:
    """Open tickets (new, assigned or in progress) whose SLA due time has passed, most overdue first.

    Args:
        as_of: the moment to check against, e.g. 2026-02-16T15:00:00+00:00; now if left out
        agent_id: only tickets assigned to this agent (from find_agents)
    """
    if as_of is None:
        moment = _now(ctx)
    else:
        try:
            parsed = datetime.fromisoformat(as_of)
        except ValueError:
            raise ToolError(f"as_of must be a date-time like 2026-02-16T15:00:00+00:00, got {as_of!r}") from None
        if parsed.tzinfo is None:
            raise ToolError(f"as_of {as_of!r} needs a UTC offset, e.g. +00:00")
        moment = parsed.astimezone(ctx.now.tzinfo).isoformat(timespec="seconds")
    sql = f"{_TICKETS_SQL}WHERE t.status IN ('new', 'assigned', 'in_progress') AND t.due_at < ?"
    params: list[Any] = [moment]
    if agent_id is not None:
        _agent(ctx, agent_id)
        sql += " AND t.agent_id = ?"
        params.append(agent_id)
    rows = ctx.all(f"{sql} ORDER BY t.due_at, t.id", params)
    return [_ticket_row(ctx, t) for t in rows]


@tool(kind="query")
def get_sla_policy(ctx: ToolContext) -> dict[str, Any]:
    """The SLA hours per priority and the reopen window, as the desk applies them."""
    return {"sla_hours": dict(SLA_HOURS), "priority_order": list(PRIORITY_ORDER), "reopen_window_days": REOPEN_DAYS}


@tool(kind="query")
def find_assets(
    ctx: ToolContext,
    query: SearchText | None = None,
    kind: AssetKind | None = None,
    status: AssetStatus | None = None,
    user_id: Id | None = None,
) -> list[dict[str, Any]]:
    """Find assets by tag, model or serial, kind, status or holder.

    Args:
        query: part of the tag, model or serial number, e.g. "ThinkPad" or "LT-0004"
        kind: only laptops, phones or monitors
        status: only assets in this status
        user_id: only assets held by this user (from find_user)
    """
    where: list[str] = []
    params: list[Any] = []
    if query is not None and query.strip():
        pattern = like(query.strip())
        where.append("(s.tag LIKE ? ESCAPE '\\' OR s.model LIKE ? ESCAPE '\\' OR s.serial LIKE ? ESCAPE '\\')")
        params += [pattern] * 3
    for column, value in (("kind", kind), ("status", status), ("user_id", user_id)):
        if value is not None:
            where.append(f"s.{column} = ?")
            params.append(value)
    sql = "SELECT s.*, u.name AS user_name FROM assets s LEFT JOIN users u ON u.id = s.user_id "
    sql += (f"WHERE {' AND '.join(where)} " if where else "") + "ORDER BY s.id LIMIT ?"
    return [_asset_row(a) for a in ctx.all(sql, (*params, SEARCH_LIMIT))]


@tool(kind="query")
def get_asset(ctx: ToolContext, tag: Code) -> dict[str, Any]:
    """One asset by tag, with its holder and the tickets raised about it.

    Args:
        tag: the asset tag, e.g. LT-0003
    """
    asset = _asset(ctx, tag)
    holder = ctx.one("SELECT name FROM users WHERE id = ?", (asset["user_id"],)) if asset["user_id"] else None
    tickets = ctx.all(f"{_TICKETS_SQL}WHERE t.asset_id = ? ORDER BY t.id", (asset["id"],))
    return {
        **_asset_row({**asset, "user_name": holder["name"] if holder else None}),
        "tickets": [_ticket_row(ctx, t) for t in tickets],
    }


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def create_ticket(
    ctx: ToolContext,
    user_id: Id,
    title: Name,
    description: Note,
    category: Category,
    priority: Priority,
    asset_tag: Code | None = None,
) -> dict[str, Any]:
    """Open a new ticket for a user, now; its SLA due time follows from the priority.

    Args:
        user_id: the user who has the problem (from find_user)
        title: a short summary of the problem
        description: what the user reports
        category: hardware, software, network, access or email
        priority: low, medium, high or critical
        asset_tag: the tag of the device concerned, if any, e.g. LT-0003
    """
    _user(ctx, user_id)
    title = _text(title, "title")
    description = _text(description, "description")
    asset_id = None
    if asset_tag is not None:
        asset_id = _asset(ctx, asset_tag)["id"]
    numbers = [int(n[3:]) for (n,) in ctx.db.execute("SELECT number FROM tickets") if n[3:].isdigit()]
    number = f"HD-{max(numbers, default=1000) + 1}"
    opened = _now(ctx)
    due = _due(opened, priority)
    ticket_id = ctx.insert(
        "tickets",
        {
            "number": number,
            "user_id": user_id,
            "title": title,
            "description": description,
            "category": category,
            "priority": priority,
            "status": "new",
            "agent_id": None,
            "asset_id": asset_id,
            "opened_at": opened,
            "due_at": due,
            "resolved_at": None,
            "resolution": None,
            "closed_at": None,
        },
    )
    return {"ticket_id": ticket_id, "number": number, "status": "new", "priority": priority, "due_at": due}


@tool(kind="mutation")
def assign_ticket(ctx: ToolContext, ticket_id: Id, agent_id: Id) -> dict[str, Any]:
    """Assign (or reassign) an open ticket to an on-duty agent with the skill for its category.

    The ticket's status becomes assigned.

    Args:
        ticket_id: the ticket's id (from search_tickets)
        agent_id: the agent's id (from find_agents)
    """
    ticket = _ticket(ctx, ticket_id)
    agent = _agent(ctx, agent_id)
    if ticket["status"] not in OPEN_STATUSES:
        raise ToolError(f"{_what(ticket)} is {ticket['status']}; reopen it before assigning it")
    if not agent["on_duty"]:
        raise ToolError(
            f"agent {agent['name']} is off duty; {_what(ticket)} can only go to an on-duty agent",
            rule="assign-on-duty",
        )
    if ticket["category"] not in _skills(agent):
        raise ToolError(
            f"agent {agent['name']} has no {ticket['category']} skill (skills: {agent['skills']}), "
            f"which {_what(ticket)} needs",
            rule="assign-skill",
        )
    if ticket["agent_id"] == agent_id:
        raise ToolError(f"{_what(ticket)} is already assigned to {agent['name']}")
    ctx.update("tickets", {"id": ticket_id}, {"agent_id": agent_id, "status": "assigned"})
    return {"ticket_id": ticket_id, "number": ticket["number"], "status": "assigned", "agent_name": agent["name"]}


@tool(kind="mutation")
def start_work(ctx: ToolContext, ticket_id: Id) -> dict[str, Any]:
    """Mark an assigned ticket as in progress.

    Args:
        ticket_id: the ticket's id (from search_tickets)
    """
    ticket = _ticket(ctx, ticket_id)
    if ticket["status"] != "assigned":
        raise ToolError(
            f"{_what(ticket)} is {ticket['status']}; work can only start on an assigned ticket",
            rule="status-flow",
        )
    ctx.update("tickets", {"id": ticket_id}, {"status": "in_progress"})
    return {"ticket_id": ticket_id, "number": ticket["number"], "status": "in_progress"}


@tool(kind="mutation")
def add_comment(
    ctx: ToolContext, ticket_id: Id, body: Note, agent_id: Id | None = None, internal: bool = False
) -> dict[str, Any]:
    """Add a note to a ticket, now.

    Args:
        ticket_id: the ticket's id (from search_tickets)
        body: the note's text
        agent_id: the agent writing it (from find_agents); the desk itself if left out
        internal: true for a note only agents see; false (default) for one the user sees too
    """
    ticket = _ticket(ctx, ticket_id)
    if agent_id is not None:
        _agent(ctx, agent_id)
    body = _text(body, "body")
    comment_id = ctx.insert(
        "comments",
        {
            "ticket_id": ticket_id,
            "agent_id": agent_id,
            "kind": "note",
            "body": body,
            "internal": internal,
            "created_at": _now(ctx),
        },
    )
    return {"comment_id": comment_id, "ticket_id": ticket_id, "number": ticket["number"], "internal": internal}


@tool(kind="mutation")
def escalate_ticket(ctx: ToolContext, ticket_id: Id, priority: Priority, reason: Note) -> dict[str, Any]:
    """Raise an open ticket's priority; the SLA due time is recomputed from its opening time.

    The reason is recorded as an escalation comment on the ticket.

    Args:
        ticket_id: the ticket's id (from search_tickets)
        priority: the new priority, higher than the current one
        reason: why the ticket is escalated, recorded on the ticket
    """
    ticket = _ticket(ctx, ticket_id)
    if ticket["status"] not in OPEN_STATUSES:
        raise ToolError(
            f"{_what(ticket)} is {ticket['status']} and cannot be escalated", rule="escalation-raises-priority"
        )
    if PRIORITY_ORDER.index(priority) <= PRIORITY_ORDER.index(ticket["priority"]):
        raise ToolError(
            f"{_what(ticket)} is already {ticket['priority']}; an escalation must raise the priority",
            rule="escalation-raises-priority",
        )
    if not reason.strip():
        raise ToolError(f"a reason is required to escalate {_what(ticket)}", rule="escalation-raises-priority")
    due = _due(ticket["opened_at"], priority)
    ctx.update("tickets", {"id": ticket_id}, {"priority": priority, "due_at": due})
    ctx.insert(
        "comments",
        {
            "ticket_id": ticket_id,
            "agent_id": None,
            "kind": "escalation",
            "body": reason.strip(),
            "internal": True,
            "created_at": _now(ctx),
        },
    )
    return {
        "ticket_id": ticket_id,
        "number": ticket["number"],
        "previous_priority": ticket["priority"],
        "priority": priority,
        "due_at": due,
        "overdue": due < _now(ctx),
    }


@tool(kind="mutation")
def resolve_ticket(ctx: ToolContext, ticket_id: Id, resolution: Note) -> dict[str, Any]:
    """Resolve an assigned or in-progress ticket, now, with a resolution note.

    Args:
        ticket_id: the ticket's id (from search_tickets)
        resolution: what was done to fix the problem, shown to the user
    """
    ticket = _ticket(ctx, ticket_id)
    if ticket["status"] not in ("assigned", "in_progress"):
        raise ToolError(
            f"{_what(ticket)} is {ticket['status']}; only an assigned or in-progress ticket can be resolved",
            rule="status-flow",
        )
    if not resolution.strip():
        raise ToolError(f"{_what(ticket)} needs a resolution note to be resolved", rule="resolution-note-required")
    now = _now(ctx)
    ctx.update(
        "tickets", {"id": ticket_id}, {"status": "resolved", "resolved_at": now, "resolution": resolution.strip()}
    )
    return {"ticket_id": ticket_id, "number": ticket["number"], "status": "resolved", "resolved_at": now}


@tool(kind="mutation")
def close_ticket(ctx: ToolContext, ticket_id: Id) -> dict[str, Any]:
    """Close a resolved ticket, now.

    Args:
        ticket_id: the ticket's id (from search_tickets)
    """
    ticket = _ticket(ctx, ticket_id)
    if ticket["status"] != "resolved":
        raise ToolError(
            f"{_what(ticket)} is {ticket['status']}; only a resolved ticket can be closed", rule="status-flow"
        )
    now = _now(ctx)
    ctx.update("tickets", {"id": ticket_id}, {"status": "closed", "closed_at": now})
    return {"ticket_id": ticket_id, "number": ticket["number"], "status": "closed", "closed_at": now}


@tool(kind="mutation")
def reopen_ticket(ctx: ToolContext, ticket_id: Id, reason: Note) -> dict[str, Any]:
    """Reopen a resolved or closed ticket within 7 days of its resolution.

    It goes back to its agent (status assigned), or to new if it had none; the
    resolution is cleared and the reason is recorded as a reopen comment.

    Args:
        ticket_id: the ticket's id (from search_tickets)
        reason: why the ticket is reopened (what the user says is still wrong)
    """
    ticket = _ticket(ctx, ticket_id)
    if ticket["status"] not in ("resolved", "closed"):
        raise ToolError(f"{_what(ticket)} is {ticket['status']}, not resolved or closed; there is nothing to reopen")
    reason = _text(reason, "reason")
    deadline = datetime.fromisoformat(ticket["resolved_at"]) + timedelta(days=REOPEN_DAYS)
    if ctx.now > deadline:
        raise ToolError(
            f"{_what(ticket)} was resolved on {ticket['resolved_at'][:10]}, more than {REOPEN_DAYS} days ago; "
            "open a new ticket instead",
            rule="reopen-window",
        )
    status = "assigned" if ticket["agent_id"] is not None else "new"
    ctx.update(
        "tickets", {"id": ticket_id}, {"status": status, "resolved_at": None, "resolution": None, "closed_at": None}
    )
    ctx.insert(
        "comments",
        {
            "ticket_id": ticket_id,
            "agent_id": None,
            "kind": "reopen",
            "body": reason,
            "internal": False,
            "created_at": _now(ctx),
        },
    )
    return {"ticket_id": ticket_id, "number": ticket["number"], "status": status}


@tool(kind="mutation")
def assign_asset(ctx: ToolContext, tag: Code, user_id: Id) -> dict[str, Any]:
    """Hand an in-stock asset to a user, today.

    Args:
        tag: the asset tag, e.g. LT-0004
        user_id: the user receiving it (from find_user)
    """
    asset = _asset(ctx, tag)
    user = _user(ctx, user_id)
    if asset["status"] != "in_stock":
        raise ToolError(
            f"asset {asset['tag']} ({asset['model']}) is {asset['status'].replace('_', ' ')}, not in stock",
            rule="asset-available",
        )
    if asset["kind"] == "laptop":
        held = ctx.one("SELECT tag FROM assets WHERE user_id = ? AND kind = 'laptop'", (user_id,))
        if held is not None:
            raise ToolError(
                f"user {user['name']} already holds laptop {held['tag']}; return it first",
                rule="one-laptop-per-user",
            )
    ctx.update("assets", {"id": asset["id"]}, {"status": "assigned", "user_id": user_id, "assigned_on": ctx.today})
    return {"tag": asset["tag"], "model": asset["model"], "user_name": user["name"], "assigned_on": ctx.today}


@tool(kind="mutation")
def return_asset(ctx: ToolContext, tag: Code, condition: Literal["good", "damaged"]) -> dict[str, Any]:
    """Take an assigned asset back from its user: back in stock if good, into repair if damaged.

    Args:
        tag: the asset tag, e.g. LT-0003
        condition: good (goes back in stock) or damaged (goes to repair)
    """
    asset = _asset(ctx, tag)
    if asset["status"] != "assigned":
        raise ToolError(f"asset {asset['tag']} is {asset['status'].replace('_', ' ')}, not assigned to anyone")
    status = "in_stock" if condition == "good" else "in_repair"
    ctx.update("assets", {"id": asset["id"]}, {"status": status, "user_id": None, "assigned_on": None})
    return {"tag": asset["tag"], "status": status, "previous_user_id": asset["user_id"]}


@tool(kind="mutation")
def set_agent_duty(ctx: ToolContext, agent_id: Id, on_duty: bool) -> dict[str, Any]:
    """Put an agent on duty or take them off duty.

    Args:
        agent_id: the agent's id (from find_agents)
        on_duty: true to put the agent on duty, false to take them off
    """
    agent = _agent(ctx, agent_id)
    if bool(agent["on_duty"]) == on_duty:
        raise ToolError(f"agent {agent['name']} is already {'on' if on_duty else 'off'} duty")
    ctx.update("agents", {"id": agent_id}, {"on_duty": on_duty})
    return {"agent_id": agent_id, "name": agent["name"], "on_duty": on_duty}
