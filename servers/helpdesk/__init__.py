"""IT helpdesk: users, agents, tickets with SLA due times, comments and hardware assets.

Harbor Logistics' internal IT service desk. Staff (users) in several departments
raise tickets; support agents with skills per ticket category work them while on
duty. Tickets carry an SLA due time derived from their priority, and laptops and
phones are tracked by asset tag. The tools enforce the desk's rules (below) and
name the rule when they refuse a call.
"""

TITLE = "IT helpdesk"

DESCRIPTION = (
    "You are the IT service desk assistant of Harbor Logistics. Staff members (users, each in a "
    "department) raise tickets in five categories (hardware, software, network, access, email) with "
    "a priority (low, medium, high, critical); tickets move through new, assigned, in_progress, "
    "resolved and closed, and each has a number such as HD-1004 and an SLA due time computed from "
    "its priority (critical 4 hours, high 8, medium 24, low 72 after it was opened). Support agents "
    "have skills (the categories they handle) and are on or off duty. Assets (laptops, phones, "
    "monitors) are identified by tags such as LT-0003 and may be assigned to a user. Use the tools to "
    "look users, agents, tickets and assets up by name, number or tag, then open, assign, work, "
    "comment on, escalate, resolve, close and reopen tickets, hand out and take back assets, and put "
    "agents on or off duty. Times are ISO date-times in UTC and the current time is the desk's clock. "
    "Money (asset costs) is in integer cents. The tools refuse anything the desk's rules forbid and "
    "say which rule; explain such a refusal rather than working around it."
)

RULES = {
    "sla-due-time": (
        "A ticket's due time is its opening time plus the SLA hours of its priority: critical 4, high 8, "
        "medium 24, low 72; it is set when the ticket is opened and recomputed whenever the priority changes."
    ),
    "assign-on-duty": "A ticket can only be assigned to an agent who is currently on duty.",
    "assign-skill": "A ticket can only be assigned to an agent who has the skill for the ticket's category.",
    "resolution-note-required": "A ticket can only be resolved with a non-empty resolution note.",
    "reopen-window": "A resolved or closed ticket can be reopened only within 7 days of its resolution.",
    "one-laptop-per-user": "A user may hold at most one laptop at a time.",
    "escalation-raises-priority": (
        "An escalation must raise a ticket's priority (low < medium < high < critical) and state a "
        "reason; resolved and closed tickets cannot be escalated."
    ),
    "status-flow": (
        "Tickets move new, assigned, in_progress, resolved, closed: work starts only on an assigned ticket, "
        "only an assigned or in-progress ticket can be resolved, and only a resolved ticket can be closed."
    ),
    "asset-available": "Only an asset that is in stock (not assigned, in repair or retired) can be assigned to a user.",
}
