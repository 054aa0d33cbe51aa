"""tau2-bench's airline domain (sierra-research/tau2-bench, MIT) served by envfarm.

An airline's reservation desk: users, their reservations, payment methods and saved passengers,
and flights with their status, seats and prices per date. The agent books, changes and cancels
reservations, changes bags and passengers and sends certificates under tau2's airline policy,
which is this environment's description (and, section by section, its rules).

The data (the airline's ``db.json`` as tables, the tasks as scenarios, the policy) is imported from a
tau2-bench checkout by ``scripts/import_tau2.py``; ``tau2.json`` records the commit and the hash of
every file it read. The tools are envfarm code that answers as tau2's do (docs/environments/tau2_airline.md).
"""

import json
from pathlib import Path

_IMPORTED = json.loads((Path(__file__).parent / "tau2.json").read_text(encoding="utf-8"))

SOURCE: dict[str, object] = _IMPORTED["source"]
"""Where the data comes from: tau2-bench's repository, commit, license, and each file's git blob id and sha256."""

TITLE = "tau2-bench airline"
DESCRIPTION: str = _IMPORTED["policy"]
"""tau2's airline policy (``data/tau2/domains/airline/policy.md``), word for word: what tau2's agent is given."""
RULES: dict[str, str] = _IMPORTED["rules"]
"""The policy's sections, by their headings."""
ERROR_FORMAT = "Error: {message}"
"""tau2 answers a failed call with ``Error: <the exception's message>``."""
