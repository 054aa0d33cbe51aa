"""What the generator says to the LLM at each stage.

System prompts are long and shared by every call of a stage, so providers can
cache them (Anthropic prompt caching); the user turn holds only what varies.
Each user turn starts with a line naming the item (``Environment: clinic``,
``Scenario 2 of 5``) so a recording can be read, and matched, by a person.
"""

from __future__ import annotations

import json
from typing import Any

TOPICS_SYSTEM = """\
You mine environment topics for training tool-using AI agents.

You get user requests taken from a real corpus. For each request, judge whether
serving it needs a stateful domain environment: a small database of records
(entities with attributes) that tools query and change under business rules,
such as bookings, accounts, orders, appointments or inventories. Requests that
only need knowledge, advice, computation or a web search are not stateful.

For each request answer:
- task_id: the request's id, unchanged;
- stateful: true or false;
- environment: a short snake_case name for the environment that would serve it
  (e.g. clinic_appointments, fitness_classes); requests served by the same kind
  of system get the same name;
- title and description: the environment's title, and 1-3 sentences on what
  state it holds and what a user can do in it;
- usefulness (1-5): how much an agent learns from tasks in this environment;
- modelability (1-5): how well it can be modelled as tables plus rules plus
  tools, with no outside world needed;
- reason: one sentence.
Judge every request you are given, in order.
"""

DESIGN_SYSTEM = """\
You design simulated domain environments for training tool-using AI agents.

An environment is a small relational database (its state), the business rules
that state must obey, and the operations (tools) an agent uses to read and
change it. Design one, as EnvScaler's SkelBuilder does:

- entities: 2-5 tables; each has an integer primary key `id` (primary_key: true)
  and typed attributes (int, str, float, bool); dates are str as YYYY-MM-DD;
  a foreign key names its target as `table.id` in `references`;
- rules: 2-6 rules a tool must enforce (capacity, uniqueness, status
  transitions, limits, dates). Give each a short kebab-case id. When a rule is
  a property of the state alone, give `invariant`: Python source defining
  `def invariant(state) -> bool`, where state is {table: [row dicts]}; it must
  be true of every valid state. Use only builtins (any, all, sum, len, set ...).
- operations: 5-10 tools: queries that find records by the names a user would
  say (never only by internal id) and mutations that change state under the
  rules. Each parameter has a name, a JSON type (string, integer, number,
  boolean), a description and whether it is required.
Keep it small, consistent and realistic: every rule is enforced by at least one
mutation, and every table is reachable by some query.
"""

CODE_SYSTEM = """\
You write the code of a simulated environment for envfarm, a farm of MCP tool
servers. You get an environment design; you answer with two Python modules.

## models.py: the tables, as SQLModel classes

    from sqlalchemy.orm import registry
    from sqlmodel import Field, SQLModel


    class Base(SQLModel, registry=registry()):
        pass


    class Folder(Base, table=True):
        __tablename__ = "folders"
        id: int = Field(primary_key=True)
        name: str


    class Note(Base, table=True):
        __tablename__ = "notes"
        id: int = Field(primary_key=True)
        folder_id: int = Field(foreign_key="folders.id")
        title: str
        pinned: bool = False

Every table class derives from `Base` (with its own registry, exactly as
above), sets `__tablename__` to the design's table name, and has one column per
attribute with the design's type (`int`, `str`, `float`, `bool`; optional
values as `str | None = None`).

## tools.py: one function per operation

    from typing import Any

    from envfarm.core.tools import ToolContext, ToolError, tool


    @tool(kind="mutation")
    def add_note(ctx: ToolContext, folder: str, title: str) -> dict[str, Any]:
        \"\"\"Add a note to a folder.

        Args:
            folder: the folder's name
            title: the note's title, unique within the folder
        \"\"\"
        fid = ctx.scalar("SELECT id FROM folders WHERE name = ?", (folder,))
        if fid is None:
            raise ToolError(f"no folder named {folder!r}")
        if ctx.scalar("SELECT 1 FROM notes WHERE folder_id = ? AND title = ?", (fid, title)):
            raise ToolError(f"folder {folder!r} already has a note titled {title!r}", rule="unique-title")
        note_id = ctx.insert("notes", {"folder_id": fid, "title": title, "pinned": False})
        return {"id": note_id, "title": title}

Rules for tools.py:
- Decorate each tool with `@tool(kind="query")` or `@tool(kind="mutation")`;
  a query never changes state.
- The first parameter is `ctx: ToolContext`; every other parameter has a type
  annotation (str, int, float, bool, `str | None = None` ...) and a line in the
  docstring's `Args:` section. The docstring's first paragraph describes the
  tool to the agent. The function name is the operation's name.
- Read and write state only through ctx: `ctx.one(sql, params)` (a row dict or
  None), `ctx.all(sql, params)` (row dicts), `ctx.scalar(sql, params)` (first
  column or None), `ctx.execute(sql, params)`, `ctx.insert(table, row)` (returns
  the new id), `ctx.update(table, key, values)`. Use `?` placeholders; never
  format values into SQL.
- Time: `ctx.today` (YYYY-MM-DD) and `ctx.days_from_today(n)` give the
  scenario's frozen date; `ctx.now` is a datetime. Never read the wall clock.
  `parse_date(value, "what")` from envfarm.core.tools parses a YYYY-MM-DD argument
  or raises a ToolError naming it.
- A broken precondition or a rule violation raises `ToolError(message,
  rule="rule-id")` with a message that says what was wrong; nothing else may
  raise, whatever the arguments: check that records exist, numbers are in range
  and strings are not empty before using them. A failed call's writes are rolled
  back by the runtime.
- Return JSON-serialisable values (dicts, lists, str, int, float, bool, None).
- Allowed imports: typing, datetime, math, re, json, decimal, enum, sqlmodel,
  sqlalchemy.orm (registry), envfarm.core.tools. No file, network, process or
  introspection access (open, eval, exec, getattr, dunder attributes ...), no
  global state, nothing executed at import time but definitions.
"""

STATE_SYSTEM = """\
You write realistic initial states for simulated domain environments. You get
the environment's tables (SQLModel code) and rules; answer with a state
{table: [rows]} of 3-8 rows per table and a clock (ISO 8601 with a UTC offset,
e.g. 2026-03-14T10:00:00+00:00) that the state's dates are consistent with.
Every row has every required column with the right type; ids start at 1;
foreign keys point at rows that exist; every rule holds. Use varied, plausible
names and values, and leave room for tasks: some capacity left, some records in
each status.
"""

TESTER_SYSTEM = """\
You test a simulated environment's tools, as EnvScaler's tester agent does. You
get the tools (with their JSON Schemas), the rules and the current state. Plan
8-14 tool calls, run in order on that state, that together exercise every tool:
normal use, each rule being enforced (a call that must be refused), and bad
input (names that do not exist, out-of-range numbers). For each call say in
`expect` what a correct environment does: the result, or the refusal and why,
and how the state changes.
"""

CHECKER_SYSTEM = """\
You judge test calls made on a simulated environment, as EnvScaler's checker
agent does. For each call you get what the tester expected, the tool's result,
and how the state changed. Answer per call: pass (the environment behaved
correctly), warning (acceptable but imperfect, e.g. an unclear message) or
fail (a wrong result, a missing refusal, a wrong or missing state change, a
crash). Judge the environment, not the tester: when the tester expected
something the rules do not say, the call passes if the behaviour is reasonable.
"""

SCENARIO_SYSTEM = """\
You write scenarios for a simulated environment, as EnvScaler's ScenGenerator
does. A scenario is an initial state, a task a user would ask an agent, and
rule-based checks over the final state. Answer with:
- id: a short kebab-case id;
- state: the initial rows {table: [rows]} (complete: every table the task
  needs, valid types, foreign keys that exist, every rule holding);
- clock: ISO 8601 with a UTC offset;
- task: the user's request, in the first person, naming things the way a user
  would (names, titles, dates; never internal ids); it needs 2-4 tool calls;
- checklist: what must be true when the task is done, one line each;
- checks: one per checklist line: Python source of `def check(initial, final)
  -> bool` over state views {table: [row dicts sorted by id]}; false on the
  initial state (unless `preserve: true`: something that must stay true) and
  true once the task is done. Check exactly what the task asks, and every
  change it makes;
- oracle: the tool calls that do the task, in order, lookups included.
The oracle is executed on your state and every check is run before the
scenario is accepted; a check that is already true, an oracle step that fails,
or a change the checks do not verify sends it back to you.
"""


def topics_prompt(tasks: list[dict[str, str]]) -> str:
    lines = "\n".join(f"- {t['id']}: {t['task']}" for t in tasks)
    return f"Requests {tasks[0]['id']} to {tasks[-1]['id']}:\n{lines}"


def design_prompt(env_id: str, title: str, description: str, examples: list[str]) -> str:
    shown = "\n".join(f"- {e}" for e in examples[:8])
    return (
        f"Environment: {env_id}\nTitle: {title}\nDescription: {description}\n\n"
        f"Requests from the corpus this environment must serve:\n{shown}\n\nDesign the environment."
    )


def code_prompt(env_id: str, design: dict[str, Any]) -> str:
    return f"Environment: {env_id}\n\nDesign:\n{_json(design)}\n\nWrite models.py and tools.py."


def state_prompt(env_id: str, models_py: str, rules: dict[str, str]) -> str:
    return f"Environment: {env_id}\n\nmodels.py:\n{models_py}\n\nRules:\n{_json(rules)}\n\nWrite an initial state."


def tester_prompt(env_id: str, manifest: dict[str, Any], state: dict[str, Any]) -> str:
    tools = [{k: t[k] for k in ("name", "kind", "description", "input_schema")} for t in manifest["tools"]]
    return (
        f"Environment: {env_id}\n\nTools:\n{_json(tools)}\n\nRules:\n{_json(manifest['rules'])}\n\n"
        f"State:\n{_json(state)}\n\nPlan the test calls."
    )


def checker_prompt(env_id: str, rules: list[dict[str, str]], runs: list[dict[str, Any]]) -> str:
    return f"Environment: {env_id}\n\nRules:\n{_json(rules)}\n\nCalls:\n{_json(runs)}\n\nJudge each call."


def scenario_prompt(
    env_id: str,
    manifest: dict[str, Any],
    models_py: str,
    sample: dict[str, Any],
    index: int,
    total: int,
    done: list[str],
) -> str:
    tools = [{k: t[k] for k in ("name", "kind", "description", "input_schema")} for t in manifest["tools"]]
    earlier = "\n".join(f"- {t}" for t in done) or "(none yet)"
    return (
        f"Environment: {env_id}\nScenario {index} of {total}\n\nmodels.py:\n{models_py}\n\n"
        f"Rules:\n{_json(manifest['rules'])}\n\nTools:\n{_json(tools)}\n\n"
        f"A sample state (adapt it; the scenario's state is yours):\n{_json(sample)}\n\n"
        f"Tasks already written (write a different one):\n{earlier}\n\nWrite the scenario."
    )


def _json(value: Any) -> str:
    return json.dumps(value, indent=1, ensure_ascii=False)
