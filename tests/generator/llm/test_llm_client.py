"""``LLM``: cache, retries, budget, concurrency, replay and the ledger, against the fake server."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from fakes.llm_server import FakeLLMServer, start_fake_llm_process, stop_fake_llm_process

from envfarm.generator.llm import (
    LLM,
    AnthropicProvider,
    BudgetExceeded,
    LLMError,
    OpenAIProvider,
    ReplayMiss,
    ReplayProvider,
    Request,
    make_provider,
)

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"name": {"type": "string"}},
    "required": ["name"],
}


def ask(text: str = "Name the clinic", stage: str = "topics") -> Request:
    return Request(
        stage=stage,
        system="You name things.",
        messages=({"role": "user", "content": text},),
        schema=SCHEMA,
        schema_name="submit_name",
    )


@pytest.fixture(autouse=True)
def anthropic_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    fake_server.reset(
        [{"tool": "submit_name", "answer": {"name": "Ada"}, "usage": {"input_tokens": 100, "output_tokens": 10}}]
    )
    return fake_server


@pytest.fixture
async def anthropic(fake: FakeLLMServer) -> AsyncIterator[AnthropicProvider]:
    provider = AnthropicProvider("claude-sonnet-4-6", base_url=fake.url)
    yield provider
    await provider.aclose()


class Sleeps:
    """Stands in for ``LLM.sleep``: records each backoff instead of waiting."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def quick(llm: LLM) -> Sleeps:
    sleeps = Sleeps()
    llm.sleep = sleeps
    return sleeps


async def test_second_identical_ask_is_served_from_the_cache(
    anthropic: AnthropicProvider, fake: FakeLLMServer, tmp_path: Path
) -> None:
    llm = LLM(anthropic, cache_dir=tmp_path)
    first = await llm.ask(ask())
    again = await LLM(anthropic, cache_dir=tmp_path).ask(ask())  # a new run, the same cache directory
    second = await llm.ask(ask())
    assert fake.stats()["requests"] == 1
    assert first.cached is False and second.cached is True and again.cached is True
    assert second.data == first.data == {"name": "Ada"}
    assert second.usage == first.usage and second.cost_usd == first.cost_usd > 0
    totals = llm.ledger.stages["topics"]
    assert (totals.calls, totals.cached) == (2, 1)
    assert llm.ledger.spent_usd == pytest.approx(first.cost_usd)
    assert llm.ledger.cost_usd == pytest.approx(2 * first.cost_usd)

    changed = await llm.ask(ask("Name the clinic!"))  # one character more: a different request
    assert changed.cached is False and fake.stats()["requests"] == 2
    other_stage = await llm.ask(ask(stage="scenario"))  # the stage is part of the key
    assert other_stage.cached is False and fake.stats()["requests"] == 3


async def test_cache_entries_are_whole_files_with_everything(
    anthropic: AnthropicProvider, fake: FakeLLMServer, tmp_path: Path
) -> None:
    request = ask()
    await LLM(anthropic, cache_dir=tmp_path).ask(request)
    key = request.key("anthropic", "claude-sonnet-4-6")
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert files == [tmp_path / key[:2] / f"{key}.json"]  # no temporary file left behind
    entry = json.loads(files[0].read_text())
    assert entry["provider"] == "anthropic" and entry["model"] == "claude-sonnet-4-6" and entry["created"]
    assert Request.from_dict(entry["request"]) == request
    assert entry["response"]["data"] == {"name": "Ada"}
    assert entry["response"]["usage"]["input_tokens"] == 100


async def test_a_failed_write_leaves_no_entry_and_no_temporary_file(
    anthropic: AnthropicProvider, fake: FakeLLMServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def killed(*_: object) -> None:
        raise KeyboardInterrupt  # as if the run were stopped between writing and renaming

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        await LLM(anthropic, cache_dir=tmp_path).ask(ask())
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


async def test_answers_with_a_problem_are_cached_too(
    anthropic: AnthropicProvider, fake: FakeLLMServer, tmp_path: Path
) -> None:
    fake.reset([{"tool": "submit_name", "answer": {"name": 7}}])
    llm = LLM(anthropic, cache_dir=tmp_path)
    first = await llm.ask(ask())
    second = await llm.ask(ask())
    assert first.problem == second.problem == "answer.name: 7 is not of type 'string'"
    assert second.cached and fake.stats()["requests"] == 1


@pytest.mark.parametrize("api", ["anthropic", "openai"])
async def test_overloads_are_retried_and_counted(api: str, fake: FakeLLMServer) -> None:
    statuses = [429, 529, 500] if api == "anthropic" else [429, 503, 500]
    faults = [{"status": 429, "count": 2, "retry_after": 7}] + [{"status": s} for s in statuses[1:]]
    fake.reset({"entries": [{"tool": "submit_name", "answer": {"name": "Ada"}}], "faults": faults})
    provider: Any = (
        AnthropicProvider(base_url=fake.url) if api == "anthropic" else OpenAIProvider("m", base_url=fake.openai_url)
    )
    llm = LLM(provider, cache_dir=None, backoff_seconds=0.5)
    sleeps = quick(llm)
    response = await llm.ask(ask())
    assert response.data == {"name": "Ada"}
    assert fake.stats()["faults"] == 4 and fake.stats()["requests"] == 5
    assert llm.ledger.stages["topics"].retries == 4
    assert sleeps.delays[:2] == [7, 7]  # the server's retry-after, honoured
    assert 0.5 * 0.5 <= sleeps.delays[2] <= 0.5 * 4  # then exponential backoff with jitter
    assert 0.5 * 0.5 <= sleeps.delays[3] <= 0.5 * 8
    await provider.aclose()


async def test_retry_after_is_capped(anthropic: AnthropicProvider, fake: FakeLLMServer) -> None:
    fake.add_faults([{"status": 429, "retry_after": 3600}])
    llm = LLM(anthropic, cache_dir=None, max_backoff_seconds=30)
    sleeps = quick(llm)
    await llm.ask(ask())
    assert sleeps.delays == [30]


async def test_retries_run_out(anthropic: AnthropicProvider, fake: FakeLLMServer) -> None:
    fake.add_faults([{"status": 529, "count": 5}])
    llm = LLM(anthropic, cache_dir=None, max_retries=2)
    quick(llm)
    with pytest.raises(LLMError, match="still failing after 3 attempts"):
        await llm.ask(ask())
    assert fake.stats()["requests"] == 3
    totals = llm.ledger.stages["topics"]
    assert (totals.retries, totals.errors, totals.calls) == (2, 1, 0)


async def test_a_rejected_request_is_not_retried(fake: FakeLLMServer) -> None:
    fake.reset([{"tool": "submit_other", "answer": {}}])
    provider = AnthropicProvider(base_url=fake.url)
    llm = LLM(provider, cache_dir=None)
    sleeps = quick(llm)
    with pytest.raises(LLMError, match="no script entry for tool 'submit_name'"):
        await llm.ask(ask())
    assert fake.stats()["requests"] == 1 and sleeps.delays == []
    assert llm.ledger.stages["topics"].retries == 0


async def test_budget_stops_before_the_next_live_call(
    anthropic: AnthropicProvider, fake: FakeLLMServer, tmp_path: Path
) -> None:
    llm = LLM(anthropic, cache_dir=tmp_path, budget_usd=0.0001)
    first = await llm.ask(ask("Name the clinic"))
    assert first.cost_usd == pytest.approx((100 * 3 + 10 * 15) / 1e6)  # 0.00045: over the budget
    with pytest.raises(BudgetExceeded) as raised:
        await llm.ask(ask("Name the library"))
    assert raised.value.spent == pytest.approx(first.cost_usd) and raised.value.budget == 0.0001
    assert fake.stats()["requests"] == 1
    assert (await llm.ask(ask("Name the clinic"))).cached  # cached answers cost nothing: still served


async def test_concurrency_limit_is_respected(anthropic: AnthropicProvider, fake: FakeLLMServer) -> None:
    llm = LLM(anthropic, cache_dir=None, concurrency=3)
    fake.hold()
    tasks = [asyncio.create_task(llm.ask(ask(f"Name thing {i}"))) for i in range(8)]
    for _ in range(2000):
        if fake.stats()["in_flight"] == 3:
            break
        await asyncio.sleep(0.005)
    for _ in range(20):  # give any call beyond the limit every chance to show up
        await asyncio.sleep(0.005)
    assert fake.stats()["in_flight"] == 3
    fake.release()
    responses = await asyncio.gather(*tasks)
    assert all(r.data == {"name": "Ada"} for r in responses)
    assert fake.stats()["max_in_flight"] == 3 and fake.stats()["requests"] == 8


async def test_identical_asks_in_flight_share_one_call(anthropic: AnthropicProvider, fake: FakeLLMServer) -> None:
    llm = LLM(anthropic, cache_dir=None)
    fake.hold()
    first = asyncio.create_task(llm.ask(ask()))
    for _ in range(2000):
        if fake.stats()["in_flight"] == 1:
            break
        await asyncio.sleep(0.005)
    second = asyncio.create_task(llm.ask(ask()))
    await asyncio.sleep(0.01)
    fake.release()
    a, b = await asyncio.gather(first, second)
    assert fake.stats()["requests"] == 1
    assert a.data == b.data and not a.cached and b.cached
    assert llm.ledger.stages["topics"].calls == 2 and llm.ledger.spent_usd == pytest.approx(a.cost_usd)


async def test_replay_serves_a_recording_and_names_what_it_lacks(
    anthropic: AnthropicProvider, fake: FakeLLMServer, tmp_path: Path
) -> None:
    recording = tmp_path / "recording"
    recorded = await LLM(anthropic, cache_dir=recording).ask(ask())
    replay = ReplayProvider(recording)
    assert replay.model == "claude-sonnet-4-6" and len(replay) == 1
    llm = LLM(replay, cache_dir=None)
    hit = await llm.ask(ask())
    assert hit.data == recorded.data and hit.usage == recorded.usage and hit.cached
    assert llm.ledger.spent_usd == 0 and llm.ledger.cost_usd == pytest.approx(recorded.cost_usd)
    assert fake.stats()["requests"] == 1  # the replay made no call
    with pytest.raises(ReplayMiss) as raised:
        await llm.ask(ask("Name the library", stage="scenario"))
    message = str(raised.value)
    assert "does not contain this request" in message and "'scenario'" in message and str(recording) in message
    assert raised.value.key == ask("Name the library", stage="scenario").key("replay", "claude-sonnet-4-6")

    via_cli = LLM(make_provider("replay", recording=recording), cache_dir=tmp_path / "cache")
    assert (await via_cli.ask(ask())).data == recorded.data


async def test_ledger_report(anthropic: AnthropicProvider, fake: FakeLLMServer, tmp_path: Path) -> None:
    fake.add_faults([{"status": 429}])
    llm = LLM(anthropic, cache_dir=tmp_path)
    quick(llm)
    await llm.ask(ask())
    await llm.ask(ask())
    await llm.ask(ask("Design it", stage="skeleton.design"))
    report = llm.ledger.as_dict()
    assert set(report) == {"stages", "totals", "spent_usd", "cost_usd"}
    topics = report["stages"]["topics"]
    assert {k: topics[k] for k in ("calls", "cached", "retries", "input_tokens", "output_tokens")} == {
        "calls": 2,
        "cached": 1,
        "retries": 1,
        "input_tokens": 200,
        "output_tokens": 20,
    }
    assert report["totals"]["calls"] == 3 and report["totals"]["retries"] == 1
    assert report["cost_usd"] > report["spent_usd"] > 0
    json.dumps(report)


async def test_a_broken_schema_fails_before_any_call(anthropic: AnthropicProvider, fake: FakeLLMServer) -> None:
    request = Request(stage="s", system="", messages=(), schema={"type": "objekt"}, schema_name="x")
    with pytest.raises(LLMError, match="not a valid JSON Schema"):
        await LLM(anthropic, cache_dir=None).ask(request)
    assert fake.stats()["requests"] == 0


async def test_fake_server_runs_as_a_process(tmp_path: Path) -> None:
    script = {"entries": [{"tool": "submit_name", "answer": {"name": "Ada"}}], "faults": [{"status": 500}]}
    fake = start_fake_llm_process(script, workdir=tmp_path)
    try:
        provider = OpenAIProvider("m", base_url=fake.openai_url)
        llm = LLM(provider, cache_dir=tmp_path / "cache")
        quick(llm)
        assert (await llm.ask(ask())).data == {"name": "Ada"}
        assert fake.stats()["faults"] == 1 and fake.stats()["answered"] == 1
        await provider.aclose()
    finally:
        stop_fake_llm_process(fake)
