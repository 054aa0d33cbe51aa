"""The scenario format: check kinds, the user section, splits."""

from __future__ import annotations

from collections import Counter

import pytest
from pydantic import ValidationError

from envfarm.core.environments import load_environment
from envfarm.core.scenarios import Check, Scenario, split_of

BASE = {
    "id": "s",
    "task": "do it",
    "state": {},
    "clock": "2026-01-01T00:00:00+00:00",
    "checks": [{"id": "c", "description": "d", "code": "def check(initial, final):\n    return True"}],
    "oracle": [{"tool": "t"}],
}


@pytest.mark.parametrize(
    ("check", "problem"),
    [
        ({"kind": "state"}, "a state check needs 'code'"),
        ({"kind": "said"}, "a said check needs 'text'"),
        ({"kind": "said", "text": "x", "code": "def check(i, f): ..."}, "a said check takes no 'code'"),
        ({"kind": "oracle_state", "text": "x"}, "a oracle_state check takes no 'text'"),
        ({"kind": "judge"}, "Input should be 'state', 'oracle_state' or 'said'"),
    ],
)
def test_each_check_kind_takes_exactly_its_fields(check: dict[str, str], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        Check.model_validate({"id": "c", "description": "d", **check})


def test_the_kinds_that_need_no_code() -> None:
    assert Check(id="same", description="the oracle's end state", kind="oracle_state").code is None
    assert Check(id="told", description="says the total", kind="said", text="$54.04").text == "$54.04"


def test_the_user_section_and_unscored_parts_are_read_and_unknown_fields_refused() -> None:
    user = {"persona": "Calm.", "knows": "Her zip is 19122.", "only_when_asked": "Her email.", "does_not_know": "x"}
    scenario = Scenario.model_validate({**BASE, "user": user, "unscored": ["says sorry"]})
    assert scenario.user is not None and scenario.user.knows == "Her zip is 19122."
    assert scenario.unscored == ["says sorry"]
    with pytest.raises(ValidationError, match="user.secret"):
        Scenario.model_validate({**BASE, "user": {"secret": "the oracle"}})


def test_a_declared_split_wins_and_a_derived_one_is_stable_and_about_one_in_five_test() -> None:
    assert split_of(Scenario.model_validate({**BASE, "split": "test"})) == "test"
    derived = [split_of(Scenario.model_validate({**BASE, "id": f"s{i}"})) for i in range(2000)]
    assert derived == [split_of(Scenario.model_validate({**BASE, "id": f"s{i}"})) for i in range(2000)]
    share = Counter(derived)["test"] / len(derived)
    assert 0.17 < share < 0.23


def test_every_bundled_scenario_has_a_split_in_its_public_view() -> None:
    library = load_environment("library")
    splits = Counter(s.public()["split"] for s in library.scenarios.values())
    assert set(splits) == {"train", "test"}
