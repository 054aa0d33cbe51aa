"""Between tau2-bench's airline ``db.json`` and this package's tables, both ways.

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
CABINS = ("basic_economy", "economy", "business")  # the order of tau2's seat and price dictionaries
PAYMENT_FIELDS = {"credit_card": ("brand", "last_four"), "gift_card": ("amount",), "certificate": ("amount",)}
STATUS_FIELDS: dict[str, tuple[str, ...]] = {
    "available": ("available_seats", "prices"),
    "landed": ("actual_departure_time_est", "actual_arrival_time_est"),
    "cancelled": (),
    "delayed": ("estimated_departure_time_est", "estimated_arrival_time_est"),
    "flying": ("actual_departure_time_est", "estimated_arrival_time_est"),
    "on time": ("estimated_departure_time_est", "estimated_arrival_time_est"),
}
FLIGHT = ("flight_number", "origin", "destination")


def text(value: Any) -> str:
    """JSON text as tau2's environment writes a tool's answer (``json.dumps`` with its defaults)."""
    return json.dumps(value)


# --- rows -> tau2's JSON objects -----------------------------------------------------------------


def seats(row: Row) -> dict[str, Any]:
    return {cabin: row[f"seats_{cabin}"] for cabin in CABINS}


def prices(row: Row) -> dict[str, Any]:
    return {cabin: row[f"price_{cabin}"] for cabin in CABINS}


def date_status(row: Row) -> dict[str, Any]:
    """A flight's status on one date, as tau2's FlightDateStatus model of that status."""
    if row["status"] == "available":
        return {"status": "available", "available_seats": seats(row), "prices": prices(row)}
    return {"status": row["status"], **{k: row[k] for k in STATUS_FIELDS[row["status"]]}}


def flight(row: Row, dates: Iterable[Row]) -> dict[str, Any]:
    return {
        **{k: row[k] for k in FLIGHT},
        "scheduled_departure_time_est": row["scheduled_departure_time_est"],
        "scheduled_arrival_time_est": row["scheduled_arrival_time_est"],
        "dates": {d["date"]: date_status(d) for d in dates},
    }


def direct_flight(row: Row, on_date: Row, date: str | None = None) -> dict[str, Any]:
    """A search result (tau2's DirectFlight): the flight and its seats and prices on the date searched."""
    return {
        **{k: row[k] for k in FLIGHT},
        "status": "available",
        "scheduled_departure_time_est": row["scheduled_departure_time_est"],
        "scheduled_arrival_time_est": row["scheduled_arrival_time_est"],
        "date": date,
        "available_seats": seats(on_date),
        "prices": prices(on_date),
    }


def payment_method(row: Row) -> dict[str, Any]:
    source = row["source"]
    return {"source": source, "id": row["id"], **{k: row[k] for k in PAYMENT_FIELDS[source]}}


def passenger(row: Row) -> dict[str, Any]:
    return {"first_name": row["first_name"], "last_name": row["last_name"], "dob": row["dob"]}


def user(row: Row, methods: Iterable[Row], saved: Iterable[Row], reservations: Iterable[Row]) -> dict[str, Any]:
    """A user; each of ``methods``, ``saved`` (passengers) and ``reservations`` (user_reservations rows) in order."""
    return {
        "user_id": row["user_id"],
        "name": {"first_name": row["first_name"], "last_name": row["last_name"]},
        "address": {k: row[k] for k in ADDRESS},
        "email": row["email"],
        "dob": row["dob"],
        "payment_methods": {m["id"]: payment_method(m) for m in methods},
        "saved_passengers": [passenger(p) for p in saved],
        "membership": row["membership"],
        "reservations": [r["reservation_id"] for r in reservations],
    }


def reservation(row: Row, flights: Iterable[Row], passengers: Iterable[Row], payments: Iterable[Row]) -> dict[str, Any]:
    """A reservation; each list of rows in its order."""
    return {
        "reservation_id": row["reservation_id"],
        "user_id": row["user_id"],
        "origin": row["origin"],
        "destination": row["destination"],
        "flight_type": row["flight_type"],
        "cabin": row["cabin"],
        "flights": [{**{k: f[k] for k in FLIGHT}, "date": f["date"], "price": f["price"]} for f in flights],
        "passengers": [passenger(p) for p in passengers],
        "payment_history": [{"payment_id": p["payment_id"], "amount": p["amount"]} for p in payments],
        "created_at": row["created_at"],
        "total_baggages": row["total_baggages"],
        "nonfree_baggages": row["nonfree_baggages"],
        "insurance": row["insurance"],
        "status": row["status"],
    }


def _by_position(view: View, table: str) -> list[dict[str, Any]]:
    return sorted(view[table], key=lambda r: r["position"])


def _grouped(view: View, table: str, key: str) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in _by_position(view, table):
        groups[r[key]].append(r)
    return groups


def _flights(view: View) -> dict[str, Any]:
    dates = _grouped(view, "flight_dates", "flight_number")
    return {f["flight_number"]: flight(f, dates[f["flight_number"]]) for f in _by_position(view, "flights")}


def _users(view: View) -> dict[str, Any]:
    methods, saved = _grouped(view, "payment_methods", "user_id"), _grouped(view, "saved_passengers", "user_id")
    reservations = _grouped(view, "user_reservations", "user_id")
    return {
        u["user_id"]: user(u, methods[u["user_id"]], saved[u["user_id"]], reservations[u["user_id"]])
        for u in _by_position(view, "users")
    }


def _reservations(view: View) -> dict[str, Any]:
    flights, passengers = (
        _grouped(view, "reservation_flights", "reservation_id"),
        _grouped(view, "passengers", "reservation_id"),
    )
    payments = _grouped(view, "payments", "reservation_id")
    return {
        r["reservation_id"]: reservation(
            r, flights[r["reservation_id"]], passengers[r["reservation_id"]], payments[r["reservation_id"]]
        )
        for r in _by_position(view, "reservations")
    }


# tau2's top-level dictionaries: what each is made of, and how
DOCUMENT = NestedDocument(
    {
        "flights": (("flights", "flight_dates"), _flights),
        "users": (("users", "payment_methods", "saved_passengers", "user_reservations"), _users),
        "reservations": (("reservations", "reservation_flights", "passengers", "payments"), _reservations),
    }
)


def database(view: View) -> dict[str, Any]:
    """The whole state as tau2's ``db.json`` (``FlightDB.model_dump()``), every dictionary in tau2's order."""
    return DOCUMENT.document(view)


def db_hash(view: View) -> str:
    """tau2's ``get_db_hash()`` of this state: sha256 of the sorted-key JSON of the ``db.json`` dump."""
    return DOCUMENT.sha256(view)


# --- tau2's db.json -> rows ----------------------------------------------------------------------


def rows(db: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """A tau2 airline ``db.json`` as rows of this package's tables (raises ValueError on what they cannot hold)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for position, (number, f) in enumerate(db["flights"].items()):
        _same(number, f["flight_number"], "flights")
        _fields(
            f, {*FLIGHT, "scheduled_departure_time_est", "scheduled_arrival_time_est", "dates"}, f"flights[{number}]"
        )
        out["flights"].append({"position": position, **{k: v for k, v in f.items() if k != "dates"}})
        for d_position, (date, status) in enumerate(f["dates"].items()):
            where = f"flights[{number}].dates[{date}]"
            kind = status["status"]
            _fields(status, {"status", *STATUS_FIELDS[kind]}, where)
            row: dict[str, Any] = {"flight_number": number, "date": date, "position": d_position, "status": kind}
            if kind == "available":
                for name, prefix in (("available_seats", "seats"), ("prices", "price")):
                    if tuple(status[name]) != CABINS:
                        raise ValueError(f"{where}.{name}: cabins {list(status[name])}, expected {list(CABINS)}")
                    row.update({f"{prefix}_{cabin}": status[name][cabin] for cabin in CABINS})
            else:
                row.update({k: status[k] for k in STATUS_FIELDS[kind]})
            out["flight_dates"].append(row)
    for position, (user_id, u) in enumerate(db["users"].items()):
        _same(user_id, u["user_id"], "users")
        out["users"].append(
            {
                "user_id": user_id,
                "position": position,
                **u["name"],
                **{k: u["address"].get(k) for k in ADDRESS},
                "email": u["email"],
                "dob": u["dob"],
                "membership": u["membership"],
            }
        )
        for m_position, (method_id, m) in enumerate(u["payment_methods"].items()):
            _same(method_id, m["id"], f"users[{user_id}].payment_methods")
            _fields(m, {"source", "id", *PAYMENT_FIELDS[m["source"]]}, f"users[{user_id}].payment_methods[{method_id}]")
            row = {"user_id": user_id, "id": method_id, "position": m_position, "source": m["source"]}
            row.update({k: m[k] for k in PAYMENT_FIELDS[m["source"]]})
            if "amount" in row:
                row["amount"] = float(row["amount"])
            out["payment_methods"].append(row)
        for p_position, p in enumerate(u["saved_passengers"]):
            out["saved_passengers"].append({"user_id": user_id, "position": p_position, **passenger(p)})
        for r_position, reservation_id in enumerate(u["reservations"]):
            out["user_reservations"].append(
                {"user_id": user_id, "position": r_position, "reservation_id": reservation_id}
            )
    for position, (reservation_id, r) in enumerate(db["reservations"].items()):
        _same(reservation_id, r["reservation_id"], "reservations")
        lists = ("flights", "passengers", "payment_history")
        out["reservations"].append(
            {"position": position, "status": None, **{k: v for k, v in r.items() if k not in lists}}
        )
        for f_position, f in enumerate(r["flights"]):
            out["reservation_flights"].append({"reservation_id": reservation_id, "position": f_position, **f})
        for p_position, p in enumerate(r["passengers"]):
            out["passengers"].append({"reservation_id": reservation_id, "position": p_position, **passenger(p)})
        for p_position, p in enumerate(r["payment_history"]):
            out["payments"].append({"reservation_id": reservation_id, "position": p_position, **p})
    return dict(out)


def _same(key: str, inner: str, where: str) -> None:
    if key != inner:
        raise ValueError(f"{where}: key {key!r} differs from the id inside it ({inner!r})")


def _fields(obj: Mapping[str, Any], known: set[str], where: str) -> None:
    if set(obj) - known:
        raise ValueError(f"{where}: unknown field(s) {sorted(set(obj) - known)}")
