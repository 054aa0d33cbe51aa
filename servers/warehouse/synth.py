"""Procedural steps for the warehouse: clerk requests built from the current state.

Each maker picks arguments that the warehouse's rules accept (stock in the bin,
room in the target bin, the right zone for hazardous products, quantities within
the order or PO line) and says the request the way warehouse staff do: product
names with their SKU, bin codes, PO and order numbers.
"""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

from envfarm.core.scenarios import Call
from envfarm.core.state import StateView
from envfarm.core.synth import Step, by_id


def _used(state: StateView) -> dict[int, int]:
    used = {b["id"]: 0 for b in state["bins"]}
    for s in state["stock"]:
        used[s["bin_id"]] += s["quantity"]
    return used


def _fits(product: dict[str, Any], where: dict[str, Any]) -> bool:
    return bool(product["hazardous"]) == (where["zone"] == "hazmat")


def _what(product: dict[str, Any]) -> str:
    return f"{product['name']} ({product['sku']})"


def receive_po_line(state: StateView, rng: random.Random) -> Step | None:
    pos, products, used = by_id(state, "purchase_orders"), by_id(state, "products"), _used(state)
    lines = [
        line
        for line in state["po_lines"]
        if pos[line["po_id"]]["status"] == "open" and line["received_qty"] < line["ordered_qty"]
    ]
    if not lines:
        return None
    line = rng.choice(lines)
    product, po = products[line["product_id"]], pos[line["po_id"]]
    bins = [b for b in state["bins"] if _fits(product, b) and used[b["id"]] < b["capacity"]]
    if not bins:
        return None
    where = rng.choice(bins)
    room = where["capacity"] - used[where["id"]]
    quantity = rng.randint(1, min(line["ordered_qty"] - line["received_qty"], room))
    return Step(
        arguments={
            "po_number": po["po_number"],
            "sku": product["sku"],
            "quantity": quantity,
            "bin_code": where["code"],
        },
        request=f"receive {quantity} units of {_what(product)} on {po['po_number']} into bin {where['code']}",
        lookups=[
            Call(tool="get_purchase_order", arguments={"po_number": po["po_number"]}),
            Call(tool="get_bin", arguments={"bin_code": where["code"]}),
        ],
    )


def transfer_stock(state: StateView, rng: random.Random) -> Step | None:
    bins, products, used = by_id(state, "bins"), by_id(state, "products"), _used(state)
    rows = [s for s in state["stock"] if s["quantity"] > 0]
    if not rows:
        return None
    row = rng.choice(rows)
    product, source = products[row["product_id"]], bins[row["bin_id"]]
    targets = [
        b for b in state["bins"] if b["id"] != source["id"] and _fits(product, b) and used[b["id"]] < b["capacity"]
    ]
    if not targets:
        return None
    target = rng.choice(targets)
    quantity = rng.randint(1, min(row["quantity"], target["capacity"] - used[target["id"]]))
    return Step(
        arguments={"sku": product["sku"], "from_bin": source["code"], "to_bin": target["code"], "quantity": quantity},
        request=f"move {quantity} units of {_what(product)} from bin {source['code']} to bin {target['code']}",
        lookups=[
            Call(tool="get_product_stock", arguments={"sku": product["sku"]}),
            Call(tool="get_bin", arguments={"bin_code": target["code"]}),
        ],
    )


def adjust_stock(state: StateView, rng: random.Random) -> Step | None:
    bins, products = by_id(state, "bins"), by_id(state, "products")
    rows = [s for s in state["stock"] if s["quantity"] > 0]
    if not rows:
        return None
    row = rng.choice(rows)
    product, where = products[row["product_id"]], bins[row["bin_id"]]
    lost = rng.randint(1, min(row["quantity"], 5))
    reason = rng.choice(["damaged", "expired", "count_correction"])
    if reason == "count_correction":
        request = (
            f"the count of bin {where['code']} found {row['quantity'] - lost} units of {_what(product)}, "
            f"not {row['quantity']}; record it as a count correction"
        )
    else:
        request = f"write off {lost} units of {_what(product)} in bin {where['code']} as {reason}"
    return Step(
        arguments={"sku": product["sku"], "bin_code": where["code"], "quantity_change": -lost, "reason": reason},
        request=request,
        lookups=[Call(tool="get_bin", arguments={"bin_code": where["code"]})],
    )


def pick_order_line(state: StateView, rng: random.Random) -> Step | None:
    orders, bins, products = by_id(state, "orders"), by_id(state, "bins"), by_id(state, "products")
    choices = [
        (line, s)
        for line in state["order_lines"]
        if orders[line["order_id"]]["status"] == "open" and line["picked_qty"] < line["quantity"]
        for s in state["stock"]
        if s["product_id"] == line["product_id"] and s["quantity"] > 0
    ]
    if not choices:
        return None
    line, row = rng.choice(choices)
    order, product, where = orders[line["order_id"]], products[line["product_id"]], bins[row["bin_id"]]
    quantity = rng.randint(1, min(line["quantity"] - line["picked_qty"], row["quantity"]))
    return Step(
        arguments={
            "order_number": order["order_number"],
            "sku": product["sku"],
            "bin_code": where["code"],
            "quantity": quantity,
        },
        request=f"pick {quantity} units of {_what(product)} from bin {where['code']} for order {order['order_number']}",
        lookups=[
            Call(tool="get_order", arguments={"order_number": order["order_number"]}),
            Call(tool="get_product_stock", arguments={"sku": product["sku"]}),
        ],
    )


def ship_order(state: StateView, rng: random.Random) -> Step | None:
    customers = by_id(state, "customers")
    ready = [
        o
        for o in state["orders"]
        if o["status"] == "open"
        and all(line["picked_qty"] == line["quantity"] for line in state["order_lines"] if line["order_id"] == o["id"])
    ]
    if not ready:
        return None
    order = rng.choice(ready)
    carrier = rng.choice(["UPS", "FedEx", "DHL"])
    customer = customers[order["customer_id"]]
    return Step(
        arguments={"order_number": order["order_number"], "carrier": carrier},
        request=f"ship {customer['name']}'s order {order['order_number']} with {carrier}",
        lookups=[Call(tool="get_order", arguments={"order_number": order["order_number"]})],
    )


def create_purchase_order(state: StateView, rng: random.Random) -> Step | None:
    on_hand: dict[int, int] = {}
    for s in state["stock"]:
        on_hand[s["product_id"]] = on_hand.get(s["product_id"], 0) + s["quantity"]
    low = [p for p in state["products"] if on_hand.get(p["id"], 0) < p["reorder_point"]]
    if not low:
        return None
    product = rng.choice(low)
    # No clock in the state: two weeks after the newest document is safely in the future.
    latest = max([o["created"] for o in state["orders"]] + [p["created"] for p in state["purchase_orders"]])
    expected = (date.fromisoformat(latest) + timedelta(days=rng.randint(10, 20))).isoformat()
    quantity = product["reorder_qty"]
    return Step(
        arguments={"sku": product["sku"], "quantity": quantity, "expected": expected},
        request=f"order {quantity} units of {_what(product)} from its supplier, expected on {expected}",
        lookups=[
            Call(tool="list_low_stock", arguments={}),
            Call(tool="get_product_stock", arguments={"sku": product["sku"]}),
        ],
    )


def cancel_purchase_order(state: StateView, rng: random.Random) -> Step | None:
    suppliers = by_id(state, "suppliers")
    received = {line["po_id"] for line in state["po_lines"] if line["received_qty"] > 0}
    open_pos = [p for p in state["purchase_orders"] if p["status"] == "open" and p["id"] not in received]
    if not open_pos:
        return None
    po = rng.choice(open_pos)
    return Step(
        arguments={"po_number": po["po_number"]},
        request=f"cancel purchase order {po['po_number']} with {suppliers[po['supplier_id']]['name']}",
        lookups=[Call(tool="get_purchase_order", arguments={"po_number": po["po_number"]})],
    )


def update_reorder_point(state: StateView, rng: random.Random) -> Step | None:
    product = rng.choice(state["products"])
    point = rng.choice([5, 10, 15, 20, 25, 30, 40, 50, 60, 80, 100])
    if point == product["reorder_point"]:
        return None
    return Step(
        arguments={"sku": product["sku"], "reorder_point": point},
        request=f"set the reorder point of {_what(product)} to {point} units",
        lookups=[Call(tool="find_product", arguments={"query": product["sku"]})],
    )


STEPS = {
    "receive_po_line": receive_po_line,
    "transfer_stock": transfer_stock,
    "adjust_stock": adjust_stock,
    "pick_order_line": pick_order_line,
    "ship_order": ship_order,
    "create_purchase_order": create_purchase_order,
    "cancel_purchase_order": cancel_purchase_order,
    "update_reorder_point": update_reorder_point,
}
