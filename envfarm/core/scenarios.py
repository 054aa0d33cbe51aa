"""Scenarios: an initial state, a task, the checks that judge it, and an oracle that solves it.

A scenario file (``servers/<env>/scenarios/<id>.json``) looks like::

    {
      "id": "return-and-pay",
      "task": "I returned 'Dune' today ...",
      "state": "base",                    # a file under states/, or the rows inline
      "clock": "2026-03-14T10:00:00+00:00",
      "seed": 7,
      "checks": [{"id": "...", "description": "...", "code": "def check(initial, final): ..."}],
      "oracle": [{"tool": "return_copy", "arguments": {"barcode": "B-0001"}}]
    }

A check is one of three kinds:

- ``state`` (the default): Python source defining ``check(initial, final) -> bool`` over
  canonical state views (EnvScaler's ``check_func(final_state)`` reading a global
  ``initial_state`` is accepted too); it runs in the check sandbox. ``preserve: true``
  marks a check that is meant to hold on the initial state already (nothing must break it).
- ``oracle_state``: the final state equals the state the oracle leaves (tau2-bench's
  reward): no code, the scorer replays the oracle and compares the two. It holds on the
  initial state exactly when the oracle changes nothing (the task's right outcome is no change).
- ``said``: the agent told the user ``text`` (case-insensitive, commas ignored, within one
  of its messages, as tau2-bench judges ``communicate_info``); judged on the messages of a
  trajectory, so only trajectories with messages can pass it.

The oracle may be empty (the right outcome is no change), and a call of it may be marked
``"refused": true``: the environment refuses it and the oracle makes it anyway, as a real
conversation does (a user gives a wrong zip code first); the quality gate checks that it is refused.

Optional sections: ``user`` (what a simulated user knows and how they behave, for
conversation mode; never the checks or the oracle), ``split`` (``train`` or ``test``;
derived from the id when absent, see :func:`split_of`) and ``unscored`` (what the task
asks that no check judges, e.g. statements only an LLM judge could assess).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    ValidationError,
    create_model,
    field_validator,
    model_serializer,
    model_validator,
)
from sqlalchemy import MetaData, create_engine
from sqlalchemy.pool import StaticPool

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


CheckKind = Literal["state", "oracle_state", "said"]
Split = Literal["train", "test"]


class Check(BaseModel):
    """One rule an episode is judged by (see the module docstring for the kinds)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    description: str = Field(min_length=1)
    kind: CheckKind = Field(default="state", description="state (code), oracle_state, or said (text)")
    code: str | None = Field(
        default=None, min_length=1, description="for kind state: Python source defining check(initial, final) -> bool"
    )
    text: str | None = Field(default=None, min_length=1, description="for kind said: what the agent must tell the user")
    preserve: bool = Field(default=False, description="True when the check already holds before the agent acts")

    @model_validator(mode="after")
    def _fields_of_its_kind(self) -> Check:
        wanted = {"state": "code", "said": "text", "oracle_state": None}[self.kind]
        for name in ("code", "text"):
            given = getattr(self, name) is not None
            if given and name != wanted:
                raise ValueError(f"a {self.kind} check takes no {name!r}")
            if not given and name == wanted:
                raise ValueError(f"a {self.kind} check needs {name!r}")
        return self


class UserSection(BaseModel):
    """The person a simulated user plays (conversation mode): who they are and what they know.

    The task is their goal. The user never sees the checks or the oracle.
    """

    model_config = ConfigDict(extra="forbid")

    persona: str | None = Field(None, description="who they are and how they talk")
    instructions: str | None = Field(None, description="how they go about the conversation")
    knows: str | None = Field(None, description="what they know and give when it matters")
    only_when_asked: str | None = Field(None, description="what they say only when the agent asks for it")
    does_not_know: str | None = Field(None, description="what they cannot tell the agent")


class Call(BaseModel):
    """One tool call of a trajectory or an oracle."""

    model_config = ConfigDict(extra="forbid")

    tool: str = Field(min_length=1)
    arguments: dict[str, Any] = Field(default_factory=dict)


class OracleCall(Call):
    """One call of a scenario's oracle; ``refused`` marks a call the environment refuses on purpose.

    A plain :class:`Call` is accepted where an oracle call is expected (it is not refused).
    """

    model_config = ConfigDict(extra="forbid", from_attributes=True)

    refused: bool = Field(
        default=False,
        description="the environment refuses this call, and the oracle makes it anyway: a look-up with the wrong "
        "zip code a user gave first, a change the policy does not allow (imported trajectories have such calls)",
    )

    @model_serializer(mode="wrap")
    def _refused_only_when_so(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """A call that is not refused dumps as a plain call: scenario files and API answers stay as they were."""
        data: dict[str, Any] = handler(self)
        if not self.refused:
            data.pop("refused", None)
        return data


class Scenario(BaseModel):
    """A task in an environment, with the state it starts from and how it is judged."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(pattern=ID_PATTERN)
    task: str = Field(min_length=1)
    state: str | dict[str, list[dict[str, Any]]]
    clock: datetime
    seed: int = 0
    checks: list[Check] = Field(min_length=1)
    oracle: list[OracleCall] = Field(
        description="the calls that solve the task; none when its right outcome is no change"
    )
    gate: dict[str, Any] | None = Field(default=None, description="The quality gate's numbers, once it has run")
    user: UserSection | None = Field(default=None, description="the person a simulated user plays")
    split: Split | None = Field(default=None, description="train or test; derived from the id when absent")
    unscored: list[str] = Field(default_factory=list, description="what the task asks that no check judges")

    @field_validator("clock")
    @classmethod
    def _clock_has_zone(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("clock needs a UTC offset, e.g. 2026-03-14T10:00:00+00:00")
        return value

    def public(self) -> dict[str, Any]:
        """What an agent may see: the id, the task and the split, never the checks or the oracle."""
        return {"id": self.id, "task": self.task, "split": split_of(self)}


TEST_SHARE = 0.2
"""The share of scenarios that :func:`split_of` puts in ``test`` when a scenario declares no split."""


def split_of(scenario: Scenario) -> Split:
    """The scenario's split: as declared, else from a hash of its id (stable across runs and machines)."""
    if scenario.split is not None:
        return scenario.split
    point = int.from_bytes(hashlib.sha256(scenario.id.encode()).digest()[:8], "big") / 2**64
    return "test" if point < TEST_SHARE else "train"


def load_scenario_file(path: Path) -> Scenario:
    """Parse and validate one scenario file; errors name the file and the field."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path.name}: not valid JSON (line {e.lineno}, column {e.colno}: {e.msg})") from None
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as e:
        raise ValueError(f"{path.name}: {_first_errors(e)}") from None
    if scenario.id != path.stem:
        raise ValueError(f"{path.name}: id {scenario.id!r} must match the file name {path.stem!r}")
    return scenario


def _first_errors(e: ValidationError, limit: int = 3) -> str:
    return _describe_errors(e.errors(), limit)


def _describe_errors(errors: list[Any], limit: int = 3, prefix: int = 0) -> str:
    """The first errors, each with where it is (``prefix`` leading parts of that place left out)."""
    parts = []
    for err in errors[:limit]:
        where = ".".join(str(p) for p in err["loc"][prefix:]) or "(top level)"
        parts.append(f"{where}: {err['msg']}")
    more = len(errors) - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def build_database(
    metadata: MetaData,
    models: Mapping[str, type[BaseModel]],
    rows: dict[str, list[dict[str, Any]]],
    where: str,
) -> bytes:
    """Create the schema, insert ``rows`` and return the database as SQLite bytes.

    Every row is validated by its SQLModel class's fields (types, required columns, no
    unknown columns) and every foreign key is checked; errors name ``where``, the
    table and the row index.
    """
    unknown = sorted(set(rows) - set(metadata.tables))
    if unknown:
        raise ValueError(f"{where}: unknown table(s) {unknown}; tables are {sorted(metadata.tables)}")
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    try:
        engine = create_engine("sqlite://", creator=lambda: db, poolclass=StaticPool)
        metadata.create_all(engine)
        db.execute("BEGIN")
        for table in metadata.sorted_tables:
            columns = [c.name for c in table.columns]
            given = rows.get(table.name, [])
            for i, row in enumerate(given):
                extra = sorted(set(row) - set(columns))
                if extra:
                    raise ValueError(f"{where}: {table.name}[{i}]: unknown column(s) {extra}")
            try:
                objs = _rows_validator(models[table.name]).validate_python(given)
            except ValidationError as e:
                first = e.errors()[0]["loc"][0]
                errors = [err for err in e.errors() if err["loc"][0] == first]  # the first bad row's
                raise ValueError(f"{where}: {table.name}[{first}]: {_describe_errors(errors, prefix=1)}") from None
            marks = ", ".join("?" for _ in columns)
            names = ", ".join(f'"{c}"' for c in columns)
            insert = f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})'
            values = [[fields[c] for c in columns] for fields in (obj.__dict__ for obj in objs)]
            db.execute("SAVEPOINT rows")
            try:
                db.executemany(insert, values)
            except sqlite3.IntegrityError:  # name the row: insert them one by one up to it
                db.execute("ROLLBACK TO rows")
                for i, row_values in enumerate(values):
                    try:
                        db.execute(insert, row_values)
                    except sqlite3.IntegrityError as e:
                        raise ValueError(f"{where}: {table.name}[{i}]: {e}") from None
                raise
            db.execute("RELEASE rows")
        db.execute("COMMIT")
        bad = db.execute("PRAGMA foreign_key_check").fetchall()
        if bad:
            table, rowid, parent, _ = bad[0]
            raise ValueError(f"{where}: {table} row {rowid} refers to a missing {parent} row")
        return db.serialize()
    finally:
        db.close()


_validators: dict[type[BaseModel], TypeAdapter[list[BaseModel]]] = {}


def _rows_validator(model: type[BaseModel]) -> TypeAdapter[list[BaseModel]]:
    """Validates a list of rows as the table's model would, one by one, but in one call.

    A SQLModel table class validates through SQLAlchemy's attribute instrumentation, about a
    millisecond a row; a plain pydantic model with the very same fields (types, defaults,
    constraints) validates the same rows the same way, a hundred times faster, which matters for
    large imported states (tau2-bench's airline: 26,000 rows).
    """
    found = _validators.get(model)
    if found is None:
        fields: dict[str, Any] = {name: (info.annotation, info) for name, info in model.model_fields.items()}
        twin = create_model(f"{model.__name__}Row", __module__=model.__module__, **fields)
        found = _validators[model] = TypeAdapter(list[twin])  # type: ignore[valid-type]
    return found
