"""Check throughput: trajectories scored per second in the sandbox versus in-process exec.

One trajectory = one job of 15 checks over a realistic state: 5 tables (users,
products, orders, order_items, payments) of about 50 rows each, and a final
state where an agent placed an order, paid, cancelled another and restocked. The
checks scan rows and compare initial and final as generated checks do; a third of
them use EnvScaler's ``check_func(final_state)`` with a global ``initial_state``.

Methods:

- ``sandbox``: :class:`envfarm.validators.sandbox.SandboxPool` with ``--workers``
  workers (default 2), ``--concurrency`` jobs in flight (default 64), all jobs of one
  scenario (one check set: a worker process serves the jobs of one check set, so
  the process and its compiled checks are reused); the time includes the service
  side (JSON encoding, pipes, parsing of results).
- ``sandbox, a new check set every job``: the worst case, every job from another
  scenario: a fresh forked, hardened process and a compile per check for every job.
- ``in-process, deepcopy + exec``: EnvScaler's way, in this process on one core:
  ``copy.deepcopy`` of the initial and final state for every check, then ``exec`` of
  the check's source and a call. No isolation at all.
- ``in-process run_check, shared state``: ``envfarm.validators.checks.run_check`` on the same dicts
  for every check (no copies, no isolation): the floor of what running checks costs.

Every method's outcomes are compared with the others' before anything is timed.

Usage: python benchmarks/bench_sandbox.py [--quick] [--jobs 2000] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import machine, table, target_line  # noqa: E402

from envfarm.validators.checks import run_check  # noqa: E402
from envfarm.validators.sandbox import SandboxLimits, SandboxPool  # noqa: E402

TARGET_PER_S = 300  # trajectories/s sandboxed, 2 workers
TARGET_RATIO = 1 / 3  # of the in-process (deepcopy + exec) rate

STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled"]


def make_states(seed: int = 7, rows: int = 50) -> tuple[dict[str, Any], dict[str, Any]]:
    """An initial state of 5 tables x ``rows`` rows and the final state an agent left."""
    rnd = random.Random(seed)
    users: list[dict[str, Any]] = [
        {
            "id": i,
            "name": f"User {i}",
            "email": f"user{i}@example.com",
            "tier": rnd.choice(["basic", "gold", "platinum"]),
            "balance": round(rnd.uniform(0, 500), 2),
            "created_at": f"2024-0{rnd.randint(1, 9)}-1{rnd.randint(0, 9)}T10:00:00",
        }
        for i in range(1, rows + 1)
    ]
    products: list[dict[str, Any]] = [
        {
            "id": i,
            "sku": f"SKU-{i:04d}",
            "title": f"Product {i}",
            "price": round(rnd.uniform(2, 200), 2),
            "stock": rnd.randint(0, 40),
            "active": rnd.random() > 0.1,
        }
        for i in range(1, rows + 1)
    ]
    orders: list[dict[str, Any]] = [
        {
            "id": i,
            "user_id": rnd.randint(1, rows),
            "status": rnd.choice(STATUSES),
            "total": 0.0,
            "placed_at": f"2024-10-{rnd.randint(10, 28)}T09:30:00",
            "note": None,
        }
        for i in range(1, rows + 1)
    ]
    items: list[dict[str, Any]] = []
    for i in range(1, rows + 1):
        order = orders[(i - 1) % rows]
        product = products[rnd.randint(0, rows - 1)]
        qty = rnd.randint(1, 3)
        items.append(
            {"id": i, "order_id": order["id"], "product_id": product["id"], "qty": qty, "unit_price": product["price"]}
        )
        order["total"] = round(order["total"] + qty * product["price"], 2)
    payments = [
        {"id": i, "order_id": i, "amount": orders[i - 1]["total"], "method": rnd.choice(["card", "paypal"]), "ok": True}
        for i in range(1, rows + 1)
        if orders[i - 1]["status"] != "pending"
    ]
    initial: dict[str, Any] = {
        "users": users,
        "products": products,
        "orders": orders,
        "order_items": items,
        "payments": payments,
    }

    final = copy.deepcopy(initial)
    # The agent: order 2 of product 7 for user 5, paid by card; cancel order 3; restock product 12.
    new_order = rows + 1
    p7 = final["products"][6]
    final["orders"].append(
        {
            "id": new_order,
            "user_id": 5,
            "status": "paid",
            "total": round(2 * p7["price"], 2),
            "placed_at": "2024-11-01T12:00:00",
            "note": "gift",
        }
    )
    final["order_items"].append(
        {"id": rows + 1, "order_id": new_order, "product_id": 7, "qty": 2, "unit_price": p7["price"]}
    )
    p7["stock"] -= 2
    final["payments"].append(
        {"id": 1000, "order_id": new_order, "amount": round(2 * p7["price"], 2), "method": "card", "ok": True}
    )
    final["orders"][2]["status"] = "cancelled"
    final["products"][11]["stock"] += 10
    return initial, final


CHECKS: list[tuple[str, str]] = [
    (
        "new_order_exists",
        """
def check(initial, final):
    before = {o["id"] for o in initial["orders"]}
    new = [o for o in final["orders"] if o["id"] not in before]
    return len(new) == 1 and new[0]["user_id"] == 5
""",
    ),
    (
        "new_order_paid",
        """
def check_func(final_state):
    before = {o["id"] for o in initial_state["orders"]}
    return any(o["status"] == "paid" for o in final_state["orders"] if o["id"] not in before)
""",
    ),
    (
        "item_qty",
        """
def check(initial, final):
    before = {o["id"] for o in initial["orders"]}
    items = [i for i in final["order_items"] if i["order_id"] not in before]
    return sum(i["qty"] for i in items) == 2 and all(i["product_id"] == 7 for i in items)
""",
    ),
    (
        "stock_decremented",
        """
def check(initial, final):
    old = {p["id"]: p["stock"] for p in initial["products"]}
    new = {p["id"]: p["stock"] for p in final["products"]}
    return new[7] == old[7] - 2
""",
    ),
    (
        "total_matches_items",
        """
import math
def check(initial, final):
    items = {}
    for i in final["order_items"]:
        items[i["order_id"]] = items.get(i["order_id"], 0) + i["qty"] * i["unit_price"]
    return all(math.isclose(o["total"], items.get(o["id"], 0), abs_tol=0.05) for o in final["orders"])
""",
    ),
    (
        "payment_recorded",
        """
def check_func(final_state):
    orders = {o["id"]: o for o in final_state["orders"]}
    new = max(orders)
    pays = [p for p in final_state["payments"] if p["order_id"] == new]
    return len(pays) == 1 and abs(pays[0]["amount"] - orders[new]["total"]) < 0.01 and pays[0]["method"] == "card"
""",
    ),
    (
        "order3_cancelled",
        """
def check(initial, final):
    return next(o for o in final["orders"] if o["id"] == 3)["status"] == "cancelled"
""",
    ),
    (
        "restocked",
        """
def check(initial, final):
    old = {p["id"]: p for p in initial["products"]}
    return any(p["stock"] == old[p["id"]]["stock"] + 10 for p in final["products"] if p["id"] in old)
""",
    ),
    (
        "users_untouched",
        """
def check(initial, final):
    return initial["users"] == final["users"]
""",
    ),
    (
        "no_negative_stock",
        """
def check_func(final_state):
    return all(p["stock"] >= 0 for p in final_state["products"])
""",
    ),
    (
        "other_orders_unchanged",
        """
def check(initial, final):
    old = {o["id"]: o for o in initial["orders"]}
    changed = [o["id"] for o in final["orders"] if o["id"] in old and o != old[o["id"]]]
    return changed == [3]
""",
    ),
    (
        "emails_valid",
        """
import re
EMAIL = re.compile(r"^[\\w.+-]+@[\\w-]+\\.[\\w.]+$")
def check(initial, final):
    return all(EMAIL.match(u["email"]) for u in final["users"])
""",
    ),
    (
        "payments_sum",
        """
def check_func(final_state):
    before = sum(p["amount"] for p in initial_state["payments"])
    after = sum(p["amount"] for p in final_state["payments"])
    return after > before
""",
    ),
    (
        "placed_after_others",
        """
from datetime import datetime
def check(initial, final):
    latest = max(datetime.fromisoformat(o["placed_at"]) for o in initial["orders"])
    before = {o["id"] for o in initial["orders"]}
    return all(datetime.fromisoformat(o["placed_at"]) > latest for o in final["orders"] if o["id"] not in before)
""",
    ),
    (
        "gold_users_balance",
        """
import statistics
from collections import Counter
def check(initial, final):
    tiers = Counter(u["tier"] for u in final["users"])
    return sum(tiers.values()) == len(final["users"]) and statistics.mean(u["balance"] for u in final["users"]) >= 0
""",
    ),
]


def envscaler_way(checks: list[tuple[str, str]], initial: dict[str, Any], final: dict[str, Any]) -> list[bool]:
    """Deep-copy the states for every check, exec its source, call it (no isolation)."""
    out = []
    for _, code in checks:
        ini, fin = copy.deepcopy(initial), copy.deepcopy(final)
        namespace: dict[str, Any] = {"initial_state": ini}
        exec(code, namespace)
        result = namespace["check"](ini, fin) if "check" in namespace else namespace["check_func"](fin)
        out.append(result is True)
    return out


def shared_run_check(checks: list[tuple[str, str]], initial: dict[str, Any], final: dict[str, Any]) -> list[bool]:
    return [run_check(cid, code, initial, final).passed for cid, code in checks]


def rate_in_process(fn: Any, initial: dict[str, Any], final: dict[str, Any], seconds: float) -> tuple[float, int]:
    fn(CHECKS, initial, final)
    n = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds or n < 3:
        fn(CHECKS, initial, final)
        n += 1
    return n / (time.perf_counter() - start), n


async def rate_sandbox(
    pool: SandboxPool, initial: dict[str, Any], final: dict[str, Any], jobs: int, concurrency: int, distinct: bool
) -> float:
    """Trajectories/s; ``distinct``: every job has its own check set (a fresh process per job)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(n: int) -> None:
        checks = [(cid, f"{code}# job {n}\n") for cid, code in CHECKS] if distinct else CHECKS
        async with gate:
            outcomes = await pool.run_checks(checks, initial, final)
        if not all(o.passed for o in outcomes):
            raise RuntimeError(f"a check failed in the sandbox: {[o for o in outcomes if not o.passed]}")

    await asyncio.gather(*(one(-n) for n in range(min(jobs, 2 * pool.size))))  # warm up
    start = time.perf_counter()
    await asyncio.gather(*(one(n) for n in range(jobs)))
    return jobs / (time.perf_counter() - start)


async def run(args: argparse.Namespace) -> int:
    initial, final = make_states(rows=args.rows)
    rows = sum(len(v) for v in final.values())
    print(f"# bench_sandbox: {len(CHECKS)} checks per trajectory, 5 tables, {rows} rows in the final state\n")
    print(f"machine: {machine()}\n")

    expected = envscaler_way(CHECKS, initial, final)
    if expected != shared_run_check(CHECKS, initial, final) or not all(expected):
        raise SystemExit(f"the checks do not all pass in process: {expected}")

    fresh_jobs = max(10, args.jobs // 4)
    async with SandboxPool(args.workers, SandboxLimits()) as pool:
        sandbox_rate = await rate_sandbox(pool, initial, final, args.jobs, args.concurrency, distinct=False)
        fresh_rate = await rate_sandbox(pool, initial, final, fresh_jobs, args.concurrency, distinct=True)
        protections = pool.protections
    envscaler_rate, envscaler_n = rate_in_process(envscaler_way, initial, final, args.seconds)
    shared_rate, shared_n = rate_in_process(shared_run_check, initial, final, args.seconds)

    print(
        table(
            ["method", "processes", "trajectories", "trajectories/s", "checks/s", "ms per trajectory"],
            [
                [
                    f"sandbox ({args.workers} workers, {args.concurrency} in flight)",
                    args.workers,
                    args.jobs,
                    sandbox_rate,
                    sandbox_rate * len(CHECKS),
                    1e3 / sandbox_rate,
                ],
                [
                    "sandbox, a new check set every job (fresh process per job)",
                    args.workers,
                    fresh_jobs,
                    fresh_rate,
                    fresh_rate * len(CHECKS),
                    1e3 / fresh_rate,
                ],
                [
                    "in-process, deepcopy + exec (EnvScaler)",
                    1,
                    envscaler_n,
                    envscaler_rate,
                    envscaler_rate * len(CHECKS),
                    1e3 / envscaler_rate,
                ],
                [
                    "in-process run_check, shared state",
                    1,
                    shared_n,
                    shared_rate,
                    shared_rate * len(CHECKS),
                    1e3 / shared_rate,
                ],
            ],
        )
    )
    print(f"\nprotections: {protections}")
    ratio = sandbox_rate / envscaler_rate
    print(f"ratio: sandboxed is {ratio:.2f}x the in-process (deepcopy + exec) rate\n")
    print(
        target_line(
            f">= {TARGET_PER_S} trajectories/s sandboxed",
            sandbox_rate >= TARGET_PER_S,
            f"{sandbox_rate:,.0f}/s with {args.workers} workers",
        )
    )
    print(target_line(">= 1/3 of the in-process rate", ratio >= TARGET_RATIO, f"{ratio:.2f}x"))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=None, help="sandboxed trajectories to time (default 2000)")
    parser.add_argument("--workers", type=int, default=2, help="sandbox workers (default 2)")
    parser.add_argument("--concurrency", type=int, default=64, help="jobs in flight (default 64)")
    parser.add_argument("--rows", type=int, default=50, help="rows per table (default 50)")
    parser.add_argument("--seconds", type=float, default=None, help="time per in-process method (default 3)")
    parser.add_argument("--quick", action="store_true", help="a few jobs only (CI smoke)")
    args = parser.parse_args()
    if args.jobs is None:
        args.jobs = 10 if args.quick else 2000
    if args.seconds is None:
        args.seconds = 0.05 if args.quick else 3.0
    return asyncio.run(run(args))


if __name__ == "__main__":
    raise SystemExit(main())
