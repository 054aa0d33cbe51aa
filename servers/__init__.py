"""Environment packages, one per folder, each a standalone MCP server (``envfarm.servers.<env>``).

Folders listed in ``ENVFARM_ENV_PATH`` (separated like ``PATH``) are searched
too, so environments written elsewhere (by the generator, or by a user) are
served without being installed.
"""

import os

__path__ = [*__path__, *(p for p in os.environ.get("ENVFARM_ENV_PATH", "").split(os.pathsep) if p)]
