"""The providers against the fake server: the real ``anthropic`` SDK and real ``httpx``, no network, no key."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fakes.llm_server import FakeLLMServer

from envfarm.generator.llm import (
    LLMError,
    MissingCredentials,
    OpenAIProvider,
    Request,
    RetryableError,
    make_provider,
)
from envfarm.generator.llm.anthropic_api import AnthropicProvider
from envfarm.generator.llm.pricing import FALLBACK, anthropic_price

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "entities": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"name": {"type": "integer"}},
                "required": ["name"],
            },
        },
    },
    "required": ["title", "entities"],
}
GOOD = {"title": "clinic", "entities": [{"name": 1}]}


def ask(text: str = "Design the clinic", system: str = "You design environments.") -> Request:
    return Request(
        stage="skeleton.design",
        system=system,
        messages=({"role": "user", "content": text},),
        schema=SCHEMA,
        schema_name="submit_design",
    )


@pytest.fixture(autouse=True)
def anthropic_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeLLMServer]:
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeLLMServer) -> FakeLLMServer:
    """The module's fake server, reset: no script, no counts, nothing held."""
    fake_server.reset()
    return fake_server


@pytest.fixture(params=["anthropic", "openai"])
async def provider(request: pytest.FixtureRequest, fake: FakeLLMServer) -> AsyncIterator[Any]:
    """Each provider pointed at the fake; both priced, so costs can be checked."""
    p: Any
    if request.param == "anthropic":
        p = AnthropicProvider("claude-sonnet-4-6", base_url=fake.url)
    else:
        p = OpenAIProvider("qwen3-32b", base_url=fake.openai_url, price_in=3, price_out=15)
    yield p
    await p.aclose()


async def test_structured_answer_round_trip(provider: Any, fake: FakeLLMServer) -> None:
    fake.set_script(
        [
            {
                "tool": "submit_design",
                "match": ["clinic"],
                "answer": GOOD,
                "usage": {"input_tokens": 1200, "output_tokens": 800},
            }
        ]
    )
    response = await provider.complete(ask())
    assert response.data == GOOD
    assert response.problem is None
    assert response.text and response.cached is False
    assert response.usage.input_tokens == 1200 and response.usage.output_tokens == 800
    assert response.cost_usd == pytest.approx((1200 * 3 + 800 * 15) / 1e6)
    sent = fake.last()
    assert sent is not None
    body = sent["body"]
    if provider.name == "anthropic":
        assert sent["headers"]["anthropic-version"]
        assert body["tool_choice"] == {"type": "tool", "name": "submit_design"}
        assert body["tools"][0]["name"] == "submit_design" and body["tools"][0]["input_schema"] == SCHEMA
        assert body["temperature"] == 0.0
        assert body["system"] == [{"type": "text", "text": "You design environments."}]
    else:
        assert body["tool_choice"] == {"type": "function", "function": {"name": "submit_design"}}
        assert body["tools"][0]["function"]["parameters"] == SCHEMA
        assert body["messages"][0] == {"role": "system", "content": "You design environments."}
        assert "authorization" not in sent["headers"]  # vLLM needs no key, none is sent


async def test_schema_invalid_answer_names_the_field(provider: Any, fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "answer": {"title": "c", "entities": [{"name": "x"}]}}])
    response = await provider.complete(ask())
    assert response.data is None
    assert response.problem == "answer.entities[0].name: 'x' is not of type 'integer'"
    assert '"name": "x"' in response.text


async def test_missing_required_fields_are_each_listed(provider: Any, fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "answer": {"entities": [{}]}}])
    response = await provider.complete(ask())
    assert response.problem is not None
    assert response.problem.splitlines() == [
        "answer: 'title' is a required property",
        "answer.entities[0]: 'name' is a required property",
    ]


async def test_invalid_json_arguments_say_where(fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "raw": '{"title": "c",\n "entities": [}'}])
    provider = OpenAIProvider("m", base_url=fake.openai_url)
    response = await provider.complete(ask())
    assert response.data is None
    assert response.problem is not None
    assert response.problem.startswith("not valid JSON: line 2 column 15:")
    assert response.text == '{"title": "c",\n "entities": [}'


async def test_anthropic_text_instead_of_a_tool_call(fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "raw": "I cannot design that."}])
    response = await AnthropicProvider(base_url=fake.url).complete(ask())
    assert response.data is None
    assert response.text == "I cannot design that."
    assert response.problem is not None
    assert response.problem.startswith("the model did not call submit_design (stop_reason: end_turn)")


async def test_json_in_content_is_used_when_the_server_makes_no_tool_call(fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "content": '```json\n{"title": "c", "entities": []}\n```'}])
    response = await OpenAIProvider("m", base_url=fake.openai_url).complete(ask())
    assert response.data == {"title": "c", "entities": []}
    assert response.problem is None


async def test_broken_json_in_content_says_so(fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "content": '{"title": "c", '}])
    response = await OpenAIProvider("m", base_url=fake.openai_url).complete(ask())
    assert response.problem is not None
    assert response.problem.startswith(
        "the model did not call submit_design (finish_reason: stop); its text is not valid JSON: line 1 column"
    )


async def test_a_cut_off_answer_is_never_used(provider: Any, fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "answer": GOOD, "stop_reason": "max_tokens"}])
    response = await provider.complete(ask())
    assert response.data is None
    assert response.problem == "the answer was cut off at max_tokens (8192) before it was complete"


async def test_no_script_entry_is_a_400_saying_what_was_asked(provider: Any, fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_topics", "answer": {}}])
    with pytest.raises(LLMError) as raised:
        await provider.complete(ask("Design the library"))
    assert not isinstance(raised.value, RetryableError)
    assert "no script entry for tool 'submit_design'" in str(raised.value)
    assert "Design the library" in str(raised.value)


@pytest.mark.parametrize("status", [429, 500, 503, 529])
async def test_overload_and_server_errors_are_retryable(provider: Any, fake: FakeLLMServer, status: int) -> None:
    fake.set_script({"entries": [], "faults": [{"status": status, "count": 1, "retry_after": 7}]})
    with pytest.raises(RetryableError) as raised:
        await provider.complete(ask())
    assert raised.value.status == status
    assert raised.value.retry_after == 7


async def test_a_wrong_key_is_not_retryable_and_says_so() -> None:
    with FakeLLMServer([{"answer": GOOD}], api_key="right-key") as fake:
        with pytest.raises(LLMError) as raised:
            await AnthropicProvider(api_key="wrong-key", base_url=fake.url).complete(ask())
        assert not isinstance(raised.value, RetryableError)
        assert "401" in str(raised.value) and "invalid x-api-key" in str(raised.value)
        with pytest.raises(LLMError) as raised:
            await OpenAIProvider("m", base_url=fake.openai_url, api_key="wrong-key").complete(ask())
        assert not isinstance(raised.value, RetryableError)
        assert "401" in str(raised.value) and "Incorrect API key" in str(raised.value)
        ok = await OpenAIProvider("m", base_url=fake.openai_url, api_key="right-key").complete(ask())
        assert ok.data == GOOD


def test_missing_anthropic_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(MissingCredentials, match="ANTHROPIC_API_KEY"):
        AnthropicProvider()
    with pytest.raises(MissingCredentials):
        make_provider("anthropic")


def test_openai_key_is_required_only_by_api_openai_com() -> None:
    with pytest.raises(MissingCredentials, match="OPENAI_API_KEY"):
        OpenAIProvider("gpt-4.1-mini")
    assert OpenAIProvider("qwen", base_url="http://127.0.0.1:9/v1").api_key is None


async def test_long_system_prompt_is_marked_for_prompt_caching(fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "answer": GOOD}])
    provider = AnthropicProvider(base_url=fake.url)
    long_system = "You design tool-use environments. " * 200  # ~6800 chars, ~1700 tokens
    first = await provider.complete(ask("Design the clinic", system=long_system))
    sent = fake.last()
    assert sent is not None
    assert sent["body"]["system"] == [{"type": "text", "text": long_system, "cache_control": {"type": "ephemeral"}}]
    second = await provider.complete(ask("Design the library", system=long_system))
    assert first.usage.cache_write_tokens > 0 and first.usage.cache_read_tokens == 0
    assert second.usage.cache_read_tokens == first.usage.cache_write_tokens and second.usage.cache_write_tokens == 0
    price = anthropic_price("claude-sonnet-4-6")
    assert second.cost_usd == pytest.approx(price.cost(second.usage))
    assert price.cache_read == pytest.approx(price.input * 0.1)

    await provider.complete(ask("Design the clinic", system="Short system prompt."))
    sent = fake.last()
    assert sent is not None
    assert "cache_control" not in sent["body"]["system"][0]


async def test_claude_5_models_get_auto_tool_choice_and_no_temperature(fake: FakeLLMServer) -> None:
    fake.set_script([{"tool": "submit_design", "answer": GOOD}])
    response = await AnthropicProvider("claude-sonnet-5-5", base_url=fake.url).complete(ask())
    assert response.data == GOOD
    sent = fake.last()
    assert sent is not None
    assert sent["body"]["tool_choice"] == {"type": "auto"}
    assert "temperature" not in sent["body"]
    assert "submit_design" in sent["body"]["system"][-1]["text"]


def test_pricing_table_and_fallback(caplog: pytest.LogCaptureFixture) -> None:
    assert anthropic_price("claude-sonnet-4-5-20250929") == anthropic_price("claude-sonnet-4-5")
    assert anthropic_price("claude-opus-4-1").input == 15  # not the Opus 4 prefix's cheaper cousins
    assert anthropic_price("claude-opus-4-5").input == 5
    haiku = anthropic_price("claude-haiku-4-5")
    assert (haiku.input, haiku.output, haiku.cache_write, haiku.cache_read) == (1, 5, 1.25, pytest.approx(0.1))
    with caplog.at_level(logging.WARNING, logger="envfarm.generator.llm"):
        assert anthropic_price("claude-nonesuch-9") == FALLBACK
    assert "no price on file for Anthropic model 'claude-nonesuch-9'" in caplog.text


def test_make_provider_defaults(tmp_path: Any) -> None:
    anthropic = make_provider("anthropic")
    assert (anthropic.name, anthropic.model) == ("anthropic", "claude-sonnet-4-6")
    vllm = make_provider("openai", model="qwen3", base_url="http://127.0.0.1:9/v1", price_in=0.5)
    assert (vllm.name, vllm.model) == ("openai", "qwen3")
    with pytest.raises(LLMError, match="needs a recording"):
        make_provider("replay")
    replay = make_provider("replay", recording=tmp_path)
    assert replay.name == "replay"
    with pytest.raises(LLMError, match="unknown LLM provider 'gemini'"):
        make_provider("gemini")


async def test_a_server_that_is_not_there_is_retryable() -> None:
    with FakeLLMServer() as gone:
        url = gone.url
    providers: list[Any] = [AnthropicProvider(base_url=url), OpenAIProvider("m", base_url=f"{url}/v1")]
    for provider in providers:
        with pytest.raises(RetryableError) as raised:
            await provider.complete(ask())
        assert raised.value.status is None
        await provider.aclose()
