"""Warehouse inventory: products, bins, stock per bin, purchase orders and customer orders.

An agent acts as the warehouse's inventory clerk: it receives supplier deliveries
into bins, moves stock between bins, writes off damaged stock, picks and ships
customer orders and raises purchase orders for products below their reorder point.
Every change of stock writes a row to the stock movement audit log.
"""

TITLE = "Warehouse inventory"

DESCRIPTION = (
    "You are the inventory clerk of the Riverside distribution warehouse. Products are identified "
    "by SKU (e.g. TAPE-PKG-48) and stored in bins identified by a code (e.g. A-02); every bin "
    "belongs to a zone (general, cold or hazmat) and holds at most its capacity in units. Use the "
    "tools to look products, bins, suppliers, purchase orders (PO-1002) and customer orders "
    "(SO-5004) up, then receive deliveries into bins, transfer stock between bins, adjust stock "
    "after counts or damage, pick and ship customer orders, raise and cancel purchase orders and "
    "change reorder points. Quantities are whole units, money is integer cents (1250 = $12.50) "
    "and dates are YYYY-MM-DD; today is the warehouse's date, which the tools use. Every stock "
    "change is written to the stock movement log. The tools refuse anything the warehouse's rules "
    "forbid and say which rule; explain such a refusal rather than working around it."
)

RULES = {
    "stock-non-negative": (
        "Stock of a product in a bin can never go below zero: a pick, transfer or write-off cannot "
        "take more units than the bin holds."
    ),
    "bin-capacity": "The units stored in a bin, over all products, can never exceed the bin's capacity.",
    "hazmat-zone": (
        "Hazardous products may only be stored in hazmat-zone bins, and hazmat bins hold only hazardous products."
    ),
    "receive-within-ordered": (
        "Receiving cannot bring a purchase order line's received quantity above its ordered quantity."
    ),
    "pick-within-order": "Picking cannot bring an order line's picked quantity above its ordered quantity.",
    "ship-when-fully-picked": "A customer order ships only when every one of its lines is fully picked.",
    "reorder-below-point": (
        "A purchase order for a product may only be raised while the product's total stock on hand is "
        "below its reorder point."
    ),
    "po-cancel-unreceived": "A purchase order can be cancelled only while nothing has been received on it.",
    "closed-is-final": (
        "A received or cancelled purchase order cannot be received against or cancelled, and a "
        "shipped or cancelled customer order cannot be picked or shipped."
    ),
}
