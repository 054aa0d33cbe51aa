"""Environment packages: loading, validating and describing ``servers/<env>/``.

A package holds ``__init__.py`` (``TITLE``, ``DESCRIPTION``, ``RULES``, optionally
``ERROR_FORMAT``),
``models.py`` (SQLModel tables on a ``Base`` with its own registry),
``tools.py`` (functions marked with ``@tool``), ``scenarios/*.json``,
``states/*.json`` (initial states shared by scenarios) and ``manifest.json``,
which is derived from the code by ``envfarm manifest ENV --write`` and checked
against it on every load so the two cannot drift.

Loading validates everything a served episode relies on and reports every
problem found, each naming the file and the field.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import pkgutil
import re
import sqlite3
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

from sqlmodel import SQLModel

from envfarm.core.errors import EnvfarmError
from envfarm.core.scenarios import Scenario, build_database, load_scenario_file
from envfarm.core.state import StateView, canonical_json, canonical_view
from envfarm.core.tools import ToolSpec, collect_tools

SERVERS_PACKAGE = "envfarm.servers"
MANIFEST_FILE = "manifest.json"
ENV_ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
DEFAULT_ERROR_FORMAT = "{tool}: {message}"
"""How a refused call reads to the agent; a package's ``ERROR_FORMAT`` may word it as a benchmark it was
imported from does (tau2-bench's ``Error: {message}``), so its agents see the same text."""


class PackageError(EnvfarmError):
    """An environment package is broken; ``problems`` lists each thing wrong, with where."""

    def __init__(self, env_id: str, problems: list[str]) -> None:
        self.env_id = env_id
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"environment {env_id!r} is not valid:\n{lines}")


@dataclass
class Environment:
    """A loaded, validated environment package."""

    id: str
    title: str
    description: str
    rules: dict[str, str]
    tools: dict[str, ToolSpec]
    scenarios: dict[str, Scenario]
    models: dict[str, type[SQLModel]]
    metadata: Any
    path: Path
    version: str
    error_format: str = DEFAULT_ERROR_FORMAT
    _states: dict[str, StateFile] = field(default_factory=dict, repr=False)
    _snapshots: dict[str, bytes] = field(default_factory=dict, repr=False)
    _initial_views: dict[str, StateView] = field(default_factory=dict, repr=False)
    _keys: dict[str, list[str]] | None = field(default=None, repr=False)

    def manifest(self) -> dict[str, Any]:
        """The package's manifest: what an agent and an operator need to know about it."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "version": self.version,
            "rules": [{"id": k, "text": v} for k, v in self.rules.items()],
            "tables": sorted(self.metadata.tables),
            "tools": [t.manifest_entry() for t in self.tools.values()],
        }

    def keys(self) -> dict[str, list[str]]:
        """Primary-key columns per table, in key order (for canonical views and diffs)."""
        if self._keys is None:
            tables = self.metadata.tables.items()
            self._keys = {name: [c.name for c in table.primary_key.columns] for name, table in tables}
        return self._keys

    def add_scenario(self, scenario: Scenario) -> None:
        """Register a scenario made at run time (the generator's), replacing any of the same id.

        Its snapshot and initial view are built afresh on first use: a cached one may belong to
        an earlier scenario that had the same id and another inline state.
        """
        self.remove_scenario(scenario.id)
        self.scenarios[scenario.id] = scenario

    def remove_scenario(self, scenario_id: str) -> None:
        """Forget a run-time scenario and whatever was cached for its inline state."""
        self.scenarios.pop(scenario_id, None)
        self._snapshots.pop(f"scenario:{scenario_id}", None)
        self._initial_views.pop(f"scenario:{scenario_id}", None)

    def initial_rows(self, scenario: Scenario) -> dict[str, list[dict[str, Any]]]:
        """The rows a scenario starts from (its inline state or a shared state file)."""
        if isinstance(scenario.state, dict):
            return scenario.state
        return self._states[scenario.state].rows()

    def _state_key(self, scenario_id: str) -> str:
        """Scenarios starting from the same state file share its snapshot and view (clock and
        seed are not in the database), so loading a package builds each state once."""
        state = self.scenarios[scenario_id].state
        return f"state:{state}" if isinstance(state, str) else f"scenario:{scenario_id}"

    def snapshot(self, scenario_id: str) -> bytes:
        """The scenario's initial database as SQLite bytes, built once and cached."""
        key = self._state_key(scenario_id)
        data = self._snapshots.get(key)
        if data is None:
            scenario = self.scenarios[scenario_id]
            if isinstance(scenario.state, str):
                data = self._state_image(scenario.state, scenario_id)
            else:
                data = build_database(self.metadata, self.models, scenario.state, f"scenario {scenario_id!r}")
            self._snapshots[key] = data

        return data

    def _state_image(self, name: str, scenario_id: str) -> bytes:
        """The database of a state file: built and validated once per content (in this process, and in
        the image cache on disk when there is one), so a package loaded again does not build it again."""
        state = self._states[name]
        built = _BUILT.get((self.metadata, state.digest))
        if built is None:
            built = _read_image(self.metadata, state.digest)
        if built is None:
            built = build_database(self.metadata, self.models, state.rows(), f"scenario {scenario_id!r}")
            _write_image(self.metadata, state.digest, built)
        if len(_BUILT) >= 256:  # packages made and dropped at run time (the generator's)
            _BUILT.clear()
        _BUILT[(self.metadata, state.digest)] = built
        return built

    def initial_view(self, scenario_id: str) -> StateView:
        """The scenario's initial canonical state view, built once (treat it as read-only)."""
        key = self._state_key(scenario_id)
        view = self._initial_views.get(key)
        if view is None:
            db = sqlite3.connect(":memory:")
            try:
                db.deserialize(self.snapshot(scenario_id))
                view = self._initial_views[key] = canonical_view(db, self.keys())
            finally:
                db.close()
        return view


@dataclass
class StateFile:
    """A file of ``states/``: where it is, the sha256 of its bytes, and its rows while loading needs them.

    The rows are dropped once the package's snapshots are built (an imported state can be tens of
    megabytes of Python objects); :meth:`rows` reads the file again if a scenario added later needs it.
    """

    path: Path
    digest: str
    parsed: dict[str, list[dict[str, Any]]] | None = None

    def rows(self) -> dict[str, list[dict[str, Any]]]:
        if self.parsed is not None:
            return self.parsed
        data: dict[str, list[dict[str, Any]]] = json.loads(self.path.read_text(encoding="utf-8"))
        return data


_BUILT: dict[tuple[Any, str], bytes] = {}
"""Databases built from state files in this process, by (the package's SQL metadata, the file's sha256): a
package loaded again (tests, the generator) reuses the database it validated and built the first time."""


# --- the image cache: a state file's database, built and validated once per content ----------------

IMAGE_FORMAT = "envfarm-state-image-1"
"""Part of every image's key: change it when build_database's result would change for the same rows."""


def image_cache_dir() -> Path | None:
    """Where built state databases are kept between processes: ``ENVFARM_CACHE_DIR`` (empty: nowhere),
    else ``$XDG_CACHE_HOME/envfarm`` or ``~/.cache/envfarm``."""
    configured = os.environ.get("ENVFARM_CACHE_DIR")
    if configured is not None:
        return Path(configured) / "states" if configured else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "envfarm" / "states"


_schemas: dict[int, tuple[Any, str]] = {}


def _image_path(metadata: Any, digest: str) -> Path | None:
    """The cache file of the database built from a state file with this sha256 for this schema."""
    folder = image_cache_dir()
    if folder is None:
        return None
    found = _schemas.get(id(metadata))
    if found is None or found[0] is not metadata:
        from sqlalchemy.dialects import sqlite as dialect
        from sqlalchemy.schema import CreateIndex, CreateTable

        parts = []
        for table in metadata.sorted_tables:
            parts.append(str(CreateTable(table).compile(dialect=dialect.dialect())))
            parts += [str(CreateIndex(i).compile(dialect=dialect.dialect())) for i in sorted(table.indexes, key=str)]
        found = _schemas[id(metadata)] = (metadata, "\n".join(parts))
    key = hashlib.sha256(f"{IMAGE_FORMAT}\0{digest}\0{found[1]}".encode()).hexdigest()
    return folder / f"{key}.sqlite"


def _read_image(metadata: Any, digest: str) -> bytes | None:
    """A cached database, if one is there whole (its own sha256 heads the file)."""
    path = _image_path(metadata, digest)
    try:
        data = path.read_bytes() if path is not None else b""
    except OSError:
        return None
    check, image = data[:64], data[65:]
    if len(data) < 65 or hashlib.sha256(image).hexdigest().encode() != check:
        return None
    return image


def _write_image(metadata: Any, digest: str, image: bytes) -> None:
    """Keep a freshly built (so validated) database for the next process; no cache is no error."""
    path = _image_path(metadata, digest)
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(f".{os.getpid()}.tmp")
        temporary.write_bytes(hashlib.sha256(image).hexdigest().encode() + b"\n" + image)
        os.replace(temporary, path)
    except OSError:
        pass


def discover() -> list[str]:
    """Ids of the environment packages installed under ``envfarm.servers``."""
    package = importlib.import_module(SERVERS_PACKAGE)
    return sorted(m.name for m in pkgutil.iter_modules(package.__path__) if m.ispkg)


def bundled() -> list[str]:
    """Ids of the environments shipped in the package itself (not those found on ENVFARM_ENV_PATH)."""
    package = importlib.import_module(SERVERS_PACKAGE)
    home = Path(package.__path__[0])
    return sorted(p.parent.name for p in home.glob("*/__init__.py"))


def content_hash(path: Path) -> str:
    """sha256 of the package's source files (everything but the manifest and caches)."""
    digest = hashlib.sha256()
    for file in sorted(path.rglob("*")):
        rel = file.relative_to(path).as_posix()
        if not file.is_file() or rel == MANIFEST_FILE or "__pycache__" in rel or file.suffix == ".pyc":
            continue
        digest.update(rel.encode() + b"\0" + file.read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()


def load_environment(env_id: str, *, check_manifest: bool = True, require_scenarios: bool = True) -> Environment:
    """Import and validate ``envfarm.servers.<env_id>``; raise PackageError listing every problem.

    ``require_scenarios=False`` is for the generator, which tests an environment's
    code before it has written any scenario for it.
    """
    if not ENV_ID_PATTERN.match(env_id):
        raise PackageError(env_id, ["an environment id is lower-case letters, digits and '_'"])
    problems: list[str] = []
    try:
        package = importlib.import_module(f"{SERVERS_PACKAGE}.{env_id}")
    except ModuleNotFoundError as e:
        if e.name == f"{SERVERS_PACKAGE}.{env_id}":
            raise PackageError(env_id, [f"no package {SERVERS_PACKAGE}.{env_id}; known: {discover()}"]) from None
        raise PackageError(env_id, [f"__init__.py: cannot import {e.name!r}"]) from None
    assert package.__file__ is not None
    path = Path(package.__file__).parent
    meta = _package_info(package, problems)
    models_module = _import_part(env_id, "models", problems)
    tools_module = _import_part(env_id, "tools", problems)
    if models_module is None or tools_module is None:
        raise PackageError(env_id, problems)

    models, metadata = _collect_models(models_module, problems)
    tools: dict[str, ToolSpec] = {}
    try:
        for spec in collect_tools(tools_module):
            tools[spec.name] = spec
    except ValueError as e:
        problems.append(f"tools.py: {e}")
    if not tools and not problems:
        problems.append("tools.py: no function is marked with @tool")

    env = Environment(
        id=env_id,
        title=meta.get("TITLE", ""),
        description=meta.get("DESCRIPTION", ""),
        rules=meta.get("RULES", {}),
        tools=tools,
        scenarios={},
        models=models,
        metadata=metadata,
        path=path,
        version=content_hash(path),
        error_format=meta.get("ERROR_FORMAT", DEFAULT_ERROR_FORMAT),
    )
    _load_states(env, problems)
    _load_scenarios(env, problems, require_scenarios)
    for state in env._states.values():
        state.parsed = None  # built (or never used): the bytes of its database are all episodes need
    if check_manifest and not problems:
        _compare_manifest(env, problems)
    if problems:
        raise PackageError(env_id, problems)
    return env


def _package_info(package: ModuleType, problems: list[str]) -> dict[str, Any]:
    info: dict[str, Any] = {}
    for name, kind in (("TITLE", str), ("DESCRIPTION", str), ("RULES", dict)):
        value = getattr(package, name, None)
        if not isinstance(value, kind) or not value:
            problems.append(f"__init__.py: {name} must be a non-empty {kind.__name__}")
        else:
            info[name] = value
    error_format = getattr(package, "ERROR_FORMAT", None)
    if error_format is not None:
        if _format_fields(error_format) in ({"message"}, {"tool", "message"}):
            info["ERROR_FORMAT"] = error_format
        else:
            problems.append("__init__.py: ERROR_FORMAT must be a string with {message} (and optionally {tool})")
    for rule_id, text in info.get("RULES", {}).items():
        if not re.match(r"^[a-z0-9-]+$", str(rule_id)) or not isinstance(text, str) or not text:
            problems.append(f"__init__.py: RULES[{rule_id!r}] needs a kebab-case id and a sentence")
    return info


def _format_fields(value: Any) -> set[str] | None:
    """The replacement fields of a format string (None when it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        return {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError:
        return None


def _import_part(env_id: str, part: str, problems: list[str]) -> ModuleType | None:
    try:
        return importlib.import_module(f"{SERVERS_PACKAGE}.{env_id}.{part}")
    except ModuleNotFoundError as e:
        missing = (e.name or "").endswith(f".{part}")
        problems.append(f"{part}.py: missing" if missing else f"{part}.py: {e}")
    except Exception as e:  # a broken package must be reported, not crash the farm
        problems.append(f"{part}.py: fails to import: {type(e).__name__}: {e}")
    return None


def _collect_models(module: ModuleType, problems: list[str]) -> tuple[dict[str, type[SQLModel]], Any]:
    base = getattr(module, "Base", None)
    if not (isinstance(base, type) and issubclass(base, SQLModel)) or base.metadata is SQLModel.metadata:
        problems.append("models.py: define `class Base(SQLModel, registry=registry())` and derive tables from it")
        return {}, SQLModel.metadata
    models: dict[str, type[SQLModel]] = {
        str(obj.__tablename__): obj
        for obj in vars(module).values()
        if isinstance(obj, type) and issubclass(obj, base) and hasattr(obj, "__table__")
    }
    if set(models) != set(base.metadata.tables):
        problems.append("models.py: every table must be a class defined in models.py")
    if not models:
        problems.append("models.py: no table models")
    return models, base.metadata


def _load_states(env: Environment, problems: list[str]) -> None:
    states_dir = env.path / "states"
    if not states_dir.is_dir():
        return
    for file in sorted(states_dir.glob("*.json")):
        raw = file.read_bytes()
        state = StateFile(file, hashlib.sha256(raw).hexdigest())
        cached = _image_path(env.metadata, state.digest)
        if (env.metadata, state.digest) in _BUILT or (cached is not None and cached.is_file()):
            env._states[file.stem] = state  # validated and built from these very bytes already
            continue
        try:
            data = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            where = f"line {e.lineno}: {e.msg}" if isinstance(e, json.JSONDecodeError) else str(e)
            problems.append(f"states/{file.name}: not valid JSON ({where})")
            continue
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            problems.append(f"states/{file.name}: must be an object of table name -> list of rows")
            continue
        state.parsed = data
        env._states[file.stem] = state


def _load_scenarios(env: Environment, problems: list[str], required: bool) -> None:
    scen_dir = env.path / "scenarios"
    files = sorted(scen_dir.glob("*.json")) if scen_dir.is_dir() else []
    if not files and required:
        problems.append("scenarios/: no scenario files")
    for file in files:
        try:
            scenario = load_scenario_file(file)
        except ValueError as e:
            problems.append(f"scenarios/{e}")
            continue
        where = f"scenarios/{file.name}"
        if isinstance(scenario.state, str) and scenario.state not in env._states:
            problems.append(f"{where}: state {scenario.state!r} is not a file in states/")
            continue
        before = len(problems)
        _validate_oracle(env, scenario, where, problems)
        _validate_checks(scenario, where, problems)
        if len(problems) == before:
            env.scenarios[scenario.id] = scenario
            try:
                env.snapshot(scenario.id)
            except ValueError as e:
                problems.append(f"{where}: initial state: {e}")


def _validate_oracle(env: Environment, scenario: Scenario, where: str, problems: list[str]) -> None:
    for i, call in enumerate(scenario.oracle):
        spec = env.tools.get(call.tool)
        if spec is None:
            problems.append(f"{where}: oracle[{i}]: unknown tool {call.tool!r}")
            continue
        first = next(iter(spec.validator.iter_errors(call.arguments)), None)
        if first is not None:
            problems.append(f"{where}: oracle[{i}] ({call.tool}): {first.message}")


def _validate_checks(scenario: Scenario, where: str, problems: list[str]) -> None:
    seen: set[str] = set()
    for i, check in enumerate(scenario.checks):
        if check.id in seen:
            problems.append(f"{where}: checks[{i}]: duplicate id {check.id!r}")
        seen.add(check.id)
        if check.code is None:  # oracle_state and said checks carry no code
            continue
        try:
            compile(check.code, f"{scenario.id}:{check.id}", "exec")
        except SyntaxError as e:
            problems.append(f"{where}: checks[{i}] ({check.id}): syntax error line {e.lineno}: {e.msg}")
            continue
        if not re.search(r"^def (check|check_func)\(", check.code, re.MULTILINE):
            problems.append(f"{where}: checks[{i}] ({check.id}): must define check(initial, final)")


def _compare_manifest(env: Environment, problems: list[str]) -> None:
    file = env.path / MANIFEST_FILE
    expected = env.manifest()
    if not file.is_file():
        problems.append(f"{MANIFEST_FILE}: missing; write it with `envfarm manifest {env.id} --write`")
        return
    try:
        written = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        problems.append(f"{MANIFEST_FILE}: not valid JSON (line {e.lineno}: {e.msg})")
        return
    if canonical_json(written) != canonical_json(expected):
        differing = sorted(k for k in set(written) | set(expected) if written.get(k) != expected.get(k))
        problems.append(
            f"{MANIFEST_FILE}: differs from the code in {differing}; "
            f"regenerate it with `envfarm manifest {env.id} --write`"
        )


def write_manifest(env: Environment) -> Path:
    """Write ``manifest.json`` derived from the package's code."""
    file = env.path / MANIFEST_FILE
    file.write_text(json.dumps(env.manifest(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return file


def load_catalog(env_ids: list[str] | None = None) -> dict[str, Environment]:
    """Load the named environments (all installed ones by default), failing on the first broken one."""
    return {env_id: load_environment(env_id) for env_id in (env_ids or discover())}


def serve_alone(env_id: str, args: list[str]) -> NoReturn:
    """Become ``envfarm serve ENV ARGS`` (what an environment package's ``__main__`` does).

    The farm is started as a program in this process's place, not imported: an environment
    package depends on the kernel only, never on the layers that serve it.
    """
    os.execv(sys.executable, [sys.executable, "-m", "envfarm", "serve", env_id, *args])
