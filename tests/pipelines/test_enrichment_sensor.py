"""The enrichment sensor evaluated against real stores and a real (temporary) instance."""

from __future__ import annotations

import json
import time
import uuid

import dagster as dg
import pytest

from automem_pipelines.constants import ENRICHMENT_JOB, TAG_TRIGGER
from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain.enrichment.selection import Candidate
from automem_pipelines.sensors import MAX_RUNS_PER_TICK, build_enrichment_sensor, run_key_for
from automem_pipelines.status import inflight_runs
from tests.support.enrichment import enrich, insert, memory, node

BATCH = 2


def ids_of(request: dg.RunRequest) -> list[str]:
    return request.run_config["ops"]["select_memories"]["config"]["ids"]


def forced_of(request: dg.RunRequest) -> bool:
    return request.run_config["ops"]["select_memories"]["config"]["forced"]


@pytest.fixture
def setup(make_settings):
    settings = make_settings(
        ENRICHMENT_SENSOR_BATCH_SIZE=str(BATCH), ENRICHMENT_FAILURE_BACKOFF_SECONDS="0"
    )
    defs = build_definitions(settings)
    job = defs.get_job_def(ENRICHMENT_JOB)
    sensor = build_enrichment_sensor(job, settings)
    res = build_resources(settings, from_env=False)
    with dg.instance_for_test() as instance, res["falkordb"].get_store() as graph:

        def tick(cursor: str | None) -> dg.SensorResult:
            context = dg.build_sensor_context(
                instance=instance,
                cursor=cursor,
                resources={"falkordb": res["falkordb"], "sync": res["sync"]},
            )
            return sensor(context)

        yield settings, job, graph, instance, tick


def queue(
    instance: dg.DagsterInstance,
    job: dg.JobDefinition,
    request: dg.RunRequest,
    status: dg.DagsterRunStatus = dg.DagsterRunStatus.NOT_STARTED,
) -> None:
    """A run record holding the request's memories (NOT_STARTED: a QUEUED record needs a
    code-server origin; both count as waiting to start)."""
    instance.create_run_for_job(job_def=job, run_config=request.run_config, status=status)


def test_bounded_batches_cursor_keys_and_no_duplicates(setup):
    settings, job, graph, instance, tick = setup
    fresh = [str(uuid.UUID(int=i, version=4)) for i in range(1, 11)]
    done, failed, waiting, meta = (str(uuid.uuid4()) for _ in range(4))
    insert(
        graph,
        [memory(m, f"Note {i} about Project Atlas.", i) for i, m in enumerate(fresh)]
        + [
            memory(done, "Done.", 1),
            memory(failed, "Broken.", 1),
            memory(waiting, "Later.", 1),
            memory(meta, "Meta.", 1, mtype="MetaPattern"),
        ],
    )
    graph.query("MATCH (m:Memory {id: $id}) SET m.processed = true", {"id": done})
    graph.query(
        "MATCH (m:Memory {id: $id}) SET m.enrichment_failed = true, m.enrichment_attempts = 3",
        {"id": failed},
    )
    graph.query(
        "MATCH (m:Memory {id: $id}) SET m.enrichment_attempts = 1, m.enrichment_retry_at = $t",
        {"id": waiting, "t": time.time() + 3600},
    )

    first = tick(None)
    requests = first.run_requests
    assert len(requests) == MAX_RUNS_PER_TICK  # bounded work per tick
    requested = [i for r in requests for i in ids_of(r)]
    assert all(len(ids_of(r)) <= BATCH for r in requests)
    assert len(requested) == len(set(requested)) == MAX_RUNS_PER_TICK * BATCH
    assert set(requested) <= set(fresh)  # never processed, failed, backing off or MetaPattern
    assert all(not forced_of(r) and r.tags[TAG_TRIGGER] == "sensor" for r in requests)
    assert len({r.run_key for r in requests}) == len(requests)
    cursor = json.loads(first.cursor)
    assert cursor["ticks"] == 1 and cursor["requested_ids"] == len(requested)

    # Same data, same cursor: the same run keys (so the daemon launches nothing twice).
    assert [r.run_key for r in tick(None).run_requests] == [r.run_key for r in requests]

    # One run queued: its memories are not requested again while it waits.
    queue(instance, job, requests[0])
    second = tick(first.cursor)
    again = [i for r in second.run_requests for i in ids_of(r)]
    assert len(second.run_requests) == MAX_RUNS_PER_TICK - 1
    assert len(again) == len(set(again)) == (MAX_RUNS_PER_TICK - 1) * BATCH
    assert set(again) <= set(fresh) - set(ids_of(requests[0]))
    assert json.loads(second.cursor)["ticks"] == 2

    # Four runs in flight (one of them started): the sensor waits and says why.
    queue(instance, job, second.run_requests[0], status=dg.DagsterRunStatus.STARTED)
    for r in second.run_requests[1:]:
        queue(instance, job, r)
    third = tick(second.cursor)
    assert not third.run_requests and "queued" in third.skip_reason.skip_message
    # What the sensor counted to decide that (its own reading of the instance).
    runs = inflight_runs(instance)
    assert (runs.queued_runs, len(runs.queued_ids), runs.started_runs, len(runs.started_ids)) == (
        3,
        6,
        1,
        2,
    )
    assert runs.busy_ids == runs.queued_ids | runs.started_ids


def test_new_memories_picked_up_failures_retried_then_left_alone(setup):
    settings, job, graph, instance, tick = setup
    good, bad = str(uuid.uuid4()), str(uuid.uuid4())
    assert "no memories waiting" in tick(None).skip_reason.skip_message
    insert(graph, [memory(good, "Met with Alice about Project Beacon.", 1), memory(bad, 42, 1)])
    keys: set[str] = set()
    cursor = None
    for attempt in range(1, 4):
        result = tick(cursor)
        cursor = result.cursor
        [request] = result.run_requests
        assert request.run_key not in keys  # a retry is a new request
        keys.add(request.run_key)
        summary = enrich(settings, ids_of(request), instance=instance)
        assert summary["failed_ids"] == [bad]
        assert node(graph, bad)["enrichment_attempts"] == attempt
        assert node(graph, good)["processed"] is True
    assert node(graph, bad)["enrichment_failed"] is True
    final = tick(cursor)
    assert not final.run_requests and "no memories waiting" in final.skip_reason.skip_message

    # A memory set back to unprocessed after its enrichment is requested again, under a
    # key its earlier (identical-looking) batch never had.
    graph.query("MATCH (m:Memory {id: $id}) SET m.processed = false", {"id": good})
    [again] = tick(final.cursor).run_requests
    assert ids_of(again) == [good] and again.run_key not in keys
    never_enriched = run_key_for([Candidate(good, 0, False)], False, 0)
    assert (
        run_key_for([Candidate(good, 0, False, "2026-01-01T00:00:00")], False, 0) != never_enriched
    )
    graph.query("MATCH (m:Memory {id: $id}) SET m.processed = true", {"id": good})

    # A forced attempt that failed on a processed memory is retried as a forced run.
    graph.query(
        "MATCH (m:Memory {id: $id}) SET m.enrichment_retry_forced = true, "
        "m.enrichment_attempts = 1",
        {"id": good},
    )
    [request] = tick(final.cursor).run_requests
    assert ids_of(request) == [good] and forced_of(request) and "forced" in request.run_key


def test_a_run_that_failed_as_a_whole_gets_its_memories_requested_again(setup):
    settings, job, graph, instance, tick = setup
    mid = str(uuid.uuid4())
    insert(graph, [memory(mid, "Chose Redis for the Orion cache.", 1)])
    [request] = tick(None).run_requests
    queue(instance, job, request, status=dg.DagsterRunStatus.FAILURE)
    [retry] = tick(None).run_requests
    assert ids_of(retry) == [mid] and retry.run_key != request.run_key

    # A run that has just failed (it has an end time): the sensor pauses instead of
    # launching a run per tick into an outage.
    run = instance.create_run_for_job(
        job_def=job, run_config=retry.run_config, status=dg.DagsterRunStatus.STARTED
    )
    instance.report_run_failed(run, message="store outage")
    paused = tick(None)
    assert not paused.run_requests and "pausing" in paused.skip_reason.skip_message
