"""tau2-bench's airline domain on envfarm: what it is made of, and tau2's behaviour where it surprises.

That every call answers tau2's own text, and every verdict is tau2's, is test_tau2_fidelity.py's
(against fixtures computed with tau2's code). Here: the package is tau2's policy, data and tasks,
the quirks it reproduces, stated plainly, and its reward: the database and what the agent said.
test_catalog.py covers what every environment must do.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from envfarm.core.environments import Environment, load_environment
from envfarm.core.episodes import Episode
from envfarm.core.state import StateView
from envfarm.servers import tau2_airline
from envfarm.servers.tau2_airline import tau2db
from envfarm.validators.checks import CheckOutcome
from envfarm.validators.replay import replay
from envfarm.validators.scoring import score
from envfarm.validators.trajectories import read_trajectory

BASE = "0"


@pytest.fixture(scope="module")
def env() -> Environment:
    return load_environment("tau2_airline")


class NoCodeChecks:
    async def run_checks(
        self, checks: list[tuple[str, str]], initial: StateView, final: StateView
    ) -> list[CheckOutcome]:
        raise AssertionError("tau2's scenarios have no code checks")


def answer(episode: Episode, tool: str, **arguments: Any) -> Any:
    result = episode.call(tool, arguments)
    assert result.ok, result.error
    return json.loads(result.text())


# --- the package: tau2's policy, data and tasks ----------------------------------------------------


def test_the_description_is_tau2s_policy_and_the_rules_its_sections(env: Environment) -> None:
    assert env.description.startswith("# Airline Agent Policy\n\nThe current time is 2024-05-15 15:00:00 EST.")
    assert list(env.rules) == [
        "airline-agent-policy",
        "domain-basic",
        "book-flight",
        "modify-flight",
        "cancel-flight",
        "refunds-and-compensation",
    ]
    files = {f["path"]: f["git_blob"] for f in tau2_airline.SOURCE["files"]}  # type: ignore[attr-defined]
    assert files["data/tau2/domains/airline/db.json"] == "c6a1e817aa9102c5822e83affb3595acbc312701"


def test_the_tables_hold_tau2s_database(env: Environment) -> None:
    view = env.initial_view(BASE)
    counts = {t: len(view[t]) for t in ("flights", "flight_dates", "users", "reservations", "payment_methods")}
    assert counts == {"flights": 300, "flight_dates": 9000, "users": 500, "reservations": 2000, "payment_methods": 1486}
    db = tau2db.database(view)
    assert db["flights"]["HAT170"]["dates"]["2024-05-22"] == {
        "status": "available",
        "available_seats": {"basic_economy": 15, "economy": 6, "business": 0},
        "prices": {"basic_economy": 59, "economy": 147, "business": 387},
    }
    assert list(db["reservations"]["4WQ150"]) == [
        "reservation_id",
        "user_id",
        "origin",
        "destination",
        "flight_type",
        "cabin",
        "flights",
        "passengers",
        "payment_history",
        "created_at",
        "total_baggages",
        "nonfree_baggages",
        "insurance",
        "status",
    ]


def test_every_task_is_a_scenario_scored_on_the_database_and_what_was_said(env: Environment) -> None:
    assert sorted(env.scenarios, key=int) == [str(i) for i in range(50)]
    said = {sid: [c.text for c in s.checks if c.kind == "said"] for sid, s in env.scenarios.items()}
    assert {sid: texts for sid, texts in said.items() if texts} == {
        "3": ["4"],
        "7": ["1628"],
        "11": ["5244"],
        "14": ["327", "1000", "1786"],
        "18": ["23553"],
        "23": ["327", "1000", "1286"],
    }
    assert all(s.checks[0].kind == "oracle_state" for s in env.scenarios.values())
    assert not any(s.unscored for s in env.scenarios.values())  # tau2's airline reward has no NL assertions
    assert sum(not s.oracle for s in env.scenarios.values()) == 7  # the right outcome is no change


# --- tau2's quirks that change the state -----------------------------------------------------------


def test_a_cancellation_refunds_every_payment_so_far_and_releases_no_seat(env: Environment) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    seats = answer(episode, "search_direct_flight", origin="DFW", destination="LAX", date="2024-05-22")
    once = answer(episode, "cancel_reservation", reservation_id="4WQ150")
    assert once["status"] == "cancelled"
    assert once["payment_history"] == [
        {"payment_id": "gift_card_3576581", "amount": 4986},
        {"payment_id": "gift_card_3576581", "amount": -4986},
    ]
    twice = answer(episode, "cancel_reservation", reservation_id="4WQ150")  # tau2 checks nothing
    assert [p["amount"] for p in twice["payment_history"]] == [4986, -4986, -4986, 4986]
    assert answer(episode, "search_direct_flight", origin="DFW", destination="LAX", date="2024-05-22") == seats
    user = answer(episode, "get_user_details", user_id="chen_jackson_3290")
    assert "gift_card_3576581" in user["payment_methods"]  # and the gift card is not credited either


def test_paying_twice_with_one_certificate_fails_half_way_as_tau2_does(env: Environment) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    before = answer(episode, "get_user_details", user_id="mei_hernandez_8984")["payment_methods"]
    assert before["gift_card_5309492"]["amount"] == 98.0 and before["certificate_7502997"]["amount"] == 250.0
    booking = {
        "user_id": "mei_hernandez_8984",
        "origin": "DFW",
        "destination": "LAX",
        "flight_type": "one_way",
        "cabin": "basic_economy",
        "flights": [{"flight_number": "HAT170", "date": "2024-05-22"}],
        "passengers": [{"first_name": "Mei", "last_name": "Hernandez", "dob": "1981-09-01"}],
        "payment_methods": [
            {"payment_id": "gift_card_5309492", "amount": 1},
            {"payment_id": "certificate_7502997", "amount": 29},
            {"payment_id": "certificate_7502997", "amount": 29},
        ],
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
    }
    failed = episode.call("book_reservation", booking)
    assert not failed.ok and failed.text() == "Error: 'certificate_7502997'"
    after = answer(episode, "get_user_details", user_id="mei_hernandez_8984")
    assert after["payment_methods"]["gift_card_5309492"]["amount"] == 97.0  # charged, and kept
    assert "certificate_7502997" not in after["payment_methods"]  # used up, and gone
    assert "HATHAT" not in after["reservations"]  # no reservation, and no seat taken
    assert episode.call("get_reservation_details", {"reservation_id": "HATHAT"}).text() == (
        "Error: Reservation HATHAT not found"
    )
    flights = answer(episode, "search_direct_flight", origin="DFW", destination="LAX", date="2024-05-22")
    assert next(f for f in flights if f["flight_number"] == "HAT170")["available_seats"]["basic_economy"] == 15


def test_a_booking_uses_a_certificate_up_whole_and_takes_the_seats(env: Environment) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    booking = {
        "user_id": "mei_hernandez_8984",
        "origin": "DFW",
        "destination": "LAX",
        "flight_type": "one_way",
        "cabin": "basic_economy",
        "flights": [{"flight_number": "HAT170", "date": "2024-05-22"}],
        "passengers": [{"first_name": "Mei", "last_name": "Hernandez", "dob": "1981-09-01"}],
        "payment_methods": [{"payment_id": "certificate_7502997", "amount": 59}],
        "total_baggages": 0,
        "nonfree_baggages": 0,
        "insurance": "no",
    }
    booked = answer(episode, "book_reservation", **booking)
    assert booked["reservation_id"] == "HATHAT" and booked["created_at"] == "2024-05-15T15:00:00"
    assert booked["flights"] == [
        {"flight_number": "HAT170", "origin": "DFW", "destination": "LAX", "date": "2024-05-22", "price": 59}
    ]
    user = answer(episode, "get_user_details", user_id="mei_hernandez_8984")
    assert "certificate_7502997" not in user["payment_methods"] and user["reservations"][-1] == "HATHAT"
    flights = answer(episode, "search_direct_flight", origin="DFW", destination="LAX", date="2024-05-22")
    assert next(f for f in flights if f["flight_number"] == "HAT170")["available_seats"]["basic_economy"] == 14
    short = episode.call(
        "book_reservation", {**booking, "payment_methods": [{"payment_id": "gift_card_5309492", "amount": 50}]}
    )
    assert short.text() == "Error: Payment amount does not add up, total price is 59, but paid 50"


def test_certificates_are_numbered_from_3221322_three_at_most(env: Environment) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    said = [episode.call("send_certificate", {"user_id": "mia_li_3668", "amount": a}).text() for a in (100, 50, 25, 5)]
    assert said == [
        "Certificate certificate_3221322 added to user mia_li_3668 with amount 100.",
        "Certificate certificate_3221323 added to user mia_li_3668 with amount 50.",
        "Certificate certificate_3221324 added to user mia_li_3668 with amount 25.",
        "Error: Too many certificates",
    ]
    methods = answer(episode, "get_user_details", user_id="mia_li_3668")["payment_methods"]
    assert list(methods)[-3:] == ["certificate_3221322", "certificate_3221323", "certificate_3221324"]
    assert methods["certificate_3221322"] == {"source": "certificate", "id": "certificate_3221322", "amount": 100.0}


def test_a_direct_search_shows_no_date_and_a_one_stop_search_does(env: Environment) -> None:
    episode = Episode(env, env.scenarios[BASE], "t")
    direct = answer(episode, "search_direct_flight", origin="JFK", destination="SEA", date="2024-05-20")
    assert direct and all(f["date"] is None for f in direct)
    pairs = answer(episode, "search_onestop_flight", origin="JFK", destination="SEA", date="2024-05-20")
    assert pairs and all(len(p) == 2 and p[0]["date"] == "2024-05-20" for p in pairs)
    assert all(p[0]["destination"] == p[1]["origin"] for p in pairs)
    assert episode.call("get_flight_status", {"flight_number": "HAT001", "date": "2024-05-01"}).text() == "landed"


# --- the reward: the database, and what the agent said ---------------------------------------------


async def test_success_needs_the_gold_database_and_every_communicated_fact(env: Environment) -> None:
    scenario = env.scenarios["7"]
    calls = [{"tool": c.tool, "arguments": c.arguments} for c in scenario.oracle]
    messages = [{"role": "user", "content": "Hi, I need to change my trip."}]
    for i, call in enumerate(calls):
        function = {"name": call["tool"], "arguments": json.dumps(call["arguments"])}
        messages.append({"role": "assistant", "content": None, "tool_calls": [{"id": f"c{i}", "function": function}]})
        messages.append({"role": "tool", "tool_call_id": f"c{i}", "content": "..."})
    told = [*messages, {"role": "assistant", "content": "Done: the total refund is $1,628."}]
    untold = [*messages, {"role": "assistant", "content": "Done."}]
    done = replay(env, scenario, scenario.oracle)
    results = []
    for trajectory in (told, untold):
        read = read_trajectory(trajectory)
        assert [c.tool for c in read.calls] == [c["tool"] for c in calls]
        results.append(await score(env, scenario, done, NoCodeChecks(), messages=read.messages))
    assert results[0].success and results[0].reward == 1.0
    assert not results[1].success and results[1].reward == 0.5  # tau2 gives 0: DB right, the refund untold
    nothing = await score(env, scenario, replay(env, scenario, []), NoCodeChecks(), messages=told)
    assert not nothing.success and [c.passed for c in nothing.checks] == [False, True]
