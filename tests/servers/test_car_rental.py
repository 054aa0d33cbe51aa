"""The bundled car rental environment, on the real runtime (no mocks).

No mutation step of a scenario's oracle can be dropped, every refusing business
rule is triggered and must refuse with its rule id and leave the state untouched,
the charging rules are checked for their amounts, and the synth requests are
lower-case fragments. What every environment must do (tables, docs, procedural
steps, scenarios) is tested for all of them in test_catalog.py.
"""

from __future__ import annotations

import random
from typing import Any

import pytest
from helpers import BadCall, Refusal, assert_refused, bad_call_cases, refusal_cases

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode, EpisodeStore
from envfarm.core.state import StateView
from envfarm.servers.car_rental.synth import STEPS
from envfarm.validators.checks import run_check

BASE = "pickup-with-gps"  # any scenario on states/base.json with the shared clock (2026-10-05 09:00)
SCENARIOS = sorted(load_environment("car_rental").scenarios)


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("car_rental")


def failing(episode: Episode, initial: StateView, final: StateView, preserve: bool | None = None) -> list[str]:
    return [
        c.id
        for c in episode.scenario.checks
        if (preserve is None or c.preserve == preserve) and not run_check(c.id, c.code, initial, final).passed
    ]


# --- the package -----------------------------------------------------------------------------------


def test_schemas_have_enums_formats_and_bounds(env: Environment) -> None:
    props = env.tools["create_reservation"].input_schema["properties"]
    assert props["vehicle_class"]["enum"] == ["economy", "compact", "suv", "van"]
    assert props["pickup_date"]["format"] == "date"
    assert props["customer_id"]["maximum"] == 2**63 - 1
    assert env.tools["register_customer"].input_schema["properties"]["email"]["format"] == "email"
    assert env.tools["record_payment"].input_schema["properties"]["method"]["enum"] == ["card", "cash"]


# --- scenarios -------------------------------------------------------------------------------------


@pytest.mark.parametrize("scenario_id", SCENARIOS)
def test_dropping_any_mutation_fails_a_check(env: Environment, store: EpisodeStore, scenario_id: str) -> None:
    scenario = env.scenarios[scenario_id]
    mutations = [i for i, c in enumerate(scenario.oracle) if env.tools[c.tool].kind == "mutation"]
    assert len(mutations) >= 2
    for skip in mutations:
        episode = store.create(env, scenario)
        initial = episode.view()
        for i, call in enumerate(scenario.oracle):
            if i != skip:
                episode.call(call.tool, call.arguments)
        assert failing(episode, initial, episode.view(), preserve=False), f"step {skip} is not needed"


# --- business rules: each refusal names its rule and leaves no write ------------------------------

REFUSALS: list[Refusal] = [
    # Diego Ferreira is 20; Carla Mendes is 21, too young for a van.
    (
        "driver-age",
        "create_reservation",
        {
            "customer_id": 4,
            "pickup_branch": "Lisbon",
            "vehicle_class": "economy",
            "pickup_date": "2026-10-20",
            "return_date": "2026-10-22",
        },
        ["Diego Ferreira", "20"],
    ),
    (
        "driver-age",
        "create_reservation",
        {
            "customer_id": 3,
            "pickup_branch": "Porto",
            "vehicle_class": "van",
            "pickup_date": "2026-10-20",
            "return_date": "2026-10-22",
        },
        ["Carla Mendes", "van", "25"],
    ),
    # Elena Rossi's licence expires 2026-10-10.
    (
        "licence-valid",
        "create_reservation",
        {
            "customer_id": 5,
            "pickup_branch": "Porto",
            "vehicle_class": "compact",
            "pickup_date": "2026-10-08",
            "return_date": "2026-10-14",
        },
        ["Elena Rossi", "2026-10-10"],
    ),
    (
        "booking-dates",
        "create_reservation",
        {
            "customer_id": 1,
            "pickup_branch": "Lisbon",
            "vehicle_class": "economy",
            "pickup_date": "2026-10-01",
            "return_date": "2026-10-03",
        },
        ["2026-10-01", "past"],
    ),
    (
        "booking-dates",
        "change_reservation_dates",
        {"reference": "CR-4F7K", "pickup_date": "2026-10-15", "return_date": "2026-10-15"},
        ["after"],
    ),
    # Lisbon's only working SUV is booked by Ana 12-15 October.
    (
        "class-availability",
        "create_reservation",
        {
            "customer_id": 2,
            "pickup_branch": "Lisbon",
            "vehicle_class": "suv",
            "pickup_date": "2026-10-13",
            "return_date": "2026-10-16",
        },
        ["suv", "Lisbon"],
    ),
    # Ines' compact: a suv, a Porto car, a rented car.
    ("vehicle-ready", "start_rental", {"reference": "CR-5N6R", "plate": "AE-54-LX"}, ["AE-54-LX", "suv"]),
    ("vehicle-ready", "start_rental", {"reference": "CR-5N6R", "plate": "BD-43-PO"}, ["another branch"]),
    ("vehicle-ready", "start_rental", {"reference": "CR-8T4W", "plate": "BC-32-PO"}, ["rented"]),
    ("pickup-on-date", "start_rental", {"reference": "CR-4F7K", "plate": "AE-54-LX"}, ["2026-10-12"]),
    ("reservation-open", "cancel_reservation", {"reference": "CR-2A5E"}, ["CR-2A5E", "completed"]),
    ("reservation-open", "add_extra", {"reference": "CR-7H2M", "extra": "gps"}, ["CR-7H2M", "active"]),
]

CHARGING_RULES = {"one-way-fee", "late-return", "refuel-charge", "late-cancellation"}


def test_every_rule_is_tested(env: Environment) -> None:
    assert {r for r, *_ in REFUSALS} | CHARGING_RULES == set(env.rules)


@pytest.mark.parametrize(("rule", "tool", "arguments", "words"), refusal_cases(REFUSALS))
def test_rule_refuses_without_writing(
    episode: Episode, rule: str, tool: str, arguments: dict[str, Any], words: list[str]
) -> None:
    assert_refused(episode, tool, arguments, words, rule=rule)


def test_one_way_fee_is_in_the_quote(episode: Episode) -> None:
    args = {
        "customer_id": 1,
        "pickup_branch": "Porto",
        "vehicle_class": "economy",
        "pickup_date": "2026-10-20",
        "return_date": "2026-10-22",
    }
    same = episode.call("create_reservation", args)
    other = episode.call("create_reservation", {**args, "return_branch": "Faro"})
    assert same.ok and other.ok
    assert same.value["quoted_cents"] == 7800 and other.value["quoted_cents"] == 7800 + 7500


def test_late_return_and_refuel_are_charged(episode: Episode) -> None:
    result = episode.call("return_vehicle", {"reference": "CR-2K8D", "mileage": 31500, "fuel_level": 4})
    assert result.ok, result.error
    kinds = {c["kind"]: c["amount_cents"] for c in result.value["charges"]}
    assert kinds == {"rental": 19500, "late_return": 2 * 3900, "refuel": 3 * 1500}


def test_on_time_full_return_charges_only_the_quote(episode: Episode) -> None:
    result = episode.call("return_vehicle", {"reference": "CR-7H2M", "mileage": 18000, "fuel_level": 8})
    assert result.ok and [c["kind"] for c in result.value["charges"]] == ["rental"]


def test_late_cancellation_fee_only_close_to_pickup(episode: Episode) -> None:
    late = episode.call("cancel_reservation", {"reference": "CR-3V9X"})  # pickup tomorrow
    assert late.ok and late.value["cancellation_fee_cents"] == 8900
    early = episode.call("cancel_reservation", {"reference": "CR-6Y2B"})  # pickup in 15 days
    assert early.ok and early.value["cancellation_fee_cents"] == 0


BAD_CALLS: list[BadCall] = [
    ("get_customer", {"customer_id": 999}, "no customer with id 999"),
    ("get_reservation", {"reference": "CR-ZZZZ"}, "no reservation"),
    ("get_vehicle", {"plate": "XX-00-XX"}, "no vehicle"),
    ("list_vehicles", {"branch": "Mars"}, "no branch named"),
    ("record_payment", {"reference": "CR-7L3F", "amount_cents": 3001, "method": "card"}, "more than"),
    ("return_vehicle", {"reference": "CR-2K8D", "mileage": 10, "fuel_level": 8}, "below"),
    (
        "register_customer",
        {
            "name": "Ana Sousa",
            "email": "ANA.silva@example.com",
            "phone": "+351 900 000 000",
            "date_of_birth": "1990-01-01",
            "licence_number": "PT-NEW-1",
            "licence_expiry": "2030-01-01",
        },
        "email ANA.silva@example.com already belongs to customer 1 (Ana Silva)",
    ),
]


@pytest.mark.parametrize(("tool", "arguments", "expected"), bad_call_cases(BAD_CALLS))
def test_bad_input_is_an_error_result(episode: Episode, tool: str, arguments: dict[str, Any], expected: str) -> None:
    assert_refused(episode, tool, arguments, expected)


# --- synth (what every env's steps must do is in test_catalog.py) ------------------------------------


def test_synth_requests_are_lower_case_fragments(episode: Episode) -> None:
    """Car rental requests are fragments ("extend Ana's reservation ..."), put into a task's sentence."""
    view = episode.view()
    for tool, maker in STEPS.items():
        for seed in range(5):
            step = maker(view, random.Random(seed))
            assert step is not None, (tool, seed)
            request = step.request
            assert request[0].islower() and not request.endswith("."), f"{tool} seed {seed}: {request!r}"
