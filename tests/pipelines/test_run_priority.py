"""Work an operator starts (API, CLI, the UI's launchpad) is queued ahead of the enrichment
sensor's and the schedules' runs: Dagster's run queue starts the highest `dagster/priority`
first, first in first out among equals."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._daemon.run_coordinator.queued_run_coordinator_daemon import (
    QueuedRunCoordinatorDaemon,
)

from automem_pipelines.constants import (
    BACKGROUND_PRIORITY,
    DRIFT_SYNC_JOB,
    ENRICHMENT_JOB,
    OPERATOR_PRIORITY,
    REEMBED_JOB,
    REEMBED_PARTITIONED_JOB,
    TAG_PRIORITY,
    TAG_TRIGGER,
)
from automem_pipelines.definitions import build_definitions
from automem_pipelines.domain.enrichment.selection import Candidate
from automem_pipelines.run_config import reembed_run_config, sync_run_config
from automem_pipelines.sensors import plan_run_requests

JOBS = (REEMBED_JOB, REEMBED_PARTITIONED_JOB, DRIFT_SYNC_JOB, ENRICHMENT_JOB)


@pytest.fixture
def defs(make_settings):
    return build_definitions(make_settings())


def _sensor_requests(n: int) -> list[dg.RunRequest]:
    candidates = [
        Candidate(f"00000000-0000-4000-8000-{i:012d}", attempts=0, forced=False)
        for i in range(n * 2)
    ]
    return plan_run_requests(candidates, batch_size=2, max_runs=n, generation=0)


def test_priorities_order_operator_work_first():
    assert int(OPERATOR_PRIORITY) > int(BACKGROUND_PRIORITY)


@pytest.mark.parametrize("name", JOBS)
def test_runs_started_by_hand_carry_the_operator_priority(defs, name):
    # a job tag: Dagster copies it onto every run launched from the UI, GraphQL or the CLI
    assert defs.get_job_def(name).tags[TAG_PRIORITY] == OPERATOR_PRIORITY


def test_the_sensor_and_the_schedules_request_background_runs(defs):
    requests = _sensor_requests(4)
    assert len(requests) == 4
    assert all(r.tags[TAG_PRIORITY] == BACKGROUND_PRIORITY for r in requests)
    for schedule in defs.schedules:
        [request] = schedule.evaluate_tick(dg.build_schedule_context()).run_requests
        assert request.tags[TAG_PRIORITY] == BACKGROUND_PRIORITY, schedule.name


def test_a_reembed_queued_after_a_sensor_tick_starts_first(defs):
    """What the daemon's queue does with the runs as Dagster tags them (a sensor's request
    tags over its job's tags; a launch's tags over the job's): four enrichment runs of one
    tick, then a re-embed and a sync asked for by hand, then one more sensor run."""
    enrichment = defs.get_job_def(ENRICHMENT_JOB)
    reembed = defs.get_job_def(REEMBED_JOB)
    sync = defs.get_job_def(DRIFT_SYNC_JOB)
    with dg.instance_for_test() as instance:

        def queue(job: dg.JobDefinition, config: dict, tags: dict[str, str]) -> str:
            run = instance.create_run_for_job(
                job_def=job, run_config=config, tags={**job.tags, **tags}
            )
            return run.run_id

        background = [queue(enrichment, r.run_config, r.tags) for r in _sensor_requests(4)]
        by_hand = [
            queue(reembed, reembed_run_config(), {TAG_TRIGGER: "api"}),
            queue(sync, sync_run_config(), {TAG_TRIGGER: "cli"}),
        ]
        background += [queue(enrichment, r.run_config, r.tags) for r in _sensor_requests(1)]
        runs = instance.get_runs(dg.RunsFilter(run_ids=background + by_hand))
        order = [r.run_id for r in QueuedRunCoordinatorDaemon(10)._priority_sort(runs[::-1])]
    assert order[:2] == by_hand  # operator work first, in the order it was asked for
    assert order[2:] == background  # then the sensor's runs, first in first out
