"""tau2-bench's retail database (``db.json``: products, users, orders) as SQLite tables.

tau2 keeps the store as nested pydantic models; here each list and each dictionary of it is a
table. Dictionaries keep their order in ``position`` (tau2's tools walk users and products in
that order), lists keep theirs in ``position`` too, as part of the key. A product's options (a
small ``{name: value}`` mapping, in its order) and the id lists of a fulfilment or of an exchange
or return are JSON text. :mod:`.tau2db` turns the tables back into tau2's ``db.json`` shape, so
the state can be hashed as tau2 hashes it.

Money is tau2's: float dollars, unrounded where tau2 leaves it unrounded.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import CheckConstraint
from sqlalchemy.orm import registry
from sqlalchemy.types import UserDefinedType
from sqlmodel import Field, SQLModel


class AsGiven(UserDefinedType[Any]):
    """A column without a type (SQLite: no affinity), so a number stays the int or float it was given.

    tau2 tells them apart (``0`` and ``0.0`` dump, and hash, differently) where its code stores a
    value without validating it; a REAL column would turn 0 into 0.0.
    """

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return ""


class Base(SQLModel, registry=registry()):
    pass


class Product(Base, table=True):
    """A product type (T-Shirt, Office Chair ...): its variants are the items one can buy."""

    __tablename__ = "products"
    product_id: str = Field(primary_key=True)
    position: int  # its place in tau2's products dictionary
    name: str


class Variant(Base, table=True):
    """One item of a product: its options, whether it is in stock, its price."""

    __tablename__ = "variants"
    item_id: str = Field(primary_key=True)
    product_id: str = Field(foreign_key="products.product_id", index=True)
    position: int  # its place in the product's variants dictionary
    options: str  # JSON object, e.g. {"color": "blue", "size": "M"}, in tau2's order
    available: bool
    price: float


class User(Base, table=True):
    """A customer: name, default address, email."""

    __tablename__ = "users"
    user_id: str = Field(primary_key=True)
    position: int  # its place in tau2's users dictionary
    first_name: str
    last_name: str
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str
    email: str


class PaymentMethod(Base, table=True):
    """A customer's credit card, gift card (with a balance) or PayPal account."""

    __tablename__ = "payment_methods"
    __table_args__ = (CheckConstraint("source IN ('credit_card', 'gift_card', 'paypal')", name="source_known"),)
    user_id: str = Field(primary_key=True, foreign_key="users.user_id")
    id: str = Field(primary_key=True)
    position: int  # its place in the user's payment methods dictionary
    source: str  # credit_card | gift_card | paypal
    brand: str | None = None  # credit cards
    last_four: str | None = None  # credit cards
    balance: float | None = None  # gift cards


class UserOrder(Base, table=True):
    """The list of a user's order ids, in tau2's order."""

    __tablename__ = "user_orders"
    user_id: str = Field(primary_key=True, foreign_key="users.user_id")
    position: int = Field(primary_key=True)
    order_id: str = Field(foreign_key="orders.order_id")


class Order(Base, table=True):
    """An order: its shipping address, status, and what an exchange, return or cancellation asked."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(
            "status IN ('processed', 'pending', 'pending (item modified)', 'delivered', 'cancelled', "
            "'exchange requested', 'return requested')",
            name="status_known",
        ),
    )
    order_id: str = Field(primary_key=True)
    position: int  # its place in tau2's orders dictionary
    user_id: str = Field(foreign_key="users.user_id", index=True)
    address1: str
    address2: str
    city: str
    country: str
    state: str
    zip: str
    status: str
    cancel_reason: str | None = None
    exchange_items: str | None = None  # JSON list of item ids
    exchange_new_items: str | None = None  # JSON list of item ids
    exchange_payment_method_id: str | None = None
    exchange_price_difference: float | None = Field(default=None, sa_type=AsGiven)  # int 0 for an empty exchange
    return_items: str | None = None  # JSON list of item ids
    return_payment_method_id: str | None = None


class OrderItem(Base, table=True):
    """One line of an order (the same item may appear on several lines)."""

    __tablename__ = "order_items"
    order_id: str = Field(primary_key=True, foreign_key="orders.order_id")
    position: int = Field(primary_key=True)
    name: str
    product_id: str = Field(foreign_key="products.product_id")
    item_id: str = Field(foreign_key="variants.item_id")
    price: float
    options: str  # JSON object, in tau2's order


class OrderPayment(Base, table=True):
    """One payment or refund of an order, in the order they happened."""

    __tablename__ = "order_payments"
    __table_args__ = (CheckConstraint("transaction_type IN ('payment', 'refund')", name="transaction_known"),)
    order_id: str = Field(primary_key=True, foreign_key="orders.order_id")
    position: int = Field(primary_key=True)
    transaction_type: str
    amount: float
    payment_method_id: str


class Fulfillment(Base, table=True):
    """A shipment of an order: its tracking ids and the items in it."""

    __tablename__ = "fulfillments"
    order_id: str = Field(primary_key=True, foreign_key="orders.order_id")
    position: int = Field(primary_key=True)
    tracking_id: str  # JSON list of tracking ids
    item_ids: str  # JSON list of item ids
