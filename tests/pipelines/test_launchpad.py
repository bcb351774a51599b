"""What the Dagster UI's Launchpad hands a job: raw run config (no run-config helper in
between) and its marker tag. An out-of-range value fails the run at once with one Failure that
names the field and the range, before any read or write; a UI launch gets automem/trigger=ui."""

from __future__ import annotations

import dagster as dg
import pytest

from automem_pipelines.constants import (
    DRIFT_SYNC_JOB,
    ENRICHMENT_JOB,
    REEMBED_JOB,
    REEMBED_PARTITIONED_JOB,
    TAG_TRIGGER,
)
from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.run_config import (
    ENRICHMENT_CONFIG_OP,
    REEMBED_CONFIG_OP,
    SYNC_CONFIG_OP,
    enrichment_run_config,
    reembed_run_config,
    sync_run_config,
)
from automem_pipelines.run_tags import UI_LAUNCH_TAG
from tests.helpers import load_sample

FIRST_OP = {
    REEMBED_JOB: REEMBED_CONFIG_OP,
    REEMBED_PARTITIONED_JOB: REEMBED_CONFIG_OP,
    DRIFT_SYNC_JOB: SYNC_CONFIG_OP,
    ENRICHMENT_JOB: ENRICHMENT_CONFIG_OP,
}


def launch(settings, job_name: str, config: dict | None = None, run_config=None, tags=None):
    job = build_definitions(settings).get_job_def(job_name)
    partition_key = None
    if job.partitions_def is not None:
        partition_key = job.partitions_def.get_partition_keys()[0]
    instance = dg.DagsterInstance.ephemeral()
    result = job.execute_in_process(
        run_config=run_config or {"ops": {FIRST_OP[job_name]: {"config": config}}},
        resources=build_resources(settings, from_env=False),
        instance=instance,
        raise_on_error=False,
        tags=tags,
        partition_key=partition_key,
    )
    return result, instance


@pytest.mark.parametrize(
    ("job_name", "config", "message"),
    [
        (REEMBED_JOB, {"batch_size": 0}, "batch_size must be an integer from 1 to 2048, got 0"),
        (
            REEMBED_PARTITIONED_JOB,
            {"batch_size": 0},
            "batch_size must be an integer from 1 to 2048, got 0",
        ),
        (REEMBED_JOB, {"chunk_size": 5}, "chunk_size must be an integer from 100 to 200000, got 5"),
        (
            REEMBED_JOB,
            {"failure_threshold": 1.5},
            "failure_threshold must be a number above 0 and at most 1, got 1.5",
        ),
        (DRIFT_SYNC_JOB, {"batch_size": 0}, "batch_size must be an integer from 1 to 2048, got 0"),
        (
            DRIFT_SYNC_JOB,
            {"failure_threshold": 0.0},
            "failure_threshold must be a number above 0 and at most 1, got 0.0",
        ),
    ],
)
def test_out_of_range_value_fails_the_run_at_once_with_one_clear_failure(
    settings, graph, vector_store, job_name, config, message
):
    load_sample(graph, 5)
    before = graph.count_memories()
    result, _ = launch(settings, job_name, config)
    assert not result.success
    [failure] = [e for e in result.all_events if e.is_step_failure]
    assert failure.step_key == FIRST_OP[job_name]
    data = failure.step_failure_data
    assert data.user_failure_data.description == f"invalid run config: {message}"
    # a Failure of its own, not a user-code error wrapping a pydantic ValidationError
    assert data.error.cls_name == "Failure" and data.error.cause is None
    assert data.error_source.value != "USER_CODE_ERROR"  # what an unexpected exception gets
    assert "ValidationError" not in data.error.message
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    assert [e.step_key for e in result.all_events if e.is_step_start] == [FIRST_OP[job_name]]
    assert vector_store.collection_dim() is None  # nothing written, not even the collection
    assert graph.count_memories() == before


def test_a_wrong_type_is_refused_at_launch_by_dagster(settings):
    """Types are checked by Dagster's config schema before the run exists (the Launchpad
    shows the error and launches nothing); ranges are not expressible there."""
    job = build_definitions(settings).get_job_def(ENRICHMENT_JOB)
    with pytest.raises(dg.DagsterInvalidConfigError, match="forced"):
        job.execute_in_process(
            run_config={"ops": {ENRICHMENT_CONFIG_OP: {"config": {"ids": [], "forced": "yes"}}}},
            resources=build_resources(settings, from_env=False),
        )


VALID = {
    REEMBED_JOB: lambda: reembed_run_config(),
    REEMBED_PARTITIONED_JOB: lambda: reembed_run_config(),
    DRIFT_SYNC_JOB: lambda: sync_run_config(dry_run=True),
    ENRICHMENT_JOB: lambda: enrichment_run_config([]),
}


@pytest.mark.parametrize("job_name", list(VALID))
def test_a_ui_launch_gets_the_trigger_tag(settings, graph, job_name):
    result, instance = launch(
        settings, job_name, run_config=VALID[job_name](), tags={UI_LAUNCH_TAG: "true"}
    )
    assert result.success
    assert instance.get_run_by_id(result.run_id).tags[TAG_TRIGGER] == "ui"


@pytest.mark.parametrize(
    ("tags", "expected"),
    [
        ({}, None),  # not launched from the UI: no tag added
        ({UI_LAUNCH_TAG: "true", TAG_TRIGGER: "api"}, "api"),  # a run's own trigger is kept
    ],
)
def test_the_trigger_tag_is_only_added_to_ui_launches(settings, graph, tags, expected):
    result, instance = launch(
        settings, DRIFT_SYNC_JOB, run_config=sync_run_config(dry_run=True), tags=tags
    )
    assert result.success
    assert instance.get_run_by_id(result.run_id).tags.get(TAG_TRIGGER) == expected
