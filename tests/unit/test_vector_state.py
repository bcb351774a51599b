"""The one rule for "is this vector current" (domain/vector_state.py)."""

from __future__ import annotations

from automem_pipelines.domain.memory import content_hash, make_stamps
from automem_pipelines.domain.vector_state import (
    EmbeddingIdentity,
    VectorState,
    stamp_identity,
    vector_state,
)

LOCAL = EmbeddingIdentity("local", "m", 256)
HELLO = content_hash("hello")


def state(payload, content="hello", identity=LOCAL, trust=True):
    return vector_state(payload, content_hash(content), identity, trust)


def test_stamped_point_needs_same_content_provider_model_and_dim():
    stamps = make_stamps(HELLO, "local", "m", 256)
    assert state(stamps) is VectorState.CURRENT
    assert state(stamps, "hello!") is VectorState.STALE
    assert state(stamps, identity=EmbeddingIdentity("openai", "m", 256)) is VectorState.STALE
    assert state(stamps, identity=EmbeddingIdentity("local", "m2", 256)) is VectorState.STALE
    assert state(stamps, identity=EmbeddingIdentity("local", "m", 384)) is VectorState.STALE
    assert state(None) is VectorState.MISSING


def test_the_combined_stamp_decides_and_older_separate_stamps_still_count():
    stamps = make_stamps(HELLO, "openai", "text-embedding-3-small", 1024)
    assert stamps["embedding_stamp"] == f"openai|text-embedding-3-small|1024|{HELLO}"
    ident = EmbeddingIdentity("openai", "text-embedding-3-small", 1024)
    only_combined = {"embedding_stamp": stamps["embedding_stamp"]}
    assert state(only_combined, identity=ident) is VectorState.CURRENT
    assert (
        state(only_combined, identity=EmbeddingIdentity("openai", "text-embedding-3-small", 256))
        is VectorState.STALE
    )
    legacy = {k: v for k, v in stamps.items() if k != "embedding_stamp"}  # stamped before the key
    assert state(legacy, identity=ident) is VectorState.CURRENT
    partial = {"content": "hello", "content_hash": HELLO}  # a partial stamp is never trusted
    assert state(partial, identity=ident) is VectorState.STALE
    assert stamp_identity(only_combined) == ident and stamp_identity(legacy) == ident


def test_unstamped_point_is_adoptable_only_with_the_same_content_and_a_trusted_identity():
    assert state({"content": "hello", "tags": []}) is VectorState.ADOPTABLE
    assert state({"content": "hello"}, trust=False) is VectorState.STALE
    assert state({"content": "older text"}) is VectorState.STALE
    assert state({}) is VectorState.STALE
    assert stamp_identity({"content": "hello"}) is None


def test_an_adopted_point_stays_current_while_its_payload_content_is_the_memorys():
    from automem_pipelines.domain.memory import adoption_stamps

    adopted = {"content": "hello", **adoption_stamps("local", "m", 256)}
    assert "content_hash" not in adopted
    assert state(adopted) is VectorState.CURRENT
    assert state(adopted, "hello, edited") is VectorState.STALE  # the node's content moved on
    assert state(adopted, identity=EmbeddingIdentity("local", "m2", 256)) is VectorState.STALE
    assert stamp_identity(adopted) == LOCAL
