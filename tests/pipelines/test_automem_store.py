"""The jobs on a store AutoMem 0.16.1 wrote itself (tests/fixtures/automem-0.16.1-store):
one rule for "current", no self-made drift, the embedding identity known before any write."""

from __future__ import annotations

import json
import uuid

import numpy as np
import pytest

from automem_pipelines.definitions import build_resources
from automem_pipelines.domain.identity import IDENTITY_KEY
from automem_pipelines.domain.memory import (
    COMPARED_FIELDS,
    SIMILAR_PENDING,
    STAMP_KEYS,
    parse_metadata,
)
from tests.helpers import failure_messages, run_reembed
from tests.helpers import summary_of as reembed_summary
from tests.pipelines.test_drift_job import run_sync
from tests.pipelines.test_drift_job import summary_of as sync_summary
from tests.support.automem_fixture import DIM, MODEL, load_fixture, snapshot
from tests.support.embedding_models import model_vectors
from tests.support.enrichment import enrich

ZERO_DRIFT = {
    "missing_count": 0,
    "orphaned_count": 0,
    "stale_vector_count": 0,
    "payload_drift_count": 0,
    "dimension_mismatch": False,
    "identity_mismatch": False,
}


def drift_counts(summary: dict) -> dict:
    return {k: summary[k] for k in ZERO_DRIFT}


def openai_settings(make_settings, server, model: str):
    """An OpenAI-compatible endpoint (the local wire-protocol server) with this model, 1024-d."""
    return make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=server.base_url,
        EMBEDDING_MODEL=model,
        VECTOR_SIZE=str(DIM),
        EMBEDDING_MAX_RETRIES="0",
    )


@pytest.fixture
def automem_env(make_settings, fake_openai):
    """AutoMem's configuration for the fixture: an OpenAI-compatible endpoint, its default
    model and dimension (here the local server speaking the OpenAI wire protocol)."""
    settings = openai_settings(make_settings, fake_openai, MODEL)
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        store = load_fixture(graph, vectors)
        yield settings, resources, graph, vectors, store


def test_dry_run_on_the_untouched_automem_store_finds_no_drift(automem_env, fake_openai):
    settings, resources, graph, vectors, store = automem_env
    before = snapshot(graph, vectors)
    summary = sync_summary(run_sync(settings, resources, dry_run=True))
    assert summary["status"] == "dry_run"
    assert (summary["falkordb_count"], summary["qdrant_count"]) == (200, 200)
    assert drift_counts(summary) == ZERO_DRIFT
    # 49 nodes were recalled after their point was written: last_accessed differs, not drift
    nodes = {n["id"]: n for n in store.nodes}
    recalled = [
        p for p in store.points if p["payload"]["last_accessed"] != nodes[p["id"]]["last_accessed"]
    ]
    assert len(recalled) == 49
    assert summary["embedding_identity"]["recorded"] is None  # nothing checked yet
    assert fake_openai.state.requests == []  # a dry run never embeds
    assert snapshot(graph, vectors) == before  # and never writes
    # a sync with nothing to repair rewrites no payload either; it checks and records the
    # collection's identity once (a few texts embedded), as every writer does first
    assert sync_summary(run_sync(settings, resources))["status"] == "already_synced"
    after = snapshot(graph, vectors)
    assert {k: after[k] for k in ("nodes", "relationships", "points")} == {
        k: before[k] for k in ("nodes", "relationships", "points")
    }
    assert vectors.collection_metadata()[IDENTITY_KEY]["status"] == "verified"
    assert 0 < provider_texts(fake_openai) <= 32


def test_enrichment_of_automem_memories_leaves_no_drift(automem_env):
    settings, resources, graph, vectors, store = automem_env
    ids = store.ids[:40]
    summary = enrich(settings, ids, forced=True)
    assert summary["enriched"] == 40 and summary["failed"] == 0
    after = sync_summary(run_sync(settings, resources, dry_run=True))
    assert drift_counts(after) == ZERO_DRIFT
    # what it changed on the nodes reached the payloads (the mirrored fields only)
    points = vectors.retrieve(ids, with_payload=True)
    props = graph.fetch_properties(ids)
    for mid in ids:
        payload, node = points[mid].payload, props[mid]
        assert payload["tags"] == node["tags"] and payload["tag_prefixes"] == node["tag_prefixes"]
        assert payload["metadata"] == parse_metadata(node["metadata"])
        assert (
            "enriched_at" not in payload and "processed" not in payload and "summary" not in payload
        )
    assert set(COMPARED_FIELDS) >= {"tags", "tag_prefixes", "metadata"}
    # and so does a second, non-forced pass over every memory (the sensor's kind of run)
    enrich(settings, store.ids)
    assert drift_counts(sync_summary(run_sync(settings, resources, dry_run=True))) == ZERO_DRIFT
    assert IDENTITY_KEY not in vectors.collection_metadata()  # enrichment never embeds


def provider_texts(server) -> int:
    return sum(len(r.texts) for r in server.state.requests)


def test_incremental_reembed_adopts_every_automem_point_with_one_identity_check(
    automem_env, fake_openai
):
    settings, resources, graph, vectors, store = automem_env
    before = snapshot(graph, vectors)
    summary = reembed_summary(run_reembed(settings, resources))
    assert summary["status"] == "complete"
    assert (summary["processed"], summary["adopted"], summary["failed"]) == (0, 200, 0)
    assert summary["skipped"] == 200 and summary["total"] == 200
    assert len(fake_openai.state.requests) == 1 and provider_texts(fake_openai) <= 32
    assert summary["provider_requests"] == 1 and summary["identity_check_texts"] <= 32
    record = vectors.collection_metadata()[IDENTITY_KEY]
    assert (record["provider"], record["model"], record["dim"], record["status"]) == (
        "openai",
        MODEL,
        DIM,
        "verified",
    )
    assert record["method"] == "sampled" and record["median_cosine"] > 0.9999
    after = snapshot(graph, vectors)
    assert after["nodes"] == before["nodes"] and after["relationships"] == before["relationships"]
    for mid, (payload, vector) in after["points"].items():
        old_payload, old_vector = before["points"][mid]
        assert vector == old_vector  # the vectors are AutoMem's, untouched
        new = json.loads(payload)
        assert {k: v for k, v in new.items() if k not in STAMP_KEYS} == json.loads(old_payload)
        assert new["embedding_model"] == MODEL and new["embedding_dim"] == DIM
    assert drift_counts(sync_summary(run_sync(settings, resources, dry_run=True))) == ZERO_DRIFT
    # the next incremental run reads the record and the stamps: no provider call at all
    fake_openai.reset()
    again = reembed_summary(run_reembed(settings, resources))
    assert (again["processed"], again["skipped_unchanged"], again["adopted"]) == (0, 200, 0)
    assert fake_openai.state.requests == []


def test_points_automem_writes_later_are_checked_before_adoption(automem_env, fake_openai):
    settings, resources, graph, vectors, store = automem_env
    reembed_summary(run_reembed(settings, resources))  # identity recorded, all adopted
    # AutoMem writes 20 new memories with its model, and 5 with another one of the same size
    fresh = [
        dict(n, id=str(uuid.uuid4()), content=f"Later note {i}: {n['content']}")
        for i, n in enumerate(store.nodes[:25])
    ]
    graph.upsert_memories(fresh)
    texts = [n["content"] for n in fresh]
    vecs = np.vstack(
        [model_vectors(texts[:20], MODEL, DIM), model_vectors(texts[20:], "other-model", DIM)]
    )
    vectors.upsert(
        [n["id"] for n in fresh],
        vecs,
        [{"content": n["content"], "tags": n["tags"]} for n in fresh],
    )
    fake_openai.reset()
    summary = reembed_summary(run_reembed(settings, resources))
    # all 25 were few enough to check each: 20 adopted, the 5 of another model embedded again
    assert (summary["adopted"], summary["processed"], summary["failed"]) == (20, 5, 0)
    assert summary["identity_check_texts"] == 25
    assert provider_texts(fake_openai) == 25 + 5
    stamped = vectors.retrieve([n["id"] for n in fresh[20:]], with_vectors=True)
    for n, vec in zip(fresh[20:], model_vectors(texts[20:], MODEL, DIM)):
        assert np.allclose(stamped[n["id"]].vector, vec, atol=1e-5)  # now the collection's model
    # a batch written mostly by another model is refused before anything is written
    others = [
        dict(n, id=str(uuid.uuid4()), content=f"Other model note {i}")
        for i, n in enumerate(store.nodes[:10])
    ]
    graph.upsert_memories(others)
    vectors.upsert(
        [n["id"] for n in others],
        model_vectors([n["content"] for n in others], "other-model", DIM),
        [{"content": n["content"]} for n in others],
    )
    before = snapshot(graph, vectors)
    result = run_reembed(settings, resources, raise_on_error=False)
    assert not result.success and "another embedding" in failure_messages(result)
    assert snapshot(graph, vectors) == before


@pytest.mark.parametrize("force", [False, True])
def test_another_model_of_the_same_dimension_is_refused_before_any_write(
    make_settings, fake_openai, force
):
    settings = openai_settings(make_settings, fake_openai, "text-embedding-3-large")
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        load_fixture(graph, vectors)
        before = snapshot(graph, vectors)
        result = run_reembed(settings, resources, raise_on_error=False, force=force)
        assert not result.success
        message = failure_messages(result)
        assert "openai:text-embedding-3-large (1024-d)" in message  # what is configured
        assert "median cosine" in message and "replace_model_in_place" in message  # found, how
        assert provider_texts(fake_openai) <= 32  # only the identity check was paid
        assert snapshot(graph, vectors) == before  # byte-identical: not even a record
        # a sync checks the identity before it would repair anything, and refuses too
        synced = run_sync(settings, resources, raise_on_error=False)
        assert not synced.success and "another embedding" in "\n".join(
            failure_messages(synced).splitlines()
        )
        assert snapshot(graph, vectors) == before
        assert sync_summary(run_sync(settings, resources, dry_run=True))["status"] == "dry_run"


def test_replace_in_place_is_explicit_and_finishes_with_the_new_model(make_settings, fake_openai):
    settings = openai_settings(make_settings, fake_openai, "text-embedding-3-large")
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        store = load_fixture(graph, vectors)
        summary = reembed_summary(run_reembed(settings, resources, replace_model_in_place=True))
        assert (summary["processed"], summary["adopted"], summary["failed"]) == (200, 0, 0)
        record = vectors.collection_metadata()[IDENTITY_KEY]
        assert record["model"] == "text-embedding-3-large" and record["status"] == "verified"
        assert (
            record["replacing"] is None or record["replacing"]["model"] != "text-embedding-3-large"
        )
        points = vectors.retrieve(store.ids[:5], with_vectors=True)
        expected = model_vectors(
            [points[m].payload["content"] for m in store.ids[:5]], "text-embedding-3-large", DIM
        )
        for mid, vec in zip(store.ids[:5], expected):
            assert np.allclose(points[mid].vector, vec, atol=1e-5)
        assert drift_counts(sync_summary(run_sync(settings, resources, dry_run=True))) == ZERO_DRIFT


def test_memory_enriched_before_its_vector_gets_similar_to_once_embedded(automem_env, fake_openai):
    settings, resources, graph, vectors, store = automem_env
    # X: AutoMem stored it but its point never got written; Y: its content changed since
    x, y = store.ids[0], store.ids[1]
    graph.query("MATCH (m:Memory)-[r:SIMILAR_TO]-(o) WHERE m.id IN $ids DELETE r", {"ids": [x, y]})
    vectors.client.delete(vectors.collection, points_selector=[x])
    assert enrich(settings, [x], forced=True)["no_vector"] == 1
    assert not similar_edges(graph, x) and graph.fetch_properties([x])[x][SIMILAR_PENDING] is True
    synced = sync_summary(run_sync(settings, resources))  # the sync's repair embeds X
    assert synced["missing_synced"] == 1
    assert_linked(graph, x)

    graph.query("MATCH (m:Memory {id: $id}) SET m.content = m.content + ' (edited)'", {"id": y})
    assert enrich(settings, [y], forced=True)["no_vector"] == 1  # its vector is stale
    assert not [e for e in similar_edges(graph, y) for b in e if b != x]
    summary = reembed_summary(run_reembed(settings, resources))  # re-embed writes Y's vector
    assert summary["processed"] == 1
    assert_linked(graph, y)
    assert drift_counts(sync_summary(run_sync(settings, resources, dry_run=True))) == ZERO_DRIFT


def assert_linked(graph, mid: str) -> None:
    out, back = similar_edges(graph, mid)
    assert out and out == back  # both directions, same neighbours
    node = graph.fetch_properties([mid])[mid]
    assert SIMILAR_PENDING not in node
    neighbours = parse_metadata(node["metadata"])["enrichment"]["semantic_neighbors"]
    assert sorted(n["id"] for n in neighbours) == out


def similar_edges(graph, mid: str):
    out = sorted(
        b
        for (b,) in graph.query(
            "MATCH (a:Memory {id: $id})-[:SIMILAR_TO]->(b) RETURN b.id", {"id": mid}
        )
    )
    back = sorted(
        b
        for (b,) in graph.query(
            "MATCH (a:Memory {id: $id})<-[:SIMILAR_TO]-(b) RETURN b.id", {"id": mid}
        )
    )
    return (out, back) if out or back else ()


@pytest.mark.parametrize("wire", ["voyage", "ollama"])
def test_automems_other_providers_adopt_its_points_over_their_own_protocol(make_settings, wire):
    """An AutoMem environment on Voyage or Ollama (here their wire protocols, playing the model
    that wrote the fixture) selects the same provider, model and dimension, and adopts."""
    from tests.support.ollama_server import OllamaServer
    from tests.support.voyage_server import VoyageEmbeddingsServer

    server = (
        VoyageEmbeddingsServer() if wire == "voyage" else OllamaServer(default_dim=DIM)
    ).start()
    try:
        env = (
            {"VOYAGE_API_KEY": "voyage-test-key", "VOYAGE_BASE_URL": server.base_url}
            if wire == "voyage"
            else {"OLLAMA_BASE_URL": server.base_url}
        )
        settings = make_settings(EMBEDDING_PROVIDER="auto", VECTOR_SIZE=str(DIM), **env)
        assert settings.embedding.provider == wire
        assert settings.embedding.model == ("voyage-4" if wire == "voyage" else "nomic-embed-text")
        resources = build_resources(settings, from_env=False)
        with (
            resources["falkordb"].get_store() as graph,
            resources["qdrant"].open_store() as vectors,
        ):
            load_fixture(graph, vectors)
            summary = reembed_summary(run_reembed(settings, resources))
            assert (summary["adopted"], summary["processed"], summary["failed"]) == (200, 0, 0)
            assert 0 < provider_texts(server) <= 32
            record = vectors.collection_metadata()[IDENTITY_KEY]
            assert (record["provider"], record["status"]) == (wire, "verified")
    finally:
        server.stop()
