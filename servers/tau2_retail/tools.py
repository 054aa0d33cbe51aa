"""tau2-bench's retail tools over SQLite: the same names, arguments, answers and errors.

Written for envfarm from the behaviour of tau2-bench's ``src/tau2/domains/retail/tools.py`` (MIT,
commit in ``tau2.json``); the tool and parameter descriptions are tau2's words, so an agent reads
what tau2's agent reads. Each tool answers the text tau2's environment answers for the same call on
the same state: a JSON object dumped as tau2 dumps it (``json.dumps`` of the model, fields in model
order), a plain string, or on an error ``Error: <message>`` (``ERROR_FORMAT``) with tau2's message.

tau2's quirks that change the state are kept (docs/environments/tau2_retail.md lists them), e.g.
``modify_pending_order_items`` gives every modified line the price and options of the last new item,
and records the price difference unrounded.
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Annotated, Any

from pydantic import Field

from envfarm.core.toolkit import calculate_text
from envfarm.core.tools import ToolContext, ToolError, tool

from . import tau2db

# Bounds tau2 does not have: far above any real value, so no agent can send SQLite a string it cannot hold.
Key = Annotated[str, Field(max_length=200)]
"""An id as tau2 writes them ('#W0000000', 'sara_doe_496', 'gift_card_0000000', '1008292230')."""
Line = Annotated[str, Field(max_length=500)]
"""A name, an address line, an email, a reason."""
Summary = Annotated[str, Field(max_length=10_000)]
"""Free text for a human agent."""
Expression = Annotated[str, Field(max_length=500)]
"""Arithmetic for ``calculate``."""

CANCEL_REASONS = ("no longer needed", "ordered by mistake")


# --- look-ups (tau2's _get_* helpers, and their errors) ------------------------------------------


def _order(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    order = ctx.one("SELECT * FROM orders WHERE order_id = ?", (order_id,))
    if order is None:
        raise ToolError("Order not found")
    return order


def _user(ctx: ToolContext, user_id: str) -> dict[str, Any]:
    user = ctx.one("SELECT * FROM users WHERE user_id = ?", (user_id,))
    if user is None:
        raise ToolError("User not found")
    return user


def _product(ctx: ToolContext, product_id: str) -> dict[str, Any]:
    product = ctx.one("SELECT * FROM products WHERE product_id = ?", (product_id,))
    if product is None:
        raise ToolError("Product not found")
    return product


def _variant(ctx: ToolContext, product_id: str, item_id: str) -> dict[str, Any]:
    _product(ctx, product_id)
    variant = ctx.one("SELECT * FROM variants WHERE product_id = ? AND item_id = ?", (product_id, item_id))
    if variant is None:
        raise ToolError("Variant not found")
    return variant


def _payment_method(ctx: ToolContext, user_id: str, method_id: str) -> dict[str, Any]:
    _user(ctx, user_id)
    method = ctx.one("SELECT * FROM payment_methods WHERE user_id = ? AND id = ?", (user_id, method_id))
    if method is None:
        raise ToolError("Payment method not found")
    return method


def _items(ctx: ToolContext, order_id: str) -> list[dict[str, Any]]:
    return ctx.all("SELECT * FROM order_items WHERE order_id = ? ORDER BY position", (order_id,))


def _payments(ctx: ToolContext, order_id: str) -> list[dict[str, Any]]:
    return ctx.all("SELECT * FROM order_payments WHERE order_id = ? ORDER BY position", (order_id,))


def _add_payment(ctx: ToolContext, order_id: str, kind: str, amount: float, method_id: str) -> None:
    position = ctx.scalar("SELECT COUNT(*) FROM order_payments WHERE order_id = ?", (order_id,))
    ctx.insert(
        "order_payments",
        {
            "order_id": order_id,
            "position": position,
            "transaction_type": kind,
            "amount": float(amount),  # tau2's OrderPayment.amount is a float field
            "payment_method_id": method_id,
        },
    )


def _set_balance(ctx: ToolContext, method: dict[str, Any], balance: float) -> None:
    ctx.update("payment_methods", {"user_id": method["user_id"], "id": method["id"]}, {"balance": round(balance, 2)})


def _order_dict(ctx: ToolContext, order_id: str) -> dict[str, Any]:
    order = _order(ctx, order_id)
    fulfillments = ctx.all("SELECT * FROM fulfillments WHERE order_id = ? ORDER BY position", (order_id,))
    return tau2db.order(order, _items(ctx, order_id), _payments(ctx, order_id), fulfillments)


def _order_text(ctx: ToolContext, order_id: str) -> str:
    return tau2db.text(_order_dict(ctx, order_id))


def _user_text(ctx: ToolContext, user_id: str) -> str:
    user = _user(ctx, user_id)
    methods = ctx.all("SELECT * FROM payment_methods WHERE user_id = ? ORDER BY position", (user_id,))
    orders = ctx.all("SELECT order_id FROM user_orders WHERE user_id = ? ORDER BY position", (user_id,))
    return tau2db.text(tau2db.user(user, methods, orders))


def _missing(wanted: list[str], present: list[str]) -> str | None:
    """The first id asked for more often than the order holds it (tau2's duplicate-aware check)."""
    asked, held = Counter(wanted), Counter(present)
    return next((item_id for item_id in wanted if asked[item_id] > held[item_id]), None)


def _first_line(ctx: ToolContext, order_id: str, item_id: str) -> dict[str, Any] | None:
    return ctx.one(
        "SELECT * FROM order_items WHERE order_id = ? AND item_id = ? ORDER BY position LIMIT 1", (order_id, item_id)
    )


def _set_address(
    ctx: ToolContext,
    table: str,
    key: dict[str, str],
    address1: str,
    address2: str,
    city: str,
    state: str,
    country: str,
    zip: str,
) -> None:
    values = {"address1": address1, "address2": address2, "city": city, "country": country, "state": state, "zip": zip}
    ctx.update(table, key, values)


# --- tools -------------------------------------------------------------------------------------


@tool(kind="query")
def calculate(ctx: ToolContext, expression: Expression) -> str:
    """Calculate the result of a mathematical expression.

    Args:
        expression: The mathematical expression to calculate, such as '2 + 2'. The expression can contain
            numbers, operators (+, -, *, /), parentheses, and spaces.
    """
    return calculate_text(expression)


@tool(kind="mutation")
def cancel_pending_order(ctx: ToolContext, order_id: Key, reason: Line) -> str:
    """Cancel a pending order. If the order is already processed or delivered,

    it cannot be cancelled. The agent needs to explain the cancellation detail
    and ask for explicit user confirmation (yes/no) to proceed. If the user confirms,
    the order status will be changed to 'cancelled' and the payment will be refunded.
    The refund will be added to the user's gift card balance immediately if the payment
    was made using a gift card, otherwise the refund would take 5-7 business days to process.
    The function returns the order details after the cancellation.

    Args:
        order_id: The order id, such as '#W0000000'. Be careful there is a '#' symbol at the beginning of the
            order id.
        reason: The reason for cancellation, which should be either 'no longer needed' or 'ordered by mistake'.
    """
    order = _order(ctx, order_id)
    if order["status"] != "pending":
        raise ToolError("Non-pending order cannot be cancelled", rule="cancel-pending-order")
    if reason not in CANCEL_REASONS:
        raise ToolError("Invalid reason", rule="cancel-pending-order")
    payments = _payments(ctx, order_id)
    for payment in payments:
        try:
            method = _payment_method(ctx, order["user_id"], payment["payment_method_id"])
        except ToolError as e:  # tau2 fails here keeping the gift card refunds it already made
            raise ToolError(e.message, keep_writes=True) from None
        if method["source"] == "gift_card":  # refunded at once
            _set_balance(ctx, method, method["balance"] + payment["amount"])
    ctx.update("orders", {"order_id": order_id}, {"status": "cancelled", "cancel_reason": reason})
    for payment in payments:
        _add_payment(ctx, order_id, "refund", payment["amount"], payment["payment_method_id"])
    return _order_text(ctx, order_id)


@tool(kind="mutation")
def exchange_delivered_order_items(
    ctx: ToolContext, order_id: Key, item_ids: list[Key], new_item_ids: list[Key], payment_method_id: Key
) -> str:
    """Exchange items in a delivered order to new items of the same product type.

    For a delivered order, return or exchange can be only done once by the agent.
    The agent needs to explain the exchange detail and ask for explicit user confirmation (yes/no) to proceed.

    Args:
        order_id: The order id, such as '#W0000000'. Be careful there is a '#' symbol at the beginning of the
            order id.
        item_ids: The item ids to be exchanged, each such as '1008292230'. There could be duplicate items in the
            list.
        new_item_ids: The item ids to be exchanged for, each such as '1008292230'. There could be duplicate items
            in the list. Each new item id should match the item id in the same position and be of the same
            product.
        payment_method_id: The payment method id to pay or receive refund for the item price difference, such as
            'gift_card_0000000' or 'credit_card_0000000'. These can be looked up from the user or order details.
    """
    order = _order(ctx, order_id)
    if order["status"] != "delivered":
        raise ToolError("Non-delivered order cannot be exchanged", rule="exchange-delivered-order")
    missing = _missing(item_ids, [i["item_id"] for i in _items(ctx, order_id)])
    if missing is not None:
        raise ToolError(f"Number of {missing} not found.")
    if len(item_ids) != len(new_item_ids):
        raise ToolError("The number of items to be exchanged should match.")
    difference: float = 0
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        line = _first_line(ctx, order_id, item_id)
        if line is None:
            raise ToolError(f"Item {item_id} not found")
        variant = _variant(ctx, line["product_id"], new_item_id)
        if not variant["available"]:
            raise ToolError(f"New item {new_item_id} not found or available")
        difference += variant["price"] - line["price"]
    difference = round(difference, 2)  # an int 0 when nothing is exchanged, as in tau2
    method = _payment_method(ctx, order["user_id"], payment_method_id)
    if method["source"] == "gift_card" and method["balance"] < difference:
        raise ToolError("Insufficient gift card balance to pay for the price difference")
    values = {
        "status": "exchange requested",
        "exchange_items": tau2db.text(sorted(item_ids)),
        "exchange_new_items": tau2db.text(sorted(new_item_ids)),
        "exchange_payment_method_id": payment_method_id,
        "exchange_price_difference": difference,
    }
    ctx.update("orders", {"order_id": order_id}, values)
    return _order_text(ctx, order_id)


@tool(kind="query")
def find_user_id_by_name_zip(ctx: ToolContext, first_name: Line, last_name: Line, zip: Line) -> str:
    """Find user id by first name, last name, and zip code. If the user is not found, the function

    will return an error message. By default, find user id by email, and only call this function
    if the user is not found by email or cannot remember email.

    Args:
        first_name: The first name of the customer, such as 'John'.
        last_name: The last name of the customer, such as 'Doe'.
        zip: The zip code of the customer, such as '12345'.
    """
    first, last = first_name.lower(), last_name.lower()
    rows = ctx.db.execute("SELECT user_id, first_name, last_name FROM users WHERE zip = ? ORDER BY position", (zip,))
    for user_id, first_of, last_of in rows:  # the zip is compared exactly, the names as Python lower-cases them
        if first_of.lower() == first and last_of.lower() == last:
            return str(user_id)
    raise ToolError("User not found")


@tool(kind="query")
def find_user_id_by_email(ctx: ToolContext, email: Line) -> str:
    """Find user id by email. If the user is not found, the function will return an error message.

    Args:
        email: The email of the user, such as 'something@example.com'.
    """
    wanted = email.lower()
    # Python's lower-casing decides; SQLite's (ASCII only) agrees with it on ASCII addresses, so it picks
    # the candidates, with every address that has a character outside ASCII.
    candidates = ctx.db.execute(
        "SELECT user_id, email FROM users WHERE lower(email) = ? OR email GLOB '*[^ -~]*' ORDER BY position",
        (wanted,),
    )
    for user_id, address in candidates:
        if address.lower() == wanted:
            return str(user_id)
    raise ToolError("User not found")


@tool(kind="query")
def get_order_details(ctx: ToolContext, order_id: Key) -> str:
    """Get the status and details of an order.

    Args:
        order_id: The order id, such as '#W0000000'. Be careful there is a '#' symbol at the beginning of the
            order id.
    """
    return _order_text(ctx, order_id)


@tool(kind="query")
def get_product_details(ctx: ToolContext, product_id: Key) -> str:
    """Get the inventory details of a product.

    Args:
        product_id: The product id, such as '6086499569'. Be careful the product id is different from the item id.
    """
    product = _product(ctx, product_id)
    variants = ctx.all("SELECT * FROM variants WHERE product_id = ? ORDER BY position", (product_id,))
    return tau2db.text(tau2db.product(product, variants))


@tool(kind="query")
def get_item_details(ctx: ToolContext, item_id: Key) -> str:
    """Get the inventory details of an item.

    Args:
        item_id: The item id, such as '6086499569'. Be careful the item id is different from the product id.
    """
    variant = ctx.one(
        "SELECT v.* FROM variants v JOIN products p ON p.product_id = v.product_id "
        "WHERE v.item_id = ? ORDER BY p.position LIMIT 1",
        (item_id,),
    )
    if variant is None:
        raise ToolError("Item not found")
    return tau2db.text(tau2db.variant(variant))


@tool(kind="query")
def get_user_details(ctx: ToolContext, user_id: Key) -> str:
    """Get the details of a user, including their orders.

    Args:
        user_id: The user id, such as 'sara_doe_496'.
    """
    return _user_text(ctx, user_id)


@tool(kind="query")
def list_all_product_types(ctx: ToolContext) -> str:
    """List the name and product id of all product types.

    Each product type has a variety of different items with unique item ids and options.
    There are only 50 product types in the store.
    """
    names = {p["name"]: p["product_id"] for p in ctx.all("SELECT name, product_id FROM products ORDER BY position")}
    return json.dumps(names, sort_keys=True)


@tool(kind="mutation")
def modify_pending_order_address(
    ctx: ToolContext, order_id: Key, address1: Line, address2: Line, city: Line, state: Line, country: Line, zip: Line
) -> str:
    """Modify the shipping address of a pending order. The agent needs to explain the modification detail and ask for explicit user confirmation (yes/no) to proceed.

    Args:
        order_id: The order id, such as '#W0000000'. Be careful there is a '#' symbol at the beginning of the
            order id.
        address1: The first line of the address, such as '123 Main St'.
        address2: The second line of the address, such as 'Apt 1' or ''.
        city: The city, such as 'San Francisco'.
        state: The state, such as 'CA'.
        country: The country, such as 'USA'.
        zip: The zip code, such as '12345'.
    """  # noqa: E501
    order = _order(ctx, order_id)
    if "pending" not in order["status"]:  # tau2: also 'pending (item modified)'
        raise ToolError("Non-pending order cannot be modified", rule="modify-pending-order")
    _set_address(ctx, "orders", {"order_id": order_id}, address1, address2, city, state, country, zip)
    return _order_text(ctx, order_id)


@tool(kind="mutation")
def modify_pending_order_items(
    ctx: ToolContext, order_id: Key, item_ids: list[Key], new_item_ids: list[Key], payment_method_id: Key
) -> str:
    """Modify items in a pending order to new items of the same product type. For a pending order, this function can only be called once. The agent needs to explain the exchange detail and ask for explicit user confirmation (yes/no) to proceed.

    Args:
        order_id: The order id, such as '#W0000000'. Be careful there is a '#' symbol at the beginning of the
            order id.
        item_ids: The item ids to be modified, each such as '1008292230'. There could be duplicate items in the
            list.
        new_item_ids: The item ids to be modified for, each such as '1008292230'. There could be duplicate items
            in the list. Each new item id should match the item id in the same position and be of the same
            product.
        payment_method_id: The payment method id to pay or receive refund for the item price difference, such as
            'gift_card_0000000' or 'credit_card_0000000'. These can be looked up from the user or order details.
    """  # noqa: E501
    order = _order(ctx, order_id)
    if order["status"] != "pending":
        raise ToolError("Non-pending order cannot be modified", rule="modify-pending-order")
    missing = _missing(item_ids, [i["item_id"] for i in _items(ctx, order_id)])
    if missing is not None:
        raise ToolError(f"{missing} not found")
    if len(item_ids) != len(new_item_ids):
        raise ToolError("The number of items to be exchanged should match")
    difference: float = 0
    variant: dict[str, Any] | None = None
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        if item_id == new_item_id:
            raise ToolError("The new item id should be different from the old item id")
        line = _first_line(ctx, order_id, item_id)
        if line is None:
            raise ToolError(f"Item {item_id} not found")
        variant = _variant(ctx, line["product_id"], new_item_id)
        if not variant["available"]:
            raise ToolError(f"New item {new_item_id} not found or available")
        difference += variant["price"] - line["price"]  # unrounded, as tau2 records it
    method = _payment_method(ctx, order["user_id"], payment_method_id)
    if method["source"] == "gift_card" and method["balance"] < difference:
        raise ToolError("Insufficient gift card balance to pay for the new item")
    _add_payment(ctx, order_id, "payment" if difference > 0 else "refund", abs(difference), payment_method_id)
    if method["source"] == "gift_card":
        _set_balance(ctx, method, method["balance"] - difference)
    for item_id, new_item_id in zip(item_ids, new_item_ids, strict=True):
        line = _first_line(ctx, order_id, item_id)  # the state as the previous renames left it
        if line is None:
            raise ToolError(f"Item {item_id} not found")
        assert variant is not None
        # tau2's quirk: every modified line takes the price and options of the LAST new item
        values = {"item_id": new_item_id, "price": variant["price"], "options": variant["options"]}
        ctx.update("order_items", {"order_id": order_id, "position": line["position"]}, values)
    ctx.update("orders", {"order_id": order_id}, {"status": "pending (item modified)"})
    return _order_text(ctx, order_id)


@tool(kind="mutation")
def modify_pending_order_payment(ctx: ToolContext, order_id: Key, payment_method_id: Key) -> str:
    """Modify the payment method of a pending order. The agent needs to explain the modification detail and ask for explicit user confirmation (yes/no) to proceed.

    Args:
        order_id: The order id, such as '#W0000000'. Be careful there is a '#' symbol at the beginning of the
            order id.
        payment_method_id: The payment method id to pay or receive refund for the item price difference, such as
            'gift_card_0000000' or 'credit_card_0000000'. These can be looked up from the user or order details.
    """  # noqa: E501
    order = _order(ctx, order_id)
    if "pending" not in order["status"]:
        raise ToolError("Non-pending order cannot be modified", rule="modify-pending-order")
    method = _payment_method(ctx, order["user_id"], payment_method_id)
    payments = _payments(ctx, order_id)
    if len(payments) != 1 or payments[0]["transaction_type"] != "payment":
        raise ToolError("There should be exactly one payment for a pending order")
    old_method_id = payments[0]["payment_method_id"]
    if old_method_id == payment_method_id:
        raise ToolError("The new payment method should be different from the current one")
    amount = payments[0]["amount"]
    if method["source"] == "gift_card" and method["balance"] < amount:
        raise ToolError("Insufficient gift card balance to pay for the order")
    _add_payment(ctx, order_id, "payment", amount, payment_method_id)
    _add_payment(ctx, order_id, "refund", amount, old_method_id)
    if method["source"] == "gift_card":
        _set_balance(ctx, method, method["balance"] - amount)
    try:
        old_method = _payment_method(ctx, order["user_id"], old_method_id)
    except ToolError as e:  # tau2 fails here keeping the payment rows and the new card's charge
        raise ToolError(e.message, keep_writes=True) from None
    if old_method["source"] == "gift_card":
        _set_balance(ctx, old_method, old_method["balance"] + amount)
    return _order_text(ctx, order_id)


@tool(kind="mutation")
def modify_user_address(
    ctx: ToolContext, user_id: Key, address1: Line, address2: Line, city: Line, state: Line, country: Line, zip: Line
) -> str:
    """Modify the default address of a user. The agent needs to explain the modification detail and ask for explicit user confirmation (yes/no) to proceed.

    Args:
        user_id: The user id, such as 'sara_doe_496'.
        address1: The first line of the address, such as '123 Main St'.
        address2: The second line of the address, such as 'Apt 1' or ''.
        city: The city, such as 'San Francisco'.
        state: The state, such as 'CA'.
        country: The country, such as 'USA'.
        zip: The zip code, such as '12345'.
    """  # noqa: E501
    _user(ctx, user_id)
    _set_address(ctx, "users", {"user_id": user_id}, address1, address2, city, state, country, zip)
    return _user_text(ctx, user_id)


@tool(kind="mutation")
def return_delivered_order_items(ctx: ToolContext, order_id: Key, item_ids: list[Key], payment_method_id: Key) -> str:
    """Return some items of a delivered order.

    The order status will be changed to 'return requested'.
    The agent needs to explain the return detail and ask for explicit user confirmation (yes/no) to proceed.
    The user will receive follow-up email for how and where to return the item.

    Args:
        order_id: The order id, such as '#W0000000'. Be careful there is a '#' symbol at the beginning of the
            order id.
        item_ids: The item ids to be returned, each such as '1008292230'. There could be duplicate items in the
            list.
        payment_method_id: The payment method id to pay or receive refund for the item price difference, such as
            'gift_card_0000000' or 'credit_card_0000000'. These can be looked up from the user or order details.
    """
    order = _order(ctx, order_id)
    if order["status"] != "delivered":
        raise ToolError("Non-delivered order cannot be returned", rule="return-delivered-order")
    method = _payment_method(ctx, order["user_id"], payment_method_id)
    payments = _payments(ctx, order_id)
    if not payments:
        raise ToolError("list index out of range")  # tau2 reads payment_history[0]
    if method["source"] != "gift_card" and payment_method_id != payments[0]["payment_method_id"]:
        raise ToolError("Payment method should be the original payment method", rule="return-delivered-order")
    if _missing(item_ids, [i["item_id"] for i in _items(ctx, order_id)]) is not None:
        raise ToolError("Some item not found")
    values = {
        "status": "return requested",
        "return_items": tau2db.text(sorted(item_ids)),
        "return_payment_method_id": payment_method_id,
    }
    ctx.update("orders", {"order_id": order_id}, values)
    return _order_text(ctx, order_id)


@tool(kind="query")
def transfer_to_human_agents(ctx: ToolContext, summary: Summary) -> str:
    """Transfer the user to a human agent, with a summary of the user's issue.

    Only transfer if
     -  the user explicitly asks for a human agent
     -  given the policy and the available tools, you cannot solve the user's issue.

    Args:
        summary: A summary of the user's issue.
    """
    return "Transfer successful"
