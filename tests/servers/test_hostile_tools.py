"""Hostile arguments to every tool of every environment, sent as the MCP endpoint sends them: ``Episode.call``.

Each tool of each bundled environment (and of the ``notes`` fixture) gets, one parameter at a time and the
others taken from a call that works (an oracle's, or made up from the schema): very long strings, lone
surrogates, NUL and LIKE wildcards, deep nesting, wrong types, huge arrays, huge and negative integers, floats
where integers are expected; and, per tool, unknown extra arguments, null for every parameter, no arguments,
arguments that are not an object. A call is answered cleanly when:

- it returns a result, never raises, and is not ``crashed`` (a bug in the tool, not in the call);
- nothing is logged with a traceback;
- a refused call, or any query, leaves the state as it was (same state hash);
- its answer can go on the wire (its text encodes as UTF-8: no lone surrogate echoed back raw).

One episode per environment, reset after a call that changed the state. The counts (cases sent, answered
cleanly, refusals that repeat a huge argument back) are printed at the end of the module's run.

Also here, for item 5 of the hardening issue: every string parameter of every bundled tool is bounded in its
schema, and a 50,000-character argument is refused by validation, naming the argument, before the tool runs.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from conftest import REPO

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode
from envfarm.core.scenarios import Scenario

BUNDLED = sorted(p.parent.name for p in (REPO / "servers").glob("*/__init__.py"))
ENV_IDS = [*BUNDLED, "notes"]  # notes: the fixture environment, found through ENVFARM_ENV_PATH (tests/conftest.py)

HUGE = 50_000
ECHO_LIMIT = 2_500  # a refusal longer than this repeats (part of) a huge argument back to the agent


def _nested_lists(depth: int) -> list[Any]:
    root: list[Any] = []
    node = root
    for _ in range(depth - 1):
        child: list[Any] = []
        node.append(child)
        node = child
    return root


def _nested_objects(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth - 1):
        child: dict[str, Any] = {}
        node["a"] = child
        node = child
    return root


# Every parameter gets each of these, whatever its type. Nesting stays as deep as JSON parsers deliver
# (pydantic's stops at 200 levels, json.loads near 1,000); deeper is test_very_deep_nesting_in_process.
ANY_PARAMETER: list[tuple[str, Any]] = [
    ("null", None),
    ("true", True),
    ("empty array", []),
    ("empty object", {}),
    ("array of 10,000", [0] * 10_000),
    ("lists nested 900 deep", _nested_lists(900)),
    ("objects nested 190 deep", _nested_objects(190)),
    ("50,000 characters", "x" * HUGE),
    ("1,000,000 characters", "y" * 1_000_000),
    ("50,000 two-byte characters", "é" * HUGE),
    ("50,000 LIKE wildcards", "%_" * (HUGE // 2)),
    ("lone surrogate", "\ud800"),
    ("lone surrogate in text", "B-\udfff7"),
    ("NUL", "a\x00b"),
    ("SQL", "'; DROP TABLE x; --"),
    ("LIKE wildcards", "%_\\"),
    ("empty string", ""),
    ("blanks", " \t\n"),
    ("emoji", "🙂" * 60),
    ("right-to-left override", "\u202egnp.exe"),
    ("integer-looking string", "1"),
    ("2**63", 2**63),
    ("2**64", 2**64),
    ("-2**63 - 1", -(2**63) - 1),
    ("10**100", 10**100),
    ("-1", -1),
    ("0", 0),
    ("largest SQLite integer", 2**63 - 1),
    ("1.0", 1.0),
    ("1.5", 1.5),
    ("-0.5", -0.5),
    ("1e308", 1e308),
    ("NaN", float("nan")),
    ("infinity", float("inf")),
]


# JSON Schema's "integer" admits 1.0; Episode hands the tool an int (money() could not format a float).
WHOLE_FLOATS = {
    ("bank", "set_card_daily_limit", "daily_limit_cents = 1.0"),
    ("car_rental", "record_payment", "amount_cents = 1.0"),
}


@dataclass
class Tally:
    """What the module sent, and how it was answered."""

    sent: int = 0
    clean: int = 0
    refused: int = 0
    echoing: int = 0  # refusals longer than ECHO_LIMIT: they repeat a huge argument back
    per_env: dict[str, tuple[int, int]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Tally]:
    counts = Tally()
    yield counts
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(
            f"\nhostile tool calls: {counts.sent} sent, {counts.clean} answered cleanly, {counts.refused} refused "
            f"({counts.echoing} of them repeat a huge argument back)"
        )
        for env, (sent, clean) in sorted(counts.per_env.items()):
            print(f"  {env}: {sent} sent, {clean} clean")


ENVS: dict[str, Environment] = {}


def env_of(env_id: str) -> Environment:
    if env_id not in ENVS:
        ENVS[env_id] = load_environment(env_id)
    return ENVS[env_id]


def start_scenario(env: Environment) -> Scenario:
    """The first authored scenario: the state most oracles' arguments fit."""
    authored = sorted(s for s in env.scenarios if not s.startswith("synth-"))
    return env.scenarios[(authored or sorted(env.scenarios))[0]]


def made_up(schema: dict[str, Any], scenario: Scenario) -> Any:
    """A plausible value for a parameter schema, for a tool no oracle calls."""
    branches = [b for b in schema.get("anyOf", [schema]) if b.get("type") != "null"]
    branch = branches[0] if branches else schema
    if "enum" in branch:
        return branch["enum"][0]
    kind = branch.get("type")
    if kind == "string":
        if branch.get("format") == "date":
            return scenario.clock.date().isoformat()
        if branch.get("format") == "date-time":
            return scenario.clock.isoformat()
        if branch.get("format") == "email":
            return "someone@example.com"
        return "19:30" if "pattern" in branch else "x"
    if kind == "integer":
        return max(1, branch.get("minimum", 1), branch.get("exclusiveMinimum", 0) + 1)
    if kind == "number":
        return 1.0
    if kind == "boolean":
        return False
    return None


def working_arguments(env: Environment, scenario: Scenario) -> dict[str, dict[str, Any]]:
    """Per tool, arguments of a call that works: an oracle's (its own state's first), else made up."""
    same = [s for s in env.scenarios.values() if s.state == scenario.state]
    others = [s for s in env.scenarios.values() if s.state != scenario.state]
    found: dict[str, dict[str, Any]] = {}
    for s in [scenario, *same, *others]:
        for call in s.oracle:
            found.setdefault(call.tool, dict(call.arguments))
    for name, spec in env.tools.items():
        if name not in found:
            schema = spec.input_schema
            found[name] = {p: made_up(schema["properties"][p], scenario) for p in schema["required"]}
    return found


def hostile_cases(env: Environment, scenario: Scenario) -> Iterator[tuple[str, Any, str]]:
    """(tool, arguments, what is hostile about them) for every tool of ``env``."""
    base = working_arguments(env, scenario)
    for name, spec in env.tools.items():
        args = base[name]
        properties = spec.input_schema["properties"]
        for param in properties:
            for label, value in ANY_PARAMETER:
                yield name, {**args, param: value}, f"{param} = {label}"
        yield name, {**args, "unknown_argument": 1}, "an unknown extra argument"
        yield name, {**args, "z" * HUGE: 1}, "an unknown argument named with 50,000 characters"
        yield name, {**args, "\ud800": 1}, "an unknown argument named with a lone surrogate"
        yield name, dict.fromkeys(properties), "null for every parameter"
        yield name, {}, "no arguments"
        yield name, None, "arguments null"
        for label, value in [("an array", [args]), ("a string", "x"), ("a number", 7), ("true", True)]:
            yield name, value, f"arguments are {label}"
    yield "no_such_tool", {}, "an unknown tool"
    yield "x" * HUGE, {}, "a tool named with 50,000 characters"


def sendable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_hostile_arguments_are_answered_cleanly(env_id: str, tally: Tally, caplog: pytest.LogCaptureFixture) -> None:
    env = env_of(env_id)
    scenario = start_scenario(env)
    episode = Episode(env, scenario, f"hostile-{env_id}")
    initial_bytes = episode.serialize()
    initial_hash = episode.state_hash()
    sent = clean = 0
    failures: list[str] = []
    caplog.set_level(logging.DEBUG)
    for tool, arguments, what in hostile_cases(env, scenario):
        sent += 1
        records = len(caplog.records)
        # SQLite's count of rows written on the episode's connection, rolled back or not: when it has not moved,
        # nothing was written, which spares copying (and hashing) a large state after most calls.
        writes = episode._db.total_changes
        try:
            result = episode.call(tool, arguments)  # sometimes not a dict, on purpose
        except Exception as e:
            failures.append(f"{tool}({what}): raised {type(e).__name__}: {str(e)[:200]}")
            episode.reset()
            continue
        problems = []
        if result.crashed:
            problems.append(f"crashed: {(result.error or '')[:200]}")
        if any(r.exc_info for r in caplog.records[records:]):
            problems.append("logged a traceback")
        if not sendable(result.text()):
            problems.append(f"its answer has a lone surrogate and cannot be sent: {ascii(result.text()[:200])}")
        kind = env.tools[tool].kind if tool in env.tools else "query"
        if episode._db.total_changes != writes:
            may_not_write = not result.ok or kind == "query"  # then check it left the state as it was
            if may_not_write and episode.serialize() != initial_bytes and episode.state_hash() != initial_hash:
                problems.append("a query changed the state" if result.ok else "refused, but changed the state")
            episode.reset()
        if not result.ok:
            tally.refused += 1
            tally.echoing += len(result.error or "") > ECHO_LIMIT
        if problems:
            failures.append(f"{tool}({what}): {'; '.join(problems)}")
        else:
            clean += 1
    tally.sent += sent
    tally.clean += clean
    tally.per_env[env_id] = (sent, clean)
    assert not failures, f"{len(failures)} of {sent} hostile calls not answered cleanly:\n" + "\n".join(failures[:30])


def test_very_deep_nesting_in_process_is_refused() -> None:
    env = env_of("notes")
    episode = Episode(env, start_scenario(env), "hostile-deep")
    result = episode.call("list_notes", {"folder": _nested_lists(5_000)})
    assert not result.ok and not result.crashed


# --- item 5: every string parameter is bounded -----------------------------------------------------------------

CHECKED_FORMATS = {"date"}  # formats the validator checks (date-time and email are not, or barely)


def string_schemas(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if node.get("type") == "string":
            yield node
        for value in node.values():
            yield from string_schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from string_schemas(value)


def free_text(env: Environment) -> list[tuple[str, str]]:
    """(tool, parameter) for every string parameter that is not an enum or a checked format."""
    return [
        (tool.name, param)
        for tool in env.tools.values()
        for param, schema in tool.input_schema["properties"].items()
        if any(
            "enum" not in s and "const" not in s and s.get("format") not in CHECKED_FORMATS
            for s in string_schemas(schema)
        )
    ]


@pytest.mark.parametrize("env_id", BUNDLED)
def test_every_string_parameter_is_bounded(env_id: str) -> None:
    env = env_of(env_id)
    unbounded = [
        f"{tool.name}.{param}"
        for tool in env.tools.values()
        for param, schema in tool.input_schema["properties"].items()
        for s in string_schemas(schema)
        if "maxLength" not in s and "enum" not in s and "const" not in s and s.get("format") not in CHECKED_FORMATS
    ]
    assert not unbounded, f"{env_id}: string parameters without maxLength: {unbounded}"
    assert free_text(env), f"{env_id} has no free-text parameter: the next test would check nothing"


@pytest.mark.parametrize("env_id", BUNDLED)
def test_a_50000_character_argument_is_refused_by_validation(env_id: str) -> None:
    env = env_of(env_id)
    scenario = start_scenario(env)
    episode = Episode(env, scenario, f"long-{env_id}")
    before = episode.state_hash()
    base = working_arguments(env, scenario)
    for tool, param in free_text(env):
        schema = env.tools[tool].input_schema["properties"][param]
        listed = schema.get("type") == "array"  # a list of strings gets one huge item
        result = episode.call(tool, {**base[tool], param: ["x" * HUGE] if listed else "x" * HUGE})
        error = result.error or ""
        assert not result.ok and not result.crashed, f"{tool}({param}=50,000 characters) was not refused"
        where = f"{param}[0]" if listed else param
        assert error.startswith(f"{tool}: invalid arguments: argument '{where}': "), error[:200]
        assert "is too long" in error or "is not a" in error, error[-200:]  # (an email may fail its format first)
    assert episode.state_hash() == before, "a refused call changed the state"  # nothing reset it in between


def test_the_refusal_of_a_huge_optional_argument_says_it_is_too_long() -> None:
    env = env_of("helpdesk")
    episode = Episode(env, start_scenario(env), "long-optional")
    result = episode.call("search_tickets", {"text": "x" * HUGE})
    assert not result.ok and "is too long" in (result.error or "")


def test_the_refusal_of_a_huge_argument_is_short() -> None:
    env = env_of("library")
    episode = Episode(env, start_scenario(env), "long-refusal")
    result = episode.call("find_member", {"query": "x" * HUGE})
    assert not result.ok and len(result.error or "") < 500, (result.error or "")[:200]


@pytest.mark.parametrize(("env_id", "tool", "what"), sorted(WHOLE_FLOATS))
def test_an_integer_valued_float_reaches_the_tool_as_an_int(env_id: str, tool: str, what: str) -> None:
    env = env_of(env_id)
    scenario = start_scenario(env)
    episode = Episode(env, scenario, f"float-{env_id}")
    param = what.split(" = ")[0]
    result = episode.call(tool, {**working_arguments(env, scenario)[tool], param: 1.0})
    assert not result.crashed, result.error
