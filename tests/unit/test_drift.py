"""Plain drift functions, without Dagster (real stores where a store is involved)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from automem_pipelines.domain.drift import detection, digests, findings, repair
from automem_pipelines.domain.drift.summary import summarize
from automem_pipelines.domain.memory import (
    COMPARED_FIELDS,
    content_hash,
    make_stamps,
    merged_payload,
)
from automem_pipelines.domain.params import ParamError
from automem_pipelines.domain.reembed import CountMismatchError
from automem_pipelines.domain.vector_state import EmbeddingIdentity
from automem_pipelines.run_config import sync_run_config
from automem_pipelines.schedules import interval_cron

SPEC = EmbeddingIdentity("local", "minilm-l6-static", 256)
NODE = {
    "id": str(uuid.uuid4()),
    "content": "Chose Redis for the Atlas queue.",
    "tags": ["project:atlas", "infra/ops"],
    "importance": 1,
    "metadata": '{"source": "cli", "score": 0.1}',
    "timestamp": "2026-01-01T00:00:00+00:00",
}


def stamped_payload(node=NODE, **stamp_overrides):
    stamps = make_stamps(content_hash(node["content"]), SPEC.provider, SPEC.model, SPEC.dim)
    stamps.update(stamp_overrides)
    return merged_payload(None, node, stamps)


def node_digest(node=NODE):
    return digests.expected_digest(node)


def test_canonical_numbers_and_order():
    assert digests.digest({"a": 1, "b": [1.0, "x"]}) == digests.digest({"b": [1, "x"], "a": 1.0})
    assert digests.digest({"a": 0.30000000000000004}) == digests.digest({"a": 0.3})
    assert digests.digest({"a": True}) != digests.digest({"a": 1})
    assert digests.digest({"a": ["x", "y"]}) != digests.digest({"a": ["y", "x"]})


def test_expected_payload_holds_only_the_compared_fields():
    node = {
        **NODE,
        "content_hash": "sha256:x",
        "embedding_dim": 3,
        "processed": True,
        "summary": "s",
        "enriched_at": "2026-01-02",
        "t_valid": "2026-01-01",
        "last_accessed": "2026-02-02",
        "relevance_score": 0.3,
    }
    expected = digests.expected_payload(node)
    assert set(expected) <= set(COMPARED_FIELDS)
    assert expected["metadata"] == {"source": "cli", "score": 0.1}  # JSON string → object
    assert expected["tag_prefixes"] == ["project", "project:atlas", "infra", "infra:ops"]
    assert expected["type"] == "Context" and expected["confidence"] == 0.6  # AutoMem defaults


def test_payload_written_by_reembed_matches_its_node():
    assert digests.payload_fields_digest(stamped_payload()) == node_digest()


def test_only_compared_fields_are_drift():
    fields = node_digest()
    # node-only and not-compared fields, on either side, are never drift
    payload = {
        **stamped_payload(),
        "relevance_score": 0.4,
        "last_accessed": "2027-01-01",
        "t_valid": "x",
        "summary": "only in an old payload",
    }
    assert digests.payload_fields_digest(payload) == fields
    assert (
        node_digest(
            {
                **NODE,
                "processed": True,
                "enriched_at": "now",
                "summary": "s",
                "last_accessed": "2027-05-05",
                "t_valid": "t",
            }
        )
        == fields
    )
    # a compared field missing, changed or only on the point is drift
    del payload["tag_prefixes"]
    assert digests.payload_fields_digest(payload) != fields
    changed = {**stamped_payload(), "metadata": {"source": "api", "score": 0.1}}
    assert digests.payload_fields_digest(changed) != fields
    archived = {**stamped_payload(), "archived": True}
    assert digests.payload_fields_digest(archived) != fields


def test_vector_is_current_by_stamps():
    content = digests.content_digest(NODE["content"])
    assert digests.vector_is_current(stamped_payload(), content, SPEC)
    other_model = make_stamps(content_hash(NODE["content"]), "local", "old", 256)
    assert not digests.vector_is_current(stamped_payload(**other_model), content, SPEC)
    other_dim = make_stamps(content_hash(NODE["content"]), "local", SPEC.model, 1024)
    assert not digests.vector_is_current(stamped_payload(**other_dim), content, SPEC)
    assert not digests.vector_is_current(stamped_payload(), digests.content_digest("other"), SPEC)
    partial = {"content": NODE["content"], "content_hash": content_hash(NODE["content"])}
    assert not digests.vector_is_current(partial, content, SPEC)  # a partial stamp is not current


def test_unstamped_point_is_current_when_its_content_is_the_nodes_unless_distrusted():
    content = digests.content_digest(NODE["content"])
    assert digests.vector_is_current({"content": NODE["content"]}, content, SPEC)
    assert not digests.vector_is_current({"content": NODE["content"]}, content, SPEC, False)
    assert not digests.vector_is_current({"content": "older text"}, content, SPEC)
    assert not digests.vector_is_current({}, content, SPEC)


def test_canonical_id():
    mid = str(uuid.uuid4())
    assert digests.canonical_id(mid.upper()) == mid
    assert digests.canonical_id("memory-1") is None


def test_interval_cron():
    assert interval_cron(3600) == "0 * * * *"
    assert interval_cron(60) == "* * * * *"
    assert interval_cron(900) == "*/15 * * * *"
    assert interval_cron(7 * 60) == "*/6 * * * *"  # never less often than asked
    assert interval_cron(5400) == "0 * * * *"
    assert interval_cron(6 * 3600) == "0 */6 * * *"
    assert interval_cron(86400) == "0 0 * * *"
    assert interval_cron(3 * 86400) == "0 0 */3 * *"


def test_sync_run_config_validates():
    assert sync_run_config() == {
        "ops": {
            "detect_drift": {
                "config": {"batch_size": 32, "dry_run": False, "recover_orphans": False}
            }
        }
    }
    for bad in (
        {"batch_size": 0},
        {"batch_size": 2049},
        {"dry_run": "false"},
        {"recover_orphans": 1},
    ):
        with pytest.raises(ParamError):
            sync_run_config(**bad)


def _report(**kinds) -> findings.DriftReport:
    report = findings.DriftReport(
        falkordb_count=5, qdrant_count=4, vector_size=256, collection_dim=256
    )
    for kind, ids in kinds.items():
        setattr(report, kind, list(ids))
    return report


def test_summary_statuses():
    assert summarize(_report(missing=["a"]), [], True, False, 32)["status"] == "dry_run"
    synced = summarize(_report(orphaned=["o"]), [], False, False, 32)
    assert synced["status"] == "already_synced" and synced["orphaned_count"] == 1
    result = repair.RepairResult("missing", total=2, repaired=1, failed={"b": "boom"})
    done = summarize(_report(missing=["a", "b"]), [result], False, False, 32)
    assert done["status"] == "complete" and done["synced"] == 1 and done["failed"] == 1
    assert done["failed_ids"] == ["b"] and done["qdrant_count"] == 5
    assert done["missing_sample"] == ["a", "b"] and done["last_error"] == "boom"


def test_summary_checks_counts_add_up():
    short = repair.RepairResult("missing", total=3, repaired=1)
    with pytest.raises(CountMismatchError):
        summarize(_report(missing=["a", "b", "c"]), [short], False, False, 32)


def test_detect_reads_only_and_pages_both_stores(settings, graph, vector_store):
    """Small pages on both sides, so several pages are needed; nothing is written."""
    nodes = [{**NODE, "id": str(uuid.uuid4()), "content": f"memory {i}"} for i in range(23)]
    graph.upsert_memories(nodes)
    vector_store.ensure_collection(256)
    keep = nodes[:20]
    payloads = [stamped_payload(n) for n in keep]
    payloads[3]["importance"] = 0.2  # payload drift
    payloads[4]["embedding_stamp"] = "local|minilm-l6-static|256|sha256:" + "0" * 64  # stale
    vector_store.upsert([n["id"] for n in keep], np.ones((20, 256), np.float32), payloads)
    orphan = str(uuid.uuid4())
    vector_store.upsert([orphan], np.ones((1, 256), np.float32), [{"content": "lost"}])

    report = detection.detect(
        graph, vector_store, SPEC, ["MetaPattern"], scroll_page=4, graph_page=3
    )
    assert sorted(report.missing) == sorted(n["id"] for n in nodes[20:])
    assert report.orphaned == [orphan]
    assert report.payload_drift == [keep[3]["id"]] and report.stale_vector == [keep[4]["id"]]
    assert (report.falkordb_count, report.qdrant_count) == (23, 21)
    assert vector_store.count() == 21 and graph.count_memories() == 23


def test_graph_read_handles_unexpected_types_and_unknown_keys(graph):
    odd_types = {"id": str(uuid.uuid4()), "content": 42, "tags": [1, 2], "importance": "high"}
    unknown_key = {"id": str(uuid.uuid4()), "content": "x", "custom": [True], "summary": "s"}
    graph.upsert_memories([odd_types, unknown_key])
    index = detection.index_graph(graph, [])
    for node in (odd_types, unknown_key):
        fields, _ = index.nodes[node["id"]]
        assert fields == digests.expected_digest(node)
    assert index.nodes[odd_types["id"]][1] is None  # a number is not content to embed


def bad_rows(graph) -> dict[str, str]:
    """Nodes no point can belong to: no id, not a UUID, an integer, another spelling, and one
    id shared by two nodes with different content. Returns the duplicated id and a good one."""
    dup, good = str(uuid.uuid4()), str(uuid.uuid4())
    graph.ensure_indexes()
    graph.upsert_memories([{"id": good, "content": "a fine memory", "tags": []}])
    for cypher in (
        "CREATE (:Memory {content: 'no id at all'})",
        "CREATE (:Memory {id: 'not-a-uuid', content: 'x'})",
        "CREATE (:Memory {id: '12345', content: 'y'})",
        "CREATE (:Memory {id: 42, content: 'an integer id'})",
        f"CREATE (:Memory {{id: '{str(uuid.uuid4()).upper()}', content: 'shouting'}})",
        f"CREATE (:Memory {{id: '{dup}', content: 'first of two'}})",
        f"CREATE (:Memory {{id: '{dup}', content: 'second of two'}})",
    ):
        graph.query(cypher)
    return {"dup": dup, "good": good}


def test_invalid_and_duplicate_ids_are_reported_never_compared_or_merged(graph, vector_store):
    ids = bad_rows(graph)
    vector_store.ensure_collection(256)
    stamps = make_stamps(content_hash("first of two"), SPEC.provider, SPEC.model, SPEC.dim)
    vector_store.upsert(
        [ids["dup"]], np.ones((1, 256), np.float32), [{"content": "first of two", **stamps}]
    )
    report = detection.detect(graph, vector_store, SPEC, [])
    findings = report.findings()
    assert findings["duplicate_id_count"] == 1 and findings["duplicate_id_sample"] == [ids["dup"]]
    assert findings["invalid_id_count"] == 5
    assert set(findings["invalid_id_sample"]) >= {"<node without id>", "not-a-uuid", "12345", "42"}
    assert report.missing == [ids["good"]]  # the good memory is still found missing
    assert not report.orphaned and not report.stale_vector and not report.payload_drift
    assert (report.falkordb_count, report.qdrant_count) == (2, 1)
