#!/usr/bin/env python
"""Compute, with tau2-bench's own code, what envfarm's tau2 environments must answer: the fidelity fixtures.

    /path/to/tau2-venv/bin/python scripts/tau2_expectations.py --tau2 PATH [--airline-db FILE] [--out DIR]

Run it with an interpreter where tau2-bench is installed (``pip install -e PATH`` in a venv of its
own: it needs Python 3.12+); PATH is that checkout (its ``src`` goes first on ``sys.path``, its
``data`` is the data). Nothing of envfarm is imported: the expectations are tau2's alone.

For every task of the retail and airline domains it builds trajectories from the gold actions:

- ``gold``: the gold actions;
- ``drop-<i>``: the gold actions without write ``i`` (each write in turn; a write is a tool tau2
  replays, ``mutates_state``);
- ``change-<i>-<argument>``: one argument of write ``i`` changed to another valid value that still
  succeeds (the first of a few candidates that tau2 does not refuse: another order or reservation
  of the same user, another payment method of theirs, another variant of the item's product,
  another cabin, a segment a day later, one more bag ...);
- ``read-first`` and ``read-last``: a read added before the first and after the last gold action,
  the read tools taken in turn across tasks (so every read tool is exercised, on the state the
  writes left);
- airline tasks whose reward includes COMMUNICATE also get ``said-all`` and ``said-some``: the gold
  actions and a closing assistant message that tells the user all of ``communicate_info``, or all but
  the last (numbers written with thousands separators, which tau2 ignores).

Then a few hand-made trajectories per domain aimed at tau2's quirks and error messages (every
item of an order modified at once, a certificate paid with twice, a reservation cancelled twice,
bags added and taken off, one-stop searches over midnight, errors of every tool ...), judged against the
first task; their ``task`` is that task's id and their ``case`` starts with ``quirk:``.

For each it runs the calls on tau2's environment (``Environment.get_response``: each call's output
text and error flag), takes the final database hash (``get_db_hash``), and scores the simulation
with tau2's evaluator (``evaluate_simulation``, no LLM: retail ENV, whose reward basis' NL assertions
need an LLM judge; airline ALL, i.e. DB times COMMUNICATE). It writes ``<domain>.jsonl.gz`` (one case
a line) and ``meta.json`` (the commit, the versions, the initial hashes) into ``--out``
(tests/servers/fixtures/tau2 by default). tests/servers/test_tau2_fidelity.py replays every case
on envfarm and compares.
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent.parent / "tests" / "servers" / "fixtures" / "tau2"
MAX_TRIES = 8  # candidates tried per argument of a write


def load_tau2(path: Path, airline_db: Path | None) -> dict[str, Any]:
    """Import tau2 from the checkout; make every environment start from one parsed copy of each db.json."""
    sys.path.insert(0, str(path / "src"))
    os.environ.setdefault("TAU2_DATA_DIR", str(path / "data"))
    import logging

    from loguru import logger

    logger.remove()
    logging.disable(logging.WARNING)
    from tau2.data_model import message, simulation, tasks
    from tau2.domains.airline import data_model as airline_model
    from tau2.domains.airline import environment as airline_env
    from tau2.domains.airline import utils as airline_utils
    from tau2.domains.retail import data_model as retail_model
    from tau2.domains.retail import environment as retail_env
    from tau2.evaluator import evaluator

    if airline_db is not None:
        airline_env.AIRLINE_DB_PATH = airline_db  # type: ignore[attr-defined]
        airline_utils.AIRLINE_DB_PATH = airline_db
    # tau2 builds every environment (the evaluator's gold and predicted ones too) with DB.load(path):
    # parse each db.json once and give each environment its own validated copy, as load would.
    for model, source in ((retail_model.RetailDB, retail_env.RETAIL_DB_PATH), (airline_model.FlightDB, None)):
        raw = json.loads(Path(source or airline_env.AIRLINE_DB_PATH).read_text())

        def load(cls: Any, _path: Any = None, _raw: dict[str, Any] = raw) -> Any:
            return cls.model_validate(_raw)  # validation builds new models, lists and dicts: _raw stays as read

        model.load = classmethod(load)  # type: ignore[method-assign,assignment]
    return {
        "message": message,
        "simulation": simulation,
        "tasks": tasks,
        "evaluator": evaluator,
        "domains": {"retail": retail_env, "airline": airline_env},
    }


class Domain:
    def __init__(self, tau2: dict[str, Any], name: str) -> None:
        self.t = tau2
        self.name = name
        self.module = tau2["domains"][name]
        self.tasks = self.module.get_tasks(None)
        probe = self.module.get_environment()
        self.db = probe.tools.db.model_dump()
        self.initial_hash = probe.get_db_hash()
        self.writes = {n for n in probe.tools.get_tools() if probe.tools.tool_mutates_state(n)}
        self.reads = sorted(n for n in probe.tools.get_tools() if n not in self.writes)

    # --- running --------------------------------------------------------------------------------------

    def run(self, calls: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], str, list[Any]]:
        """Each call's output on a fresh environment, the final db hash, and the messages of the run."""
        message = self.t["message"]
        env = self.module.get_environment()
        outputs, messages = [], []
        for i, call in enumerate(calls):
            tool_call = message.ToolCall(id=f"call_{i}", name=call["tool"], arguments=copy.deepcopy(call["arguments"]))
            messages.append(message.AssistantMessage(role="assistant", content=None, tool_calls=[tool_call]))
            response = env.get_response(tool_call)
            messages.append(response)
            outputs.append({"content": response.content, "error": response.error})
        return outputs, env.get_db_hash(), messages

    def score(self, task: Any, messages: list[Any]) -> tuple[bool, float]:
        """tau2's DB match and reward for a simulation with these messages (no LLM)."""
        simulation, evaluator = self.t["simulation"], self.t["evaluator"]
        run = simulation.SimulationRun(
            id="expectation",
            task_id=task.id,
            start_time="",
            end_time="",
            duration=0.0,
            termination_reason=simulation.TerminationReason.AGENT_STOP,
            messages=messages,
        )
        kind = evaluator.EvaluationType.ALL if self.name == "airline" else evaluator.EvaluationType.ENV
        info = evaluator.evaluate_simulation(run, task, kind, solo_mode=False, domain=self.name)
        return bool(info.db_check.db_match), float(info.reward)

    def case(self, task: Any, name: str, calls: list[dict[str, Any]], said: str | None = None) -> dict[str, Any]:
        outputs, db_hash, messages = self.run(calls)
        if said is not None:
            messages.append(self.t["message"].AssistantMessage(role="assistant", content=said))
        db_match, reward = self.score(task, messages)
        out = {"task": task.id, "case": name, "calls": calls, "outputs": outputs, "db_hash": db_hash}
        out |= {"db_match": db_match, "reward": reward}
        if said is not None:
            out["messages"] = [{"role": "assistant", "content": said}]
        return out

    # --- the cases ------------------------------------------------------------------------------------

    def cases(self, index: int, task: Any) -> list[dict[str, Any]]:
        gold = [{"tool": a.name, "arguments": a.arguments} for a in task.evaluation_criteria.actions or []]
        out = [self.case(task, "gold", gold)]
        writes = [i for i, c in enumerate(gold) if c["tool"] in self.writes]
        for i in writes:
            out.append(self.case(task, f"drop-{i}", gold[:i] + gold[i + 1 :]))
        for i in writes:
            for argument in gold[i]["arguments"]:
                for value in self.safe_alternatives(gold[i], argument, gold)[:MAX_TRIES]:
                    changed = {"tool": gold[i]["tool"], "arguments": {**gold[i]["arguments"], argument: value}}
                    calls = [*gold[:i], changed, *gold[i + 1 :]]
                    outputs, _, _ = self.run(calls[: i + 1])
                    if not outputs[i]["error"]:
                        out.append(self.case(task, f"change-{i}-{argument}", calls))
                        break
        first = self.read(index, gold, "first")
        last = self.read(index + 1, gold, "last")
        out.append(self.case(task, "read-first", [first, *gold]))
        out.append(self.case(task, "read-last", [*gold, last]))
        criteria = task.evaluation_criteria
        if "COMMUNICATE" in [b.value for b in criteria.reward_basis] and criteria.communicate_info:
            told = [_with_separators(info) for info in criteria.communicate_info]
            out.append(self.case(task, "said-all", gold, "Here is what I found: " + "; ".join(told) + "."))
            some = "; ".join(told[:-1]) or "nothing more"
            out.append(self.case(task, "said-some", gold, f"Here is what I found: {some}."))
        return out

    def quirks(self) -> list[dict[str, Any]]:
        """The hand-made trajectories (judged against the first task's gold, which they do not reach)."""
        made = retail_quirks(self.db) if self.name == "retail" else airline_quirks(self.db)
        return [self.case(self.tasks[0], f"quirk:{name}", calls) for name, calls in made]

    def _user_of(self, gold: list[dict[str, Any]]) -> str:
        for call in gold:
            args = call["arguments"]
            if "user_id" in args:
                return str(args["user_id"])
            if "order_id" in args and args["order_id"] in self.db.get("orders", {}):
                return str(self.db["orders"][args["order_id"]]["user_id"])
            if "reservation_id" in args and args["reservation_id"] in self.db.get("reservations", {}):
                return str(self.db["reservations"][args["reservation_id"]]["user_id"])
        return str(next(iter(self.db["users"])))

    def read(self, index: int, gold: list[dict[str, Any]], where: str) -> dict[str, Any]:
        """A read call about the task's user (their order, reservation, flight ...), the read tool in turn."""
        tool = self.reads[index % len(self.reads)]
        user_id = self._user_of(gold)
        user = self.db["users"][user_id]

        def first_arg(name: str, table: str | None = None) -> Any:
            """The first value the gold actions give ``name`` (that names a row of ``table``, if given)."""
            given = (c["arguments"][name] for c in gold if name in c["arguments"])
            return next((v for v in given if table is None or v in self.db[table]), None)

        if self.name == "retail":
            order_id = first_arg("order_id", "orders") or (user["orders"] or [next(iter(self.db["orders"]))])[0]
            order = self.db["orders"][order_id]
            item = order["items"][0]
            args = {
                "calculate": {"expression": f"({item['price']} + 10) * 2 / 3"},
                "find_user_id_by_email": {"email": user["email"].upper()},
                "find_user_id_by_name_zip": {
                    "first_name": user["name"]["first_name"].lower(),
                    "last_name": user["name"]["last_name"],
                    "zip": user["address"]["zip"],
                },
                "get_item_details": {"item_id": item["item_id"]},
                "get_order_details": {"order_id": order_id},
                "get_product_details": {"product_id": item["product_id"]},
                "get_user_details": {"user_id": user_id},
                "list_all_product_types": {},
                "transfer_to_human_agents": {"summary": f"The user asks about order {order_id} ({where})."},
            }
        else:
            reservation_id = (
                first_arg("reservation_id", "reservations")
                or (user["reservations"] or [next(iter(self.db["reservations"]))])[0]
            )
            reservation = self.db["reservations"][reservation_id]
            flights = first_arg("flights") or reservation["flights"]
            leg = flights[0] if flights[0]["flight_number"] in self.db["flights"] else reservation["flights"][0]
            flight = self.db["flights"][leg["flight_number"]]
            args = {
                "calculate": {"expression": f"{reservation['total_baggages']} * 50 + 30 * 2"},
                "get_flight_status": {"flight_number": leg["flight_number"], "date": leg["date"]},
                "get_reservation_details": {"reservation_id": reservation_id},
                "get_user_details": {"user_id": user_id},
                "list_all_airports": {},
                "search_direct_flight": {
                    "origin": flight["origin"],
                    "destination": flight["destination"],
                    "date": leg["date"],
                },
                "search_onestop_flight": {
                    "origin": reservation["origin"],
                    "destination": reservation["destination"],
                    "date": leg["date"],
                },
                "transfer_to_human_agents": {"summary": f"The user asks about reservation {reservation_id} ({where})."},
            }
        return {"tool": tool, "arguments": args[tool]}

    def safe_alternatives(self, call: dict[str, Any], argument: str, gold: list[dict[str, Any]]) -> list[Any]:
        """:meth:`alternatives`, or none when the call names something the data does not have."""
        try:
            return self.alternatives(call, argument, gold)
        except (KeyError, IndexError, StopIteration, TypeError):
            return []

    def alternatives(self, call: dict[str, Any], argument: str, gold: list[dict[str, Any]]) -> list[Any]:
        """Other values for one argument of a write, most likely to succeed first."""
        value = call["arguments"][argument]
        args = call["arguments"]
        db = self.db
        if self.name == "retail":
            order = db["orders"].get(args.get("order_id", ""))
            user_id = order["user_id"] if order else args.get("user_id")
            user = db["users"].get(user_id or "", {"orders": [], "payment_methods": {}})
            if argument == "order_id" and order:
                same = [o for o in user["orders"] if o != value and db["orders"][o]["status"] == order["status"]]
                return same + [o for o in db["orders"] if o != value and db["orders"][o]["status"] == order["status"]]
            if argument == "payment_method_id":
                return [m for m in user["payment_methods"] if m != value]
            if argument == "reason":
                return [r for r in ("no longer needed", "ordered by mistake") if r != value]
            if argument == "user_id":
                return [u for u in db["users"] if u != value][:3]
            if argument == "item_ids" and order:
                held = [i["item_id"] for i in order["items"]]
                others = [i for i in held if i not in value]
                options = [[*value[:-1], o] for o in others]
                return options + ([value[:-1]] if len(value) > 1 else [])
            if argument == "new_item_ids" and order:
                out = []
                for j, (old, new) in enumerate(zip(args.get("item_ids", []), value, strict=False)):
                    product = next(i["product_id"] for i in order["items"] if i["item_id"] == old)
                    for variant in db["products"][product]["variants"].values():
                        if variant["item_id"] not in (old, new) and variant["available"]:
                            out.append([*value[:j], variant["item_id"], *value[j + 1 :]])
                return out
            if isinstance(value, str):  # an address line
                return [value + " B", "Unit 7" if argument == "address2" else value.upper() + "X"]
            return []
        reservation = db["reservations"].get(args.get("reservation_id", ""))
        user_id = reservation["user_id"] if reservation else args.get("user_id")
        user = db["users"].get(user_id or "", {"reservations": [], "payment_methods": {}})
        if argument == "reservation_id":
            return [r for r in user["reservations"] if r != value] + [
                r for r in list(db["reservations"])[:20] if r != value
            ]
        if argument in ("payment_id",):
            return [m for m in user["payment_methods"] if m != value]
        if argument == "payment_methods":
            return [
                [{**value[0], "payment_id": m}, *value[1:]]
                for m in user["payment_methods"]
                if m != value[0]["payment_id"]
            ]
        if argument in ("cabin", "flight_type", "insurance"):
            choices = {
                "cabin": ["economy", "business", "basic_economy"],
                "flight_type": ["one_way", "round_trip"],
                "insurance": ["no", "yes"],
            }[argument]
            return [c for c in choices if c != value]
        if argument == "flights":
            out = []
            for j, leg in enumerate(value):
                for shift in (1, -1, 2):
                    day = int(leg["date"][-2:]) + shift
                    if 1 <= day <= 30:
                        moved = {**leg, "date": f"{leg['date'][:-2]}{day:02d}"}
                        out.append([*value[:j], moved, *value[j + 1 :]])
            return out
        if argument == "passengers":
            first = value[0]
            return [[{**first, "first_name": "Alex"}, *value[1:]], [{**first, "dob": "1990-01-01"}, *value[1:]]]
        if argument in ("total_baggages", "nonfree_baggages"):
            return [value + 1, value - 1] if value > 0 else [value + 1]
        if argument == "amount":
            return [value + 50, value - 50]
        if argument == "user_id":
            return [u for u in db["users"] if u != value][:3]
        if argument in ("origin", "destination"):
            return [a for a in ("JFK", "SFO", "ORD") if a != value]
        return []


def retail_quirks(db: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Hand-made retail trajectories aimed at tau2's quirks and errors (ids found in the data)."""
    orders, users, products = db["orders"], db["users"], db["products"]

    def call(tool: str, **arguments: Any) -> dict[str, Any]:
        return {"tool": tool, "arguments": arguments}

    def others(item: dict[str, Any]) -> list[str]:
        variants = products[item["product_id"]]["variants"].values()
        return [v["item_id"] for v in variants if v["available"] and v["item_id"] != item["item_id"]]

    def first(status: str, test: Any) -> tuple[str, dict[str, Any]]:
        return next((k, o) for k, o in orders.items() if o["status"] == status and test(o))

    out = []
    many, order = first("pending", lambda o: len(o["items"]) >= 3 and all(others(i) for i in o["items"]))
    method = order["payment_history"][0]["payment_method_id"]
    new = [others(i)[0] for i in order["items"]]
    items = [i["item_id"] for i in order["items"]]
    out.append(
        (
            "modify-every-item",
            [
                call(
                    "modify_pending_order_items",
                    order_id=many,
                    item_ids=items,
                    new_item_ids=new,
                    payment_method_id=method,
                ),
                call("get_order_details", order_id=many),
                call("get_user_details", user_id=order["user_id"]),
                call(
                    "modify_pending_order_address",
                    order_id=many,
                    address1="1 A St",
                    address2="",
                    city="B",
                    state="CA",
                    country="USA",
                    zip="90001",
                ),
                call(
                    "modify_pending_order_items",
                    order_id=many,
                    item_ids=new[:1],
                    new_item_ids=items[:1],
                    payment_method_id=method,
                ),
                call("cancel_pending_order", order_id=many, reason="no longer needed"),
            ],
        )
    )
    dup, order = first("delivered", lambda o: len({i["item_id"] for i in o["items"]}) < len(o["items"]))
    ids = [i["item_id"] for i in order["items"]]
    twice = next(i for i in ids if ids.count(i) > 1)
    line = next(i for i in order["items"] if i["item_id"] == twice)
    method = order["payment_history"][0]["payment_method_id"]
    out.append(
        (
            "exchange-a-repeated-item",
            [
                call(
                    "exchange_delivered_order_items",
                    order_id=dup,
                    item_ids=[twice, twice, twice],
                    new_item_ids=[others(line)[0]] * 3,
                    payment_method_id=method,
                ),
                call(
                    "exchange_delivered_order_items",
                    order_id=dup,
                    item_ids=[twice, twice],
                    new_item_ids=[others(line)[0]],
                    payment_method_id=method,
                ),
                call(
                    "exchange_delivered_order_items",
                    order_id=dup,
                    item_ids=[twice, twice],
                    new_item_ids=[others(line)[0], others(line)[-1]],
                    payment_method_id=method,
                ),
                call("get_order_details", order_id=dup),
            ],
        )
    )
    done, order = first("delivered", lambda o: True)
    method = order["payment_history"][0]["payment_method_id"]
    out.append(
        (
            "exchange-nothing",
            [
                call(
                    "exchange_delivered_order_items",
                    order_id=done,
                    item_ids=[],
                    new_item_ids=[],
                    payment_method_id=method,
                ),
                call("get_order_details", order_id=done),
            ],
        )
    )
    paid, order = first("pending", lambda o: o["payment_history"][0]["payment_method_id"].startswith("gift_card"))
    user = users[order["user_id"]]
    other = next(m for m in user["payment_methods"] if m != order["payment_history"][0]["payment_method_id"])
    out.append(
        (
            "pay-otherwise-then-cancel",
            [
                call("modify_pending_order_payment", order_id=paid, payment_method_id=other),
                call("modify_pending_order_payment", order_id=paid, payment_method_id=other),
                call("cancel_pending_order", order_id=paid, reason="ordered by mistake"),
                call("get_user_details", user_id=order["user_id"]),
            ],
        )
    )
    back, order = first(
        "delivered",
        lambda o: (
            not o["payment_history"][0]["payment_method_id"].startswith("gift_card")
            and any(m.startswith("gift_card") for m in users[o["user_id"]]["payment_methods"])
        ),
    )
    user = users[order["user_id"]]
    gift = next(m for m in user["payment_methods"] if m.startswith("gift_card"))
    wrong = next(
        (
            m
            for m in user["payment_methods"]
            if not m.startswith("gift_card") and m != order["payment_history"][0]["payment_method_id"]
        ),
        "paypal_0000000",
    )
    out.append(
        (
            "returns",
            [
                call(
                    "return_delivered_order_items",
                    order_id=back,
                    item_ids=[order["items"][0]["item_id"]],
                    payment_method_id=wrong,
                ),
                call("return_delivered_order_items", order_id=back, item_ids=["0000000000"], payment_method_id=gift),
                call(
                    "return_delivered_order_items",
                    order_id=back,
                    item_ids=[order["items"][0]["item_id"]],
                    payment_method_id=gift,
                ),
                call(
                    "return_delivered_order_items",
                    order_id=back,
                    item_ids=[order["items"][0]["item_id"]],
                    payment_method_id=gift,
                ),
            ],
        )
    )
    pending, order = first("pending", lambda o: True)
    user_id = order["user_id"]
    user = users[user_id]
    out.append(
        (
            "errors-and-look-ups",
            [
                call("get_order_details", order_id="#W0000000"),
                call("get_order_details", order_id=pending.lstrip("#")),
                call("get_product_details", product_id="0000000000"),
                call("get_item_details", item_id=order["items"][0]["product_id"]),
                call("get_user_details", user_id="nobody_0"),
                call("find_user_id_by_email", email=user["email"].upper()),
                call("find_user_id_by_email", email="nobody@example.com"),
                call(
                    "find_user_id_by_name_zip",
                    first_name=user["name"]["first_name"].upper(),
                    last_name=user["name"]["last_name"].lower(),
                    zip=user["address"]["zip"],
                ),
                call(
                    "find_user_id_by_name_zip",
                    first_name=user["name"]["first_name"],
                    last_name=user["name"]["last_name"],
                    zip="00000",
                ),
                call("cancel_pending_order", order_id=pending, reason="too expensive"),
                call("cancel_pending_order", order_id=back, reason="no longer needed"),
                call(
                    "modify_pending_order_items",
                    order_id=pending,
                    item_ids=[order["items"][0]["item_id"]],
                    new_item_ids=[order["items"][0]["item_id"]],
                    payment_method_id=order["payment_history"][0]["payment_method_id"],
                ),
                call(
                    "modify_pending_order_items",
                    order_id=pending,
                    item_ids=["0000000000"],
                    new_item_ids=["1"],
                    payment_method_id="x",
                ),
                call(
                    "modify_pending_order_items",
                    order_id=pending,
                    item_ids=[order["items"][0]["item_id"]],
                    new_item_ids=[],
                    payment_method_id="x",
                ),
                call(
                    "modify_pending_order_payment",
                    order_id=pending,
                    payment_method_id=order["payment_history"][0]["payment_method_id"],
                ),
                call("modify_pending_order_payment", order_id=pending, payment_method_id="gift_card_0000000"),
                call(
                    "modify_user_address",
                    user_id="nobody_0",
                    address1="a",
                    address2="b",
                    city="c",
                    state="d",
                    country="e",
                    zip="f",
                ),
                call(
                    "exchange_delivered_order_items",
                    order_id=pending,
                    item_ids=[],
                    new_item_ids=[],
                    payment_method_id="x",
                ),
                call("list_all_product_types"),
                call("transfer_to_human_agents", summary="Über-urgent: the user's café order ✓"),
                call("calculate", expression="1/0"),
                call("calculate", expression="2 ** 0.5 + 10 // 3"),
                call("calculate", expression="(1)(2)"),
                call("calculate", expression="1e5"),
                call("calculate", expression=""),
                call("calculate", expression="()"),
                call("calculate", expression=" 3 * (4 - 1.25)"),
                call("calculate", expression="0.1 + 0.2"),
                call(
                    "modify_user_address",
                    user_id=user_id,
                    address1="Straße 1 ✓",
                    address2="",
                    city="Köln",
                    state="NRW",
                    country="Germany",
                    zip="50667",
                ),
            ],
        )
    )
    return out


def airline_quirks(db: dict[str, Any]) -> list[tuple[str, list[dict[str, Any]]]]:
    """Hand-made airline trajectories aimed at tau2's quirks and errors (ids found in the data)."""
    users, reservations, flights = db["users"], db["reservations"], db["flights"]

    def call(tool: str, **arguments: Any) -> dict[str, Any]:
        return {"tool": tool, "arguments": arguments}

    def available(number: str) -> str:
        return next(d for d, s in flights[number]["dates"].items() if s["status"] == "available")

    out = []
    rid, res = next((k, r) for k, r in reservations.items() if len(r["payment_history"]) == 1 and r["flights"])
    leg = res["flights"][0]
    out.append(
        (
            "cancel-twice",
            [
                call("cancel_reservation", reservation_id=rid),
                call("cancel_reservation", reservation_id=rid),
                call("get_flight_status", flight_number=leg["flight_number"], date=leg["date"]),
                call("search_direct_flight", origin=leg["origin"], destination=leg["destination"], date=leg["date"]),
            ],
        )
    )
    uid, user = next(
        (k, u)
        for k, u in users.items()
        if any(m["source"] == "gift_card" and m["amount"] >= 60 for m in u["payment_methods"].values())
        and any(m["source"] == "certificate" for m in u["payment_methods"].values())
    )
    gift = next(k for k, m in user["payment_methods"].items() if m["source"] == "gift_card" and m["amount"] >= 60)
    cert = next(k for k, m in user["payment_methods"].items() if m["source"] == "certificate")
    number = next(
        n
        for n, f in flights.items()
        if any(
            s["status"] == "available"
            and s["prices"]["basic_economy"]
            <= min(user["payment_methods"][cert]["amount"], 2 * user["payment_methods"][gift]["amount"])
            for s in f["dates"].values()
        )
    )
    date = next(
        d
        for d, s in flights[number]["dates"].items()
        if s["status"] == "available"
        and s["prices"]["basic_economy"]
        <= min(user["payment_methods"][cert]["amount"], 2 * user["payment_methods"][gift]["amount"])
    )
    price = flights[number]["dates"][date]["prices"]["basic_economy"]
    f = flights[number]
    passenger = {"first_name": user["name"]["first_name"], "last_name": user["name"]["last_name"], "dob": user["dob"]}
    base = {
        "user_id": uid,
        "origin": f["origin"],
        "destination": f["destination"],
        "flight_type": "one_way",
        "cabin": "basic_economy",
        "flights": [{"flight_number": number, "date": date}],
        "passengers": [passenger],
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
    }
    half = price // 2
    out.append(
        (
            "book-with-one-certificate-twice",
            [
                call(
                    "book_reservation",
                    **base,
                    payment_methods=[
                        {"payment_id": gift, "amount": 1},
                        {"payment_id": cert, "amount": half},
                        {"payment_id": cert, "amount": price - half - 1},
                    ],
                ),
                call("get_user_details", user_id=uid),
                call("search_direct_flight", origin=f["origin"], destination=f["destination"], date=date),
            ],
        )
    )
    out.append(
        (
            "book-with-one-gift-card-twice",
            [
                call(
                    "book_reservation",
                    **base,
                    payment_methods=[
                        {"payment_id": gift, "amount": half},
                        {"payment_id": gift, "amount": price - half},
                    ],
                ),
                call(
                    "book_reservation",
                    **{
                        **base,
                        "insurance": "yes",
                        "nonfree_baggages": 1,
                        "total_baggages": 2,
                        "flights": [{"flight_number": number, "date": date}] * 2,
                    },
                    payment_methods=[{"payment_id": cert, "amount": 2 * price + 80}],
                ),
                call("book_reservation", **base, payment_methods=[{"payment_id": cert, "amount": price}]),
                call("book_reservation", **base, payment_methods=[{"payment_id": gift, "amount": price}]),
                call("book_reservation", **base, payment_methods=[{"payment_id": gift, "amount": price}]),
                call("get_user_details", user_id=uid),
                call("get_reservation_details", reservation_id="HATHAT"),
                call("search_direct_flight", origin=f["origin"], destination=f["destination"], date=date),
            ],
        )
    )
    rid2, res2 = next(
        (k, r)
        for k, r in reservations.items()
        if r["nonfree_baggages"] == 0
        and any(m["source"] == "gift_card" for m in users[r["user_id"]]["payment_methods"].values())
    )
    gift2 = next(k for k, m in users[res2["user_id"]]["payment_methods"].items() if m["source"] == "gift_card")
    cert2 = next(
        (k for k, m in users[res2["user_id"]]["payment_methods"].items() if m["source"] == "certificate"),
        "certificate_0",
    )
    out.append(
        (
            "bags-and-passengers",
            [
                call(
                    "update_reservation_baggages",
                    reservation_id=rid2,
                    total_baggages=2,
                    nonfree_baggages=1,
                    payment_id=gift2,
                ),
                call(
                    "update_reservation_baggages",
                    reservation_id=rid2,
                    total_baggages=3,
                    nonfree_baggages=1,
                    payment_id=cert2,
                ),
                call(
                    "update_reservation_baggages",
                    reservation_id=rid2,
                    total_baggages=1,
                    nonfree_baggages=0,
                    payment_id="credit_card_0",
                ),
                call("update_reservation_passengers", reservation_id=rid2, passengers=[]),
                call(
                    "update_reservation_passengers",
                    reservation_id=rid2,
                    passengers=[{"first_name": "Ann", "last_name": "Lee", "dob": "1990-01-01", "extra": 1}]
                    * len(res2["passengers"]),
                ),
                call("get_reservation_details", reservation_id=rid2),
            ],
        )
    )
    rid3, res3 = next(
        (k, r)
        for k, r in reservations.items()
        if r["cabin"] == "economy"
        and r["flights"]
        and any(m["source"] == "gift_card" for m in users[r["user_id"]]["payment_methods"].values())
    )
    gift3 = next(k for k, m in users[res3["user_id"]]["payment_methods"].items() if m["source"] == "gift_card")
    legs = [{"flight_number": x["flight_number"], "date": x["date"]} for x in res3["flights"]]
    first_leg = res3["flights"][0]
    later = next(
        (
            n
            for n, x in flights.items()
            if x["origin"] == first_leg["origin"]
            and x["destination"] == first_leg["destination"]
            and n != first_leg["flight_number"]
        ),
        first_leg["flight_number"],
    )
    out.append(
        (
            "change-flights",
            [
                call(
                    "update_reservation_flights",
                    reservation_id=rid3,
                    cabin="basic_economy",
                    flights=legs,
                    payment_id=gift3,
                ),
                call(
                    "update_reservation_flights",
                    reservation_id=rid3,
                    cabin="basic_economy",
                    flights=[{"flight_number": later, "date": available(later)}, *legs[1:]],
                    payment_id=gift3,
                ),
                call(
                    "update_reservation_flights",
                    reservation_id=rid3,
                    cabin="business",
                    flights=[{"flight_number": "HAT999", "date": "2024-05-20"}],
                    payment_id=gift3,
                ),
                call(
                    "update_reservation_flights",
                    reservation_id=rid3,
                    cabin="business",
                    flights=[{"flight_number": later, "date": "2024-05-01"}],
                    payment_id=gift3,
                ),
                call(
                    "update_reservation_flights",
                    reservation_id=rid3,
                    cabin="business",
                    flights=[{"flight_number": later, "date": "2024-06-01"}],
                    payment_id=gift3,
                ),
                call("get_reservation_details", reservation_id=rid3),
                call("get_user_details", user_id=res3["user_id"]),
            ],
        )
    )
    plus = next(x for x in flights.values() if "+1" in x["scheduled_arrival_time_est"])
    onward = next(x for x in flights.values() if x["origin"] == plus["destination"])
    some = next(iter(users))
    out.append(
        (
            "searches-and-certificates",
            [
                call(
                    "search_onestop_flight",
                    origin=plus["origin"],
                    destination=onward["destination"],
                    date=available(plus["flight_number"]),
                ),
                call(
                    "search_onestop_flight", origin=plus["origin"], destination=onward["destination"], date="2024-05-05"
                ),
                call("search_onestop_flight", origin="JFK", destination="SEA", date="2024-05-20"),
                call("search_direct_flight", origin="JFK", destination="SEA", date="2024-05-20"),
                call("get_flight_status", flight_number="HAT001", date="2024-05-01"),
                call("get_flight_status", flight_number="HAT001", date="2024-07-01"),
                call("get_flight_status", flight_number="HAT999", date="2024-05-01"),
                call("list_all_airports"),
                call("send_certificate", user_id=some, amount=100),
                call("send_certificate", user_id=some, amount=150),
                call("send_certificate", user_id=some, amount=-5),
                call("send_certificate", user_id=some, amount=200),
                call("send_certificate", user_id="nobody_0", amount=1),
                call("get_user_details", user_id=some),
                call("get_reservation_details", reservation_id="ZZZZZZ"),
                call("cancel_reservation", reservation_id="ZZZZZZ"),
                call("calculate", expression="(883 + 779) * 3 - 100 / 7"),
                call("transfer_to_human_agents", summary="Ärger über Verspätung"),
            ],
        )
    )
    return out


_DOMAIN: Domain | None = None


def _cases_of(index: int) -> list[dict[str, Any]]:
    assert _DOMAIN is not None
    found = _DOMAIN.cases(index, _DOMAIN.tasks[index])
    print(f"{_DOMAIN.name} task {_DOMAIN.tasks[index].id}: {len(found)} cases", file=sys.stderr, flush=True)
    return found


def _with_separators(info: str) -> str:
    """'1628' as '1,628' (tau2 drops commas from what the agent said before it looks)."""
    whole, dot, rest = info.partition(".")
    if whole.isdigit() and len(whole) > 3:
        return f"{int(whole):,}{dot}{rest}"
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--tau2", type=Path, required=True, help="the tau2-bench checkout installed in this interpreter"
    )
    parser.add_argument("--airline-db", type=Path, help="an identical copy of the airline db.json, if missing")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--commit", help="the checkout's commit, when it has no .git")
    parser.add_argument("--domain", choices=["retail", "airline"], action="append")
    parser.add_argument("--limit", type=int, help="only the first N tasks of each domain (to try the script)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="worker processes")
    parser.add_argument("--quirks-only", action="store_true", help="recompute only the hand-made cases, keep the rest")
    args = parser.parse_args(argv)
    tau2 = load_tau2(args.tau2, args.airline_db)
    args.out.mkdir(parents=True, exist_ok=True)
    meta_file = args.out / "meta.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    commit = subprocess.run(["git", "-C", str(args.tau2), "rev-parse", "HEAD"], capture_output=True, text=True)
    meta["tau2"] = {
        "checkout": str(args.tau2),
        "commit": commit.stdout.strip() or args.commit,
        "python": platform.python_version(),
        "made_by": "scripts/tau2_expectations.py",
    }
    for name in args.domain or ["retail", "airline"]:
        start = time.time()
        domain = Domain(tau2, name)
        tasks = domain.tasks[: args.limit] if args.limit else domain.tasks
        file = args.out / f"{name}.jsonl.gz"
        if args.quirks_only:
            with gzip.open(file, "rt", encoding="utf-8") as f:
                kept = [c for c in map(json.loads, f) if not c["case"].startswith("quirk:")]
            cases = kept + domain.quirks()
        else:
            global _DOMAIN
            _DOMAIN = domain
            with multiprocessing.get_context("fork").Pool(args.jobs) as pool:  # each worker forks with the domain
                per_task = pool.map(_cases_of, range(len(tasks)), chunksize=1)
            cases = [case for found in per_task for case in found] + domain.quirks()
        with gzip.open(file, "wt", encoding="utf-8", compresslevel=9) as f:
            for case in cases:
                f.write(json.dumps(case, sort_keys=True) + "\n")
        tasks_seen = len({c["task"] for c in cases if not c["case"].startswith("quirk:")})
        meta[name] = {"initial_db_hash": domain.initial_hash, "tasks": tasks_seen, "cases": len(cases)}
        print(f"{name}: {len(cases)} cases from {len(tasks)} tasks in {time.time() - start:.0f} s")
    meta_file.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
