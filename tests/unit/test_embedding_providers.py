"""Providers against real models/servers: the shipped static model, and the OpenAI client
talking to a local server that speaks the embeddings protocol."""

import numpy as np
import pytest

from automem_pipelines.domain.embeddings import (
    EmbeddingError,
    OpenAIProvider,
    check_batch,
    embed_batches,
    local_provider,
)
from tests.support.openai_server import Fault


def cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_local_model_is_semantic():
    p = local_provider()
    v = p.embed([
        "The server crashed right after the deploy",
        "Production went down following the release",
        "My favourite recipe for chocolate cake",
        "I prefer dark mode in my editor",
        "Please use the dark theme in the IDE",
    ]).vectors
    assert v.shape == (5, 256) and v.dtype == np.float32
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.25
    assert cos(v[3], v[4]) > cos(v[3], v[2]) + 0.25


def provider(server, **kw):
    kw.setdefault("max_retries", 3)
    return OpenAIProvider(model="text-embedding-3-small", dim=kw.pop("dim", 384), api_key="sk-test",
                          base_url=server.base_url, backoff_base=0.01, **kw)


@pytest.mark.parametrize("encoding", ["base64", "float"])
def test_openai_provider_both_encodings(fake_openai, encoding):
    result = provider(fake_openai, encoding_format=encoding).embed(["alpha", "beta gamma"])
    assert result.vectors.shape == (2, 384) and result.tokens == 3
    count, dims, enc, headers = fake_openai.state.requests[-1]
    assert (count, dims, enc) == (2, 384, encoding)
    assert {k.lower(): v for k, v in headers.items()}["authorization"] == "Bearer sk-test"


def test_openai_provider_vectors_are_real_embeddings(fake_openai):
    v = provider(fake_openai).embed(["deploy broke production", "release took prod down", "apple pie"]).vectors
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.2


def test_429_with_retry_after_is_honoured(fake_openai):
    sleeps = []
    p = provider(fake_openai, sleep=sleeps.append)
    fake_openai.script(Fault(429, retry_after=0.3), Fault(429, retry_after=0.3))
    assert p.embed(["x"]).vectors.shape == (1, 384)
    assert len(sleeps) == 2 and all(s >= 0.3 for s in sleeps)
    assert len(fake_openai.state.requests) == 3


def test_5xx_is_retried_with_backoff_then_gives_up(fake_openai):
    sleeps = []
    p = provider(fake_openai, sleep=sleeps.append, max_retries=2)
    fake_openai.script(Fault(500), Fault(503))
    assert p.embed(["x"]).vectors.shape == (1, 384)
    fake_openai.script(Fault(500), Fault(500), Fault(502))
    with pytest.raises(EmbeddingError, match="after 3 attempts"):
        p.embed(["x"])


def test_4xx_is_not_retried(fake_openai):
    fake_openai.script(Fault(400))
    with pytest.raises(EmbeddingError, match="rejected"):
        provider(fake_openai).embed(["x"])
    assert len(fake_openai.state.requests) == 1


def test_dimensions_only_sent_to_models_that_take_them(fake_openai):
    p = OpenAIProvider(model="nomic-embed-text", dim=256, api_key="k", base_url=fake_openai.base_url)
    p.embed(["x"])
    assert fake_openai.state.requests[-1][1] is None


def test_wrong_dimension_or_count_fails_the_batch(fake_openai):
    # The server answers 256-d when no dimensions are sent; we expect 384.
    p = OpenAIProvider(model="custom", dim=384, api_key="k", base_url=fake_openai.base_url)
    with pytest.raises(EmbeddingError, match="256-d vectors, expected 384-d"):
        p.embed(["x"])
    with pytest.raises(EmbeddingError, match="2 vectors for 3 texts"):
        check_batch(["a", "b", "c"], np.ones((2, 4)), 4)
    with pytest.raises(EmbeddingError, match="zero"):
        check_batch(["a"], np.zeros((1, 4)), 4)


def test_several_requests_in_flight(fake_openai):
    fake_openai.state.latency = 0.2
    p = provider(fake_openai, max_concurrency=8)
    batches = [([f"id{i}"], [f"text {i}"]) for i in range(8)]
    outcomes = embed_batches(p, batches)
    assert [o.index for o in outcomes] == list(range(8)) and all(o.error is None for o in outcomes)
    assert fake_openai.state.max_inflight >= 4  # the server saw them overlap


def test_a_failing_batch_does_not_stop_the_others(fake_openai):
    fake_openai.state.fail_marker = "BAD"
    fake_openai.state.fail_status = 400
    outcomes = embed_batches(provider(fake_openai), [(["a"], ["fine"]), (["b"], ["BAD one"]), (["c"], ["ok"])])
    assert [o.error is None for o in outcomes] == [True, False, True]
