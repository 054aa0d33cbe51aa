"""One exception hierarchy for all of envfarm, rooted in :class:`EnvfarmError`.

Errors say what went wrong in words a user can act on. Their kind says what a
service answers: the HTTP edge (``envfarm.serve.app``) maps :class:`NotFound`
to 404, :class:`Conflict` to 409, :class:`InvalidInput` to 422,
:class:`Unavailable` to 503 and :class:`Misdirected` to 421 in one place; nothing below it knows about HTTP.
"""

from __future__ import annotations


class EnvfarmError(Exception):
    """The root of every error envfarm raises on purpose."""


class NotFound(EnvfarmError):
    """Something named by the caller does not exist (an environment, a scenario, an episode)."""


class Conflict(EnvfarmError):
    """The request is well formed but clashes with the current state (for example, an id already live)."""


class InvalidInput(EnvfarmError):
    """The caller's input is malformed; the message says what and where."""


class Unavailable(EnvfarmError):
    """The service cannot take this now (full, shutting down); ``retry_after`` says when to try again."""

    def __init__(self, message: str, retry_after: float = 5) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Misdirected(EnvfarmError):
    """The request is about something another node holds (an episode whose id names that node): send it there."""
