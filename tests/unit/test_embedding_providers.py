"""Providers against real models/servers: the shipped static model, and each remote provider
talking to a local server that speaks its wire protocol (OpenAI, Voyage, Ollama)."""

import numpy as np
import pytest

from automem_pipelines.definitions import build_resources
from automem_pipelines.domain.embeddings import (
    EmbeddingError,
    OllamaProvider,
    OpenAIProvider,
    VoyageProvider,
    check_batch,
    embed_batches,
    local_provider,
)
from automem_pipelines.resources import EmbeddingsResource
from automem_pipelines.settings import Settings
from tests.support.automem_fixture import read_fixture
from tests.support.embedding_models import model_vectors, project
from tests.support.ollama_server import LEGACY_SCALE, OllamaServer
from tests.support.openai_server import Fault
from tests.support.voyage_server import VoyageEmbeddingsServer

VOYAGE_KEY = "voyage-test-key"


def cos(a, b):
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def row_cos(a, b):
    return (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.fixture(scope="module")
def voyage_server():
    server = VoyageEmbeddingsServer(api_key=VOYAGE_KEY).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_voyage(voyage_server):
    voyage_server.reset()
    return voyage_server


@pytest.fixture(scope="module")
def ollama_server():
    server = OllamaServer(
        known_models={"nomic-embed-text", "mxbai-embed-large"},
        model_dims={"mxbai-embed-large": 1024},
    ).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_ollama(ollama_server):
    ollama_server.reset()
    return ollama_server


@pytest.fixture(scope="module")
def legacy_ollama_server():
    server = OllamaServer(legacy_only=True).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def legacy_ollama(legacy_ollama_server):
    legacy_ollama_server.reset()
    return legacy_ollama_server


@pytest.fixture(scope="module")
def fixture_store():
    """(ids, contents, vectors) of the points AutoMem 0.16.1 wrote."""
    points = read_fixture().points
    return (
        [p["id"] for p in points],
        [p["payload"]["content"] for p in points],
        np.vstack([p["vector"] for p in points]),
    )


# -- the local model -------------------------------------------------------------------


def test_local_model_is_semantic():
    p = local_provider()
    v = p.embed(
        [
            "The server crashed right after the deploy",
            "Production went down following the release",
            "My favourite recipe for chocolate cake",
            "I prefer dark mode in my editor",
            "Please use the dark theme in the IDE",
        ]
    ).vectors
    assert v.shape == (5, 256) and v.dtype == np.float32
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.25
    assert cos(v[3], v[4]) > cos(v[3], v[2]) + 0.25


# -- the test servers' models reproduce AutoMem's stored vectors -------------------------


def test_shared_projection_reproduces_the_fixture_and_another_model_is_far(fixture_store):
    ids, contents, stored = fixture_store
    assert len(ids) == 200 and stored.shape == (200, 1024)
    same = row_cos(project(contents, 1024, 1234 + 1024), stored)
    assert same.min() >= 0.99999
    for other in ("text-embedding-3-large", "voyage-4-lite", "mxbai-embed-large"):
        far = row_cos(model_vectors(contents, other, 1024), stored)
        assert far.max() < 0.5, other
    # Another seed at the same size is another model too.
    assert row_cos(project(contents, 1024, 99), stored).max() < 0.5


def test_each_server_plays_automems_default_model_at_any_size(
    fake_openai, fake_voyage, fake_ollama
):
    text = ["The deploy broke production"]
    for dim in (256, 512):
        expected = project(text, dim, 1234 + dim)[0]
        got = [
            openai_provider(fake_openai, dim=dim).embed(text).vectors[0],
            voyage_provider(fake_voyage, dim=dim).embed(text).vectors[0],
        ]
        assert all(cos(g, expected) > 0.99999 for g in got)
    fake_ollama.model_dims["nomic-embed-text"] = 512
    try:
        got = OllamaProvider("nomic-embed-text", 512, base_url=fake_ollama.base_url).embed(text)
    finally:
        del fake_ollama.model_dims["nomic-embed-text"]
    assert cos(got.vectors[0], project(text, 512, 1234 + 512)[0]) > 0.99999


def test_an_automem_voyage_environment_reproduces_its_stored_vectors(fixture_store, fake_voyage):
    """AutoMem's environment (a Voyage key) → our settings pick Voyage voyage-4 1024-d, and
    the vectors it writes are the ones AutoMem stored; another Voyage model's are far."""
    _, contents, stored = fixture_store
    env = {
        "VOYAGE_API_KEY": VOYAGE_KEY,
        "VOYAGE_BASE_URL": fake_voyage.base_url,
        "OPENAI_API_KEY": "sk-also-set",
        "AUTOMEM_DATA_DIR": "/tmp/unused",
    }
    settings = Settings.from_env(env)
    provider = build_resources(settings, from_env=False)["embeddings"].get_provider()
    assert (provider.provider, provider.model, provider.dim) == ("voyage", "voyage-4", 1024)
    vectors = provider.embed(contents).vectors
    assert row_cos(vectors, stored).min() >= 0.99999
    assert [r.count for r in fake_voyage.state.requests] == [128, 72]  # Voyage's 128 a request

    other = Settings.from_env({**env, "VOYAGE_MODEL": "voyage-4-lite"})
    lite = build_resources(other, from_env=False)["embeddings"].get_provider()
    assert row_cos(lite.embed(contents).vectors, stored).max() < 0.5


def test_an_openai_compatible_environment_reproduces_its_stored_vectors(fixture_store, fake_openai):
    _, contents, stored = fixture_store
    settings = Settings.from_env(
        {
            "OPENAI_API_KEY": "sk-x",
            "OPENAI_BASE_URL": fake_openai.base_url,
            "AUTOMEM_DATA_DIR": "/tmp/unused",
        }
    )
    provider = build_resources(settings, from_env=False)["embeddings"].get_provider()
    assert (provider.provider, provider.model, provider.dim) == (
        "openai",
        "text-embedding-3-small",
        1024,
    )
    assert row_cos(provider.embed(contents[:50]).vectors, stored[:50]).min() >= 0.99999


# -- the providers, each against its server -----------------------------------------------


def openai_provider(server, **kw):
    kw.setdefault("max_retries", 3)
    return OpenAIProvider(
        model=kw.pop("model", "text-embedding-3-small"),
        dim=kw.pop("dim", 384),
        api_key="sk-test",
        base_url=server.base_url,
        backoff_base=0.01,
        **kw,
    )


def voyage_provider(server, **kw):
    kw.setdefault("max_retries", 3)
    return VoyageProvider(
        model=kw.pop("model", "voyage-4"),
        dim=kw.pop("dim", 1024),
        api_key=kw.pop("api_key", VOYAGE_KEY),
        base_url=server.base_url,
        backoff_base=0.01,
        **kw,
    )


def ollama_provider(server, **kw):
    kw.setdefault("max_retries", 3)
    return OllamaProvider(
        model=kw.pop("model", "nomic-embed-text"),
        dim=kw.pop("dim", 768),
        base_url=server.base_url,
        backoff_base=0.01,
        **kw,
    )


PROVIDERS = {
    "openai": ("fake_openai", openai_provider),
    "voyage": ("fake_voyage", voyage_provider),
    "ollama": ("fake_ollama", ollama_provider),
    "ollama-legacy": ("legacy_ollama", ollama_provider),
}


@pytest.fixture(params=sorted(PROVIDERS))
def remote(request):
    """(server, make_provider) for each remote provider and its protocol server."""
    fixture, make = PROVIDERS[request.param]
    return request.getfixturevalue(fixture), make


def test_every_remote_provider_has_the_interface(remote):
    server, make = remote
    p = make(server)
    assert p.provider in ("openai", "voyage", "ollama") and p.model and p.dim > 0
    assert p.max_concurrency >= 1
    result = p.embed(["alpha", "beta gamma"])
    assert result.vectors.shape == (2, p.dim) and result.vectors.dtype == np.float32


def test_vectors_are_the_models_embeddings(remote):
    server, make = remote
    p = make(server)
    v = p.embed(["deploy broke production", "release took prod down", "apple pie"]).vectors
    assert cos(v[0], v[1]) > cos(v[0], v[2]) + 0.2
    expected = model_vectors(["apple pie"], p.model, p.dim)[0]
    assert cos(v[2], expected) > 0.99999


def test_429_with_retry_after_is_honoured(remote):
    server, make = remote
    sleeps = []
    p = make(server, sleep=sleeps.append)
    server.script(Fault(429, retry_after=0.3), Fault(429, retry_after=0.3))
    assert p.embed(["x"]).vectors.shape == (1, p.dim)
    assert len(sleeps) == 2 and all(s >= 0.3 for s in sleeps)


def test_5xx_is_retried_with_backoff_then_gives_up(remote):
    server, make = remote
    sleeps = []
    p = make(server, sleep=sleeps.append, max_retries=2)
    p.embed(["warm-up"])  # (Ollama without /api/embed finds that out here)
    server.reset()
    server.script(Fault(500), Fault(503))
    assert p.embed(["x"]).vectors.shape == (1, p.dim)
    assert server.request_count == 3 and len(sleeps) == 2
    server.script(Fault(500), Fault(500), Fault(502))
    with pytest.raises(EmbeddingError, match="after 3 attempts"):
        p.embed(["x"])


def test_4xx_is_not_retried(remote):
    server, make = remote
    p = make(server)
    p.embed(["warm-up"])
    server.reset()
    server.script(Fault(400, body="bad input here"))
    with pytest.raises(EmbeddingError, match="rejected.*bad input here"):
        p.embed(["x"])
    assert server.request_count == 1


def test_wrong_dimension_fails_the_batch(remote):
    server, make = remote
    p = make(server)
    server.script(Fault.wrong_dimension())
    with pytest.raises(EmbeddingError, match=f"{p.dim + 1}-d vectors, expected {p.dim}-d"):
        p.embed(["x"])


def test_count_mismatch_fails_the_batch(remote):
    server, make = remote
    p = make(server)
    p.embed(["warm-up"])
    server.script(Fault.short())
    # (Ollama's old endpoint answers an empty vector for the text it has none for.)
    with pytest.raises(EmbeddingError, match=r"1 vectors for 2 texts|vectors of \[0, 768\] dim"):
        p.embed(["x", "y"])


def test_hang_is_a_timeout_error_after_retries(remote):
    server, make = remote
    sleeps = []
    # 1 s: far above a normal answer here even on a loaded machine; a hang never answers.
    p = make(server, timeout=1.0, max_retries=1, sleep=sleeps.append)
    p.embed(["warm-up"])
    server.reset()
    server.script(Fault.hang(), Fault.hang())
    with pytest.raises(EmbeddingError, match="(?i)after 2 attempts.*timed out"):
        p.embed(["x"])
    assert server.request_count == 2 and len(sleeps) == 1


def test_retries_recover_after_a_hang(remote):
    server, make = remote
    p = make(server, timeout=1.0, max_retries=2, sleep=lambda s: None)
    p.embed(["warm-up"])
    server.script(Fault.hang())
    assert p.embed(["x"]).vectors.shape == (1, p.dim)


def test_a_failing_batch_does_not_stop_the_others(remote):
    server, make = remote
    server.state.fail_marker = "BAD"
    server.state.fail_status = 400
    outcomes = embed_batches(
        make(server), [(["a"], ["fine"]), (["b"], ["BAD one"]), (["c"], ["ok"])]
    )
    assert [o.error is None for o in outcomes] == [True, False, True]


def test_several_requests_in_flight(remote):
    server, make = remote
    server.state.latency = 0.2
    p = make(server, max_concurrency=8)
    batches = [([f"id{i}"], [f"text {i}"]) for i in range(8)]
    outcomes = embed_batches(p, batches)
    assert [o.index for o in outcomes] == list(range(8)) and all(o.error is None for o in outcomes)
    assert server.state.max_inflight >= 4  # the server saw them overlap


# -- OpenAI specifics ----------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["base64", "float"])
def test_openai_provider_both_encodings(fake_openai, encoding):
    result = openai_provider(fake_openai, encoding_format=encoding).embed(["alpha", "beta gamma"])
    assert result.vectors.shape == (2, 384) and result.tokens == 3
    request = fake_openai.state.requests[-1]
    assert (request.count, request.dimensions, request.encoding) == (2, 384, encoding)
    assert request.header("authorization") == "Bearer sk-test"


def test_openai_dimensions_only_sent_to_models_that_take_them(fake_openai):
    OpenAIProvider(
        model="nomic-embed-text", dim=256, api_key="k", base_url=fake_openai.base_url
    ).embed(["x"])
    assert fake_openai.state.requests[-1].dimensions is None
    OpenAIProvider(
        model="text-embedding-3-large", dim=256, api_key="k", base_url=fake_openai.base_url
    ).embed(["x"])
    assert fake_openai.state.requests[-1].dimensions == 256


def test_openai_native_size_differs_from_the_expected_one(fake_openai):
    # The server answers 256-d when no dimensions are sent; we expect 384.
    p = OpenAIProvider(model="custom", dim=384, api_key="k", base_url=fake_openai.base_url)
    with pytest.raises(EmbeddingError, match="256-d vectors, expected 384-d"):
        p.embed(["x"])


def test_check_batch():
    with pytest.raises(EmbeddingError, match="2 vectors for 3 texts"):
        check_batch(["a", "b", "c"], np.ones((2, 4)), 4)
    with pytest.raises(EmbeddingError, match="zero"):
        check_batch(["a"], np.zeros((1, 4)), 4)
    with pytest.raises(EmbeddingError, match="zero or non-finite"):
        check_batch(["a"], np.array([[1.0, np.nan, 0, 0]]), 4)


# -- Voyage specifics ----------------------------------------------------------------------


def test_voyage_request_is_the_one_automem_sends(fake_voyage):
    result = voyage_provider(fake_voyage, dim=512).embed(["alpha", "beta gamma"])
    assert result.vectors.shape == (2, 512) and result.tokens == 3
    request = fake_voyage.state.requests[-1]
    assert (
        request.path == "/v1/embeddings"
        and request.header("authorization") == f"Bearer {VOYAGE_KEY}"
    )
    assert request.body == {
        "input": ["alpha", "beta gamma"],
        "model": "voyage-4",
        "output_dimension": 512,
        "output_dtype": "float",
    }  # no input_type


def test_voyage_splits_batches_larger_than_128(fake_voyage):
    texts = [f"memory number {i} about project Atlas" for i in range(300)]
    result = voyage_provider(fake_voyage).embed(texts)
    assert [r.count for r in fake_voyage.state.requests] == [128, 128, 44]
    assert fake_voyage.text_count == 300 and result.tokens == sum(len(t.split()) for t in texts)
    assert np.allclose(
        result.vectors, model_vectors(texts, "voyage-4", 1024), atol=1e-6
    )  # order kept


def test_voyage_split_batch_fails_whole_when_one_part_fails(fake_voyage):
    texts = [f"t{i}" for i in range(200)]
    fake_voyage.script(None, Fault.wrong_dimension())  # the second part's answer is wrong
    with pytest.raises(EmbeddingError, match="1025-d vectors"):
        voyage_provider(fake_voyage).embed(texts)
    assert [r.count for r in fake_voyage.state.requests] == [128, 72]


def test_voyage_wrong_key_is_rejected_without_retry(fake_voyage):
    with pytest.raises(EmbeddingError, match="rejected: HTTP 401.*invalid API key"):
        voyage_provider(fake_voyage, api_key="wrong").embed(["x"])
    assert fake_voyage.state.rejected == 1 and fake_voyage.request_count == 0


def test_voyage_sizes_are_checked():
    with pytest.raises(ValueError, match="256, 512, 1024, 2048, got 768"):
        VoyageProvider("voyage-4", 768, api_key="k")


# -- Ollama specifics ----------------------------------------------------------------------


def test_ollama_embeds_a_batch_in_one_request(fake_ollama):
    texts = [f"note {i}" for i in range(40)]
    result = ollama_provider(fake_ollama).embed(texts)
    assert fake_ollama.request_count == 1 and fake_ollama.state.requests[0].path == "/api/embed"
    assert fake_ollama.state.requests[0].body == {"model": "nomic-embed-text", "input": texts}
    assert result.tokens == 80 and result.vectors.shape == (40, 768)


def test_ollama_without_api_embed_falls_back_to_api_embeddings(legacy_ollama, fake_ollama):
    texts = ["deploy broke production", "apple pie", "dark mode please"]
    p = ollama_provider(legacy_ollama)
    old = p.embed(texts).vectors
    assert p.legacy is True
    assert [r.path for r in legacy_ollama.state.requests] == ["/api/embeddings"] * 3
    assert legacy_ollama.state.requests[0].body == {"model": "nomic-embed-text", "prompt": texts[0]}
    p.embed(texts)  # no second try of /api/embed
    assert legacy_ollama.request_count == 6
    # Same model, same vectors up to scale (the old endpoint does not normalise).
    new = ollama_provider(fake_ollama).embed(texts).vectors
    assert row_cos(old, new).min() > 0.99999
    assert np.allclose(np.linalg.norm(old, axis=1), LEGACY_SCALE, atol=1e-3)


def test_ollama_unknown_model_is_an_error_not_a_fallback(fake_ollama):
    with pytest.raises(EmbeddingError, match='rejected: HTTP 404.*model "all-minilm" not found'):
        ollama_provider(fake_ollama, model="all-minilm").embed(["x"])
    assert fake_ollama.state.rejected == 1  # one request: no retry, no fallback


def test_ollama_model_size_must_match(fake_ollama):
    p = ollama_provider(fake_ollama, dim=1024)  # nomic-embed-text is 768-d
    with pytest.raises(EmbeddingError, match="768-d vectors, expected 1024-d"):
        p.embed(["x"])
    assert ollama_provider(fake_ollama, model="mxbai-embed-large", dim=1024).embed(
        ["x"]
    ).vectors.shape == (1, 1024)


# -- the resource builds every provider from its fields -----------------------------------


def test_resource_builds_every_provider(fake_openai, fake_voyage, fake_ollama):
    common = {"max_concurrency": 3, "max_retries": 1, "timeout_seconds": 5.0}
    built = {
        "local": EmbeddingsResource(provider="local").get_provider(),
        "openai": EmbeddingsResource(
            provider="openai",
            model="text-embedding-3-small",
            vector_size=512,
            openai_api_key="sk-test",
            openai_base_url=fake_openai.base_url,
            **common,
        ).get_provider(),
        "voyage": EmbeddingsResource(
            provider="voyage",
            model="voyage-4",
            vector_size=256,
            voyage_api_key=VOYAGE_KEY,
            voyage_base_url=fake_voyage.base_url,
            **common,
        ).get_provider(),
        "ollama": EmbeddingsResource(
            provider="ollama",
            model="nomic-embed-text",
            vector_size=768,
            ollama_base_url=fake_ollama.base_url,
            **common,
        ).get_provider(),
    }
    for name, p in built.items():
        assert p.provider == name
        assert p.embed(["hello there"]).vectors.shape == (1, p.dim)
    assert [(p.model, p.dim) for p in built.values()] == [
        ("minilm-l6-static", 256),
        ("text-embedding-3-small", 512),
        ("voyage-4", 256),
        ("nomic-embed-text", 768),
    ]
    assert all(built[n].max_concurrency == 3 for n in ("openai", "voyage", "ollama"))
    assert fake_voyage.state.requests[-1].header("authorization") == f"Bearer {VOYAGE_KEY}"
    with pytest.raises(ValueError, match="expected voyage, openai, ollama or local"):
        EmbeddingsResource(provider="fastembed").get_provider()
