"""Nodes: a worker's stable name, and episode ids that carry it, so any proxy routes an episode from its URL alone.

A farm worker started with ``envfarm serve --node NAME`` (or ``ENVFARM_NODE``) mints every
episode id as::

    ep_<node>_<16 hex digits>          e.g. ep_envfarm-worker-0_9c1f0a3b7d2e4f56

``<node>`` is a DNS label, as Kubernetes names a StatefulSet's pods: lowercase letters,
digits and ``-``, starting and ending with a letter or digit. It never holds ``_``, so the
node of any id is what lies between ``ep_`` and the next ``_``: one regular expression,
:data:`NODE_IN_ID` (:data:`NODE_IN_PATH` for a request path), finds it, with no table and
no lookup. Ids stay within :data:`~envfarm.core.episodes.EPISODE_ID_PATTERN` (at most 64
characters), hence :data:`MAX_NODE_LENGTH`.

An id minted by a worker without a node (``ep_`` and 24 hex digits) names no node: it has no
second ``_``. A caller may choose an episode's id on a node worker if the id names that node
(``ep_<node>_<anything allowed in an id>``).
"""

from __future__ import annotations

import re
import secrets

from envfarm.core.errors import InvalidInput

NODE_NAME_PATTERN = r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"
"""A node's name: a DNS label (RFC 1123), as Kubernetes names pods."""

RANDOM_HEX_DIGITS = 16
"""The random part of a node's ids: 64 bits, unique among one node's episodes with room to spare."""

MAX_NODE_LENGTH = 64 - len("ep_") - len("_") - RANDOM_HEX_DIGITS
"""44: the longest node name whose ids fit in the 64 characters an episode id may have."""

NODE_IN_ID = r"^ep_(?P<node>[a-z0-9-]+)_"
"""The node an episode id names (``re.match`` on the id); an id it does not match names no node."""

NODE_IN_PATH = r"^/(?:v1/)?episodes/ep_(?P<node>[a-z0-9-]+)_"
"""The node named by a request about one episode (``/v1/episodes/{id}...`` and ``/episodes/{id}/mcp``)."""

_NODE_IN_ID = re.compile(NODE_IN_ID)


def check_node_name(name: str) -> str:
    """``name`` if it can name a node; else :class:`~envfarm.core.errors.InvalidInput` saying what is wrong."""
    if not name:
        raise InvalidInput("a node name cannot be empty")
    if len(name) > MAX_NODE_LENGTH:
        raise InvalidInput(
            f"node name {name[:60]!r}{'...' if len(name) > 60 else ''} is {len(name)} characters long; "
            f"at most {MAX_NODE_LENGTH} fit in an episode id"
        )
    if not re.fullmatch(NODE_NAME_PATTERN, name):
        raise InvalidInput(
            f"node name {name!r} is not a DNS label: use lowercase letters, digits and '-', "
            "starting and ending with a letter or digit (as Kubernetes names pods, e.g. envfarm-worker-0)"
        )
    return name


def node_of(episode_id: str) -> str | None:
    """The node an episode id names, or None when it names none."""
    found = _NODE_IN_ID.match(episode_id)
    return found["node"] if found else None


def new_node_episode_id(node: str) -> str:
    """A fresh episode id naming ``node``: ``ep_<node>_<16 hex digits>``."""
    return f"ep_{node}_{secrets.token_hex(RANDOM_HEX_DIGITS // 2)}"


def misdirected(episode_id: str, node: str) -> str | None:
    """Why a request about ``episode_id`` does not belong on node ``node``, or None when it does (or names none)."""
    owner = node_of(episode_id)
    if owner is None or owner == node:
        return None
    return (
        f"episode {episode_id!r} belongs to node {owner}; this is node {node}. Send its requests to node {owner} "
        "(a proxy in front of the nodes routes them there by the id)"
    )
