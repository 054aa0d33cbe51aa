"""The package list, derived from the folders; pyproject.toml holds everything else.

``servers/``, ``validators/`` and ``generator/`` sit at the repository root (the
product's layout) and install as ``envfarm.servers``, ``envfarm.validators`` and
``envfarm.generator``. Every folder under them with an ``__init__.py`` is a
package, so a new environment folder ships (Docker's non-editable install too)
without being listed anywhere.
"""

from setuptools import find_packages, setup

ROOTS = {
    "envfarm": "envfarm",
    "envfarm.servers": "servers",
    "envfarm.validators": "validators",
    "envfarm.generator": "generator",
}

packages = [prefix for prefix in ROOTS]
for prefix, folder in ROOTS.items():
    packages += [f"{prefix}.{sub}" for sub in find_packages(folder)]

setup(package_dir=ROOTS, packages=packages)
