"""A run whose worker is killed (SIGKILL) in the middle of writing is never stuck and loses
nothing: the daemon's run monitoring ends it FAILURE, which frees the run queue and the admin
API's 409 guard, and a rerun finishes the job.

One stack for the module (webserver + daemon + API over their own data dir), with the run
monitoring poll at 1 s (RUN_MONITORING_POLL_SECONDS; 30 s by default)."""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile

import dagster as dg
import pytest
import requests
from dagster_graphql import DagsterGraphQLClient

from automem_pipelines.constants import REEMBED_JOB
from automem_pipelines.definitions import build_resources
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.run_workers import WORKER_PID_TAG, WORKER_START_TAG
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack, start_api
from tests.helpers import load_sample, run_reembed, summary_of
from tests.support.api import ADMIN_TOKEN, API_TOKEN
from tests.support.dagster_stack import free_port, submit
from tests.support.drills import (
    drill_root,
    engine_messages,
    failure_of,
    kill_worker,
    local_points,
    stack_env,
    wait_for_end,
    wait_for_points,
    wait_for_step,
    wait_until,
)
from tests.support.local_qdrant import opened_vector_store, point_count

pytestmark = pytest.mark.slow
MEMORIES = 4000
ADMIN = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}


@pytest.fixture(scope="module")
def stack():
    with drill_root("amk-") as root:
        env = stack_env(
            root,
            RUN_MONITORING_POLL_SECONDS="1",
            AUTOMEM_API_TOKEN=API_TOKEN,
            ADMIN_API_TOKEN=ADMIN_TOKEN,
        )
        settings = Settings.from_env(env)
        api_port = free_port()
        with running_stack(settings, port=free_port(), env=env) as running:
            start_api(running, port=api_port, env=env)
            with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
                yield settings, env, running, instance, f"http://127.0.0.1:{api_port}"


def test_a_killed_worker_fails_its_run_frees_the_api_and_a_rerun_finishes(stack):
    settings, _env, running, instance, api = stack
    with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
        load_sample(graph, MEMORIES)
    client = DagsterGraphQLClient("127.0.0.1", port_number=int(running.url.rsplit(":", 1)[1]))
    run_id = submit(
        client,
        REEMBED_JOB,
        reembed_run_config(batch_size=256, force=True),
        {"automem/trigger": "test"},
    )
    wait_for_step(instance, run_id, "reembed_chunk[chunk_000]")
    wait_for_points(settings, 500)
    kill_worker(instance, run_id)
    written = local_points(settings)
    assert 500 <= written < MEMORIES

    assert wait_for_end(instance, run_id) == dg.DagsterRunStatus.FAILURE
    assert any(
        "Detected run worker status FAILED" in m and "is not running" in m
        for m in engine_messages(instance, run_id)
    )

    # The API's 409 guard reads the runs in progress: the failed run no longer counts.
    answer = requests.post(
        f"{api}/admin/reembed", json={"batch_size": 256}, headers=ADMIN, timeout=60
    )
    assert answer.status_code == 202, answer.text
    rerun = answer.json()["run_id"]
    end = wait_for_end(instance, rerun)
    assert end == dg.DagsterRunStatus.SUCCESS, failure_of(instance, rerun)
    assert point_count(settings) == MEMORIES  # waits for the last run's process to let go


def test_a_killed_cli_run_is_failed_by_a_daemon_that_did_not_start_it_and_a_rerun_completes(stack):
    settings, env, running, instance, _api = stack
    graph_name = "cli_kill"
    env = {
        **env,
        "FALKORDB_GRAPH": graph_name,
        "QDRANT_COLLECTION": graph_name,
        "DAGSTER_HOME": str(running.dagster_home),
    }
    settings = Settings.from_env(env)
    with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
        rows = load_sample(graph, MEMORIES, seed=3)
    output = tempfile.TemporaryFile()  # read only if the CLI ends before it is killed
    proc = subprocess.Popen(
        [sys.executable, "-m", "automem_pipelines.cli", "reembed", "--batch-size", "256"],
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    try:  # the chunk step has written its first windows (of 1,024 points)
        wait_until(
            "500 points written", lambda: local_points(settings) >= 500 or proc.poll() is not None
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    output.seek(0)
    assert proc.returncode == -signal.SIGKILL, output.read().decode(errors="replace")[-3000:]
    [run] = instance.get_runs(dg.RunsFilter(tags={"automem/trigger": "cli"}, job_name=REEMBED_JOB))
    assert run.tags[WORKER_PID_TAG] == str(proc.pid) and run.tags[WORKER_START_TAG]
    assert wait_for_end(instance, run.run_id) == dg.DagsterRunStatus.FAILURE

    written_before = point_count(settings)
    assert 500 <= written_before < MEMORIES
    summary = summary_of(run_reembed(settings, batch_size=256))
    assert summary["failed"] == 0
    assert summary["processed"] == MEMORIES - written_before
    assert summary["skipped_unchanged"] == written_before
    with opened_vector_store(settings) as store:
        assert store.count() == MEMORIES
        assert set(store.payloads([r["id"] for r in rows])) == {r["id"] for r in rows}
