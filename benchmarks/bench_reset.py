"""Episode creation and reset: ``deserialize`` of snapshot bytes versus rebuilding from SQL.

Rebuilding is what a server without snapshots does on reset (Agent World Model runs the
schema DDL and one INSERT per row into a fresh SQLite database). envfarm deserializes the
scenario's bytes, built once, into the episode's connection.

For each size the state is the scenario's own rows copied (keys shifted) until the
serialized database is about that big. Methods, all single-threaded on one core:

- ``deserialize + pragma``: exactly the database work of ``Episode.reset``;
- ``Episode.reset()``: the real method, on an episode bound to the scaled snapshot;
- ``Episode.reset() + first query``: SQLite parses the schema lazily on the first statement
  after a deserialize; this row charges that to the reset;
- ``new Episode(...)``: creation (new connection + deserialize);
- ``rebuild: DDL + executemany``: the fastest SQL rebuild (one transaction, prepared inserts);
- ``rebuild: SQL dump``: ``executescript`` of ``Connection.iterdump()`` (DDL + one INSERT
  statement per row, as a dump file or a generated SQL script does).

Usage: python benchmarks/bench_reset.py [--quick] [--env ENV] [--sizes 1,10] [--seconds 2]
"""

from __future__ import annotations

import argparse
import gc
import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import machine, percentile, table, target_line  # noqa: E402
from scaled_states import ScaledState, scaled_state  # noqa: E402
from workloads import pick_env, use_fixture_envs  # noqa: E402

from envfarm.core.episodes import Episode  # noqa: E402
from envfarm.core.scenarios import Scenario  # noqa: E402

TARGET_RESETS_PER_S = 5000  # at ~1 MB, one core


def measure(fn: Callable[[], object], seconds: float, min_iters: int) -> list[float]:
    """Run fn until both ``seconds`` and ``min_iters`` are reached; per-call seconds."""
    fn()  # warm up (allocator, caches)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_iters or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", default="auto", help="environment id (default: library, else notes)")
    parser.add_argument("--sizes", default=None, help="state sizes in MB, comma-separated (default 1,10)")
    parser.add_argument("--seconds", type=float, default=None, help="time per method and size (default 2)")
    parser.add_argument("--quick", action="store_true", help="one 0.1 MB size, short runs (CI smoke)")
    args = parser.parse_args()
    sizes = [float(s) for s in (args.sizes or ("0.1" if args.quick else "1,10")).split(",")]
    seconds = args.seconds if args.seconds is not None else (0.02 if args.quick else 2.0)
    min_iters = 3 if args.quick else 20

    use_fixture_envs()
    env, workload = pick_env(args.env)
    if args.quick:
        gc.freeze()  # the gc.collect() before each method then skips the import-time heap (0.1-0.2 s each)
    scenario = env.scenarios[workload.scenario]
    print(f"# bench_reset: {env.id}/{scenario.id}\n\nmachine: {machine()}\n")

    # The real scenario first: what an episode of it costs to reset.
    episode = Episode(env, scenario, "bench-real")
    real = sorted(measure(episode.reset, seconds, min_iters))
    real_kb = len(env.snapshot(scenario.id)) / 1024
    mean = sum(real) / len(real)
    print(f"## Episode.reset() on the scenario itself ({real_kb:.0f} KB)\n")
    print(
        table(
            ["scenario", "size KB", "resets/s", "mean ms", "p50 ms", "p99 ms"],
            [
                [
                    scenario.id,
                    real_kb,
                    1 / mean,
                    mean * 1e3,
                    percentile(real, 50) * 1e3,
                    percentile(real, 99) * 1e3,
                ]
            ],
        )
    )
    episode.close()

    targets: list[str] = []
    for size_mb in sizes:
        state = scaled_state(env, scenario.id, int(size_mb * 1024 * 1024), workload.filler)
        data = state.snapshot
        first_table = next(iter(state.rows))
        dump_sql = _dump(state)

        conn = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)

        def deserialize(conn: sqlite3.Connection = conn, data: bytes = data) -> None:
            conn.deserialize(data)
            conn.execute("PRAGMA foreign_keys = ON")

        # An episode bound to the scaled snapshot: same Environment, a scenario copy whose
        # snapshot is the scaled bytes (Environment.snapshot reads its cache first).
        # (an inline state, so the snapshot is keyed by the scenario, not shared with its state file)
        fake = scenario.model_copy(update={"id": f"bench-{size_mb:g}mb", "state": {}})
        env.scenarios[fake.id] = fake
        env._snapshots[f"scenario:{fake.id}"] = data
        ep = Episode(env, fake, "bench-scaled")

        def reset_and_query(ep: Episode = ep, t: str = first_table) -> None:
            ep.reset()
            ep._db.execute(f'SELECT * FROM "{t}" LIMIT 1').fetchall()

        def create(fake: Scenario = fake) -> None:
            Episode(env, fake, "bench-new").close()

        def rebuild_executemany(state: ScaledState = state) -> None:
            state.build().close()

        def rebuild_dump(sql: str = dump_sql) -> None:
            db = sqlite3.connect(":memory:", isolation_level=None)
            db.executescript(sql)
            db.close()

        methods: list[tuple[str, Callable[[], object]]] = [
            ("deserialize + pragma", deserialize),
            ("Episode.reset()", ep.reset),
            ("Episode.reset() + first query", reset_and_query),
            ("new Episode(...)", create),
            ("rebuild: DDL + executemany", rebuild_executemany),
            ("rebuild: SQL dump (iterdump)", rebuild_dump),
        ]
        results: dict[str, list[float]] = {}
        for name, fn in methods:
            gc.collect()
            slow = name.startswith("rebuild")
            results[name] = sorted(measure(fn, seconds, 3 if slow else min_iters))
        ep.close()
        conn.close()
        del env._snapshots[f"scenario:{fake.id}"], env.scenarios[fake.id]

        rebuild_ms = min(sum(results[n]) / len(results[n]) for n in results if n.startswith("rebuild")) * 1e3
        reset_mean = sum(results["Episode.reset()"]) / len(results["Episode.reset()"])
        rows = []
        for name, times in results.items():
            m = sum(times) / len(times)
            rows.append(
                [
                    name,
                    len(times),
                    1 / m,
                    m * 1e3,
                    percentile(times, 50) * 1e3,
                    percentile(times, 99) * 1e3,
                    rebuild_ms / (m * 1e3),
                ]
            )
        print(
            f"\n## ~{size_mb:g} MB: {len(data) / 1048576:.2f} MB serialized, "
            f"{state.row_count:,} rows ({state.copies:,} copies of the scenario's rows), "
            f"{len(data) / max(1, state.row_count):.0f} B/row\n"
        )
        print(
            table(
                ["method", "runs", "resets/s", "mean ms", "p50 ms", "p99 ms", "speedup vs best rebuild"],
                rows,
            )
        )
        dump_mean = sum(results["rebuild: SQL dump (iterdump)"]) / len(results["rebuild: SQL dump (iterdump)"])
        print(
            f"\nratio: Episode.reset() is {rebuild_ms / (reset_mean * 1e3):,.0f}x faster than "
            f"DDL + executemany and {dump_mean / reset_mean:,.0f}x faster than the SQL dump"
        )
        if abs(size_mb - 1) < 0.01:
            rate = 1 / reset_mean
            targets.append(
                target_line(
                    f">= {TARGET_RESETS_PER_S:,} resets/s at 1 MB on one core",
                    rate >= TARGET_RESETS_PER_S,
                    f"Episode.reset(): {rate:,.0f}/s",
                )
            )
    print()
    for line in targets or ["TARGET (1 MB size not in this run; no target checked)"]:
        print(line)
    return 0


def _dump(state: ScaledState) -> str:
    """The state as the SQL script ``iterdump`` writes: DDL and one INSERT per row."""
    db = state.build()
    try:
        return "\n".join(db.iterdump())
    finally:
        db.close()


if __name__ == "__main__":
    raise SystemExit(main())
