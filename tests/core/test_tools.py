"""Tool declarations: the schema and descriptions an agent sees are derived from the code."""

from typing import Annotated, Literal

import pytest
from pydantic import Field

from envfarm.core.tools import ToolContext, spec_from_function, tool


@tool(kind="mutation")
def book_room(
    ctx: ToolContext,
    room: str,
    day: Annotated[str, Field(json_schema_extra={"format": "date"})],
    size: Literal["small", "large"] = "small",
    guests: list[str] | None = None,
) -> dict[str, str]:
    """Book a meeting room for a day.

    Longer explanation that is part of the description.

    Args:
        room: the room's name
        day: the day, as YYYY-MM-DD
        size: which size of room
        guests: names of the people invited,
            one per entry
    """
    return {}


def test_schema_is_derived_from_signature_and_docstring() -> None:
    spec = spec_from_function(book_room)
    schema = spec.input_schema
    assert spec.kind == "mutation"
    assert spec.description == "Book a meeting room for a day.\n\nLonger explanation that is part of the description."
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["required"] == ["room", "day"]
    assert schema["additionalProperties"] is False
    props = schema["properties"]
    assert props["day"] == {"type": "string", "format": "date", "description": "the day, as YYYY-MM-DD"}
    assert props["size"]["enum"] == ["small", "large"]
    assert props["guests"]["description"] == "names of the people invited, one per entry"
    assert all("title" not in p for p in props.values())


def test_format_and_enum_are_enforced_by_the_validator() -> None:
    spec = spec_from_function(book_room)
    assert list(spec.validator.iter_errors({"room": "A", "day": "2026-02-30"}))
    assert list(spec.validator.iter_errors({"room": "A", "day": "2026-02-03", "size": "huge"}))
    assert not list(spec.validator.iter_errors({"room": "A", "day": "2026-02-03", "size": "large"}))


def test_undocumented_parameter_is_refused_with_its_name() -> None:
    @tool(kind="query")
    def lookup(ctx: ToolContext, name: str, city: str) -> str:
        """Look someone up.

        Args:
            name: who
        """
        return name

    with pytest.raises(ValueError, match=r"tool 'lookup': parameter 'city' is not described"):
        spec_from_function(lookup)


def test_untyped_parameter_and_missing_docstring_are_refused() -> None:
    @tool(kind="query")
    def untyped(ctx: ToolContext, name) -> str:  # type: ignore[no-untyped-def]
        """Untyped.

        Args:
            name: who
        """
        return ""

    @tool(kind="query")
    def bare(ctx: ToolContext) -> str:
        return ""

    with pytest.raises(ValueError, match="parameter 'name' has no type annotation"):
        spec_from_function(untyped)
    with pytest.raises(ValueError, match="has no docstring"):
        spec_from_function(bare)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="'query' or 'mutation'"):
        tool(kind="write")  # type: ignore[arg-type]
