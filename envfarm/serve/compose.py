"""``docker-compose.yml``: the farm, the validator pointed at it, healthchecks, ports on
127.0.0.1 only, and a volume for generated environments.

The file at the repository root is written by ``envfarm compose``; a test fails when
the committed file differs from what this module writes, so the two never drift.
"""

from __future__ import annotations

from typing import Any

import yaml

from envfarm import __version__

HEADER = "# Written by `envfarm compose`; do not edit by hand (a test compares them).\n"
GENERATED = "/data/envs"  # where the `generated` volume is mounted; on ENVFARM_ENV_PATH in the image


def healthcheck() -> dict[str, Any]:
    probe = (
        "import os, urllib.request; "
        "urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['ENVFARM_PORT']}/healthz\", timeout=2)"
    )
    return {
        "test": ["CMD", "python", "-c", probe],
        "interval": "10s",
        "timeout": "3s",
        "retries": 3,
        "start_period": "20s",
    }


def compose(farm_port: int = 8000, validator_port: int = 8001) -> dict[str, Any]:
    """The compose document.

    The services serve every environment they find (the bundled ones in the image and
    any on the ``generated`` volume), so the file names none: adding an environment
    changes nothing here.
    """

    def service(target: str, port: int, command: list[str], environment: dict[str, str]) -> dict[str, Any]:
        return {
            "build": {"context": ".", "dockerfile": "docker/Dockerfile", "target": target},
            "image": f"envfarm-{target}:{__version__}",
            "command": command,
            "environment": {
                "ENVFARM_HOST": "0.0.0.0",
                "ENVFARM_PORT": str(port),
                "ENVFARM_ENV_PATH": GENERATED,
                **environment,
            },
            "ports": [f"127.0.0.1:{port}:{port}"],
            "healthcheck": healthcheck(),
            "restart": "unless-stopped",
            "stop_grace_period": "15s",
        }

    farm = service("farm", farm_port, ["serve"], {"ENVFARM_ALLOW_HOSTS": "farm"})
    farm["volumes"] = [f"generated:{GENERATED}"]
    validator = service(
        "validator",
        validator_port,
        ["validator"],
        {"ENVFARM_ALLOW_HOSTS": "validator", "ENVFARM_FARM_URL": f"http://farm:{farm_port}"},
    )
    validator["volumes"] = [f"generated:{GENERATED}:ro"]
    validator["depends_on"] = {"farm": {"condition": "service_healthy"}}
    return {"services": {"farm": farm, "validator": validator}, "volumes": {"generated": {}}}


def render() -> str:
    """The compose file's text."""
    return HEADER + yaml.safe_dump(compose(), sort_keys=False, width=120)
