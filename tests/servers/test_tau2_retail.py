"""tau2-bench's retail domain on envfarm: what it is made of, and tau2's behaviour where it surprises.

That every call answers tau2's own text, and every verdict is tau2's, is test_tau2_fidelity.py's
(against fixtures computed with tau2's code). Here: the package is tau2's policy, data and tasks,
and the quirks it reproduces, stated plainly. test_catalog.py covers what every environment must do.
"""

from __future__ import annotations

import json
import sqlite3

import pytest

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode
from envfarm.servers import tau2_retail
from envfarm.servers.tau2_retail import tau2db

BASE = "0"


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("tau2_retail")


def stored(episode: Episode, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Rows of the episode's database (its bytes, opened apart)."""
    db = sqlite3.connect(":memory:")
    db.deserialize(episode.serialize())
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


# --- the package: tau2's policy, data and tasks ----------------------------------------------------


def test_the_description_is_tau2s_policy_and_the_rules_its_sections(env: Environment) -> None:
    assert env.description.startswith("# Retail agent policy\n")
    assert "## Cancel pending order" in env.description
    assert list(env.rules) == [
        "retail-agent-policy",
        "domain-basic",
        "generic-action-rules",
        "cancel-pending-order",
        "modify-pending-order",
        "return-delivered-order",
        "exchange-delivered-order",
    ]
    assert env.rules["cancel-pending-order"].startswith("An order can only be cancelled if its status is 'pending'")


def test_the_source_names_the_commit_and_each_file(env: Environment) -> None:
    source = tau2_retail.SOURCE
    assert source["repository"] == "sierra-research/tau2-bench" and source["license"] == "MIT"
    assert source["commit"] == "a2c024725189473d2d7cea3a5cfdbcc67478e41f"
    files = {f["path"]: f for f in source["files"]}  # type: ignore[attr-defined]
    assert files["data/tau2/domains/retail/db.json"]["git_blob"] == "4d67b03b2d39ade5a7ab6facb2edd7ab3e013d48"
    assert set(files) == {
        f"data/tau2/domains/retail/{n}" for n in ("db.json", "tasks.json", "split_tasks.json", "policy.md")
    }


def test_the_tables_hold_tau2s_database(env: Environment) -> None:
    view = env.initial_view(BASE)
    assert {t: len(view[t]) for t in ("products", "variants", "users", "orders")} == {
        "products": 50,
        "variants": 591,
        "users": 500,
        "orders": 1000,
    }
    db = tau2db.database(view)
    order = db["orders"]["#W2611340"]  # the first order of db.json, as tau2 dumps it (defaults included)
    assert list(order) == [
        "order_id",
        "user_id",
        "address",
        "items",
        "status",
        "fulfillments",
        "payment_history",
        *tau2db.ORDER_OPTIONAL,
    ]
    assert order["payment_history"] == [
        {"transaction_type": "payment", "amount": 536.65, "payment_method_id": "gift_card_1725971"}
    ]
    assert tau2db.database({t: tau2db.rows(db)[t] for t in view}) == db  # rows -> tau2 -> rows -> tau2


def test_every_task_is_a_scenario_scored_on_the_database(env: Environment) -> None:
    assert sorted(env.scenarios, key=int) == [str(i) for i in range(114)]
    splits = [s.split for s in env.scenarios.values()]
    assert splits.count("train") == 74 and splits.count("test") == 40
    assert all([c.kind for c in s.checks] == ["oracle_state"] for s in env.scenarios.values())
    assert sum(bool(s.unscored) for s in env.scenarios.values()) == 40  # NL assertions: an LLM judges them in tau2
    first = env.scenarios["0"]
    assert first.task.startswith("You received your order #W2378156 and wish to exchange")
    assert first.user is not None and first.user.knows == "You are Yusuf Rossi in zip code 19122."
    assert first.user.does_not_know == "You do not remember your email address."
    assert [c.tool for c in first.oracle][-1] == "exchange_delivered_order_items"


def test_a_gold_call_that_tau2_refuses_is_marked_refused(env: Environment) -> None:
    oracle = env.scenarios["47"].oracle  # the user gives two wrong order ids first
    assert [c.refused for c in oracle] == [False, True, True, False, False, False, False]


# --- answers as tau2 words them --------------------------------------------------------------------


def test_answers_are_tau2s_json_and_errors_its_words(env: Environment) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    found = episode.call("find_user_id_by_name_zip", {"first_name": "YUSUF", "last_name": "rossi", "zip": "19122"})
    assert found.ok and found.text() == "yusuf_rossi_9620"
    order = episode.call("get_order_details", {"order_id": "#W2378156"})
    assert order.text().startswith('{"order_id": "#W2378156", "user_id": "yusuf_rossi_9620", "address": {')
    before = episode.state_hash()
    missing = episode.call("get_order_details", {"order_id": "#W0000000"})
    assert not missing.ok and missing.text() == "Error: Order not found" and missing.rule is None
    refused = episode.call("cancel_pending_order", {"order_id": "#W2378156", "reason": "no longer needed"})
    assert refused.text() == "Error: Non-pending order cannot be cancelled" and refused.rule == "cancel-pending-order"
    assert episode.state_hash() == before


@pytest.mark.parametrize(
    ("expression", "answer"),
    [("622.12 + 473.43", "1095.55"), ("2 ** 0.5", "1.41"), ("10 // 3", "3.0"), (" 0.1 + 0.2", "0.3")],
)
def test_calculate_is_pythons_arithmetic_rounded_to_cents(env: Environment, expression: str, answer: str) -> None:
    assert Episode(env, env.scenarios[BASE], "t").call("calculate", {"expression": expression}).text() == answer


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        ("1/0", "Error: division by zero"),
        ("2 + x", "Error: Invalid characters in expression"),
        ("1 2", "Error: invalid syntax (<string>, line 1)"),
        ("9 ** 9 ** 9", "Error: int too large to convert to float"),
    ],
)
def test_calculate_fails_with_pythons_words(env: Environment, expression: str, error: str) -> None:
    result = Episode(env, env.scenarios[BASE], "t").call("calculate", {"expression": expression})
    assert not result.ok and result.text() == error


# --- tau2's quirks that change the state -----------------------------------------------------------


def test_modifying_items_prices_every_line_at_the_last_new_item_and_keeps_the_difference_unrounded(
    env: Environment,
) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    order = json.loads(episode.call("get_order_details", {"order_id": "#W6779827"}).text())  # pending, 4 items
    assert order["status"] == "pending"
    lines = order["items"][:2]
    new = []
    for line in lines:
        product = json.loads(episode.call("get_product_details", {"product_id": line["product_id"]}).text())
        new.append(next(v for k, v in product["variants"].items() if v["available"] and k != line["item_id"]))
    method = order["payment_history"][0]["payment_method_id"]
    arguments = {
        "order_id": "#W6779827",
        "item_ids": [line["item_id"] for line in lines],
        "new_item_ids": [v["item_id"] for v in new],
        "payment_method_id": method,
    }
    modified = json.loads(episode.call("modify_pending_order_items", arguments).text())
    assert modified["status"] == "pending (item modified)"
    assert [i["item_id"] for i in modified["items"][:2]] == arguments["new_item_ids"]
    assert [i["price"] for i in modified["items"][:2]] == [new[-1]["price"]] * 2  # the last new item's price
    assert [i["options"] for i in modified["items"][:2]] == [new[-1]["options"]] * 2
    difference = 0.0
    for line, variant in zip(lines, new, strict=True):
        difference += variant["price"] - line["price"]
    payment = modified["payment_history"][-1]
    assert payment["amount"] == abs(difference)  # unrounded, as tau2 records it
    assert payment["transaction_type"] == ("payment" if difference > 0 else "refund")


def test_an_exchange_of_nothing_stores_the_integer_zero_tau2_stores(env: Environment) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    arguments = {
        "order_id": "#W2378156",
        "item_ids": [],
        "new_item_ids": [],
        "payment_method_id": "credit_card_9513926",
    }
    answer = episode.call("exchange_delivered_order_items", arguments)
    assert answer.ok and '"exchange_price_difference": 0,' in answer.text()
    stored_as = stored(episode, "SELECT typeof(exchange_price_difference) FROM orders WHERE order_id = '#W2378156'")
    assert stored_as == [("integer",)]
    assert tau2db.database(episode.view())["orders"]["#W2378156"]["exchange_price_difference"] == 0


def test_the_address_of_an_order_with_modified_items_can_still_change(env: Environment) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    order = json.loads(episode.call("get_order_details", {"order_id": "#W6779827"}).text())
    line = order["items"][0]
    product = json.loads(episode.call("get_product_details", {"product_id": line["product_id"]}).text())
    others = [v for k, v in product["variants"].items() if v["available"] and k != line["item_id"]]
    other = min(others, key=lambda v: v["price"])["item_id"]  # a refund: the gift card need not cover it
    method = order["payment_history"][0]["payment_method_id"]
    arguments = {"order_id": "#W6779827", "item_ids": [line["item_id"]], "new_item_ids": [other]}
    assert episode.call("modify_pending_order_items", {**arguments, "payment_method_id": method}).ok
    address = {
        "address1": "1 Main St",
        "address2": "",
        "city": "Austin",
        "state": "TX",
        "country": "USA",
        "zip": "78701",
    }
    assert episode.call("modify_pending_order_address", {"order_id": "#W6779827", **address}).ok  # "pending" in it
    again = episode.call("modify_pending_order_items", {**arguments, "payment_method_id": method})
    assert again.text() == "Error: Non-pending order cannot be modified"  # needs "pending" exactly
