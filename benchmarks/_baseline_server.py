"""The baseline: an environment's tools served "the ordinary way", for bench_calls.py.

A hand-written MCP server as the SDK documents it: a decorator-based ``MCPServer`` whose
tools open the one SQLite file per call (the tools are synchronous, and ``MCPServer`` runs
synchronous tools on worker threads, so a shared connection would need a lock), run in a
transaction and commit. There are no episodes: every client shares the one database.

The tool bodies are envfarm's own tool functions (same SQL, same checks), registered with
their own signatures through ``@server.tool()``, so the comparison is about the runtime
(serving, validation, storage), not about the tools.

Usage: python benchmarks/_baseline_server.py --env ENV --scenario ID --db FILE
           [--transport stdio|http] [--port PORT]
"""

from __future__ import annotations

import argparse
import functools
import inspect
import random
import sqlite3
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from mcp.server.mcpserver import MCPServer  # noqa: E402
from mcp.server.mcpserver.exceptions import ToolError as McpToolError  # noqa: E402
from workloads import use_fixture_envs  # noqa: E402

from envfarm.core.environments import load_environment  # noqa: E402
from envfarm.core.tools import ToolContext, ToolError, ToolSpec  # noqa: E402


def build(env_id: str, scenario_id: str, db_path: str) -> MCPServer:
    env = load_environment(env_id)
    scenario = env.scenarios[scenario_id]
    server = MCPServer(f"{env_id}-baseline", log_level="WARNING")

    def register(spec: ToolSpec) -> None:
        signature = inspect.signature(spec.func, eval_str=True)

        @functools.wraps(spec.func)
        def run(**kwargs: Any) -> Any:
            try:
                return attempt(kwargs)
            except sqlite3.Error as e:  # e.g. "database is locked" after the 5 s busy timeout
                print(f"baseline: {spec.name} failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
                raise McpToolError(f"{spec.name}: {type(e).__name__}: {e}") from None

        def attempt(kwargs: dict[str, Any]) -> Any:
            conn = sqlite3.connect(db_path, isolation_level=None)
            try:
                conn.execute("PRAGMA foreign_keys = ON")
                # Writers take the lock up front so concurrent calls wait instead of failing.
                conn.execute("BEGIN IMMEDIATE" if spec.kind == "mutation" else "BEGIN")
                ctx = ToolContext(conn, scenario.clock, random.Random(scenario.seed))
                try:
                    value = spec.func(ctx, **kwargs)
                except ToolError as e:
                    conn.execute("ROLLBACK")
                    raise McpToolError(f"{spec.name}: {e.message}") from None
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
                return value
            finally:
                conn.close()

        # The tool's own parameters, without ``ctx``: what a hand-written tool would declare.
        run.__signature__ = signature.replace(parameters=list(signature.parameters.values())[1:])  # type: ignore[attr-defined]
        del run.__wrapped__  # type: ignore[attr-defined]
        server.tool(name=spec.name, description=spec.description)(run)

    for spec in env.tools.values():
        register(spec)
    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--env", required=True)
    parser.add_argument("--scenario", required=True)
    parser.add_argument("--db", required=True, help="the SQLite file every call opens")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=8001)
    args = parser.parse_args()
    use_fixture_envs()  # started by hand with --env notes; bench_calls.py's servers inherit it anyway
    server = build(args.env, args.scenario, args.db)
    if args.transport == "stdio":
        server.run("stdio")
        return
    import uvicorn

    # What server.run("streamable-http") does, with the access log off as for envfarm serve.
    uvicorn.run(server.streamable_http_app(), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
