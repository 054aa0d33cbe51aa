"""What stops a run before or while it runs, as one exception the command line reports in a line."""

from __future__ import annotations

from envfarm.core.errors import EnvfarmError


class AgentsError(EnvfarmError):
    """A run cannot start or go on: bad settings, an unknown environment or scenario, an unreachable farm,
    a run folder that holds a run with other settings."""
