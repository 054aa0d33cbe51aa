"""The contained worker: one process that imports a generated package and runs its tools for the generator.

Started by :class:`envfarm.generator.contained.ContainedEnv` as
``python -m envfarm.generator.contained.worker --package DIR --memory BYTES --cpu SECONDS``
with an explicit minimal environment (no API key, token or any variable of the generator);
never run it by hand. It hardens itself (:mod:`.hardening` says how, in order), imports the
package at ``DIR``, says hello with the environment's description (or the problems that kept it
from loading), then answers requests on its stdin until the pipe closes (:mod:`.protocol`).

File descriptors: 0 requests, 3 replies, 1 and 2 ``/dev/null`` once set up (whatever generated
code prints goes nowhere, and cannot forge a frame).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import logging
import os
import signal
import sys
import traceback
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

from envfarm.core.environments import Environment, PackageError, load_environment
from envfarm.core.episodes import Episode
from envfarm.core.scenarios import Scenario, build_database
from envfarm.core.state import state_hash
from envfarm.generator.contained import hardening
from envfarm.generator.contained.protocol import ProtocolError, read_frame, write_frame

REPLIES = 3
MAX_EPISODES = 64  # open at once; the generator closes what it opens
MAX_STATES = 64  # initial states whose database is kept built
MAX_ERROR_CHARS = 2000
EXIT_TIMER_RACE = 75
PLACEHOLDER_CHECK = "def check(initial, final):\n    return True"  # a scenario needs one; never run


class ToolTimeout(Exception):
    """Raised inside a generated tool that ran past its time (the episode reports it as a crash)."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    """Raise ToolTimeout in the tool after ``seconds`` of wall-clock time (the parent's deadline is later)."""

    def ring(signum: int, frame: object) -> None:
        raise ToolTimeout(f"ran longer than {seconds:g} s (an endless loop?)")

    signal.signal(signal.SIGALRM, ring)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_IGN)


class Runner:
    """The loaded environment, its episodes, and the requests on them."""

    def __init__(self, env: Environment) -> None:
        self.env = env
        self.episodes: dict[int, Episode] = {}
        self.states: OrderedDict[str, str] = OrderedDict()  # sha256 of (state, clock) -> scenario id
        self.next_episode = 1

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("op")
        try:
            if op == "open":
                return self.open(request)
            if op == "call":
                return self.call(request)
            if op == "view":
                return {"ok": True, "view": self._episode(request).view()}
            if op == "close":
                self._episode(request).close()
                del self.episodes[request["episode"]]
                return {"ok": True}
            if op == "check_calls":
                return {"ok": True, "errors": [self._argument_error(c) for c in request.get("calls", [])]}
        except _Refused as e:
            return {"ok": False, "error": str(e)}
        except (TypeError, ValueError, KeyError) as e:  # a request of the wrong shape (the parent's bug)
            return {"ok": False, "error": f"malformed {op!r} request: {type(e).__name__}: {e}"}
        return {"ok": False, "error": f"unknown request {op!r}"}

    def open(self, request: dict[str, Any]) -> dict[str, Any]:
        if len(self.episodes) >= MAX_EPISODES:
            raise _Refused(f"{MAX_EPISODES} episodes are open already; close some")
        state, clock, seed = request.get("state"), request.get("clock"), request.get("seed", 0)
        key = hashlib.sha256(json.dumps([state, clock], sort_keys=True).encode()).hexdigest()[:24]
        sid = self.states.get(key)
        if sid is None:
            sid = f"contained-{key}"
            try:
                scenario = Scenario.model_validate(
                    {
                        "id": sid,
                        "task": "(generator run)",
                        "state": state,
                        "clock": clock,
                        "checks": [{"id": "none", "description": "none", "code": PLACEHOLDER_CHECK}],
                        "oracle": [{"tool": next(iter(self.env.tools))}],
                    }
                )
            except ValueError as e:
                raise _Refused(f"not a scenario state: {e}") from None
            self.env.add_scenario(scenario)
            try:
                if isinstance(state, dict):  # built once more to name the rows as the model wrote them
                    build_database(self.env.metadata, self.env.models, state, "state")
                self.env.snapshot(sid)
            except ValueError as e:  # types, required columns, foreign keys: the message names the row
                self.env.remove_scenario(sid)
                raise _Refused(str(e)) from None
            except Exception as e:  # generated model code raised while the rows were validated
                self.env.remove_scenario(sid)
                raise _Refused(f"building the state crashed: {type(e).__name__}: {e}"[:MAX_ERROR_CHARS]) from None
            self.states[key] = sid
            if len(self.states) > MAX_STATES:
                _, old = self.states.popitem(last=False)
                if not any(e.scenario.id == old for e in self.episodes.values()):
                    self.env.remove_scenario(old)
        else:
            self.states.move_to_end(key)
        number = self.next_episode
        self.next_episode += 1
        episode = Episode(self.env, self.env.scenarios[sid], f"contained-{number}", int(seed))
        self.episodes[number] = episode
        return {"ok": True, "episode": number, "view": episode.view()}

    def call(self, request: dict[str, Any]) -> dict[str, Any]:
        episode = self._episode(request)
        tool = str(request.get("tool"))
        seconds = float(request.get("seconds", 5.0))
        try:
            with _alarm(seconds):
                result = episode.call(tool, request.get("arguments"))
        except ToolTimeout:  # the timer rang outside the tool itself (in the runtime around it): the episode
            os._exit(EXIT_TIMER_RACE)  # may be half-way through a rollback; the generator rebuilds it elsewhere
        value = result.value
        if result.ok:
            try:
                json.dumps(value)
            except (TypeError, ValueError) as e:  # what the farm could not send to an agent either
                value = None
                result.ok, result.crashed = False, True
                result.error = f"{tool}: internal error (the result is not JSON: {e})"
        view = episode.view()
        out: dict[str, Any] = {
            "ok": True,
            "result": {
                "tool": tool,
                "ok": result.ok,
                "value": value,
                "error": (result.error or "")[:MAX_ERROR_CHARS] or None,
                "rule": result.rule,
                "crashed": result.crashed,
            },
            "hash": state_hash(view),
        }
        if request.get("view"):
            out["view"] = view
        return out

    def _episode(self, request: dict[str, Any]) -> Episode:
        number = request.get("episode")
        episode = self.episodes.get(number) if isinstance(number, int) else None
        if episode is None:
            raise _Refused(f"no open episode {request.get('episode')!r}")
        return episode

    def _argument_error(self, call: Any) -> str | None:
        if not isinstance(call, dict):
            return "not a call"
        spec = self.env.tools.get(str(call.get("tool")))
        if spec is None:
            return f"unknown tool {call.get('tool')!r}"
        error = next(iter(spec.validator.iter_errors(call.get("arguments", {}))), None)
        return None if error is None else str(error.message)[:MAX_ERROR_CHARS]


class _Refused(Exception):
    """A request that cannot be done (an unknown episode, a state that does not build)."""


def describe(env: Environment) -> dict[str, Any]:
    """What the parent needs to know of the environment, as JSON."""
    return {
        "id": env.id,
        "title": env.title,
        "description": env.description,
        "rules": env.rules,
        "version": env.version,
        "tables": sorted(env.metadata.tables),
        "keys": env.keys(),
        "manifest": env.manifest(),
        "tools": {
            name: {"kind": spec.kind, "description": spec.description, "input_schema": spec.input_schema}
            for name, spec in env.tools.items()
        },
        "scenarios": sorted(env.scenarios),
    }


def load(env_id: str, with_scenarios: bool) -> tuple[Environment | None, list[str]]:
    """Import the package in the working directory; (environment, []) or (None, problems)."""
    try:
        return load_environment(env_id, check_manifest=False, require_scenarios=with_scenarios), []
    except PackageError as e:
        return None, list(e.problems)
    except Exception as e:  # an import-time error in generated code: a finding, not a crash
        return None, [f"importing the code failed: {type(e).__name__}: {e}"[:MAX_ERROR_CHARS]]


def warm(env: Environment) -> None:
    """Run every code path a request takes once, before the run filter makes loading impossible."""
    for spec in env.tools.values():
        list(spec.validator.iter_errors({}))
    runner = Runner(env)
    opened = runner.open({"state": {}, "clock": "2000-01-01T00:00:00+00:00", "seed": 0})
    runner.call({"episode": opened["episode"], "tool": "no-such-tool", "arguments": {}, "seconds": 5.0})
    runner.handle({"op": "close", "episode": opened["episode"]})
    for sid in list(env.scenarios):
        if sid.startswith("contained-"):
            env.remove_scenario(sid)


def serve(runner: Runner) -> int:
    while True:
        try:
            request = read_frame(0)
        except ProtocolError as e:
            write_frame(REPLIES, {"ok": False, "error": f"malformed request: {e}"})
            return 1
        if request is None:
            return 0
        try:
            reply = runner.handle(request)
        except MemoryError:
            reply = {"ok": False, "error": "the worker ran out of memory"}
        try:
            write_frame(REPLIES, reply)
        except (TypeError, ValueError) as e:  # a view or value that is not JSON after all
            write_frame(REPLIES, {"ok": False, "error": f"the reply is not JSON: {e}"[:MAX_ERROR_CHARS]})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--package", required=True, help="the package folder (its name is the environment id)")
    parser.add_argument("--with-scenarios", action="store_true", help="the package must have scenarios")
    parser.add_argument("--memory", type=int, required=True, help="address-space bytes")
    parser.add_argument("--cpu", type=int, required=True, help="CPU seconds for the whole process")
    args = parser.parse_args(argv)

    os.dup2(1, REPLIES)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    env_id = os.path.basename(os.path.normpath(args.package))
    try:
        from envfarm.validators.sandbox.policy import (
            PR_SET_PDEATHSIG,
            SeccompInstaller,
            drop_privileges,
            enter_network_namespace,
        )

        hardening.preload()
        netns = enter_network_namespace()
        import_filter = SeccompInstaller(hardening.compile_filter(reading=True))
        run_filter = SeccompInstaller(hardening.compile_filter(reading=False))
        restrictions = hardening.Restrictions()
        os.chdir(args.package)
        os.dup2(devnull, 2)
        os.closerange(REPLIES + 1, 1 << 16)
        hardening.set_limits(hardening.Limits(memory_bytes=args.memory, cpu_seconds=args.cpu))
        dropped = drop_privileges()
        import_filter.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the uid change, which clears it
        if os.getppid() == 1:
            return 1  # the generator is gone already
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past RLIMIT_FSIZE fails (EFBIG), not kills
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the generator decides when this process ends
        import_filter.install()
    except BaseException as e:  # noqa: BLE001
        detail = "".join(traceback.format_exception_only(type(e), e)).strip()
        write_frame(REPLIES, {"fatal": f"the contained worker could not harden itself: {detail}"[:MAX_ERROR_CHARS]})
        return 70
    hello = {
        "pid": os.getpid(),
        "network_namespace": netns,
        "user": "nobody" if dropped else f"uid {os.getuid()} (not root: kept)",
        "environment_variables": sorted(os.environ),
        "rlimits": ["AS", "CPU", "FSIZE=0", "NPROC=0", "CORE=0", "NOFILE=8"],
        "seccomp": "import: allow-list + read-only open; run: allow-list, default EPERM",
        "unimportable": hardening.hidden_modules(),
    }
    hardening.install_finder(env_id)
    logging.getLogger("envfarm.core.episodes").setLevel(logging.CRITICAL)  # crashes are reported, not logged
    env, problems = load(env_id, args.with_scenarios)
    if env is None:
        write_frame(REPLIES, {"hello": hello, "problems": problems})
        return 0
    try:
        description = describe(env)
        warm(env)
        restrictions.apply()
        run_filter.install()
    except BaseException as e:  # noqa: BLE001 - generated code can make describing or warming fail
        write_frame(REPLIES, {"hello": hello, "problems": [f"the environment does not run: {type(e).__name__}: {e}"]})
        return 0
    write_frame(REPLIES, {"hello": hello, "env": description})
    return serve(Runner(env))


if __name__ == "__main__":
    sys.exit(main())
