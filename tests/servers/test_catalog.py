"""Every bundled environment meets the catalog's bar and serves its scenarios end to end."""

from __future__ import annotations

import pytest
from conftest import REPO

from envfarm.environments import Environment, discover, load_environment
from envfarm.episodes import Episode

BUNDLED = sorted(p.parent.name for p in (REPO / "servers").glob("*/__init__.py"))


def test_the_bundled_envs_are_the_discovered_ones() -> None:
    assert set(BUNDLED) <= set(discover())
    assert len(BUNDLED) >= 1


@pytest.fixture(params=BUNDLED)
def env(request: pytest.FixtureRequest) -> Environment:
    return load_environment(request.param)


def test_env_meets_the_catalog_bar(env: Environment) -> None:
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


def test_every_oracle_runs_clean(env: Environment) -> None:
    for scenario in env.scenarios.values():
        episode = Episode(env, scenario, "catalog")
        for i, call in enumerate(scenario.oracle):
            result = episode.call(call.tool, call.arguments)
            assert result.ok, f"{env.id}/{scenario.id} oracle[{i}] ({call.tool}): {result.error}"
        episode.close()
