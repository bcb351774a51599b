"""Priced before the first paid call: the re-embed and the sync's vector repair against the
OpenAI-wire test server, its requests counted. A run over budget is refused with the
estimate, zero provider requests, both stores byte-identical; a plan-only run embeds nothing;
the plan's tokens are the tokenizer's count of the contents it will embed."""

from __future__ import annotations

import pytest

from automem_pipelines.definitions import build_resources
from automem_pipelines.domain import pricing
from automem_pipelines.domain.embeddings import PacedProvider
from automem_pipelines.domain.memory import node_props_for_write
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.domain.tokens import counter_for
from tests.helpers import failure_messages, run_reembed, summary_of
from tests.pipelines.test_drift_job import error_text, run_sync
from tests.support.automem_fixture import snapshot

MODEL = "text-embedding-3-small"


@pytest.fixture
def env(make_settings, fake_openai):
    """A collection the OpenAI-wire model embedded (identity recorded), then 200 memories
    added to the graph that need a vector."""
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MODEL=MODEL,
        VECTOR_SIZE="256",
        EMBEDDING_MAX_RETRIES="0",
    )
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        graph.ensure_indexes()
        graph.upsert_memories(node_props_for_write(m) for m in sample_memories(40, seed=1))
        assert summary_of(run_reembed(settings, resources, batch_size=16))["processed"] == 40
        added = [node_props_for_write(m) for m in sample_memories(200, seed=2)]
        graph.upsert_memories(added)
        fake_openai.reset()
        yield settings, resources, graph, vectors, added


def _tokens(rows) -> int:
    return counter_for("openai", MODEL).count(r["content"] for r in rows)


def test_a_run_over_budget_is_refused_before_any_provider_call(env, fake_openai):
    settings, resources, graph, vectors, added = env
    before = snapshot(graph, vectors)
    result = run_reembed(settings, resources, raise_on_error=False, batch_size=16, max_cost_usd=0.0)
    assert not result.success
    message = failure_messages(result)
    assert "refused before any provider call" in message and "max_cost_usd=0" in message
    assert f"200 memories, {_tokens(added)} tokens" in message  # the estimate is in it
    assert "Traceback" not in message
    assert fake_openai.state.requests == []
    assert snapshot(graph, vectors) == before

    result = run_reembed(settings, resources, raise_on_error=False, max_tokens=_tokens(added) - 1)
    assert not result.success and "max_tokens" in failure_messages(result)
    assert fake_openai.state.requests == []
    assert snapshot(graph, vectors) == before


def test_plan_only_embeds_nothing_and_counts_the_tokenizers_tokens(env, fake_openai):
    settings, resources, graph, vectors, added = env
    before = snapshot(graph, vectors)
    summary = summary_of(run_reembed(settings, resources, batch_size=16, plan_only=True))
    assert summary["status"] == "planned"
    assert summary["memories"] == 200 and summary["total"] == 240 and summary["skipped"] == 40
    assert summary["tokens"] == _tokens(added)
    assert summary["tokens_method"].startswith("exact")
    assert summary["requests"] == 13  # ceil(200 / 16)
    assert 0 < summary["cost_usd"] < 0.01 and summary["seconds"] == 0.0
    assert fake_openai.state.requests == []
    assert snapshot(graph, vectors) == before

    # within the default budget (REEMBED_MAX_COST_USD, 10 USD) the same run embeds them all,
    # and the provider counts the tokens the plan counted
    summary = summary_of(run_reembed(settings, resources, batch_size=16))
    assert summary["status"] == "complete" and summary["processed"] == 200
    assert len(fake_openai.state.requests) == 13
    served = sum(len(t) for r in fake_openai.state.requests for t in [r.texts])
    assert served == 200


def test_the_syncs_vector_repair_is_gated_too(env, fake_openai):
    settings, resources, graph, vectors, added = env
    before = snapshot(graph, vectors)
    result = run_sync(settings, resources, raise_on_error=False, max_cost_usd=0.0)
    assert not result.success
    text = error_text(result)
    assert "refusing to repair vectors" in text and f"{_tokens(added)} tokens" in text
    assert fake_openai.state.requests == []
    assert snapshot(graph, vectors) == before


def test_the_rate_limits_pace_the_configured_provider(make_settings, fake_openai):
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MODEL=MODEL,
        EMBEDDING_REQUESTS_PER_MINUTE="600",
        EMBEDDING_TOKENS_PER_MINUTE="100000",
    )
    provider = build_resources(settings, from_env=False)["embeddings"].build_provider()
    try:
        assert isinstance(provider, PacedProvider)
        assert provider.limiter.requests.rate == 10.0
        assert provider.limiter.tokens.rate == pytest.approx(100000 / 60)
        provider.embed(["one text"])
        assert len(fake_openai.state.requests) == 1
    finally:
        provider.close()


def test_a_providers_own_limits_pace_it_and_a_migration_target_under_its_own(
    make_settings, fake_openai
):
    """OPENAI_*_PER_MINUTE over EMBEDDING_* for OpenAI; a migration's target (Voyage here)
    takes VOYAGE_*; a provider with none of its own falls back to EMBEDDING_*."""
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MODEL=MODEL,
        EMBEDDING_REQUESTS_PER_MINUTE="600",
        EMBEDDING_TOKENS_PER_MINUTE="100000",
        OPENAI_REQUESTS_PER_MINUTE="120",
        VOYAGE_REQUESTS_PER_MINUTE="300",
        VOYAGE_TOKENS_PER_MINUTE="60000",
    )
    embeddings = build_resources(settings, from_env=False)["embeddings"]
    assert embeddings.rate_limits() == pricing.RateLimits(120, 100000)
    voyage = embeddings.for_target("voyage", "voyage-3.5", 1024)
    assert voyage.rate_limits() == pricing.RateLimits(300, 60000)
    ollama = embeddings.for_target("ollama", "nomic-embed-text", 768)
    assert ollama.rate_limits() == pricing.RateLimits(600, 100000)
    provider = voyage.build_provider()
    try:
        assert isinstance(provider, PacedProvider)
        assert provider.limiter.requests.rate == 5.0
        assert provider.limiter.tokens.rate == 1000.0
    finally:
        provider.close()


def test_the_syncs_gate_comes_before_the_identity_check_of_an_automem_store(
    make_settings, fake_openai
):
    """On the store AutoMem wrote (no recorded identity: the sync would embed a sample of
    texts to check it), a repair over budget is refused before that check's request."""
    from tests.support.automem_fixture import DIM, load_fixture

    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MODEL=MODEL,
        VECTOR_SIZE=str(DIM),
        EMBEDDING_MAX_RETRIES="0",
    )
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        load_fixture(graph, vectors)
        added = [node_props_for_write(m) for m in sample_memories(30, seed=9)]
        graph.upsert_memories(added)  # in the graph, no point: missing vectors
        fake_openai.reset()
        before = snapshot(graph, vectors)
        result = run_sync(settings, resources, raise_on_error=False, max_cost_usd=0.0)
        assert not result.success
        assert "refusing to repair vectors" in error_text(result)
        assert f"30 memories, {_tokens(added)} tokens" in error_text(result)
        assert fake_openai.state.requests == []
        assert snapshot(graph, vectors) == before
