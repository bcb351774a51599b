"""The drift-sync job against real stores: FalkorDB (embedded server) and Qdrant local mode."""

from __future__ import annotations

import json
import uuid

import dagster as dg
import numpy as np
import pytest

from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain.embeddings import local_provider
from automem_pipelines.domain.memory import (
    content_hash,
    make_stamps,
    merged_payload,
    node_props_for_write,
    parse_metadata,
)
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.run_config import sync_run_config
from automem_pipelines.stores.graph import GraphStore
from automem_pipelines.stores.vectors import VectorStore

SUMMARY_OP = "summarize_sync"


def run_sync(settings, resources, raise_on_error=True, **config) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).get_job_def("drift_sync_job")
    return job.execute_in_process(
        run_config=sync_run_config(**config), resources=resources, raise_on_error=raise_on_error
    )


def error_text(result: dg.ExecuteInProcessResult) -> str:
    """Every message of the step failures, causes included (what the UI shows)."""
    parts = []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.event_specific_data.error
            while error is not None:
                parts.append(error.message)
                error = error.cause or error.context
    return "\n".join(parts)


def summary_of(result: dg.ExecuteInProcessResult) -> dict:
    assert result.success
    return result.output_for_node(SUMMARY_OP)


def seed_graph(graph: GraphStore, count: int, seed: int = 11) -> list[dict]:
    memories = [node_props_for_write(m) for m in sample_memories(count, seed=seed)]
    graph.ensure_indexes()
    graph.upsert_memories(memories)
    return memories


def seed_points(vectors: VectorStore, memories: list[dict], settings=None) -> None:
    """Points exactly as the re-embed path writes them (merged payload + stamps of the
    configured embedding), with the local model's vectors."""
    provider, model, dim = (
        ("local", "minilm-l6-static", 256)
        if settings is None
        else (settings.embedding.provider, settings.embedding.model, settings.embedding.vector_size)
    )
    vectors.ensure_collection(dim)
    embedded = local_provider().embed([m["content"] for m in memories]).vectors
    payloads = [
        merged_payload(None, m, make_stamps(content_hash(m["content"]), provider, model, dim))
        for m in memories
    ]
    vectors.upsert([m["id"] for m in memories], embedded, payloads)


def graph_snapshot(graph: GraphStore) -> dict[str, dict]:
    return {row[0]: dict(row[1]) for row in graph.scan("m.id, properties(m)")}


def vector_snapshot(vectors: VectorStore) -> dict[str, tuple]:
    if vectors.collection_dim() is None:
        return {}
    out = {}
    for page in vectors.scroll(page=1000, with_payload=True, with_vectors=True):
        for rec in page:
            out[str(rec.id)] = (json.dumps(rec.payload, sort_keys=True), list(rec.vector))
    return out


def test_missing_detected_repaired_then_synced(settings, resources, graph, vector_store):
    memories = seed_graph(graph, 30)
    result = run_sync(settings, resources)
    summary = summary_of(result)
    assert summary["status"] == "complete"
    assert summary["missing_count"] == 30 and summary["missing_synced"] == 30
    assert summary["synced"] == 30 and summary["failed"] == 0
    assert vector_store.count() == 30
    payload = vector_store.payloads([memories[0]["id"]])[memories[0]["id"]]
    assert payload["content_hash"] == content_hash(memories[0]["content"])
    assert payload["embedding_provider"] == "local" and payload["embedding_dim"] == 256
    [materialization] = result.asset_materializations_for_node("summarize_sync")
    assert materialization.asset_key == dg.AssetKey(["automem", "qdrant_collection"])
    assert materialization.metadata["drift_repaired"].value == 30
    [observation] = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert observation.metadata["drift_missing_vectors"].value == 30
    [output] = [
        e
        for e in result.all_events
        if e.event_type_value == "STEP_OUTPUT" and e.step_key == "summarize_sync"
    ]
    assert output.event_specific_data.metadata["summary"].value == summary  # read by the API
    again = summary_of(run_sync(settings, resources))
    assert again["status"] == "already_synced"
    assert all(
        again[f"{k}_count"] == 0 for k in ("missing", "orphaned", "stale_vector", "payload_drift")
    )


@pytest.fixture
def synced(settings, resources, graph, vector_store) -> list[dict]:
    """40 memories in both stores, in sync."""
    memories = seed_graph(graph, 40)
    seed_points(vector_store, memories)
    assert summary_of(run_sync(settings, resources, dry_run=True))["status"] == "dry_run"
    return memories


def test_orphans_untouched_without_recover_then_restored_with_properties(
    settings, resources, graph, vector_store, synced
):
    gone = synced[5:8]
    ids = [m["id"] for m in gone]
    graph.query("MATCH (m:Memory) WHERE m.id IN $ids DELETE m", {"ids": ids})

    summary = summary_of(run_sync(settings, resources))
    assert summary["status"] == "already_synced"  # orphans alone need no repair
    assert summary["orphaned_count"] == 3 and sorted(summary["orphaned_sample"]) == sorted(ids)
    assert vector_store.count() == 40  # never deleted
    assert graph.fetch(ids, "ID(m)") == {}  # and not restored

    summary = summary_of(run_sync(settings, resources, recover_orphans=True))
    assert summary["status"] == "complete" and summary["orphans_recovered"] == 3
    assert summary["falkordb_count"] == 40
    restored = graph.fetch_properties(ids)
    for original in gone:
        node = restored[original["id"]]
        for key in (
            "content",
            "tags",
            "tag_prefixes",
            "importance",
            "timestamp",
            "type",
            "confidence",
            "t_valid",
            "updated_at",
            "last_accessed",
        ):
            assert node[key] == original[key], key
        assert parse_metadata(node["metadata"]) == parse_metadata(original["metadata"])
        assert not any(k.startswith("embedding_") or k == "content_hash" for k in node)
        assert "processed" not in node  # node-only: not in payloads, so enriched again
    assert vector_store.count() == 40
    again = summary_of(run_sync(settings, resources, recover_orphans=True))
    assert again["status"] == "already_synced" and again["orphaned_count"] == 0


def test_stale_vector_detected_and_reembedded(settings, resources, graph, vector_store, synced):
    changed = synced[0]["id"], synced[20]["id"]
    graph.upsert_memories(
        {"id": i, "content": "Rewritten: " + m["content"]}
        for m in synced
        for i in changed
        if m["id"] == i
    )
    other_model = synced[39]["id"]
    vector_store.set_payload(
        other_model,
        make_stamps(content_hash(synced[39]["content"]), "local", "an-older-model", 256),
    )

    summary = summary_of(run_sync(settings, resources, dry_run=True))
    assert summary["stale_vector_count"] == 3
    assert sorted(summary["stale_vector_sample"]) == sorted([*changed, other_model])
    assert summary["payload_drift_count"] == 0  # a stale point is repaired whole

    summary = summary_of(run_sync(settings, resources))
    assert summary["status"] == "complete" and summary["stale_vector_synced"] == 3
    contents = graph.fetch_contents([*changed, other_model])
    records = vector_store.retrieve([*changed, other_model], with_vectors=True)
    provider = local_provider()
    for mid, content in contents.items():
        payload = records[mid].payload
        assert payload["content"] == content
        assert payload["content_hash"] == content_hash(content)
        assert payload["embedding_model"] == provider.model
        expected = provider.embed([content]).vectors[0]
        assert np.allclose(records[mid].vector, expected / np.linalg.norm(expected), atol=1e-5)
    assert summary_of(run_sync(settings, resources))["status"] == "already_synced"


def test_payload_drift_rewritten_without_embedding(make_settings, fake_openai, graph_vector_openai):
    settings, resources, graph, vectors, memories = graph_vector_openai
    a, b, c, d = (memories[i]["id"] for i in (1, 2, 3, 4))
    graph.query(
        "MATCH (m:Memory {id: $id}) SET m.tags = ['moved', 'project:x'], m.importance = 0.99",
        {"id": a},
    )
    graph.query("MATCH (m:Memory {id: $id}) SET m.archived = true", {"id": b})
    # node-only properties and fields AutoMem never reads back are not drift
    graph.query(
        "MATCH (m:Memory {id: $id}) SET m.summary = 'new', m.processed = true, m.custom_field = 'x', m.last_accessed = '2030-01-01', m.relevance_score = 0.01",
        {"id": d},
    )
    vectors.set_payload(c, {"metadata": {"source": "tampered"}, "extra_only_on_point": 1})
    before = vectors.retrieve([a, b, c], with_vectors=True)
    fake_openai.reset()

    summary = summary_of(run_sync(settings, resources, dry_run=True))
    assert summary["payload_drift_count"] == 3 and summary["stale_vector_count"] == 0
    summary = summary_of(run_sync(settings, resources))
    assert summary["status"] == "complete" and summary["payload_drift_synced"] == 3
    assert fake_openai.state.requests == []  # no provider cost

    after = vectors.retrieve([a, b, c], with_vectors=True)
    assert (
        after[a].payload["tags"] == ["moved", "project:x"]
        and after[a].payload["importance"] == 0.99
    )
    assert after[b].payload["archived"] is True
    assert "summary" not in after[b].payload and "processed" not in after[b].payload
    assert after[c].payload["metadata"] == parse_metadata(memories[3]["metadata"])
    assert after[c].payload["extra_only_on_point"] == 1  # keys only the point has survive
    for mid in (a, b, c):
        assert after[mid].vector == before[mid].vector
        assert after[mid].payload["embedded_at"] == before[mid].payload["embedded_at"]
    assert summary_of(run_sync(settings, resources))["status"] == "already_synced"


@pytest.fixture
def graph_vector_openai(make_settings, fake_openai):
    """A synced store whose configured provider is the fake OpenAI server (to count calls)."""
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MODEL="text-embedding-3-small",
        VECTOR_SIZE="256",
        EMBEDDING_MAX_RETRIES="0",
    )
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        memories = seed_graph(graph, 12)
        assert summary_of(run_sync(settings, resources))["missing_synced"] == 12
        yield settings, resources, graph, vectors, memories


def test_metapattern_excluded_from_accounting(settings, resources, graph, vector_store, synced):
    meta_ids = [str(uuid.uuid4()) for _ in range(3)]
    graph.upsert_memories(
        [
            {"id": mid, "content": f"pattern {i}", "type": "MetaPattern", "cluster_size": 4}
            for i, mid in enumerate(meta_ids)
        ]
    )
    orphan_meta = str(uuid.uuid4())
    vector_store.upsert(
        [orphan_meta],
        np.ones((1, 256), np.float32),
        [{"content": "old meta", "type": "MetaPattern"}],
    )
    summary = summary_of(run_sync(settings, resources))
    assert summary["status"] == "already_synced"
    assert summary["falkordb_count"] == 40 and summary["qdrant_count"] == 40
    assert summary["missing_count"] == 0 and summary["orphaned_count"] == 0
    assert summary["excluded_falkordb_count"] == 3 and summary["excluded_qdrant_count"] == 1
    assert vector_store.retrieve(meta_ids) == {}  # never embedded


def test_dry_run_writes_nothing_and_needs_no_provider(make_settings):
    # A provider that cannot work: an OpenAI endpoint nobody listens on.
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="k",
        OPENAI_BASE_URL="http://127.0.0.1:9/v1",
        VECTOR_SIZE="256",
    )
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        memories = seed_graph(graph, 20)
        seed_points(vectors, memories[:15], settings)  # 5 missing
        ids = [m["id"] for m in memories]
        graph.query("MATCH (m:Memory {id: $id}) DELETE m", {"id": ids[0]})  # orphan
        graph.query("MATCH (m:Memory {id: $id}) SET m.content = 'changed'", {"id": ids[1]})  # stale
        graph.query("MATCH (m:Memory {id: $id}) SET m.importance = 0.01", {"id": ids[2]})  # payload
        graph_before, vectors_before = graph_snapshot(graph), vector_snapshot(vectors)

        summary = summary_of(run_sync(settings, resources, dry_run=True, recover_orphans=True))
        assert summary["status"] == "dry_run"
        assert (summary["falkordb_count"], summary["qdrant_count"]) == (19, 15)
        assert summary["missing_count"] == 5 and summary["orphaned_count"] == 1
        assert summary["stale_vector_count"] == 1 and summary["payload_drift_count"] == 1
        assert sorted(summary["missing_sample"]) == sorted(ids[15:])
        assert summary["orphaned_sample"] == [ids[0]]
        assert graph_snapshot(graph) == graph_before
        assert vector_snapshot(vectors) == vectors_before


def test_dry_run_on_missing_collection_does_not_create_it(settings, resources, graph, vector_store):
    seed_graph(graph, 5)
    summary = summary_of(run_sync(settings, resources, dry_run=True))
    assert summary["missing_count"] == 5 and summary["qdrant_count"] == 0
    assert vector_store.collection_dim() is None


def test_already_synced(settings, resources, synced):
    summary = summary_of(run_sync(settings, resources))
    assert summary["status"] == "already_synced" and summary["synced"] == 0
    assert summary["falkordb_count"] == 40 and summary["qdrant_count"] == 40


def test_dimension_mismatch_refused(settings, resources, graph, vector_store):
    memories = seed_graph(graph, 6)
    vector_store.ensure_collection(128)
    result = run_sync(settings, resources, raise_on_error=False)
    assert not result.success
    message = error_text(result)
    assert "128-dimensional" in message and "256-dimensional" in message and "re-embed" in message
    assert vector_store.count() == 0 and vector_store.collection_dim() == 128
    stale = next(
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == "stale_vectors"
    )  # reported by the detection step, which succeeded
    assert not stale.passed and stale.metadata["dimension_mismatch"].value is True
    summary = summary_of(run_sync(settings, resources, dry_run=True))
    assert summary["dimension_mismatch"] is True and summary["collection_dim"] == 128
    assert summary["missing_count"] == 6 and len(memories) == 6


def test_provider_failure_counts_failed_and_rerun_finishes(make_settings, fake_openai):
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="k",
        OPENAI_BASE_URL=fake_openai.base_url,
        VECTOR_SIZE="256",
        EMBEDDING_MAX_RETRIES="0",
    )
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        memories = seed_graph(graph, 10)
        poisoned = memories[4]["id"]
        graph.upsert_memories([{"id": poisoned, "content": memories[4]["content"] + " POISON"}])
        fake_openai.state.fail_marker = "POISON"

        summary = summary_of(run_sync(settings, resources, batch_size=1))
        assert summary["status"] == "complete"
        assert summary["missing_synced"] == 9 and summary["failed"] == 1
        assert summary["failed_ids"] == [poisoned]
        assert vectors.count() == 9 and poisoned not in vectors.retrieve([poisoned])

        fake_openai.reset()
        summary = summary_of(run_sync(settings, resources, batch_size=1))
        assert summary["missing_count"] == 1 and summary["missing_synced"] == 1
        assert summary["failed"] == 0 and vectors.count() == 10
        assert summary_of(run_sync(settings, resources))["status"] == "already_synced"


def test_unreachable_store_fails_naming_it_and_writes_nothing(make_settings):
    settings = make_settings(QDRANT_URL="http://127.0.0.1:9")
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph:
        seed_graph(graph, 3)
        before = graph_snapshot(graph)
        result = run_sync(settings, resources, raise_on_error=False, recover_orphans=True)
        assert not result.success
        assert "Qdrant server http://127.0.0.1:9" in error_text(result)
        assert graph_snapshot(graph) == before


def test_bad_run_config_is_a_clear_config_error(settings, resources, graph):
    seed_graph(graph, 2)
    job = build_definitions(settings).get_job_def("drift_sync_job")
    with pytest.raises(dg.DagsterInvalidConfigError) as info:
        job.execute_in_process(
            run_config={"ops": {"detect_drift": {"config": {"dry_run": "yes"}}}},
            resources=resources,
        )
    assert "dry_run" in str(info.value)
    for bad in (0, 4096):
        result = job.execute_in_process(
            run_config={"ops": {"detect_drift": {"config": {"batch_size": bad}}}},
            resources=resources,
            raise_on_error=False,
        )
        assert not result.success
        assert f"batch_size must be an integer from 1 to 2048, got {bad}" in error_text(result)
        assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    with resources["qdrant"].open_store() as vectors:
        assert vectors.collection_dim() is None  # nothing was touched


@pytest.mark.slow
def test_25000_memories_drift_spread_over_the_whole_range_found_exactly(make_settings):
    """Beyond FalkorDB's 10,000-row result cap: every kind found exactly, wherever it lies."""
    settings = make_settings(QDRANT_URL=":memory:")
    resources = build_resources(settings, from_env=False)
    n = 25_000
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        memories = seed_graph(graph, n, seed=25)
        seed_points(vectors, memories)
        ids = [m["id"] for m in memories]
        picks = {
            "missing": [ids[i] for i in range(0, n, 2503)] + [ids[n - 1]],
            "orphaned": [ids[i] for i in range(1250, n, 2500)] + [ids[n - 2]],
            "stale_vector": [ids[i] for i in range(600, n, 2500)] + [ids[n - 3]],
            "payload_drift": [ids[i] for i in range(1900, n, 2500)] + [ids[n - 4]],
        }
        vectors.client.delete(vectors.collection, points_selector=picks["missing"], wait=True)
        graph.query("MATCH (m:Memory) WHERE m.id IN $ids DELETE m", {"ids": picks["orphaned"]})
        by_id = {m["id"]: m for m in memories}  # new values as parameters, not Cypher '+'
        graph.upsert_memories(
            {"id": i, "content": by_id[i]["content"] + " (edited)"} for i in picks["stale_vector"]
        )
        graph.upsert_memories(
            {"id": i, "tags": by_id[i]["tags"] + ["drifted"]} for i in picks["payload_drift"]
        )

        result = run_sync(settings, resources, dry_run=True)
        report = result.output_for_node("detect_drift").report
        for kind, expected in picks.items():
            assert sorted(getattr(report, kind)) == sorted(expected), kind
        summary = summary_of(result)
        assert summary["falkordb_count"] == n - len(picks["orphaned"])
        assert summary["qdrant_count"] == n - len(picks["missing"])

        summary = summary_of(run_sync(settings, resources, batch_size=64, recover_orphans=True))
        assert summary["status"] == "complete" and summary["failed"] == 0
        assert summary["synced"] == sum(len(v) for v in picks.values())
        again = summary_of(run_sync(settings, resources))
        assert again["status"] == "already_synced"
        assert again["falkordb_count"] == n and again["qdrant_count"] == n


@pytest.mark.parametrize(
    ("env", "status", "cron"),
    [
        ({}, dg.DefaultScheduleStatus.RUNNING, "0 * * * *"),
        ({"SYNC_AUTO_REPAIR": "false"}, dg.DefaultScheduleStatus.STOPPED, "0 * * * *"),
        ({"SYNC_CHECK_INTERVAL_SECONDS": "900"}, dg.DefaultScheduleStatus.RUNNING, "*/15 * * * *"),
    ],
)
def test_schedule_interval_and_default_status(make_settings, env, status, cron):
    defs = build_definitions(make_settings(**env))
    schedule = next(s for s in defs.schedules if s.name == "drift_sync_schedule")
    assert schedule.default_status == status and schedule.cron_schedule == cron
    data = schedule.evaluate_tick(dg.build_schedule_context())
    [request] = data.run_requests
    assert request.run_config == sync_run_config(dry_run=False, recover_orphans=False)
    assert request.tags["automem/trigger"] == "schedule"
    dg.validate_run_config(defs.get_job_def("drift_sync_job"), request.run_config)
