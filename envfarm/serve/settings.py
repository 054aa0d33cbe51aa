"""How a farm or validator process serves: one dataclass, filled from CLI flags or ``ENVFARM_*`` variables.

The table of every setting, its flag and its variable is in docs/api.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class FarmSettings:
    """Network and request limits shared by ``envfarm serve`` and ``envfarm validator``."""

    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    allowed_hosts: list[str] = field(default_factory=list)  # beyond loopback and the bound address
    max_body_bytes: int = 16 * 2**20
    max_episodes: int = 10_000  # past this, POST /v1/episodes answers 503 with Retry-After
    idle_timeout: float = 3600.0  # seconds without a call or request before an episode is reaped
    node: str | None = None  # this worker's name: its episode ids carry it (envfarm.core.nodes)
