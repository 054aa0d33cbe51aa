"""Prometheus metrics of a farm process, served at ``GET /metrics``.

One registry per process (not the library's global one, so tests can start
several apps). Names follow Prometheus conventions: ``envfarm_`` prefix,
``_total`` for counters, seconds for durations.
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

REGISTRY = CollectorRegistry()

LIVE_EPISODES = Gauge("envfarm_live_episodes", "Episodes currently open in this process.", registry=REGISTRY)
EPISODES_OPENED = Counter("envfarm_episodes_opened_total", "Episodes opened.", ["env"], registry=REGISTRY)
EPISODES_ENDED = Counter(
    "envfarm_episodes_ended_total", "Episodes ended, by why (deleted, reaped, shutdown).", ["reason"], registry=REGISTRY
)
EPISODES_REFUSED = Counter(
    "envfarm_episodes_refused_total", "Episode requests refused because the farm was full.", registry=REGISTRY
)
RESETS = Counter("envfarm_resets_total", "Episode resets.", ["env"], registry=REGISTRY)
TOOL_CALLS = Counter(
    "envfarm_tool_calls_total",
    "Tool calls made over MCP, by outcome (ok, error).",
    ["env", "tool", "outcome"],
    registry=REGISTRY,
)
TOOL_CALL_SECONDS = Histogram(
    "envfarm_tool_call_seconds",
    "Time to run one tool call (validation, tool, SAVEPOINT).",
    ["env"],
    buckets=(0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
    registry=REGISTRY,
)
SCORES = Counter(
    "envfarm_scores_total",
    "Trajectories and live episodes scored, by kind (replay, live).",
    ["env", "kind"],
    registry=REGISTRY,
)

SCORING = Gauge(
    "envfarm_scoring",
    "Trajectories and live episodes being scored now (replaying, or running or waiting for the check sandbox).",
    registry=REGISTRY,
)


def exposition() -> tuple[bytes, str]:
    """The metrics in Prometheus' text format, and its content type."""
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
