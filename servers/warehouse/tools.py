"""The warehouse's tools: look-ups for products, bins, stock, suppliers, purchase orders,
customers, customer orders and the movement log, and the inventory clerk's mutations.

Every rule in ``RULES`` (``__init__.py``) is enforced here and named in the
``ToolError``. Every stock change writes one ``movements`` row per bin it touches.
Time is the scenario clock (``ctx.today``, ``ctx.now``), never the wall clock.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field

from envfarm.core.toolkit import Code, DateStr, Id, SearchText, like
from envfarm.core.tools import ToolContext, ToolError, parse_date, tool

SEARCH_LIMIT = 20

Quantity = Annotated[int, Field(ge=1, le=1_000_000)]
Change = Annotated[int, Field(ge=-1_000_000, le=1_000_000)]
Carrier = Literal["UPS", "FedEx", "DHL"]
Zone = Literal["general", "cold", "hazmat"]
AdjustReason = Literal["damaged", "expired", "count_correction", "found"]
PoStatus = Literal["open", "received", "cancelled"]
OrderStatus = Literal["open", "shipped", "cancelled"]


# --- helpers (not tools) -------------------------------------------------------------------------


def _product(ctx: ToolContext, sku: str) -> dict[str, Any]:
    product = ctx.one("SELECT * FROM products WHERE upper(sku) = upper(?)", (sku.strip(),))
    if product is None:
        raise ToolError(f"no product with SKU {sku!r}; look products up with find_product")
    return product


def _bin(ctx: ToolContext, code: str) -> dict[str, Any]:
    found = ctx.one("SELECT * FROM bins WHERE upper(code) = upper(?)", (code.strip(),))
    if found is None:
        raise ToolError(f"no bin with code {code!r}; bins look like A-02 (see list_bins)")
    return found


def _po(ctx: ToolContext, po_number: str) -> dict[str, Any]:
    po = ctx.one(
        "SELECT po.*, s.name AS supplier FROM purchase_orders po JOIN suppliers s ON s.id = po.supplier_id "
        "WHERE upper(po.po_number) = upper(?)",
        (po_number.strip(),),
    )
    if po is None:
        raise ToolError(f"no purchase order {po_number!r}; look them up with list_purchase_orders")
    return po


def _order(ctx: ToolContext, order_number: str) -> dict[str, Any]:
    order = ctx.one(
        "SELECT o.*, c.name AS customer FROM orders o JOIN customers c ON c.id = o.customer_id "
        "WHERE upper(o.order_number) = upper(?)",
        (order_number.strip(),),
    )
    if order is None:
        raise ToolError(f"no customer order {order_number!r}; look them up with list_orders")
    return order


def _on_hand(ctx: ToolContext, product_id: int) -> int:
    return int(ctx.scalar("SELECT COALESCE(SUM(quantity), 0) FROM stock WHERE product_id = ?", (product_id,)))


def _bin_used(ctx: ToolContext, bin_id: int) -> int:
    return int(ctx.scalar("SELECT COALESCE(SUM(quantity), 0) FROM stock WHERE bin_id = ?", (bin_id,)))


def _in_bin(ctx: ToolContext, product_id: int, bin_id: int) -> int:
    qty = ctx.scalar("SELECT quantity FROM stock WHERE product_id = ? AND bin_id = ?", (product_id, bin_id))
    return int(qty or 0)


def _check_zone(product: dict[str, Any], where: dict[str, Any]) -> None:
    if product["hazardous"] and where["zone"] != "hazmat":
        raise ToolError(
            f"{product['sku']} ({product['name']}) is hazardous and cannot be stored in bin {where['code']} "
            f"({where['zone']} zone); use a hazmat bin",
            rule="hazmat-zone",
        )
    if not product["hazardous"] and where["zone"] == "hazmat":
        raise ToolError(
            f"bin {where['code']} is in the hazmat zone, which holds only hazardous products; "
            f"{product['sku']} ({product['name']}) is not hazardous",
            rule="hazmat-zone",
        )


def _add_stock(ctx: ToolContext, product: dict[str, Any], where: dict[str, Any], change: int) -> int:
    """Change a product's stock in a bin by ``change`` units, enforcing the stock rules.

    Returns the new quantity. The movement row is written by the caller.
    """
    current = _in_bin(ctx, product["id"], where["id"])
    new = current + change
    if new < 0:
        raise ToolError(
            f"bin {where['code']} holds only {current} of {product['sku']} ({product['name']}); cannot take {-change}",
            rule="stock-non-negative",
        )
    if change > 0:
        _check_zone(product, where)
        used = _bin_used(ctx, where["id"])
        if used + change > where["capacity"]:
            raise ToolError(
                f"bin {where['code']} holds {used} of its {where['capacity']} units; {change} more "
                f"would exceed its capacity (room for {where['capacity'] - used})",
                rule="bin-capacity",
            )
    row = ctx.one("SELECT id FROM stock WHERE product_id = ? AND bin_id = ?", (product["id"], where["id"]))
    if row is None:
        ctx.insert("stock", {"product_id": product["id"], "bin_id": where["id"], "quantity": new})
    else:
        ctx.update("stock", {"id": row["id"]}, {"quantity": new})
    return new


def _log(
    ctx: ToolContext,
    product: dict[str, Any],
    where: dict[str, Any],
    change: int,
    kind: str,
    reference: str | None,
    reason: str | None = None,
) -> int:
    return ctx.insert(
        "movements",
        {
            "product_id": product["id"],
            "bin_id": where["id"],
            "quantity_change": change,
            "kind": kind,
            "reference": reference,
            "reason": reason,
            "created": ctx.now.isoformat(),
        },
    )


def _po_lines(ctx: ToolContext, po_id: int) -> list[dict[str, Any]]:
    return ctx.all(
        "SELECT l.id AS line_id, p.sku, p.name, l.ordered_qty, l.received_qty, "
        "l.ordered_qty - l.received_qty AS outstanding_qty, l.unit_cost_cents FROM po_lines l "
        "JOIN products p ON p.id = l.product_id WHERE l.po_id = ? ORDER BY l.id",
        (po_id,),
    )


def _order_lines(ctx: ToolContext, order_id: int) -> list[dict[str, Any]]:
    return ctx.all(
        "SELECT l.id AS line_id, p.sku, p.name, l.quantity, l.picked_qty, "
        "l.quantity - l.picked_qty AS to_pick FROM order_lines l JOIN products p ON p.id = l.product_id "
        "WHERE l.order_id = ? ORDER BY l.id",
        (order_id,),
    )


def _newest_first(
    ctx: ToolContext, select: str, alias: str, party: str, party_id: int | None, status: str | None
) -> list[dict[str, Any]]:
    """The rows of ``select`` (an order table as ``alias``, joined to its party's table), newest first.

    Purchase orders and customer orders are listed alike: narrowed to one ``party``
    (supplier or customer, refused when unknown) and/or one status.
    """
    clauses: list[str] = []
    params: list[int | str] = []
    if party_id is not None:
        if ctx.one(f"SELECT id FROM {party}s WHERE id = ?", (party_id,)) is None:
            raise ToolError(f"no {party} with id {party_id}; look {party}s up with find_{party}")
        clauses.append(f"{alias}.{party}_id = ?")
        params.append(party_id)
    if status is not None:
        clauses.append(f"{alias}.status = ?")
        params.append(status)
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    return ctx.all(f"{select} {where}ORDER BY {alias}.id DESC", params)


# --- queries -------------------------------------------------------------------------------------


@tool(kind="query")
def find_product(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Search products by SKU or name (case-insensitive, partial match), with total stock on hand.

    Args:
        query: part of the SKU or of the product name, e.g. "gloves" or "TAPE"
    """
    if not query.strip():
        raise ToolError("query is empty; give part of a SKU or product name")
    rows = ctx.all(
        "SELECT p.id AS product_id, p.sku, p.name, p.hazardous, s.name AS supplier, p.unit_cost_cents, "
        "p.reorder_point, p.reorder_qty FROM products p JOIN suppliers s ON s.id = p.supplier_id "
        "WHERE p.sku LIKE ? ESCAPE '\\' OR p.name LIKE ? ESCAPE '\\' ORDER BY p.sku LIMIT ?",
        (like(query.strip()), like(query.strip()), SEARCH_LIMIT),
    )
    for row in rows:
        row["hazardous"] = bool(row["hazardous"])
        row["on_hand"] = _on_hand(ctx, row["product_id"])
    return rows


@tool(kind="query")
def get_product_stock(ctx: ToolContext, sku: Code) -> dict[str, Any]:
    """A product's stock bin by bin, its total on hand, reorder point and open purchase order quantities.

    Args:
        sku: the product's SKU, e.g. TAPE-PKG-48
    """
    product = _product(ctx, sku)
    bins = ctx.all(
        "SELECT b.code AS bin, b.zone, s.quantity FROM stock s JOIN bins b ON b.id = s.bin_id "
        "WHERE s.product_id = ? AND s.quantity > 0 ORDER BY b.code",
        (product["id"],),
    )
    on_order = ctx.all(
        "SELECT po.po_number, l.ordered_qty - l.received_qty AS outstanding_qty, po.expected "
        "FROM po_lines l JOIN purchase_orders po ON po.id = l.po_id "
        "WHERE l.product_id = ? AND po.status = 'open' AND l.received_qty < l.ordered_qty ORDER BY po.id",
        (product["id"],),
    )
    total = _on_hand(ctx, product["id"])
    return {
        "sku": product["sku"],
        "name": product["name"],
        "hazardous": bool(product["hazardous"]),
        "on_hand": total,
        "reorder_point": product["reorder_point"],
        "reorder_qty": product["reorder_qty"],
        "below_reorder_point": total < product["reorder_point"],
        "bins": bins,
        "on_order": on_order,
    }


@tool(kind="query")
def list_low_stock(ctx: ToolContext) -> list[dict[str, Any]]:
    """Products whose total stock on hand is below their reorder point, with their supplier.

    Args:
    """
    rows = ctx.all(
        "SELECT p.sku, p.name, s.name AS supplier, p.reorder_point, p.reorder_qty, "
        "COALESCE((SELECT SUM(quantity) FROM stock WHERE product_id = p.id), 0) AS on_hand "
        "FROM products p JOIN suppliers s ON s.id = p.supplier_id ORDER BY p.sku"
    )
    return [r for r in rows if r["on_hand"] < r["reorder_point"]]


@tool(kind="query")
def list_bins(ctx: ToolContext, zone: Zone | None = None) -> list[dict[str, Any]]:
    """Bins with their zone, capacity, units stored and free room.

    Args:
        zone: only bins of this zone (general, cold or hazmat); all bins if left out
    """
    where, params = ("WHERE b.zone = ? ", (zone,)) if zone is not None else ("", ())
    return ctx.all(
        "SELECT b.code, b.zone, b.capacity, COALESCE(SUM(s.quantity), 0) AS used, "
        "b.capacity - COALESCE(SUM(s.quantity), 0) AS free FROM bins b LEFT JOIN stock s ON s.bin_id = b.id "
        f"{where}GROUP BY b.id ORDER BY b.code",
        params,
    )


@tool(kind="query")
def get_bin(ctx: ToolContext, bin_code: Code) -> dict[str, Any]:
    """One bin: its zone, capacity, free room and the products it holds.

    Args:
        bin_code: the bin's code, e.g. A-02
    """
    found = _bin(ctx, bin_code)
    contents = ctx.all(
        "SELECT p.sku, p.name, p.hazardous, s.quantity FROM stock s JOIN products p ON p.id = s.product_id "
        "WHERE s.bin_id = ? AND s.quantity > 0 ORDER BY p.sku",
        (found["id"],),
    )
    for row in contents:
        row["hazardous"] = bool(row["hazardous"])
    used = _bin_used(ctx, found["id"])
    return {
        "code": found["code"],
        "zone": found["zone"],
        "capacity": found["capacity"],
        "used": used,
        "free": found["capacity"] - used,
        "contents": contents,
    }


@tool(kind="query")
def find_supplier(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Search suppliers by name (case-insensitive, partial match).

    Args:
        query: part of the supplier's name, e.g. "Northline"
    """
    return ctx.all(
        "SELECT id AS supplier_id, name, email, phone, lead_time_days FROM suppliers "
        "WHERE name LIKE ? ESCAPE '\\' ORDER BY name LIMIT ?",
        (like(query.strip()), SEARCH_LIMIT),
    )


@tool(kind="query")
def list_purchase_orders(
    ctx: ToolContext, supplier_id: Id | None = None, status: PoStatus | None = None
) -> list[dict[str, Any]]:
    """Purchase orders, newest first, optionally of one supplier and/or in one status.

    Args:
        supplier_id: only this supplier's orders (id from find_supplier); all suppliers if left out
        status: only orders in this status (open, received or cancelled); any status if left out
    """
    select = (
        "SELECT po.po_number, s.name AS supplier, po.status, po.created, po.expected, po.closed "
        "FROM purchase_orders po JOIN suppliers s ON s.id = po.supplier_id"
    )
    return _newest_first(ctx, select, "po", "supplier", supplier_id, status)


@tool(kind="query")
def get_purchase_order(ctx: ToolContext, po_number: Code) -> dict[str, Any]:
    """One purchase order with its lines: ordered, received and outstanding quantities.

    Args:
        po_number: the purchase order number, e.g. PO-1002
    """
    po = _po(ctx, po_number)
    return {
        "po_number": po["po_number"],
        "supplier": po["supplier"],
        "status": po["status"],
        "created": po["created"],
        "expected": po["expected"],
        "closed": po["closed"],
        "lines": _po_lines(ctx, po["id"]),
    }


@tool(kind="query")
def find_customer(ctx: ToolContext, query: SearchText) -> list[dict[str, Any]]:
    """Search customers by name (case-insensitive, partial match).

    Args:
        query: part of the customer's name, e.g. "Harbor"
    """
    return ctx.all(
        "SELECT id AS customer_id, name, email, city FROM customers WHERE name LIKE ? ESCAPE '\\' "
        "ORDER BY name LIMIT ?",
        (like(query.strip()), SEARCH_LIMIT),
    )


@tool(kind="query")
def list_orders(
    ctx: ToolContext, customer_id: Id | None = None, status: OrderStatus | None = None
) -> list[dict[str, Any]]:
    """Customer orders, newest first, optionally of one customer and/or in one status.

    Args:
        customer_id: only this customer's orders (id from find_customer); all customers if left out
        status: only orders in this status (open, shipped or cancelled); any status if left out
    """
    select = (
        "SELECT o.order_number, c.name AS customer, o.status, o.created, o.shipped_on, o.carrier "
        "FROM orders o JOIN customers c ON c.id = o.customer_id"
    )
    return _newest_first(ctx, select, "o", "customer", customer_id, status)


@tool(kind="query")
def get_order(ctx: ToolContext, order_number: Code) -> dict[str, Any]:
    """One customer order with its lines: ordered, picked and still-to-pick quantities.

    Args:
        order_number: the customer order number, e.g. SO-5004
    """
    order = _order(ctx, order_number)
    lines = _order_lines(ctx, order["id"])
    return {
        "order_number": order["order_number"],
        "customer": order["customer"],
        "status": order["status"],
        "created": order["created"],
        "shipped_on": order["shipped_on"],
        "carrier": order["carrier"],
        "fully_picked": all(line["to_pick"] == 0 for line in lines),
        "lines": lines,
    }


@tool(kind="query")
def list_movements(
    ctx: ToolContext, sku: Code | None = None, bin_code: Code | None = None, since: DateStr | None = None
) -> list[dict[str, Any]]:
    """The stock movement log, newest first: receipts, picks, transfers and adjustments.

    Args:
        sku: only movements of this product; all products if left out
        bin_code: only movements in this bin; all bins if left out
        since: only movements on or after this date (YYYY-MM-DD); the whole log if left out
    """
    clauses, params = [], []
    if sku is not None:
        clauses.append("m.product_id = ?")
        params.append(_product(ctx, sku)["id"])
    if bin_code is not None:
        clauses.append("m.bin_id = ?")
        params.append(_bin(ctx, bin_code)["id"])
    if since is not None:
        clauses.append("m.created >= ?")
        params.append(parse_date(since, "since").isoformat())
    where = f"WHERE {' AND '.join(clauses)} " if clauses else ""
    return ctx.all(
        "SELECT m.id AS movement_id, m.created, p.sku, b.code AS bin, m.quantity_change, m.kind, "
        "m.reference, m.reason FROM movements m JOIN products p ON p.id = m.product_id "
        f"JOIN bins b ON b.id = m.bin_id {where}ORDER BY m.created DESC, m.id DESC LIMIT 100",
        params,
    )


# --- mutations -----------------------------------------------------------------------------------


@tool(kind="mutation")
def receive_po_line(ctx: ToolContext, po_number: Code, sku: Code, quantity: Quantity, bin_code: Code) -> dict[str, Any]:
    """Receive units of one purchase order line into a bin, and log the receipt.

    The purchase order is marked received when every line has arrived in full.

    Args:
        po_number: the purchase order number, e.g. PO-1002
        sku: the SKU of the product delivered
        quantity: how many units arrived and go into the bin
        bin_code: the bin the units are put away in, e.g. B-04
    """
    po = _po(ctx, po_number)
    product = _product(ctx, sku)
    where = _bin(ctx, bin_code)
    if po["status"] != "open":
        raise ToolError(
            f"purchase order {po['po_number']} is {po['status']}; nothing more can be received on it",
            rule="closed-is-final",
        )
    line = ctx.one("SELECT * FROM po_lines WHERE po_id = ? AND product_id = ?", (po["id"], product["id"]))
    if line is None:
        raise ToolError(f"purchase order {po['po_number']} has no line for {product['sku']}; see get_purchase_order")
    outstanding = line["ordered_qty"] - line["received_qty"]
    if quantity > outstanding:
        raise ToolError(
            f"purchase order {po['po_number']} line {product['sku']}: {line['received_qty']} of "
            f"{line['ordered_qty']} already received, so at most {outstanding} more can be received, not {quantity}",
            rule="receive-within-ordered",
        )
    new_qty = _add_stock(ctx, product, where, quantity)
    ctx.update("po_lines", {"id": line["id"]}, {"received_qty": line["received_qty"] + quantity})
    movement_id = _log(ctx, product, where, quantity, "receipt", po["po_number"])
    left = int(ctx.scalar("SELECT COUNT(*) FROM po_lines WHERE po_id = ? AND received_qty < ordered_qty", (po["id"],)))
    if left == 0:
        ctx.update("purchase_orders", {"id": po["id"]}, {"status": "received", "closed": ctx.today})
    return {
        "po_number": po["po_number"],
        "sku": product["sku"],
        "received": quantity,
        "line_received_qty": line["received_qty"] + quantity,
        "line_ordered_qty": line["ordered_qty"],
        "bin": where["code"],
        "bin_quantity": new_qty,
        "po_status": "received" if left == 0 else "open",
        "movement_id": movement_id,
    }


@tool(kind="mutation")
def create_purchase_order(ctx: ToolContext, sku: Code, quantity: Quantity, expected: DateStr) -> dict[str, Any]:
    """Raise a purchase order for one product with its usual supplier, at the product's unit cost.

    Allowed only while the product's total stock is below its reorder point.

    Args:
        sku: the SKU of the product to order
        quantity: how many units to order (the product's reorder_qty is the usual amount)
        expected: the delivery date agreed with the supplier (YYYY-MM-DD), today or later
    """
    product = _product(ctx, sku)
    day = parse_date(expected, "expected").isoformat()
    if day < ctx.today:
        raise ToolError(f"expected date {day} is in the past; today is {ctx.today}")
    on_hand = _on_hand(ctx, product["id"])
    if on_hand >= product["reorder_point"]:
        raise ToolError(
            f"{product['sku']} ({product['name']}) has {on_hand} units on hand, not below its reorder point "
            f"of {product['reorder_point']}; no purchase order is needed",
            rule="reorder-below-point",
        )
    last = ctx.scalar("SELECT MAX(CAST(substr(po_number, 4) AS INTEGER)) FROM purchase_orders")
    number = f"PO-{int(last or 1000) + 1}"
    po_id = ctx.insert(
        "purchase_orders",
        {
            "po_number": number,
            "supplier_id": product["supplier_id"],
            "status": "open",
            "created": ctx.today,
            "expected": day,
            "closed": None,
        },
    )
    ctx.insert(
        "po_lines",
        {
            "po_id": po_id,
            "product_id": product["id"],
            "ordered_qty": quantity,
            "received_qty": 0,
            "unit_cost_cents": product["unit_cost_cents"],
        },
    )
    supplier = ctx.scalar("SELECT name FROM suppliers WHERE id = ?", (product["supplier_id"],))
    return {
        "po_number": number,
        "supplier": supplier,
        "sku": product["sku"],
        "ordered_qty": quantity,
        "unit_cost_cents": product["unit_cost_cents"],
        "total_cents": quantity * product["unit_cost_cents"],
        "expected": day,
    }


@tool(kind="mutation")
def cancel_purchase_order(ctx: ToolContext, po_number: Code) -> dict[str, Any]:
    """Cancel an open purchase order on which nothing has been received yet.

    Args:
        po_number: the purchase order number, e.g. PO-1005
    """
    po = _po(ctx, po_number)
    if po["status"] != "open":
        raise ToolError(f"purchase order {po['po_number']} is already {po['status']}", rule="closed-is-final")
    received = int(ctx.scalar("SELECT COALESCE(SUM(received_qty), 0) FROM po_lines WHERE po_id = ?", (po["id"],)))
    if received > 0:
        raise ToolError(
            f"purchase order {po['po_number']} from {po['supplier']} already has {received} units received; "
            "it cannot be cancelled",
            rule="po-cancel-unreceived",
        )
    ctx.update("purchase_orders", {"id": po["id"]}, {"status": "cancelled", "closed": ctx.today})
    return {"po_number": po["po_number"], "supplier": po["supplier"], "status": "cancelled", "closed": ctx.today}


@tool(kind="mutation")
def transfer_stock(ctx: ToolContext, sku: Code, from_bin: Code, to_bin: Code, quantity: Quantity) -> dict[str, Any]:
    """Move units of a product from one bin to another, logging both sides of the move.

    Args:
        sku: the SKU of the product to move
        from_bin: the code of the bin the units leave
        to_bin: the code of the bin the units go to
        quantity: how many units to move
    """
    product = _product(ctx, sku)
    source, target = _bin(ctx, from_bin), _bin(ctx, to_bin)
    if source["id"] == target["id"]:
        raise ToolError(f"from_bin and to_bin are both {source['code']}; a transfer needs two different bins")
    left = _add_stock(ctx, product, source, -quantity)
    now = _add_stock(ctx, product, target, quantity)
    _log(ctx, product, source, -quantity, "transfer", target["code"])
    _log(ctx, product, target, quantity, "transfer", source["code"])
    return {
        "sku": product["sku"],
        "moved": quantity,
        "from_bin": source["code"],
        "from_bin_quantity": left,
        "to_bin": target["code"],
        "to_bin_quantity": now,
    }


@tool(kind="mutation")
def adjust_stock(
    ctx: ToolContext, sku: Code, bin_code: Code, quantity_change: Change, reason: AdjustReason
) -> dict[str, Any]:
    """Correct a product's stock in a bin after a count, damage or expiry, logging the adjustment.

    Args:
        sku: the SKU of the product
        bin_code: the bin whose stock changes
        quantity_change: units added (positive, e.g. found in a count) or removed (negative, e.g. damaged)
        reason: why: damaged, expired, count_correction or found
    """
    product = _product(ctx, sku)
    where = _bin(ctx, bin_code)
    if quantity_change == 0:
        raise ToolError("quantity_change is 0; nothing to adjust")
    new = _add_stock(ctx, product, where, quantity_change)
    movement_id = _log(ctx, product, where, quantity_change, "adjustment", None, reason)
    total = _on_hand(ctx, product["id"])
    return {
        "sku": product["sku"],
        "bin": where["code"],
        "bin_quantity": new,
        "on_hand": total,
        "below_reorder_point": total < product["reorder_point"],
        "movement_id": movement_id,
    }


@tool(kind="mutation")
def pick_order_line(
    ctx: ToolContext, order_number: Code, sku: Code, bin_code: Code, quantity: Quantity
) -> dict[str, Any]:
    """Pick units of a product for a customer order from one bin, logging the pick.

    Args:
        order_number: the customer order number, e.g. SO-5004
        sku: the SKU of the product on the order
        bin_code: the bin the units are taken from
        quantity: how many units to pick from that bin
    """
    order = _order(ctx, order_number)
    product = _product(ctx, sku)
    where = _bin(ctx, bin_code)
    if order["status"] != "open":
        raise ToolError(
            f"order {order['order_number']} is {order['status']}; it cannot be picked", rule="closed-is-final"
        )
    line = ctx.one("SELECT * FROM order_lines WHERE order_id = ? AND product_id = ?", (order["id"], product["id"]))
    if line is None:
        raise ToolError(f"order {order['order_number']} has no line for {product['sku']}; see get_order")
    to_pick = line["quantity"] - line["picked_qty"]
    if quantity > to_pick:
        raise ToolError(
            f"order {order['order_number']} line {product['sku']}: {line['picked_qty']} of {line['quantity']} "
            f"already picked, so at most {to_pick} more can be picked, not {quantity}",
            rule="pick-within-order",
        )
    left = _add_stock(ctx, product, where, -quantity)
    ctx.update("order_lines", {"id": line["id"]}, {"picked_qty": line["picked_qty"] + quantity})
    _log(ctx, product, where, -quantity, "pick", order["order_number"])
    return {
        "order_number": order["order_number"],
        "sku": product["sku"],
        "picked": quantity,
        "line_picked_qty": line["picked_qty"] + quantity,
        "line_quantity": line["quantity"],
        "bin": where["code"],
        "bin_quantity": left,
    }


@tool(kind="mutation")
def ship_order(ctx: ToolContext, order_number: Code, carrier: Carrier) -> dict[str, Any]:
    """Ship a fully picked customer order today with a carrier.

    Args:
        order_number: the customer order number, e.g. SO-5008
        carrier: the carrier collecting it: UPS, FedEx or DHL
    """
    order = _order(ctx, order_number)
    if order["status"] != "open":
        raise ToolError(
            f"order {order['order_number']} is {order['status']}; it cannot be shipped", rule="closed-is-final"
        )
    short = [line for line in _order_lines(ctx, order["id"]) if line["to_pick"] > 0]
    if short:
        missing = ", ".join(f"{line['sku']} ({line['to_pick']} of {line['quantity']})" for line in short)
        raise ToolError(
            f"order {order['order_number']} for {order['customer']} is not fully picked; still to pick: {missing}",
            rule="ship-when-fully-picked",
        )
    ctx.update("orders", {"id": order["id"]}, {"status": "shipped", "shipped_on": ctx.today, "carrier": carrier})
    return {
        "order_number": order["order_number"],
        "customer": order["customer"],
        "status": "shipped",
        "shipped_on": ctx.today,
        "carrier": carrier,
    }


@tool(kind="mutation")
def update_reorder_point(
    ctx: ToolContext, sku: Code, reorder_point: Annotated[int, Field(ge=0, le=1_000_000)]
) -> dict[str, Any]:
    """Change the stock level below which a product is reordered.

    Args:
        sku: the SKU of the product
        reorder_point: the new reorder point in units
    """
    product = _product(ctx, sku)
    ctx.update("products", {"id": product["id"]}, {"reorder_point": reorder_point})
    total = _on_hand(ctx, product["id"])
    return {
        "sku": product["sku"],
        "previous_reorder_point": product["reorder_point"],
        "reorder_point": reorder_point,
        "on_hand": total,
        "below_reorder_point": total < reorder_point,
    }
