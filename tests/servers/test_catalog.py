"""Every bundled environment meets the catalog's bar, and every scenario of it behaves.

Per environment: at least 4 tables, 15 tools (9 queries and 7 mutations), 5 rules, 10
authored and 40 procedural scenarios, a title and a description, a description for every
tool parameter, a manifest listing its rules and tools, user docs naming every table,
tool, rule and authored scenario, and procedural step makers (synth.py) for 5
or more mutation tools that are deterministic and, on the state the procedural scenarios
start from, yield calls that succeed and change the state (but for the library's, which may
propose a call that a rule refuses).
Per scenario: the oracle runs without an error result, replays to the same state,
its queries never change state, and an authored task needs look-ups and two or more
mutations. What the checks reward is the quality gate's job (`envfarm check`, in CI).

An imported environment (its package names a ``SOURCE``: tau2-bench's retail and airline)
brings its benchmark's tools, policy and tasks as they are: it is held to what the import can
promise (tables, described parameters, docs naming its tables, tools and rules, oracles that
replay identically, queries that never write), not to the counts, look-ups and procedural
scenarios of an authored environment. An oracle call it marks ``refused`` must be refused.

What only one environment does (its rules, charges, look-ups, bad input) is tested in
its own test_<env>.py.
"""

from __future__ import annotations

import importlib
import random

import pytest
from conftest import REPO

from envfarm.core.environments import Environment, discover, load_environment
from envfarm.core.episodes import Episode, EpisodeStore
from envfarm.core.scenarios import Scenario
from envfarm.core.synth import StepMaker
from envfarm.generator.procedural import load_steps

BUNDLED = sorted(p.parent.name for p in (REPO / "servers").glob("*/__init__.py"))
ENVS = {env_id: load_environment(env_id) for env_id in BUNDLED}
SCENARIOS = [(env_id, s) for env_id, env in ENVS.items() for s in sorted(env.scenarios)]
IMPORTED = {e for e in BUNDLED if hasattr(importlib.import_module(f"envfarm.servers.{e}"), "SOURCE")}
AUTHORED = [e for e in BUNDLED if e not in IMPORTED]


def test_the_bundled_envs_are_the_discovered_ones() -> None:
    assert set(BUNDLED) <= set(discover())
    assert len(BUNDLED) >= 1


@pytest.mark.parametrize("env_id", BUNDLED)
def test_env_meets_the_catalog_bar(env_id: str) -> None:
    env = ENVS[env_id]
    kinds = [t.kind for t in env.tools.values()]
    authored = [s for s in env.scenarios if not s.startswith("synth-")]
    assert len(env.metadata.tables) >= 4
    assert set(kinds) == {"query", "mutation"}
    for tool in env.tools.values():
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), f"{env.id}.{tool.name}: parameter {name!r} has no description"
    if env_id in IMPORTED:  # the benchmark's own tools, rules and tasks
        assert env.rules and len(env.scenarios) >= 10
        return
    assert len(env.tools) >= 15
    assert kinds.count("query") >= 9 and kinds.count("mutation") >= 7
    assert len(env.rules) >= 5
    assert len(authored) >= 10
    assert len(env.scenarios) - len(authored) >= 40


@pytest.mark.parametrize("env_id", BUNDLED)
def test_package_has_a_title_a_description_and_documented_tables(env_id: str) -> None:
    env = ENVS[env_id]
    assert env.title and len(env.description) > 200
    doc = (REPO / "docs" / "environments" / f"{env_id}.md").read_text(encoding="utf-8")
    missing = sorted(t for t in env.metadata.tables if f"`{t}`" not in doc)
    assert not missing, f"docs/environments/{env_id}.md does not describe the table(s) {missing}"


@pytest.mark.parametrize("env_id", BUNDLED)
def test_manifest_lists_the_rules_and_tools(env_id: str) -> None:
    env = ENVS[env_id]
    manifest = env.manifest()
    assert {r["id"] for r in manifest["rules"]} == set(env.rules)
    assert [t["name"] for t in manifest["tools"]] == list(env.tools)


@pytest.mark.parametrize("env_id", BUNDLED)
def test_user_docs_cover_every_tool_rule_and_scenario(env_id: str) -> None:
    env = ENVS[env_id]
    doc = (REPO / "docs" / "environments" / f"{env_id}.md").read_text(encoding="utf-8")
    authored = [s for s in env.scenarios if not s.startswith("synth-")]  # procedural ones are counted, not listed
    if env_id in IMPORTED:
        authored = []  # a benchmark's tasks, by the hundred: the docs page says where they come from
    missing = [name for name in [*env.tools, *env.rules, *authored] if f"`{name}`" not in doc]
    assert not missing, f"docs/environments/{env_id}.md does not mention {missing}"


def run_oracle(env: Environment, scenario_id: str) -> tuple[Episode, list[tuple[str, bool]]]:
    """Run the oracle; return the episode and (tool, whether it wrote to the database) per call."""
    episode = Episode(env, env.scenarios[scenario_id], "catalog")
    wrote = []
    for i, call in enumerate(env.scenarios[scenario_id].oracle):
        before = episode.serialize()  # the bytes, not the hash: far cheaper on a large state
        result = episode.call(call.tool, call.arguments)
        if call.refused:
            assert not result.ok, f"{env.id}/{scenario_id} oracle[{i}] ({call.tool}) is marked refused but succeeds"
        else:
            assert result.ok, f"{env.id}/{scenario_id} oracle[{i}] ({call.tool}): {result.error}"
        wrote.append((call.tool, episode.serialize() != before))
    return episode, wrote


@pytest.mark.parametrize(("env_id", "scenario_id"), SCENARIOS)
def test_oracle_runs_clean_and_replays_identically(env_id: str, scenario_id: str) -> None:
    env = ENVS[env_id]
    first, wrote = run_oracle(env, scenario_id)
    again, _ = run_oracle(env, scenario_id)
    assert first.serialize() == again.serialize() or first.state_hash() == again.state_hash()
    for tool, changed in wrote:
        if env.tools[tool].kind == "query":
            assert not changed, f"query {tool} wrote to the database"
    oracle = env.scenarios[scenario_id].oracle
    if not scenario_id.startswith("synth-") and env_id not in IMPORTED:
        kinds = [env.tools[c.tool].kind for c in oracle]
        assert kinds.count("query") >= 1 and kinds.count("mutation") >= 2, "a task needs look-ups and 2+ mutations"


# --- procedural steps (synth.py) -------------------------------------------------------------------


def steps_of(env: Environment) -> dict[str, StepMaker]:
    """The env's step makers, or none (test_synth_covers_enough_mutation_tools then says why)."""
    try:
        return load_steps(env)
    except ValueError:
        return {}


def synth_start(env: Environment) -> Scenario:
    """A procedural scenario of the env: it starts from the state and clock its step makers work on."""
    return env.scenarios[next(s for s in sorted(env.scenarios) if s.startswith("synth-"))]


STEPS = {env_id: steps_of(env) for env_id, env in ENVS.items()}
SEEDS = range(5)
# The library's makers may propose a call that a rule then refuses: "The walker drops a step whose call a
# rule refuses, so makers prefer rows that satisfy the rules but need not prove it" (servers/library/synth.py).
MAY_BE_REFUSED = {"library"}
MAKERS = [pytest.param(env_id, tool, id=f"{env_id}-{tool}") for env_id in AUTHORED for tool in sorted(STEPS[env_id])]
SYNTH_STEPS = [
    pytest.param(env_id, tool, seed, id=f"{env_id}-{tool}-seed{seed}")
    for env_id in AUTHORED
    if env_id not in MAY_BE_REFUSED
    for tool in sorted(STEPS[env_id])
    for seed in SEEDS
]


@pytest.mark.parametrize("env_id", AUTHORED)
def test_synth_covers_enough_mutation_tools(env_id: str) -> None:
    env = ENVS[env_id]
    steps = load_steps(env)
    assert len(steps) >= 5, f"{env_id}/synth.py has step makers for {sorted(steps)} only"
    assert all(env.tools[name].kind == "mutation" for name in steps)


@pytest.mark.parametrize(("env_id", "tool", "seed"), SYNTH_STEPS)
def test_synth_step_succeeds_on_the_base_state(store: EpisodeStore, env_id: str, tool: str, seed: int) -> None:
    env = ENVS[env_id]
    episode = store.create(env, synth_start(env))
    step = STEPS[env_id][tool](episode.view(), random.Random(seed))
    assert step is not None, f"{env_id}: the {tool} maker found nothing to do"
    request = step.request
    assert request and request == request.strip(), repr(request)
    assert "{" not in request, f"an unfilled template: {request!r}"
    assert "id" not in request.lower().split(), f"a request names things, never internal ids: {request!r}"
    for lookup in step.lookups:
        looked = episode.call(lookup.tool, lookup.arguments)
        assert looked.ok, f"look-up {lookup.tool}({lookup.arguments}): {looked.error}"
    before = episode.state_hash()
    result = episode.call(tool, dict(step.arguments))
    assert result.ok, f"{request}: {tool}({step.arguments}): {result.error}"
    assert episode.state_hash() != before, f"{request}: {tool}({step.arguments}) changed nothing"


@pytest.mark.parametrize(("env_id", "tool"), MAKERS)
def test_synth_is_deterministic(store: EpisodeStore, env_id: str, tool: str) -> None:
    env = ENVS[env_id]
    view = store.create(env, synth_start(env)).view()
    first, second = (STEPS[env_id][tool](view, random.Random(7)) for _ in range(2))
    assert first is not None and second is not None
    assert (first.arguments, first.request, first.lookups) == (second.arguments, second.request, second.lookups)
