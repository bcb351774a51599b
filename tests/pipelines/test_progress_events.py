"""Progress events in a run's event log (domain/progress.py lines, logged by the long steps)."""

from __future__ import annotations

import dagster as dg

from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain.progress import RunProgress, parse_progress, step_phase
from automem_pipelines.run_config import (
    enrichment_run_config,
    reembed_run_config,
    sync_run_config,
)
from automem_pipelines.run_progress import instance_page
from tests.helpers import load_sample


def run_job(settings, job_name: str, run_config: dict) -> tuple[dg.DagsterInstance, str, dict]:
    instance = dg.DagsterInstance.ephemeral()
    job = build_definitions(settings).get_job_def(job_name)
    result = job.execute_in_process(
        run_config=run_config,
        resources=build_resources(settings, from_env=False),
        instance=instance,
    )
    summary_op = {
        "reembed_job": "summarize_reembed",
        "drift_sync_job": "summarize_sync",
        "enrichment_job": "summarize_enrichment",
    }
    return instance, result.run_id, result.output_for_node(summary_op[job_name])


def progress_events(instance, run_id) -> list[tuple[str, dict]]:
    events, cursor, more = [], None, True
    while more:
        page, cursor, more = instance_page(instance, run_id, cursor, limit=50)
        events += [(key, parse_progress(msg)) for key, msg, _ in page if parse_progress(msg)]
    return events


def test_reembed_run_reports_increasing_progress_up_to_the_plan_total(settings, graph):
    load_sample(graph, 2500)
    config = reembed_run_config(batch_size=32, chunk_size=1200, progress_seconds=0.001)
    instance, run_id, summary = run_job(settings, "reembed_job", config)
    assert summary["processed"] == 2500

    events = progress_events(instance, run_id)
    listed = [e for key, e in events if key == "enumerate_memories"]
    assert listed[0]["done"] == 0 and listed[0]["total"] == 2500
    assert listed[-1]["done"] == listed[-1]["total"] == 2500
    plan = [e for key, e in events if key == "batch_memories"]
    assert len(plan) == 1 and plan[0]["total"] == 2500 and plan[0]["planned_steps"] == 3
    by_step: dict[str, list[dict]] = {}
    for key, event in events:
        if step_phase(key) == "reembed_chunk":
            by_step.setdefault(key, []).append(event)
    assert len(by_step) == 3  # chunks of 1216 (whole batches of 32): 1216, 1216, 68
    for key, steps in by_step.items():
        done = [e["done"] for e in steps]
        assert done[0] == 0 and done == sorted(done) and len(set(done)) == len(done), key
        assert done[-1] == steps[-1]["total"], key
        assert len(steps) >= 3 or steps[-1]["total"] < 1024, key  # start, a window, the end
    assert sum(s[-1]["total"] for s in by_step.values()) == 2500

    run = RunProgress()  # what the API and the CLI fold the log into
    for key, msg in [(k, m) for k, m, _ in instance_page(instance, run_id, None, 10_000)[0]]:
        run.feed(key, msg)
    snapshot = run.snapshot()
    assert snapshot["phase"] == "reembed_chunk"
    assert (snapshot["done"], snapshot["total"], snapshot["eta_seconds"]) == (2500, 2500, 0.0)

    # the final numbers are step metadata
    outputs = [
        e
        for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_OUTPUT)
        if step_phase(e.step_key) == "reembed_chunk"
    ]
    meta = [e.dagster_event.step_output_data.metadata for e in outputs]
    assert sum(m["progress_done"].value for m in meta) == 2500


def test_progress_seconds_zero_turns_the_events_off(settings, graph):
    load_sample(graph, 300)
    config = reembed_run_config(batch_size=32, progress_seconds=0)
    instance, run_id, summary = run_job(settings, "reembed_job", config)
    assert summary["processed"] == 300
    assert progress_events(instance, run_id) == []


def test_drift_sync_reports_detection_and_repair_progress(settings, graph):
    load_sample(graph, 400)  # no vectors yet: 400 missing
    instance, run_id, summary = run_job(settings, "drift_sync_job", sync_run_config(batch_size=32))
    assert summary["missing_count"] == 400
    events = progress_events(instance, run_id)
    detect = [e for key, e in events if key == "detect_drift"]
    assert detect[0]["done"] == 0 and detect[-1]["done"] == detect[-1]["total"] == 400
    repair = [e for key, e in events if key == "repair_vectors"]
    assert repair[0]["done"] == 0 and repair[-1]["done"] == repair[-1]["total"] == 400


def test_enrichment_reports_each_batch_and_the_plan(settings, graph):
    rows = load_sample(graph, 30)
    config = enrichment_run_config([r["id"] for r in rows])
    instance, run_id, summary = run_job(settings, "enrichment_job", config)
    assert summary["enriched"] == 30
    events = progress_events(instance, run_id)
    assert [(k, e["total"], e.get("planned_steps")) for k, e in events][0] == (
        "batch_enrichment",
        30,
        1,
    )
    batch = [e for key, e in events if step_phase(key) == "enrich_batch"]
    assert [(e["done"], e["total"]) for e in batch] == [(0, 30), (30, 30)]
