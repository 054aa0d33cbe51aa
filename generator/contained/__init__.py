"""Generated environment code runs here: in a contained worker process, never in the generator's.

- :mod:`~envfarm.generator.contained.runner`: :class:`ContainedEnv` (a package loaded in a worker:
  its description, episodes, replays for the quality gate) and the deadlines, on the generator's side;
- :mod:`~envfarm.generator.contained.worker`: the worker process, which hardens itself, imports the
  package and answers requests;
- :mod:`~envfarm.generator.contained.hardening`: what the worker applies, in order (minimal
  environment, network namespace, rlimits, no root, two seccomp filters, Python restrictions);
- :mod:`~envfarm.generator.contained.protocol`: the JSON frames between them.

docs/generator.md ("What runs where") states the boundary.
"""

from envfarm.generator.contained.runner import (
    ContainedEnv,
    ContainedEpisode,
    ContainedError,
    RunnerLimits,
    RunnerUnavailable,
    StateError,
    Step,
    ToolInfo,
)

__all__ = [
    "ContainedEnv",
    "ContainedEpisode",
    "ContainedError",
    "RunnerLimits",
    "RunnerUnavailable",
    "StateError",
    "Step",
    "ToolInfo",
]
