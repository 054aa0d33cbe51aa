"""The LLM layer of the generator: structured answers from Claude, OpenAI-compatible servers or a recording.

``LLM(provider, cache_dir=...)`` is what the generator calls: ``await llm.ask(Request(...))`` returns a
``Response`` whose ``data`` matches the request's JSON Schema, or whose ``problem`` says what is wrong.
Agents have conversations instead: ``ChatLLM(chat_provider, ...)`` answers a ``ChatRequest`` (messages, tools)
with a ``ChatResponse`` (text and tool calls), with the same cache, retries, ledger and budget (:mod:`.chat`).
Every answer is cached on disk by content hash, every call, retry, token and dollar is counted per stage
in ``llm.ledger``, and a budget stops the run before it is overspent.
"""

from envfarm.generator.llm.anthropic_api import AnthropicProvider
from envfarm.generator.llm.chat import (
    ChatLLM,
    ChatProvider,
    ChatRequest,
    ChatResponse,
    Message,
    ToolCall,
    ToolDef,
    make_chat_provider,
)
from envfarm.generator.llm.client import LLM
from envfarm.generator.llm.errors import BudgetExceeded, LLMError, MissingCredentials, ReplayMiss, RetryableError
from envfarm.generator.llm.ledger import Ledger, StageTotals
from envfarm.generator.llm.openai_api import OpenAIProvider
from envfarm.generator.llm.provider import Provider, make_provider
from envfarm.generator.llm.replay import ReplayProvider
from envfarm.generator.llm.request import Request, Response, Usage

__all__ = [
    "LLM",
    "AnthropicProvider",
    "BudgetExceeded",
    "ChatLLM",
    "ChatProvider",
    "ChatRequest",
    "ChatResponse",
    "LLMError",
    "Ledger",
    "Message",
    "MissingCredentials",
    "OpenAIProvider",
    "Provider",
    "ReplayMiss",
    "ReplayProvider",
    "Request",
    "Response",
    "RetryableError",
    "StageTotals",
    "ToolCall",
    "ToolDef",
    "Usage",
    "make_chat_provider",
    "make_provider",
]
