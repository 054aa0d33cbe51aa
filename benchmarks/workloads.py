"""Which environment the benchmarks measure, and the tool calls they make on it.

``library`` when it loads, else the ``notes`` test fixture (tests/fixtures/envs), which
is found through ENVFARM_ENV_PATH: a script that may fall back to it calls
:func:`use_fixture_envs` first thing in ``main()``, and every server it starts inherits
the variable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envfarm.core.environments import Environment, load_environment

FIXTURE_ENVS = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "envs"


def use_fixture_envs() -> None:
    """Put the fixture envs on ENVFARM_ENV_PATH, for this process and every server it starts.

    ``envfarm.servers`` reads the variable once, when it is first imported (by the first
    ``load_environment``), so this must come before that.
    """
    paths = [p for p in os.environ.get("ENVFARM_ENV_PATH", "").split(os.pathsep) if p]
    if str(FIXTURE_ENVS) in paths:
        return
    servers = sys.modules.get("envfarm.servers")
    if servers is not None and str(FIXTURE_ENVS) not in servers.__path__:
        raise RuntimeError("use_fixture_envs() must run before the first environment is loaded")
    os.environ["ENVFARM_ENV_PATH"] = os.pathsep.join([*paths, str(FIXTURE_ENVS)])


@dataclass(frozen=True)
class Workload:
    """How the benchmarks drive one environment.

    ``query(client, i)`` and ``mutation(client, i)`` return ``(tool, arguments)`` for the
    i-th call of that kind by client number ``client``. Both must succeed when called over and
    over on one episode, and on one database shared by many clients (the baseline server),
    without the state growing in a way that slows the query down.
    """

    env: str
    scenario: str
    query: Callable[[int, int], tuple[str, dict[str, Any]]]
    mutation: Callable[[int, int], tuple[str, dict[str, Any]]]
    # Scaled states only: free-text columns given text of about this many characters in the
    # copies, so rows have a realistic size (a scenario's own rows are often terse).
    filler: tuple[tuple[str, str, int], ...] = ()

    def call(self, client: int, i: int) -> tuple[str, dict[str, Any]]:
        """The i-th call of a 50/50 mix: even calls query, odd calls mutate."""
        return self.query(client, i // 2) if i % 2 == 0 else self.mutation(client, i // 2)


LIBRARY_SEARCHES = ["fantasy", "the", "Austen", "mystery", "children", "science fiction"]

WORKLOADS: dict[str, Workload] = {
    # notes: list a folder that never grows; add notes with unique titles to another folder.
    "notes": Workload(
        env="notes",
        scenario="file-two",
        query=lambda c, i: ("list_notes", {"folder": "home"}),
        mutation=lambda c, i: ("add_note", {"folder": "work", "title": f"bench-c{c}-{i}"}),
        filler=(("notes", "body", 160),),
    ),
    # library: a catalogue search (rotating terms), and a contact update that flips a member's
    # phone between two numbers (always succeeds, never grows the state, safe on a shared DB).
    "library": Workload(
        env="library",
        scenario="return-and-pay",
        query=lambda c, i: ("search_books", {"query": LIBRARY_SEARCHES[i % len(LIBRARY_SEARCHES)]}),
        mutation=lambda c, i: (
            "update_member_contact",
            {"member_id": 1 + (c + i) % 10, "phone": f"555-{2000 + i % 2}"},
        ),
    ),
}


def pick_env(requested: str) -> tuple[Environment, Workload]:
    """``auto``: the ``library`` env when it loads and its workload runs, else ``notes``."""
    if requested != "auto":
        env = load_environment(requested)
        check_workload(env, WORKLOADS[requested])
        return env, WORKLOADS[requested]
    try:
        env = load_environment("library")
        check_workload(env, WORKLOADS["library"])
        return env, WORKLOADS["library"]
    except Exception as e:  # a half-written package: fall back, loudly
        first = str(e).splitlines()[:3]
        print(f"note: library is not usable ({' / '.join(first)}); using the notes fixture", file=sys.stderr)
    env = load_environment("notes")
    check_workload(env, WORKLOADS["notes"])
    return env, WORKLOADS["notes"]


def check_workload(env: Environment, workload: Workload) -> None:
    """The workload's calls must succeed again and again on one episode; raise if not."""
    from envfarm.core.episodes import Episode

    episode = Episode(env, env.scenarios[workload.scenario], "bench-check")
    try:
        for i in range(8):
            for c in (0, 1):
                tool, args = workload.call(c, i)
                result = episode.call(tool, args)
                if not result.ok:
                    raise RuntimeError(f"workload call {tool}({args}) fails: {result.error}")
    finally:
        episode.close()
