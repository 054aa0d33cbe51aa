"""The warehouse's tables: suppliers, products, bins, stock, purchase orders, customer orders, movements.

Dates are ISO strings (``YYYY-MM-DD``), movement times ISO date-times, money is
integer cents and quantities are whole units. Columns holding one of a few
values carry a CHECK constraint.
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, UniqueConstraint
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel


class Base(SQLModel, registry=registry()):
    pass


class Supplier(Base, table=True):
    """A company the warehouse buys products from."""

    __tablename__ = "suppliers"
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)
    email: str
    phone: str
    lead_time_days: int


class Product(Base, table=True):
    """A stocked item, identified by its SKU."""

    __tablename__ = "products"
    __table_args__ = (CheckConstraint("reorder_point >= 0 AND reorder_qty > 0", name="reorder_sane"),)
    id: int = Field(primary_key=True)
    sku: str = Field(unique=True)
    name: str
    hazardous: bool = False
    supplier_id: int = Field(foreign_key="suppliers.id")
    unit_cost_cents: int
    reorder_point: int  # a PO may be raised while total stock is below this
    reorder_qty: int  # the standard quantity ordered


class Bin(Base, table=True):
    """A storage location in one zone, holding at most ``capacity`` units."""

    __tablename__ = "bins"
    __table_args__ = (CheckConstraint("zone IN ('general', 'cold', 'hazmat')", name="zone_known"),)
    id: int = Field(primary_key=True)
    code: str = Field(unique=True)
    zone: str  # general | cold | hazmat
    capacity: int


class Stock(Base, table=True):
    """How many units of one product sit in one bin."""

    __tablename__ = "stock"
    __table_args__ = (
        UniqueConstraint("product_id", "bin_id", name="one_row_per_product_bin"),
        CheckConstraint("quantity >= 0", name="stock_non_negative"),
    )
    id: int = Field(primary_key=True)
    product_id: int = Field(foreign_key="products.id")
    bin_id: int = Field(foreign_key="bins.id")
    quantity: int


class PurchaseOrder(Base, table=True):
    """An order placed with a supplier."""

    __tablename__ = "purchase_orders"
    __table_args__ = (CheckConstraint("status IN ('open', 'received', 'cancelled')", name="po_status_known"),)
    id: int = Field(primary_key=True)
    po_number: str = Field(unique=True)
    supplier_id: int = Field(foreign_key="suppliers.id")
    status: str = "open"  # open | received | cancelled
    created: str
    expected: str
    closed: str | None = None  # the date it was fully received or cancelled


class PoLine(Base, table=True):
    """One product on a purchase order, with what has arrived so far."""

    __tablename__ = "po_lines"
    __table_args__ = (CheckConstraint("received_qty >= 0 AND received_qty <= ordered_qty", name="po_line_sane"),)
    id: int = Field(primary_key=True)
    po_id: int = Field(foreign_key="purchase_orders.id")
    product_id: int = Field(foreign_key="products.id")
    ordered_qty: int
    received_qty: int = 0
    unit_cost_cents: int


class Customer(Base, table=True):
    """A customer the warehouse ships to."""

    __tablename__ = "customers"
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)
    email: str
    city: str


class Order(Base, table=True):
    """A customer order: picked line by line, then shipped."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'shipped', 'cancelled')", name="order_status_known"),
        CheckConstraint("carrier IS NULL OR carrier IN ('UPS', 'FedEx', 'DHL')", name="carrier_known"),
    )
    id: int = Field(primary_key=True)
    order_number: str = Field(unique=True)
    customer_id: int = Field(foreign_key="customers.id")
    status: str = "open"  # open | shipped | cancelled
    created: str
    shipped_on: str | None = None
    carrier: str | None = None  # UPS | FedEx | DHL


class OrderLine(Base, table=True):
    """One product on a customer order, with how many units are picked."""

    __tablename__ = "order_lines"
    __table_args__ = (CheckConstraint("picked_qty >= 0 AND picked_qty <= quantity", name="order_line_sane"),)
    id: int = Field(primary_key=True)
    order_id: int = Field(foreign_key="orders.id")
    product_id: int = Field(foreign_key="products.id")
    quantity: int
    picked_qty: int = 0


class Movement(Base, table=True):
    """The audit log: one row per change of one product's stock in one bin."""

    __tablename__ = "movements"
    __table_args__ = (
        CheckConstraint("kind IN ('receipt', 'pick', 'transfer', 'adjustment')", name="movement_kind_known"),
        CheckConstraint(
            "reason IS NULL OR reason IN ('damaged', 'expired', 'count_correction', 'found')",
            name="movement_reason_known",
        ),
    )
    id: int = Field(primary_key=True)
    product_id: int = Field(foreign_key="products.id")
    bin_id: int = Field(foreign_key="bins.id")
    quantity_change: int  # positive in, negative out
    kind: str  # receipt | pick | transfer | adjustment
    reference: str | None = None  # PO or order number, or the other bin of a transfer
    reason: str | None = None  # for adjustments
    created: str  # ISO date-time
