"""Every bundled environment meets the catalog's bar, and every scenario of it behaves.

Per environment: at least 4 tables, 15 tools (queries and mutations), 5 rules, 10
authored and 40 procedural scenarios, and a description for every tool parameter.
Per scenario: the oracle runs without an error result, replays to the same state,
its queries never change state, and an authored task needs look-ups and two or more
mutations. What the checks reward is the quality gate's job (`envfarm check`, in CI).
"""

from __future__ import annotations

import pytest
from conftest import REPO

from envfarm.environments import Environment, discover, load_environment
from envfarm.episodes import Episode

BUNDLED = sorted(p.parent.name for p in (REPO / "servers").glob("*/__init__.py"))
ENVS = {env_id: load_environment(env_id) for env_id in BUNDLED}
SCENARIOS = [(env_id, s) for env_id, env in ENVS.items() for s in sorted(env.scenarios)]


def test_the_bundled_envs_are_the_discovered_ones() -> None:
    assert set(BUNDLED) <= set(discover())
    assert len(BUNDLED) >= 1


@pytest.mark.parametrize("env_id", BUNDLED)
def test_env_meets_the_catalog_bar(env_id: str) -> None:
    env = ENVS[env_id]
    kinds = [t.kind for t in env.tools.values()]
    authored = [s for s in env.scenarios if not s.startswith("synth-")]
    assert len(env.metadata.tables) >= 4
    assert len(env.tools) >= 15 and kinds.count("query") >= 5 and kinds.count("mutation") >= 5
    assert len(env.rules) >= 5
    assert len(authored) >= 10
    assert len(env.scenarios) - len(authored) >= 40
    for tool in env.tools.values():
        for name, prop in tool.input_schema["properties"].items():
            assert prop.get("description"), f"{env.id}.{tool.name}: parameter {name!r} has no description"


def run_oracle(env: Environment, scenario_id: str) -> tuple[Episode, list[tuple[str, str, str]]]:
    """Run the oracle; return the episode and (tool, hash before, hash after) per call."""
    episode = Episode(env, env.scenarios[scenario_id], "catalog")
    hashes = []
    for i, call in enumerate(env.scenarios[scenario_id].oracle):
        before = episode.state_hash()
        result = episode.call(call.tool, call.arguments)
        assert result.ok, f"{env.id}/{scenario_id} oracle[{i}] ({call.tool}): {result.error}"
        hashes.append((call.tool, before, episode.state_hash()))
    return episode, hashes


@pytest.mark.parametrize(("env_id", "scenario_id"), SCENARIOS)
def test_oracle_runs_clean_and_replays_identically(env_id: str, scenario_id: str) -> None:
    env = ENVS[env_id]
    first, hashes = run_oracle(env, scenario_id)
    again, _ = run_oracle(env, scenario_id)
    assert first.state_hash() == again.state_hash()
    for tool, before, after in hashes:
        if env.tools[tool].kind == "query":
            assert before == after, f"query {tool} changed the state"
    oracle = env.scenarios[scenario_id].oracle
    if not scenario_id.startswith("synth-"):
        kinds = [env.tools[c.tool].kind for c in oracle]
        assert kinds.count("query") >= 1 and kinds.count("mutation") >= 2, "a task needs look-ups and 2+ mutations"
