"""The check sandbox: untrusted check code runs in hardened worker processes, never in a service.

- :mod:`~envfarm.validators.sandbox.pool`: :class:`SandboxPool`, the service's side (workers, jobs, deadlines);
- :mod:`~envfarm.validators.sandbox.worker`: the zygote and the children it forks per check set;
- :mod:`~envfarm.validators.sandbox.policy`: what a check may use and how a child is held to it;
- :mod:`~envfarm.validators.sandbox.protocol`: the frames and result lines between them.

See docs/sandbox.md for the guarantees and limits.
"""

from envfarm.validators.sandbox.pool import SandboxError, SandboxLimits, SandboxPool, run_checks_sync

__all__ = ["SandboxError", "SandboxLimits", "SandboxPool", "run_checks_sync"]
