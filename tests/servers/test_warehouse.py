"""The bundled warehouse environment, on the real runtime (no mocks).

Every business rule is triggered and must refuse with its rule id and leave the state
untouched, every stock change writes its movements, purchase orders close when received,
and bad input must come back as an error result. What every environment must do (tables,
docs, procedural steps, scenarios) is tested for all of them in test_catalog.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases, row

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode
from envfarm.core.state import StateView

BASE = "ship-metro-print"  # any scenario on states/base.json with the shared clock (2026-09-07T07:00)
NOW = "2026-09-07T07:00:00+00:00"


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("warehouse")


def stock(view: StateView, product_id: int, bin_id: int) -> int | None:
    return next((s["quantity"] for s in view["stock"] if (s["product_id"], s["bin_id"]) == (product_id, bin_id)), None)


# --- the package -----------------------------------------------------------------------------------


def test_enums_formats_and_bounds_are_in_the_schema(env: Environment) -> None:
    assert env.tools["ship_order"].input_schema["properties"]["carrier"]["enum"] == ["UPS", "FedEx", "DHL"]
    reason = env.tools["adjust_stock"].input_schema["properties"]["reason"]
    assert reason["enum"] == ["damaged", "expired", "count_correction", "found"]
    expected = env.tools["create_purchase_order"].input_schema["properties"]["expected"]
    assert expected["format"] == "date"
    quantity = env.tools["receive_po_line"].input_schema["properties"]["quantity"]
    assert quantity["minimum"] == 1 and quantity["maximum"] <= 2**63 - 1


# --- business rules: each refusal names its rule and leaves no write ------------------------------

# (rule, tool, arguments, words the error must contain); all on the base state.
REFUSALS: list[Refusal] = [
    # B-03 holds 6 scanners; H-02 holds 8 bottles of alcohol; A-01 holds no labels.
    (
        "stock-non-negative",
        "adjust_stock",
        {"sku": "SCN-HH-200", "bin_code": "B-03", "quantity_change": -7, "reason": "damaged"},
        ["B-03", "only 6"],
    ),
    (
        "stock-non-negative",
        "transfer_stock",
        {"sku": "SOLV-IPA-1L", "from_bin": "H-02", "to_bin": "H-03", "quantity": 9},
        ["H-02", "only 8"],
    ),
    (
        "stock-non-negative",
        "pick_order_line",
        {"order_number": "SO-5004", "sku": "LBL-4X6-500", "bin_code": "A-01", "quantity": 5},
        ["A-01", "only 0"],
    ),
    # A-02 holds 150 of 200; H-02 holds 58 of 60.
    (
        "bin-capacity",
        "transfer_stock",
        {"sku": "LED-BULB-9W", "from_bin": "A-04", "to_bin": "A-02", "quantity": 51},
        ["A-02", "150 of its 200", "room for 50"],
    ),
    (
        "bin-capacity",
        "receive_po_line",
        {"po_number": "PO-1004", "sku": "AER-PAINT-RED", "quantity": 3, "bin_code": "H-02"},
        ["H-02", "room for 2"],
    ),
    # Lithium cells are hazardous; packing tape is not.
    (
        "hazmat-zone",
        "receive_po_line",
        {"po_number": "PO-1002", "sku": "LIB-18650", "quantity": 10, "bin_code": "B-04"},
        ["LIB-18650", "hazardous", "B-04"],
    ),
    (
        "hazmat-zone",
        "transfer_stock",
        {"sku": "TAPE-PKG-48", "from_bin": "A-01", "to_bin": "H-03", "quantity": 5},
        ["H-03", "not hazardous"],
    ),
    # PO-1003's glove line: 20 of 60 received.
    (
        "receive-within-ordered",
        "receive_po_line",
        {"po_number": "PO-1003", "sku": "GLV-NIT-L", "quantity": 41, "bin_code": "B-04"},
        ["PO-1003", "at most 40"],
    ),
    # SO-5003's vest line: 3 of 8 picked.
    (
        "pick-within-order",
        "pick_order_line",
        {"order_number": "SO-5003", "sku": "VEST-HV-XL", "bin_code": "B-02", "quantity": 6},
        ["SO-5003", "at most 5"],
    ),
    ("ship-when-fully-picked", "ship_order", {"order_number": "SO-5003", "carrier": "UPS"}, ["Summit Builders"]),
    # Packing tape: 120 on hand, reorder point 50.
    (
        "reorder-below-point",
        "create_purchase_order",
        {"sku": "TAPE-PKG-48", "quantity": 200, "expected": "2026-09-20"},
        ["TAPE-PKG-48", "120", "50"],
    ),
    ("po-cancel-unreceived", "cancel_purchase_order", {"po_number": "PO-1003"}, ["PO-1003", "20 units"]),
    (
        "closed-is-final",
        "receive_po_line",
        {"po_number": "PO-1001", "sku": "TAPE-PKG-48", "quantity": 1, "bin_code": "A-01"},
        ["PO-1001", "received"],
    ),
    ("closed-is-final", "cancel_purchase_order", {"po_number": "PO-1006"}, ["PO-1006", "cancelled"]),
    ("closed-is-final", "ship_order", {"order_number": "SO-5001", "carrier": "DHL"}, ["SO-5001", "shipped"]),
    (
        "closed-is-final",
        "pick_order_line",
        {"order_number": "SO-5007", "sku": "BAT-AA-24", "bin_code": "B-04", "quantity": 1},
        ["SO-5007", "cancelled"],
    ),
]


def test_every_rule_is_tested(env: Environment) -> None:
    assert {r for r, *_ in REFUSALS} == set(env.rules)


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


BAD_CALLS: list[BadCall] = [
    ("get_product_stock", {"sku": "NOPE-1"}, ["NOPE-1", "find_product"]),
    ("get_bin", {"bin_code": "Z-99"}, ["Z-99", "list_bins"]),
    ("get_order", {"order_number": "SO-1"}, ["SO-1", "list_orders"]),
    ("list_orders", {"customer_id": 42}, ["42", "find_customer"]),
    ("list_purchase_orders", {"supplier_id": 42}, ["42", "find_supplier"]),
    ("transfer_stock", {"sku": "TAPE-PKG-48", "from_bin": "A-01", "to_bin": "a-01", "quantity": 1}, ["A-01"]),
    ("create_purchase_order", {"sku": "LBL-4X6-500", "quantity": 1, "expected": "2026-09-06"}, ["past"]),
    (
        "receive_po_line",
        {"po_number": "PO-1002", "sku": "TAPE-PKG-48", "quantity": 1, "bin_code": "A-01"},
        ["no line"],
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "words"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], words: list[str]) -> None:
    assert_refused(episode, tool, arguments, words)


# --- behaviour -----------------------------------------------------------------------------------


def test_every_stock_change_writes_movements(episode: Episode) -> None:
    assert episode.call(
        "transfer_stock", {"sku": "TAPE-PKG-48", "from_bin": "A-01", "to_bin": "A-04", "quantity": 20}
    ).ok
    view = episode.view()
    assert stock(view, 4, 1) == 100 and stock(view, 4, 4) == 20
    new = [m for m in view["movements"] if m["id"] > 11]
    assert [(m["bin_id"], m["quantity_change"], m["kind"], m["reference"], m["created"]) for m in new] == [
        (1, -20, "transfer", "A-04", NOW),
        (4, 20, "transfer", "A-01", NOW),
    ]


def test_a_partial_receipt_keeps_the_po_open(episode: Episode) -> None:
    first = episode.call(
        "receive_po_line", {"po_number": "PO-1002", "sku": "BAT-AA-24", "quantity": 40, "bin_code": "B-04"}
    )
    assert first.ok and first.value["po_status"] == "open"
    last = episode.call(
        "receive_po_line", {"po_number": "PO-1002", "sku": "LIB-18650", "quantity": 25, "bin_code": "H-01"}
    )
    assert last.ok and last.value["po_status"] == "open"  # 75 of 100 cells still outstanding
    assert row(episode.view(), "purchase_orders", 2)["status"] == "open"


def test_po_status_becomes_received_when_complete(episode: Episode) -> None:
    for sku, qty, where in [("AER-PAINT-RED", 2, "H-02"), ("AER-PAINT-RED", 28, "H-03")]:
        result = episode.call(
            "receive_po_line", {"po_number": "PO-1004", "sku": sku, "quantity": qty, "bin_code": where}
        )
        assert result.ok, result.error
    po = row(episode.view(), "purchase_orders", 4)
    assert (po["status"], po["closed"]) == ("received", "2026-09-07")


def test_low_stock_report_and_po_numbering(episode: Episode) -> None:
    low = {r["sku"] for r in episode.call("list_low_stock", {}).value}
    assert low == {"LBL-4X6-500", "VEST-HV-XL", "LIB-18650", "SOLV-IPA-1L"}
    made = episode.call("create_purchase_order", {"sku": "SOLV-IPA-1L", "quantity": 48, "expected": "2026-09-15"})
    assert made.ok and made.value["po_number"] == "PO-1008" and made.value["supplier"] == "ChemCo Industrial"
    assert made.value["total_cents"] == 48 * 1250


def test_fully_picked_order_ships(episode: Episode) -> None:
    result = episode.call("ship_order", {"order_number": "SO-5008", "carrier": "DHL"})
    assert result.ok and result.value["shipped_on"] == "2026-09-07"
