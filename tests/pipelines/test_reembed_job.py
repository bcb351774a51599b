"""The re-embed job on real stores: embedded FalkorDB server + qdrant-client local mode."""

from __future__ import annotations

import dagster as dg
import numpy as np
import pytest
from qdrant_client import models

from automem_pipelines.constants import VECTOR_ASSET_KEY
from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain import reembed
from automem_pipelines.domain.memory import MIRRORED_FIELDS, content_hash, parse_metadata
from automem_pipelines.resources import QdrantResource
from automem_pipelines.stores.vectors import VectorStore, VectorStoreUnavailableError
from tests.helpers import failure_messages, load_sample, new_id, run_reembed, summary_of


def all_points(store: VectorStore, with_vectors: bool = False) -> dict[str, models.Record]:
    return {
        str(r.id): r
        for page in store.scroll(page=1000, with_payload=True, with_vectors=with_vectors)
        for r in page
    }


def test_sample_store_every_point_with_every_mirrored_property(settings, graph, vector_store):
    rows = load_sample(graph, 300)
    result = run_reembed(settings, batch_size=16)
    summary = summary_of(result)
    assert summary["status"] == "complete"
    assert (summary["processed"], summary["failed"], summary["skipped"], summary["total"]) == (
        300,
        0,
        0,
        300,
    )
    assert summary["batch_size"] == 16 and summary["metadata_preserved"] is True
    assert summary["provider_requests"] == sum(-(-len(c) // 16) for c in [rows])  # 19 requests

    points = all_points(vector_store, with_vectors=True)
    assert set(points) == {r["id"] for r in rows}
    assert vector_store.collection_dim() == 256
    for row in rows:
        point = points[row["id"]]
        assert len(point.vector) == 256 and np.isclose(np.linalg.norm(point.vector), 1.0, atol=1e-3)
        payload = point.payload
        for key, value in row.items():
            if key in MIRRORED_FIELDS:
                expected = parse_metadata(value) if key == "metadata" else value
                assert payload[key] == expected, key
            else:  # node-only properties never reach a payload
                assert key not in payload, key
        assert {"content", "tags", "tag_prefixes", "metadata", "importance"} <= set(payload)
        assert payload["content_hash"] == content_hash(row["content"])
        assert payload["embedding_provider"] == "local" and payload["embedding_dim"] == 256

    # The run recorded a materialization of the collection with the totals.
    mats = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION
    ]
    assert [m.asset_key for m in mats] == [dg.AssetKey(VECTOR_ASSET_KEY)]
    assert mats[0].materialization.metadata["processed"].value == 300


def test_vectors_are_semantic_and_match_provider(settings, graph, vector_store):
    ids = [new_id() for _ in range(3)]
    graph.upsert_memories(
        [
            {
                "id": ids[0],
                "content": "The deploy to production failed because the database migration timed out",
                "tags": [],
            },
            {
                "id": ids[1],
                "content": "Production release broke after a slow schema migration",
                "tags": [],
            },
            {
                "id": ids[2],
                "content": "Grandma's apple pie recipe needs cinnamon and brown sugar",
                "tags": [],
            },
        ]
    )
    run_reembed(settings)
    vecs = {
        pid: np.array(r.vector) for pid, r in vector_store.retrieve(ids, with_vectors=True).items()
    }
    related = float(vecs[ids[0]] @ vecs[ids[1]])
    unrelated = float(vecs[ids[0]] @ vecs[ids[2]])
    assert related > unrelated + 0.3


def test_unchanged_memories_are_skipped_and_changed_ones_reembedded(settings, graph, vector_store):
    rows = load_sample(graph, 120)
    run_reembed(settings)
    before = all_points(vector_store, with_vectors=True)

    changed = rows[5]["id"]
    graph.query(
        "MATCH (m:Memory {id: $id}) SET m.content = $c",
        {"id": changed, "c": "A completely new text about sailing boats in Lisbon"},
    )
    summary = summary_of(run_reembed(settings))
    assert (summary["processed"], summary["skipped"], summary["skipped_unchanged"]) == (1, 119, 119)
    assert summary["provider_requests"] == 1

    after = all_points(vector_store, with_vectors=True)
    assert after[changed].payload["content"].startswith("A completely new text")
    assert after[changed].payload["content_hash"] == content_hash(after[changed].payload["content"])
    assert not np.allclose(after[changed].vector, before[changed].vector)
    other = rows[6]["id"]
    assert after[other].payload["embedded_at"] == before[other].payload["embedded_at"]


def test_force_reembeds_everything(settings, graph):
    load_sample(graph, 80)
    run_reembed(settings)
    summary = summary_of(run_reembed(settings, force=True))
    assert (summary["processed"], summary["skipped"], summary["total"]) == (80, 0, 80)


def test_limit_takes_the_newest_memories_with_content(settings, graph, vector_store):
    rows = load_sample(graph, 60)
    empty = new_id()
    graph.upsert_memories([{"id": empty, "content": "", "timestamp": "2999-01-01T00:00:00+00:00"}])
    summary = summary_of(run_reembed(settings, limit=10))
    assert (summary["processed"], summary["total"]) == (10, 10)
    newest = sorted(rows, key=lambda r: r["timestamp"], reverse=True)[:10]
    assert set(all_points(vector_store)) == {r["id"] for r in newest}


def test_empty_and_null_content_is_skipped_and_counted(settings, graph, vector_store):
    ids = [new_id() for _ in range(4)]
    graph.upsert_memories(
        [
            {"id": ids[0], "content": "Real text about Kubernetes upgrades"},
            {"id": ids[1], "content": ""},
            {"id": ids[2], "content": "   "},
            {"id": ids[3], "type": "Context"},  # content missing entirely
        ]
    )
    summary = summary_of(run_reembed(settings, force=True))
    assert (
        summary["processed"],
        summary["skipped"],
        summary["skipped_empty"],
        summary["total"],
    ) == (1, 3, 3, 4)
    assert set(all_points(vector_store)) == {ids[0]}


def test_payload_field_only_qdrant_had_survives(settings, graph, vector_store):
    rows = load_sample(graph, 20)
    run_reembed(settings)
    target = rows[0]["id"]
    vector_store.set_payload(target, {"viewer_pin": True, "relevance_score": 0.77})
    graph.query(
        "MATCH (m:Memory {id: $id}) SET m.content = 'Changed content about Redis', "
        "m.tags = ['changed'], m.t_invalid = '2030-01-01T00:00:00+00:00'",
        {"id": target},
    )
    run_reembed(settings)
    payload = vector_store.payloads([target])[target]
    assert payload["viewer_pin"] is True and payload["relevance_score"] == 0.77
    assert payload["tags"] == ["changed"] and payload["tag_prefixes"] == rows[0]["tag_prefixes"]
    assert payload["t_invalid"] == "2030-01-01T00:00:00+00:00"
    assert payload["content"] == "Changed content about Redis"


@pytest.mark.parametrize(
    ("config", "field", "allowed"),
    [
        ({"batch_size": 0}, "batch_size", "from 1 to 2048"),
        ({"batch_size": 2049}, "batch_size", "from 1 to 2048"),
        ({"batch_size": -5}, "batch_size", "from 1 to 2048"),
        ({"limit": 0}, "limit", "of at least 1"),
        ({"limit": -3}, "limit", "of at least 1"),
    ],
)
def test_out_of_range_config_fails_before_any_write(
    settings, graph, vector_store, config, field, allowed
):
    load_sample(graph, 10)
    # The run-config helper refuses it first (what schedules, the sensor and the API use) ...
    with pytest.raises(ValueError, match=f"{field} must be an integer {allowed}"):
        run_reembed(settings, **config)
    # ... and so does the job itself when handed raw run config (the Dagster UI's launchpad).
    job = build_definitions(settings).get_job_def("reembed_job")
    result = job.execute_in_process(
        run_config={"ops": {"enumerate_memories": {"config": config}}},
        resources=build_resources(settings, from_env=False),
        raise_on_error=False,
    )
    assert not result.success
    assert f"{field} must be an integer {allowed}" in failure_messages(result)
    assert vector_store.collection_dim() is None  # nothing written, not even the collection


@pytest.mark.parametrize(
    "config",
    [{"batch_size": "abc"}, {"force": "yes"}, {"limit": "ten"}, {"batch_sise": 10}],
)
def test_wrongly_typed_or_unknown_config_is_rejected_by_dagster(settings, config):
    job = build_definitions(settings).get_job_def("reembed_job")
    with pytest.raises(dg.DagsterInvalidConfigError) as info:
        job.execute_in_process(
            run_config={"ops": {"enumerate_memories": {"config": config}}},
            resources=build_resources(settings, from_env=False),
        )
    assert next(iter(config)) in str(info.value)


def test_dimension_mismatch_stops_before_any_write(settings, graph, vector_store):
    load_sample(graph, 10)
    vector_store.client.create_collection(
        vector_store.collection,
        vectors_config=models.VectorParams(size=384, distance=models.Distance.COSINE),
    )
    result = run_reembed(settings, raise_on_error=False)
    assert not result.success
    message = failure_messages(result)
    assert "384" in message and "256" in message and "re-embed" in message
    assert vector_store.count() == 0
    # Not retried: a mismatch is not transient.
    retries = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    assert retries == []


def test_openai_provider_batch_failure_is_counted_and_rest_written(
    make_settings, graph_factory, fake_openai, vectors_factory
):
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MAX_RETRIES="1",
        VECTOR_SIZE="384",
    )
    graph = graph_factory(settings)
    ids = [new_id() for _ in range(50)]
    graph.upsert_memories(
        [
            {
                "id": mid,
                "content": f"Note {i} about the Atlas project",
                "timestamp": f"2026-01-01T00:00:{i:02d}",
            }
            for i, mid in enumerate(ids)
        ]
    )
    poisoned = ids[23]
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = 'POISON text'", {"id": poisoned})
    fake_openai.state.fail_marker = "POISON"
    fake_openai.state.fail_status = 500

    summary = summary_of(run_reembed(settings, batch_size=10))
    assert summary["failed"] == 10 and poisoned in summary["failed_ids"]
    assert summary["processed"] == 40 and summary["total"] == 50
    assert "500" in summary["last_error"]
    store = vectors_factory(settings)
    written = set(store.payloads(ids))
    assert len(written) == 40 and poisoned not in written
    assert store.collection_dim() == 384

    # The provider recovers: a rerun (force=false) embeds exactly the failed batch.
    fake_openai.state.fail_marker = None
    fake_openai.state.requests.clear()
    rerun = summary_of(run_reembed(settings, batch_size=10))
    assert (rerun["processed"], rerun["skipped_unchanged"], rerun["failed"]) == (10, 40, 0)
    assert len(fake_openai.state.requests) == 1
    assert len(store.payloads(ids)) == 50


_flaky_state: dict[str, int] = {}


class FlakyQdrantResource(QdrantResource):
    """The real local-mode store, with its vector writes failing the first `fail_upserts`
    times."""

    fail_upserts: int = 0

    def get_store(self) -> VectorStore:
        store = super().get_store()
        key = self.collection
        real_write = store.write_vectors

        def write_vectors(*args, **kwargs):
            if _flaky_state.get(key, 0) < self.fail_upserts:
                _flaky_state[key] = _flaky_state.get(key, 0) + 1
                raise VectorStoreUnavailableError(f"injected outage of {self.collection}")
            return real_write(*args, **kwargs)

        store.write_vectors = write_vectors
        return store


def _flaky_resources(settings, fail_upserts: int) -> dict:
    res = build_resources(settings, from_env=False)
    q = res["qdrant"]
    res["qdrant"] = FlakyQdrantResource(
        **{name: getattr(q, name) for name in type(q).model_fields}, fail_upserts=fail_upserts
    )
    _flaky_state.pop(q.collection, None)
    return res


@pytest.mark.parametrize("outage", ["short", "longer"])
def test_qdrant_outage_during_a_write_loses_nothing(
    outage, make_settings, graph_factory, fake_openai, monkeypatch
):
    """A short outage is retried inside the step with the window's vectors in hand (embeddings
    paid once); a longer one fails the step, Dagster retries it, and the retry embeds again
    only the window whose write never happened."""
    monkeypatch.setattr(reembed, "WRITE_RETRY_SECONDS", 0.01)
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.base_url,
        VECTOR_SIZE="256",
    )
    graph = graph_factory(settings)
    load_sample(graph, 40)
    failures = reembed.WRITE_ATTEMPTS - 1 if outage == "short" else reembed.WRITE_ATTEMPTS
    result = run_reembed(
        settings, resources=_flaky_resources(settings, fail_upserts=failures), batch_size=8
    )
    summary = summary_of(result)
    assert (summary["processed"], summary["failed"]) == (40, 0)
    retries = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY
    ]
    if outage == "short":
        assert retries == []
        assert len(fake_openai.state.requests) == 5  # embeddings were paid for once
    else:
        assert [e.step_key for e in retries] == ["reembed_chunk[chunk_000]"]
        assert len(fake_openai.state.requests) == 10  # the one window, embedded twice


def test_qdrant_down_fails_the_run_and_a_rerun_completes_with_nothing_lost(
    settings, graph, vector_store
):
    rows = load_sample(graph, 60)
    vector_store.ensure_collection(256)

    run_reembed(settings, limit=1)
    newest = max(rows, key=lambda r: r["timestamp"])["id"]
    vector_store.set_payload(newest, {"only_in_qdrant": "keep me"})

    failed = run_reembed(
        settings,
        resources=_flaky_resources(settings, fail_upserts=100),
        force=True,
        raise_on_error=False,
    )
    assert not failed.success
    assert "injected outage" in failure_messages(failed)

    summary = summary_of(run_reembed(settings))
    assert summary["failed"] == 0 and summary["processed"] + summary["skipped_unchanged"] == 60
    points = all_points(vector_store)
    assert set(points) == {r["id"] for r in rows}
    assert points[newest].payload["only_in_qdrant"] == "keep me"
    # Re-running does not duplicate anything: point id = memory id.
    summary_of(run_reembed(settings, force=True))
    assert vector_store.count() == 60


@pytest.mark.slow
def test_25000_memories_are_reembedded_whole(make_settings, graph_factory, vectors_factory):
    settings = make_settings(QDRANT_URL=":memory:")
    graph = graph_factory(settings)
    store = vectors_factory(settings)  # the in-memory store lives while it is open
    rows = load_sample(graph, 25_000, seed=11)
    summary = summary_of(run_reembed(settings, batch_size=256))
    assert (summary["processed"], summary["total"], summary["failed"]) == (25_000, 25_000, 0)
    assert store.count() == 25_000
    ids = {str(r.id) for page in store.scroll(page=5000) for r in page}
    assert ids == {r["id"] for r in rows}
    # Stamps are in place, so an incremental run touches nothing.
    again = summary_of(run_reembed(settings, batch_size=256))
    assert (again["processed"], again["skipped_unchanged"], again["provider_requests"]) == (
        0,
        25_000,
        0,
    )
