"""Bad rows never sink a run: nodes whose id cannot be a point id, and ids several nodes share,
are skipped and reported by re-embed, drift and enrichment alike."""

from __future__ import annotations

from tests.helpers import load_sample, run_reembed, summary_of
from tests.pipelines.test_drift_job import run_sync
from tests.pipelines.test_drift_job import summary_of as sync_summary
from tests.support.enrichment import enrich
from tests.unit.test_drift import bad_rows


def test_reembed_skips_and_reports_unusable_and_shared_ids(settings, graph, vector_store):
    rows = load_sample(graph, 30)
    ids = bad_rows(graph)
    summary = summary_of(run_reembed(settings, batch_size=8))
    assert summary["status"] == "complete" and summary["failed"] == 0
    assert summary["processed"] == 31  # the 30 sample memories and the good one
    assert summary["skipped_invalid_id"] == 5
    assert set(summary["invalid_ids"]) >= {"<node without id>", "not-a-uuid", "12345", "42"}
    assert summary["skipped_duplicate_id"] == 2 and summary["duplicate_ids"] == [ids["dup"]]
    assert summary["total"] == 38 == summary["processed"] + summary["skipped"]
    assert vector_store.count() == 31
    assert vector_store.retrieve([ids["dup"]]) == {}  # neither node's content was picked
    again = summary_of(run_reembed(settings, batch_size=8))
    assert again["processed"] == 0 and again["skipped_unchanged"] == 31  # not re-paid every run
    assert {r["id"] for r in rows} <= set(vector_store.retrieve([r["id"] for r in rows]))


def test_drift_reports_shared_ids_as_their_own_kind(settings, resources, graph):
    load_sample(graph, 10)
    ids = bad_rows(graph)
    run_reembed(settings)
    summary = sync_summary(run_sync(settings, resources, dry_run=True))
    assert summary["duplicate_id_count"] == 1 and summary["duplicate_id_sample"] == [ids["dup"]]
    assert summary["invalid_id_count"] == 5
    assert summary["missing_count"] == 0 and summary["stale_vector_count"] == 0
    # a repairing sync leaves them alone too, and says so again
    repaired = sync_summary(run_sync(settings, resources))
    assert repaired["status"] == "already_synced" and repaired["duplicate_id_count"] == 1


def test_enrichment_reports_bad_ids_and_enriches_the_others(settings, graph):
    rows = load_sample(graph, 5)
    ids = bad_rows(graph)
    good = [r["id"] for r in rows] + [ids["good"]]
    summary = enrich(settings, good + ["not-a-uuid", "bad\x00id", ids["dup"], "x" * 300])
    assert summary["enriched"] == 6 and summary["failed"] == 0
    assert summary["skipped_invalid_id"] == 4
    assert set(summary["invalid_ids"]) == {"not-a-uuid", "bad\x00id", ids["dup"], "x" * 300}
    props = graph.fetch_properties(good)
    assert all(props[m].get("processed") is True for m in good)


def test_the_sensor_never_requests_a_node_whose_id_cannot_be_a_memorys(graph):
    from automem_pipelines.domain.enrichment.selection import count_awaiting, find_candidates

    ids = bad_rows(graph)
    found = {c.id for c in find_candidates(graph, limit=100)}
    assert ids["good"] in found and ids["dup"] in found  # the job reports the shared one
    assert not found & {"not-a-uuid", "12345", 42, None}
    assert all(isinstance(i, str) and len(i) == 36 and i == i.lower() for i in found)
    # good, the two nodes of the shared id, and the upper-case UUID (36 characters: only the
    # candidates are checked in Python)
    assert count_awaiting(graph) == 4
