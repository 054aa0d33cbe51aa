"""Between tau2-bench's retail ``db.json`` and this package's tables, both ways.

:func:`rows` normalises a ``db.json`` into rows for the tables of :mod:`.models` (the importer's
half); the shape functions turn rows back into tau2's JSON objects, field by field in tau2's
model order (what the tools answer, and :func:`database`, the whole ``db.json``);
:func:`db_hash` hashes a state the way tau2's ``get_db_hash`` does, so a state here and a
database in tau2 can be compared directly.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from envfarm.core.toolkit import NestedDocument

Row = Mapping[str, Any]
View = Mapping[str, list[dict[str, Any]]]
ADDRESS = ("address1", "address2", "city", "country", "state", "zip")
PAYMENT_FIELDS = {"credit_card": ("brand", "last_four"), "gift_card": ("balance",), "paypal": ()}
ORDER_OPTIONAL = (
    "cancel_reason",
    "exchange_items",
    "exchange_new_items",
    "exchange_payment_method_id",
    "exchange_price_difference",
    "return_items",
    "return_payment_method_id",
)
ID_LISTS = ("exchange_items", "exchange_new_items", "return_items")  # JSON text columns of orders


def text(value: Any) -> str:
    """JSON text as tau2's tools write it (``json.dumps`` with its defaults)."""
    return json.dumps(value)


# --- rows -> tau2's JSON objects -----------------------------------------------------------------


def address(row: Row) -> dict[str, Any]:
    return {k: row[k] for k in ADDRESS}


def payment_method(row: Row) -> dict[str, Any]:
    source = row["source"]
    return {"source": source, "id": row["id"], **{k: row[k] for k in PAYMENT_FIELDS[source]}}


def user(row: Row, methods: Iterable[Row], orders: Iterable[Row]) -> dict[str, Any]:
    """A user; ``methods`` in their dictionary's order, ``orders`` the user_orders rows in list order."""
    return {
        "user_id": row["user_id"],
        "name": {"first_name": row["first_name"], "last_name": row["last_name"]},
        "address": address(row),
        "email": row["email"],
        "payment_methods": {m["id"]: payment_method(m) for m in methods},
        "orders": [o["order_id"] for o in orders],
    }


def variant(row: Row) -> dict[str, Any]:
    return {
        "item_id": row["item_id"],
        "options": json.loads(row["options"]),
        "available": bool(row["available"]),
        "price": row["price"],
    }


def product(row: Row, variants: Iterable[Row]) -> dict[str, Any]:
    return {
        "name": row["name"],
        "product_id": row["product_id"],
        "variants": {v["item_id"]: variant(v) for v in variants},
    }


def order(row: Row, items: Iterable[Row], payments: Iterable[Row], fulfillments: Iterable[Row]) -> dict[str, Any]:
    """An order; each list of rows in its order."""
    out: dict[str, Any] = {
        "order_id": row["order_id"],
        "user_id": row["user_id"],
        "address": address(row),
        "items": [
            {
                "name": i["name"],
                "product_id": i["product_id"],
                "item_id": i["item_id"],
                "price": i["price"],
                "options": json.loads(i["options"]),
            }
            for i in items
        ],
        "status": row["status"],
        "fulfillments": [
            {"tracking_id": json.loads(f["tracking_id"]), "item_ids": json.loads(f["item_ids"])} for f in fulfillments
        ],
        "payment_history": [
            {
                "transaction_type": p["transaction_type"],
                "amount": p["amount"],
                "payment_method_id": p["payment_method_id"],
            }
            for p in payments
        ],
    }
    for name in ORDER_OPTIONAL:
        value = row[name]
        out[name] = json.loads(value) if name in ID_LISTS and value is not None else value
    return out


def _by_position(view: View, table: str) -> list[dict[str, Any]]:
    return sorted(view[table], key=lambda r: r["position"])


def _grouped(view: View, table: str, key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _by_position(view, table):
        groups[r[key]].append(r)
    return groups


def _products(view: View) -> dict[str, Any]:
    variants = _grouped(view, "variants", "product_id")
    return {p["product_id"]: product(p, variants[p["product_id"]]) for p in _by_position(view, "products")}


def _users(view: View) -> dict[str, Any]:
    methods, orders = _grouped(view, "payment_methods", "user_id"), _grouped(view, "user_orders", "user_id")
    return {u["user_id"]: user(u, methods[u["user_id"]], orders[u["user_id"]]) for u in _by_position(view, "users")}


def _orders(view: View) -> dict[str, Any]:
    items, payments = _grouped(view, "order_items", "order_id"), _grouped(view, "order_payments", "order_id")
    fulfillments = _grouped(view, "fulfillments", "order_id")
    return {
        o["order_id"]: order(o, items[o["order_id"]], payments[o["order_id"]], fulfillments[o["order_id"]])
        for o in _by_position(view, "orders")
    }


# tau2's top-level dictionaries: what each is made of, and how
DOCUMENT = NestedDocument(
    {
        "products": (("products", "variants"), _products),
        "users": (("users", "payment_methods", "user_orders"), _users),
        "orders": (("orders", "order_items", "order_payments", "fulfillments"), _orders),
    }
)


def database(view: View) -> dict[str, Any]:
    """The whole state as tau2's ``db.json`` (``RetailDB.model_dump()``), every dictionary in tau2's order."""
    return DOCUMENT.document(view)


def db_hash(view: View) -> str:
    """tau2's ``get_db_hash()`` of this state: sha256 of the sorted-key JSON of the ``db.json`` dump."""
    return DOCUMENT.sha256(view)


# --- tau2's db.json -> rows ----------------------------------------------------------------------


def rows(db: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A tau2 retail ``db.json`` as rows of this package's tables (raises ValueError on what they cannot hold)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for position, (product_id, p) in enumerate(db["products"].items()):
        _same(product_id, p["product_id"], "products")
        out["products"].append({"product_id": product_id, "position": position, "name": p["name"]})
        for v_position, (item_id, v) in enumerate(p["variants"].items()):
            _same(item_id, v["item_id"], f"products[{product_id}].variants")
            out["variants"].append(
                {
                    "item_id": item_id,
                    "product_id": product_id,
                    "position": v_position,
                    "options": text(v["options"]),
                    "available": v["available"],
                    "price": float(v["price"]),
                }
            )
    for position, (user_id, u) in enumerate(db["users"].items()):
        _same(user_id, u["user_id"], "users")
        out["users"].append(
            {
                "user_id": user_id,
                "position": position,
                **u["name"],
                **{k: u["address"][k] for k in ADDRESS},
                "email": u["email"],
            }
        )
        for m_position, (method_id, m) in enumerate(u["payment_methods"].items()):
            _same(method_id, m["id"], f"users[{user_id}].payment_methods")
            known = {"source", "id", *PAYMENT_FIELDS[m["source"]]}
            if set(m) - known:
                raise ValueError(f"users[{user_id}].payment_methods[{method_id}]: unknown field(s) {set(m) - known}")
            row = {"user_id": user_id, "id": method_id, "position": m_position, "source": m["source"]}
            row.update({k: m[k] for k in PAYMENT_FIELDS[m["source"]]})
            if "balance" in row:
                row["balance"] = float(row["balance"])
            out["payment_methods"].append(row)
        for o_position, order_id in enumerate(u["orders"]):
            out["user_orders"].append({"user_id": user_id, "position": o_position, "order_id": order_id})
    for position, (order_id, o) in enumerate(db["orders"].items()):
        _same(order_id, o["order_id"], "orders")
        row = {"order_id": order_id, "position": position, "user_id": o["user_id"], "status": o["status"]}
        row.update({k: o["address"][k] for k in ADDRESS})
        for name in ORDER_OPTIONAL:
            value = o.get(name)
            row[name] = text(value) if name in ID_LISTS and value is not None else value
        out["orders"].append(row)
        for i_position, i in enumerate(o["items"]):
            out["order_items"].append(
                {
                    "order_id": order_id,
                    "position": i_position,
                    "name": i["name"],
                    "product_id": i["product_id"],
                    "item_id": i["item_id"],
                    "price": float(i["price"]),
                    "options": text(i["options"]),
                }
            )
        for p_position, p in enumerate(o["payment_history"]):
            out["order_payments"].append(
                {"order_id": order_id, "position": p_position, **p, "amount": float(p["amount"])}
            )
        for f_position, f in enumerate(o["fulfillments"]):
            out["fulfillments"].append(
                {
                    "order_id": order_id,
                    "position": f_position,
                    "tracking_id": text(f["tracking_id"]),
                    "item_ids": text(f["item_ids"]),
                }
            )
    return dict(out)


def _same(key: str, inner: str, where: str) -> None:
    if key != inner:
        raise ValueError(f"{where}: key {key!r} differs from the id inside it ({inner!r})")
