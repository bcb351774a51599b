"""The drift checks as plain data: what each counts, found vs after-repair state."""

from automem_pipelines.domain.drift import DriftReport, RepairResult
from automem_pipelines.domain.drift.checks import (
    CHECK_NAMES,
    ERROR,
    WARN,
    drift_plot_metadata,
    outcomes,
)


def report(**kinds) -> DriftReport:
    return DriftReport(falkordb_count=10, qdrant_count=8, vector_size=256, **kinds)


def by_name(items):
    return {o.name: o for o in items}


def test_found_state_fails_each_kind_with_its_severity():
    r = report(
        missing=["a", "b"],
        stale_vector=["c"],
        payload_drift=["d"],
        orphaned=["e"],
        duplicate_id=["f"],
    )
    found = by_name(outcomes(r))
    assert list(found) == list(CHECK_NAMES)
    assert {n: (o.passed, o.severity, o.count) for n, o in found.items()} == {
        "missing_vectors": (False, ERROR, 2),
        "stale_vectors": (False, ERROR, 1),
        "payload_drift": (False, WARN, 1),
        "orphaned_points": (False, WARN, 1),
        "duplicate_ids": (False, WARN, 1),
    }
    assert found["missing_vectors"].metadata["state"] == "detected"


def test_after_repair_counts_what_is_left():
    r = report(missing=["a", "b", "c"], payload_drift=["d"], orphaned=["e", "g"])
    results = [
        RepairResult("missing", total=3, repaired=1, skipped=1, failed={"c": "provider"}),
        RepairResult("payload_drift", total=1, repaired=1),
    ]  # orphans not recovered: no result for them
    after = by_name(outcomes(r, results))
    assert after["missing_vectors"].count == 1 and not after["missing_vectors"].passed
    assert after["missing_vectors"].metadata["detected"] == 3
    assert after["payload_drift"].passed
    assert after["orphaned_points"].count == 2 and not after["orphaned_points"].passed
    meta = after["missing_vectors"].metadata
    assert meta["state"] == "after_repair" and meta["qdrant_count"] == 9  # one point written


def test_a_collection_of_another_embedding_fails_stale_vectors_even_at_zero():
    mismatched = report(collection_dim=128)
    stale = by_name(outcomes(mismatched))["stale_vectors"]
    assert stale.count == 0 and not stale.passed
    assert stale.metadata["dimension_mismatch"] is True
    assert by_name(outcomes(report(identity_mismatch=True)))["stale_vectors"].passed is False
    assert all(o.passed for o in outcomes(report()))


def test_plot_metadata_is_the_counts_under_their_own_keys():
    meta = drift_plot_metadata(report(missing=["a"], orphaned=["b", "c"]))
    assert meta == {
        "drift_missing_vectors": 1,
        "drift_stale_vectors": 0,
        "drift_payload_drift": 0,
        "drift_orphaned_points": 2,
        "drift_duplicate_ids": 0,
    }
