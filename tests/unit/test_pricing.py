"""The plan's arithmetic without Dagster or stores: tokens, prices, seconds, the budget."""

from __future__ import annotations

import math

import bpe_openai
import pytest

from automem_pipelines.domain import pricing
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.domain.tokens import CHARS_PER_TOKEN, counter_for
from automem_pipelines.domain.vector_state import EmbeddingIdentity

TEXTS = [m["content"] for m in sample_memories(300, seed=3)] + [
    "naïve café — 日本語のテキスト ✓",
    "  spaces   and\ttabs\nand newlines  ",
]
SMALL = EmbeddingIdentity("openai", "text-embedding-3-small", 1536)


@pytest.mark.parametrize(
    "model", ["text-embedding-3-small", "text-embedding-3-large", "text-embedding-ada-002"]
)
def test_openai_tokens_are_the_cl100k_tokenizers_count(model):
    enc = bpe_openai.get_encoding("cl100k_base")
    expected = sum(len(enc.encode(t)) for t in TEXTS)
    plan = pricing.price_texts(TEXTS, EmbeddingIdentity("openai", model, 1024), batch_size=64)
    assert plan.tokens == expected and plan.memories == len(TEXTS)
    assert plan.tokens_method.startswith("exact (cl100k_base")
    # a different count than the rule of thumb: the tokenizer really ran
    assert plan.tokens != sum(math.ceil(len(t) / CHARS_PER_TOKEN) for t in TEXTS)


def test_known_token_counts():
    counter = counter_for("openai", "text-embedding-3-small")
    assert counter.count(["hello world"]) == 2
    assert counter.count_one("") == 0


@pytest.mark.parametrize(
    "provider, model", [("voyage", "voyage-3.5"), ("ollama", "nomic-embed-text"), ("openai", "x")]
)
def test_other_models_are_a_labelled_estimate(provider, model):
    plan = pricing.price_texts(TEXTS, EmbeddingIdentity(provider, model, 1024), batch_size=10)
    assert plan.tokens == sum(math.ceil(len(t) / CHARS_PER_TOKEN) for t in TEXTS)
    assert plan.tokens_method.startswith("estimate")


def test_prices():
    assert pricing.price_of("local", "anything").usd_per_million_tokens == 0.0
    assert pricing.price_of("ollama", "nomic-embed-text").usd_per_million_tokens == 0.0
    small = pricing.price_of("openai", "text-embedding-3-small")
    large = pricing.price_of("openai", "text-embedding-3-large")
    assert 0 < small.usd_per_million_tokens < large.usd_per_million_tokens
    assert "genai-prices" in small.source
    assert pricing.price_of("voyage", "voyage-3.5").usd_per_million_tokens > 0
    unknown = pricing.price_of("openai", "my-self-hosted-model")
    assert unknown.usd_per_million_tokens is None and "no price" in unknown.source


def test_cost_is_tokens_times_price():
    plan = pricing.price_texts(TEXTS, SMALL, batch_size=100)
    price = pricing.price_of("openai", "text-embedding-3-small").usd_per_million_tokens
    assert plan.cost_usd == pytest.approx(plan.tokens * price / 1e6)
    assert plan.requests == math.ceil(len(TEXTS) / 100)
    local = pricing.price_texts(TEXTS, EmbeddingIdentity("local", "m", 256), batch_size=100)
    assert local.cost_usd == 0.0


def test_seconds_at_the_rate_limits():
    assert pricing.min_seconds(10, 1000, pricing.RateLimits())[0] == 0.0
    assert pricing.min_seconds(120, 1000, pricing.RateLimits(60, None))[0] == 120.0
    assert pricing.min_seconds(1, 3000, pricing.RateLimits(None, 1000))[0] == 180.0
    assert pricing.min_seconds(120, 3000, pricing.RateLimits(60, 1000))[0] == 180.0  # the slower
    plan = pricing.price_texts(TEXTS, SMALL, 10, pricing.RateLimits(requests_per_minute=6))
    assert plan.seconds == pytest.approx(plan.requests * 10.0)
    assert set(plan.as_dict()) >= {"memories", "tokens", "cost_usd", "seconds"}


def test_budget_gate():
    plan = pricing.price_texts(TEXTS, SMALL, batch_size=100)
    assert pricing.over_budget(plan, pricing.Budget(10.0, None)) is None
    assert pricing.over_budget(plan, pricing.Budget(None, plan.tokens)) is None
    message = pricing.over_budget(plan, pricing.Budget(plan.cost_usd / 2, None))
    assert message is not None and "max_cost_usd" in message and str(plan.tokens) in message
    assert f"{len(TEXTS)} memories" in message
    message = pricing.over_budget(plan, pricing.Budget(None, plan.tokens - 1))
    assert message is not None and "max_tokens" in message
    with pytest.raises(pricing.BudgetExceededError) as raised:
        pricing.check_budget(plan, pricing.Budget(0.0, None))
    assert raised.value.plan is plan
    # a model without a price is checked against the token budget only
    unknown = pricing.price_texts(TEXTS, EmbeddingIdentity("openai", "x", 8), batch_size=100)
    assert pricing.over_budget(unknown, pricing.Budget(0.0, None)) is None
