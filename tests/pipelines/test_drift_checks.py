"""Drift as asset checks on the Qdrant collection asset, against real stores: declared in the
code location, reported by every drift sync (the state a run leaves behind), executable on
their own as a read-only detection; the drift plots' metadata."""

from __future__ import annotations

import dagster as dg
import pytest

from automem_pipelines.checks import DRIFT_CHECKS_NAME
from automem_pipelines.constants import DRIFT_CHECKS, TAG_TRIGGER, VECTOR_ASSET_KEY
from automem_pipelines.definitions import build_definitions
from automem_pipelines.domain.drift.checks import CHECK_NAMES
from automem_pipelines.run_config import sync_run_config
from automem_pipelines.run_tags import UI_LAUNCH_TAG
from tests.pipelines.test_drift_job import seed_graph, seed_points

KEY = dg.AssetKey(VECTOR_ASSET_KEY)
ERROR, WARN = dg.AssetCheckSeverity.ERROR, dg.AssetCheckSeverity.WARN


def sync(settings, resources, instance, **config) -> dg.ExecuteInProcessResult:
    job = build_definitions(settings).get_job_def("drift_sync_job")
    return job.execute_in_process(
        run_config=sync_run_config(**config), resources=resources, instance=instance
    )


def latest(instance, name: str) -> tuple[str, dg.AssetCheckEvaluation]:
    """The run id and the evaluation of the check's latest execution (what /health reads)."""
    [record] = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(KEY, name), limit=1
    )
    return record.run_id, record.event.dagster_event.event_specific_data


def evaluations_of(result: dg.ExecuteInProcessResult) -> list[dg.AssetCheckEvaluation]:
    return [
        e.event_specific_data
        for e in result.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
    ]


@pytest.fixture
def instance():
    with dg.DagsterInstance.ephemeral() as inst:
        yield inst


def test_the_checks_are_declared_on_the_collection_asset(settings):
    defs = build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    keys = defs.resolve_asset_graph().asset_check_keys
    assert {k for k in keys if k.asset_key == KEY} == {
        dg.AssetCheckKey(KEY, n) for n in CHECK_NAMES
    }
    assert CHECK_NAMES == DRIFT_CHECKS  # the names /health asks for
    assert set(CHECK_NAMES) == {
        "missing_vectors",
        "stale_vectors",
        "payload_drift",
        "orphaned_points",
        "duplicate_ids",
    }


def test_dry_run_reports_missing_as_error_and_a_repair_passes_it(
    settings, resources, graph, instance
):
    memories = seed_graph(graph, 12)
    dry = sync(settings, resources, instance, dry_run=True)
    run_id, missing = latest(instance, "missing_vectors")
    assert run_id == dry.run_id
    assert not missing.passed and missing.severity == ERROR
    assert missing.metadata["count"].value == 12 and missing.metadata["state"].value == "detected"
    assert missing.metadata["falkordb_count"].value == 12
    assert missing.metadata["qdrant_count"].value == 0
    for name in ("stale_vectors", "payload_drift", "orphaned_points", "duplicate_ids"):
        assert latest(instance, name)[1].passed, name

    repair = sync(settings, resources, instance, batch_size=5)
    run_id, missing = latest(instance, "missing_vectors")
    assert run_id == repair.run_id
    assert missing.passed and missing.metadata["state"].value == "after_repair"
    assert missing.metadata["detected"].value == 12 and missing.metadata["count"].value == 0
    assert missing.metadata["qdrant_count"].value == len(memories)  # the store as the run ends
    # the repairing run reported the found state, then the state after repair: one execution
    # per check and run in the history, holding the last
    found, after = [e for e in evaluations_of(repair) if e.check_name == "missing_vectors"]
    assert not found.passed and after.passed
    history = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(KEY, "missing_vectors"), limit=10
    )
    assert [r.run_id for r in history] == [repair.run_id, dry.run_id]

    again = sync(settings, resources, instance)  # nothing to repair: only the found state
    assert [e.passed for e in evaluations_of(again)] == [True] * len(CHECK_NAMES)
    assert latest(instance, "missing_vectors")[0] == again.run_id


def test_orphans_left_alone_still_warn_after_a_repairing_sync(
    settings, resources, graph, vector_store, instance
):
    memories = seed_graph(graph, 7)
    seed_points(vector_store, memories[:6])  # the last one is missing
    graph.query("MATCH (m:Memory {id: $id}) DELETE m", {"id": memories[0]["id"]})  # an orphan
    sync(settings, resources, instance)
    _, orphans = latest(instance, "orphaned_points")
    assert not orphans.passed and orphans.severity == WARN
    assert orphans.metadata["count"].value == 1
    assert orphans.metadata["state"].value == "after_repair"
    assert latest(instance, "missing_vectors")[1].passed


def test_drift_plots_get_one_point_per_sync_under_their_own_keys(
    settings, resources, graph, instance
):
    seed_graph(graph, 8)
    result = sync(settings, resources, instance)  # a repairing sync
    observations = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert len(observations) == 1
    [observation] = observations
    assert set(observation.metadata) == {f"drift_{n}" for n in CHECK_NAMES}
    assert observation.metadata["drift_missing_vectors"].value == 8
    [materialization] = result.asset_materializations_for_node("summarize_sync")
    # the repair's own figures, none of the drift counts nor the re-embed metrics' keys
    assert set(materialization.metadata) == {"drift_repaired", "drift_repair_failed"}
    assert materialization.metadata["drift_repaired"].value == 8


def test_executing_the_checks_alone_is_a_read_only_detection(
    settings, resources, graph, vector_store, instance
):
    seed_graph(graph, 4)
    defs = build_definitions(settings)
    job = defs.resolve_implicit_global_asset_job_def().get_subset(
        asset_selection=set(),
        asset_check_selection={dg.AssetCheckKey(KEY, n) for n in CHECK_NAMES},
    )
    result = job.execute_in_process(
        instance=instance, resources=resources, tags={UI_LAUNCH_TAG: "true"}
    )
    assert result.success
    assert {e.check_name for e in evaluations_of(result)} == set(CHECK_NAMES)
    _, missing = latest(instance, "missing_vectors")
    assert not missing.passed and missing.metadata["count"].value == 4
    assert vector_store.collection_dim() is None  # nothing was written, not even the collection
    assert [n.name for n in job.nodes] == [DRIFT_CHECKS_NAME]
    assert instance.get_run_by_id(result.run_id).tags[TAG_TRIGGER] == "ui"  # the asset page
