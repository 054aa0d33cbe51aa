"""What tokens cost, in USD per million tokens, so a run can report its cost and stop at a budget.

Anthropic prices checked on 2026-11-25 against https://platform.claude.com/docs/en/about-claude/pricing
and the model pages under https://platform.claude.com/docs/en/models/ (Sonnet 5.5's cache reads were cut
to $0.10 on 2026-10-07; Haiku 5.5's two prompt-length bands are from the Opus 5 model page, "from $0.10 /
$0.50", and its published band rates). Cache writes are the 5-minute ones (the default ``ephemeral`` TTL): 1.25x input;
cache hits are 0.1x input unless the table says otherwise. The >200K-token long-context surcharge of the
older Sonnets is left out: no generator prompt comes near it.

An OpenAI-compatible server is priced by the caller (``price_in``/``price_out``, default 0: a self-hosted vLLM
costs nothing per token).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from envfarm.generator.llm.request import Usage

log = logging.getLogger("envfarm.generator.llm")


@dataclass(frozen=True)
class Price:
    """USD per million tokens of each kind."""

    input: float
    output: float
    cache_write: float
    cache_read: float
    # (threshold, price): a prompt (input + cache reads + cache writes) over threshold tokens pays the other price
    # on every token of the request, output included (Claude Haiku 5.5's two bands).
    long_prompt: tuple[int, Price] | None = None

    @classmethod
    def standard(cls, input: float, output: float, cache_read: float | None = None) -> Price:
        """Anthropic's usual ratios: cache writes 1.25x input, cache reads 0.1x input."""
        return cls(input, output, input * 1.25, input * 0.1 if cache_read is None else cache_read)

    def cost(self, usage: Usage) -> float:
        if self.long_prompt is not None:
            threshold, dearer = self.long_prompt
            if usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens > threshold:
                return dearer.cost(usage)
        return (
            usage.input_tokens * self.input
            + usage.output_tokens * self.output
            + usage.cache_write_tokens * self.cache_write
            + usage.cache_read_tokens * self.cache_read
        ) / 1_000_000


_OPUS_4 = Price.standard(15, 75)
_OPUS_45 = Price.standard(5, 25)
_SONNET_4 = Price.standard(3, 15)
_SONNET_5 = Price.standard(2, 10)

# Model id prefixes; the longest prefix that matches wins, so dated ids (claude-sonnet-4-5-20250929) find theirs.
ANTHROPIC: dict[str, Price] = {
    # Fable / Mythos 5.2: $8 / $40 per the model pages' comparison table; cache rates assumed at the usual ratios.
    "claude-fable-5-2": Price.standard(8, 40),
    "claude-mythos-5-2": Price.standard(8, 40),
    "claude-fable-5-1": Price.standard(10, 50, cache_read=0.25),
    "claude-mythos-5-1": Price.standard(10, 50, cache_read=0.25),
    "claude-fable-5": Price.standard(10, 50),
    "claude-mythos-5": Price.standard(10, 50),
    "claude-opus-5-5": Price.standard(4, 20, cache_read=0.20),
    "claude-opus-5": _OPUS_45,
    "claude-opus-4-8": _OPUS_45,
    "claude-opus-4-7": _OPUS_45,
    "claude-opus-4-6": _OPUS_45,
    "claude-opus-4-5": _OPUS_45,
    "claude-opus-4-1": _OPUS_4,
    "claude-opus-4": _OPUS_4,
    "claude-sonnet-5-5": Price.standard(2, 10, cache_read=0.10),
    "claude-sonnet-5": _SONNET_5,
    "claude-sonnet-4-6": _SONNET_4,
    "claude-sonnet-4-5": _SONNET_4,
    "claude-sonnet-4": _SONNET_4,
    "claude-3-7-sonnet": _SONNET_4,
    "claude-haiku-5-5": Price(0.10, 0.50, 0.125, 0.01, long_prompt=(100_000, Price(0.50, 2.50, 0.625, 0.05))),
    "claude-haiku-4-5": Price.standard(1, 5),
    "claude-3-5-haiku": Price(0.80, 4, 1.0, 0.08),
    "claude-3-haiku": Price(0.25, 1.25, 0.30, 0.03),
}

# A model not in the table is priced as the dearest one in it, so a budget is never under-counted.
FALLBACK = _OPUS_4
_warned: set[str] = set()


def anthropic_price(model: str) -> Price:
    """The price of an Anthropic model; an unknown one gets ``FALLBACK`` and one warning per model."""
    matches = [prefix for prefix in ANTHROPIC if model == prefix or model.startswith(prefix + "-")]
    if matches:
        return ANTHROPIC[max(matches, key=len)]
    if model not in _warned:
        _warned.add(model)
        log.warning(
            "no price on file for Anthropic model %r: costing it as the dearest known model "
            "($%g in / $%g out per Mtok) so the budget errs on the safe side; add it to envfarm/llm/pricing.py",
            model,
            FALLBACK.input,
            FALLBACK.output,
        )
    return FALLBACK


def flat_price(price_in: float, price_out: float) -> Price:
    """An OpenAI-compatible server's price: cached prompt tokens cost what other input tokens cost."""
    return Price(price_in, price_out, price_in, price_in)
