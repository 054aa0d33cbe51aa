"""tau2-bench's tasks pass the quality gate, with what the scenario format gained for them.

A task whose right outcome is no change (an empty oracle, or look-ups only), an oracle that makes
calls tau2's tools refuse (marked ``refused``), a reward that is "the oracle's final state": the gate
must take them as they are, and still catch what it exists to catch. And the importer's parts that
need no tau2 checkout.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import REPO

from envfarm.core.environments import Environment, load_environment
from envfarm.core.scenarios import ID_PATTERN, Check, OracleCall, Scenario
from envfarm.validators.gate import _mutants, gate_scenario
from envfarm.validators.sandbox import SandboxPool


@pytest.fixture
async def pool() -> AsyncIterator[SandboxPool]:
    async with SandboxPool(1) as running:
        yield running


@pytest.fixture(scope="module")
def retail() -> Environment:
    return load_environment("tau2_retail")


@pytest.fixture(scope="module")
def airline() -> Environment:
    return load_environment("tau2_airline")


@pytest.mark.parametrize(
    ("scenario_id", "what"),
    [
        ("0", "an exchange"),
        ("10", "look-ups only: no change"),
        ("64", "a refused exchange, then the right modification"),
        ("105", "a refused exchange only: no change"),
    ],
)
async def test_retail_tasks_pass_the_gate(retail: Environment, pool: SandboxPool, scenario_id: str, what: str) -> None:
    report = await gate_scenario(retail, retail.scenarios[scenario_id], pool)
    assert report.passed, f"{what}: {report.reasons}"
    if scenario_id in ("10", "105"):
        assert report.numbers["changed_rows"] == 0 and report.numbers["mutants"] == 0
    else:
        assert report.numbers["mutants"] == report.numbers["mutants_caught"] > 0


async def test_an_airline_task_with_no_gold_action_passes_the_gate(airline: Environment, pool: SandboxPool) -> None:
    scenario = airline.scenarios["0"]
    assert scenario.oracle == []
    report = await gate_scenario(airline, scenario, pool)
    assert report.passed, report.reasons
    assert report.numbers["false_at_start"] == 0  # the db check holds from the start, and must keep holding


def variant(env: Environment, base: str, **changes: Any) -> Scenario:
    scenario = env.scenarios[base].model_copy(update={"id": f"variant-{len(env.scenarios)}", **changes})
    env.add_scenario(scenario)
    return scenario


async def test_an_unmarked_refused_call_and_a_marked_one_that_succeeds_both_fail(
    retail: Environment, pool: SandboxPool
) -> None:
    oracle = retail.scenarios["47"].oracle
    unmarked = variant(retail, "47", oracle=[OracleCall(tool=c.tool, arguments=c.arguments) for c in oracle])
    marked = variant(
        retail, "47", oracle=[OracleCall(tool=c.tool, arguments=c.arguments, refused=True) for c in oracle]
    )
    try:
        unmarked_reasons = (await gate_scenario(retail, unmarked, pool)).reasons
        marked_reasons = (await gate_scenario(retail, marked, pool)).reasons
    finally:
        retail.remove_scenario(unmarked.id)
        retail.remove_scenario(marked.id)
    assert unmarked_reasons == [
        "oracle step 1 (get_order_details) returns an error: Error: Order not found",
        "oracle step 2 (get_order_details) returns an error: Error: Order not found",
    ]
    assert "oracle step 0 (find_user_id_by_name_zip) is marked refused, but it succeeds" in marked_reasons


async def test_an_oracle_state_check_marked_preserve_needs_an_oracle_that_changes_nothing(
    retail: Environment, pool: SandboxPool
) -> None:
    scenario = variant(
        retail, "0", checks=[Check(id="db", description="as the oracle leaves it", kind="oracle_state", preserve=True)]
    )
    try:
        report = await gate_scenario(retail, scenario, pool)
    finally:
        retail.remove_scenario(scenario.id)
    assert report.reasons == ["check 'db' is marked preserve, but the oracle changes the state"]


async def test_a_mutant_that_reaches_the_oracles_state_is_not_counted(retail: Environment, pool: SandboxPool) -> None:
    """Setting a user's address to the one they have changes nothing: dropping that step is the same outcome."""
    user = next(u for u in retail.initial_view("0")["users"] if u["user_id"] == "yusuf_rossi_9620")
    address = {k: user[k] for k in ("address1", "address2", "city", "state", "country", "zip")}
    oracle = [OracleCall(tool="modify_user_address", arguments={"user_id": "yusuf_rossi_9620", **address})]
    scenario = variant(retail, "0", oracle=oracle)
    try:
        report = await gate_scenario(retail, scenario, pool)
    finally:
        retail.remove_scenario(scenario.id)
    assert report.passed, report.reasons
    assert len(_mutants(retail.tools, scenario, retail.initial_view("0"))) == report.numbers["mutants"] + 1
    assert report.numbers["mutants"] == report.numbers["mutants_caught"] > 0


# --- the importer, without a tau2 checkout ----------------------------------------------------------


def importer() -> ModuleType:
    spec = importlib.util.spec_from_file_location("import_tau2", REPO / "scripts" / "import_tau2.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["import_tau2"] = module
    spec.loader.exec_module(module)
    return module


def test_the_policy_becomes_rules_by_section() -> None:
    rules = importer().policy_rules(
        "# Shop policy\n\nBe nice.\n\n## Returns\n\nWithin 30 days.\n\n### Items\n\nUnused.\n"
    )
    assert rules == {"shop-policy": "Be nice.", "returns": "Within 30 days.\n\n### Items\n\nUnused."}


def test_a_task_id_envfarm_does_not_admit_is_renamed_reversibly() -> None:
    module = importer()
    assert module.scenario_id("17", ID_PATTERN) == "17"
    renamed = module.scenario_id("[mobile_data]airplane_mode_on|roaming", ID_PATTERN)
    assert renamed.startswith("mobile-data-airplane-mode-on-roaming-") and len(renamed) <= 64
    assert renamed != module.scenario_id("[mobile_data]airplane_mode_on|roaming2", ID_PATTERN)


def test_a_task_becomes_a_scenario_as_its_reward_basis_says() -> None:
    task = {
        "id": "3",
        "user_scenario": {
            "persona": None,
            "instructions": {
                "domain": "airline",
                "reason_for_call": "I want a refund.",
                "known_info": "You are Ann.",
                "unknown_info": None,
                "task_instructions": "Insist.",
            },
        },
        "initial_state": None,
        "evaluation_criteria": {
            "actions": [{"action_id": "3_0", "name": "get_user_details", "arguments": {"user_id": "ann_1"}}],
            "communicate_info": ["1,000", "327"],
            "nl_assertions": ["Agent refuses politely."],
            "reward_basis": ["DB", "COMMUNICATE"],
        },
    }
    scenario = importer().scenario(task, "3", "test")
    assert scenario["task"] == "I want a refund." and scenario["split"] == "test"
    assert scenario["user"] == {"instructions": "Insist.", "knows": "You are Ann."}
    assert [(c["id"], c["kind"], c.get("text")) for c in scenario["checks"]] == [
        ("db", "oracle_state", None),
        ("said-1", "said", "1,000"),
        ("said-2", "said", "327"),
    ]
    assert "unscored" not in scenario  # NL assertions outside the reward basis are not tau2's reward either
    Scenario.model_validate({**scenario, "state": {}})
    with_nl = {**task, "evaluation_criteria": {**task["evaluation_criteria"], "reward_basis": ["DB", "NL_ASSERTION"]}}
    assert importer().scenario(with_nl, "3", None)["unscored"] == ["Agent refuses politely."]


def test_a_git_blob_id_is_gits() -> None:
    assert importer().git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


def test_the_import_records_what_it_read() -> None:
    for domain in ("retail", "airline"):
        source = __import__("json").loads((REPO / "servers" / f"tau2_{domain}" / "tau2.json").read_text())["source"]
        assert source["imported_by"] == "scripts/import_tau2.py"
        assert all(len(f["git_blob"]) == 40 and len(f["sha256"]) == 64 for f in source["files"])
        assert Path(REPO / "servers" / f"tau2_{domain}" / "states" / "base.json").is_file()
