"""End to end: a real dagster-webserver + dagster-daemon over the project's code location.

Re-embed runs are launched over GraphQL like the API launches them; the instance's run queue
keeps runs that open the local-mode Qdrant store from ever running at the same time.
"""

from __future__ import annotations

import os
import time

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from automem_pipelines.constants import REEMBED_JOB, TAG_QDRANT_LOCK
from automem_pipelines.definitions import build_resources
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.run_workers import WORKER_PID_TAG
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack
from tests.helpers import load_sample
from tests.support.dagster_stack import free_port, submit, wait_for_run
from tests.support.drills import drill_root
from tests.support.local_qdrant import opened_vector_store, point_count

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def shared_stack():
    with drill_root("ame-") as root:
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env["AUTOMEM_DATA_DIR"] = str(root)
        settings = Settings.from_env(env)
        port = free_port()
        with running_stack(settings, port=port, env=env) as running:
            yield settings, DagsterGraphQLClient("127.0.0.1", port_number=port), running


@pytest.fixture
def stack(shared_stack):
    """The module's stack with an empty graph and no collection: each test counts only the
    memories it loaded, whichever test ran before it (no run is active between tests)."""
    settings = shared_stack[0]
    with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
        graph.query("MATCH (n) DETACH DELETE n")
    with opened_vector_store(settings) as store:
        if store.client.collection_exists(store.collection):
            store.client.delete_collection(store.collection)
    return shared_stack


def test_runs_launched_over_graphql_reembed_and_never_overlap(stack):
    settings, client, running = stack
    res = build_resources(settings, from_env=False)
    with res["falkordb"].get_store() as graph:
        rows = load_sample(graph, 400)

    first = submit(
        client,
        REEMBED_JOB,
        reembed_run_config(batch_size=64, force=True),
        {"automem/trigger": "test"},
    )
    second = submit(
        client, REEMBED_JOB, reembed_run_config(batch_size=64), {"automem/trigger": "test"}
    )
    assert wait_for_run(client, first) == dg.DagsterRunStatus.SUCCESS
    assert wait_for_run(client, second) == dg.DagsterRunStatus.SUCCESS

    with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
        records = {
            r.dagster_run.run_id: r
            for r in instance.get_run_records(dg.RunsFilter(run_ids=[first, second]))
        }
        assert records[first].dagster_run.tags[TAG_QDRANT_LOCK] == "local"
        # both ran in workers forked from the pre-imported worker server, not spawned ones
        pids = {r.dagster_run.tags[WORKER_PID_TAG] for r in records.values()}
        assert len(pids) == 2
        a, b = sorted(records.values(), key=lambda r: r.start_time)
        assert a.end_time <= b.start_time  # one local-mode run at a time

    with opened_vector_store(settings) as store:  # both runs are over: the store is free for us
        assert store.count() == 400
        assert set(store.payloads([r["id"] for r in rows])) == {r["id"] for r in rows}


def test_a_running_run_is_terminated_and_a_rerun_finishes_the_job(stack):
    settings, client, running = stack
    res = build_resources(settings, from_env=False)
    with res["falkordb"].get_store() as graph:
        load_sample(graph, 8_000, seed=11)  # a forced run over them takes several seconds
    run_id = submit(
        client,
        REEMBED_JOB,
        reembed_run_config(batch_size=256, force=True),
        {"automem/trigger": "test"},
    )
    with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
        deadline = time.monotonic() + 120
        while instance.get_run_by_id(run_id).status != dg.DagsterRunStatus.STARTED:
            assert time.monotonic() < deadline, "the run never started"
            time.sleep(0.1)
        time.sleep(1.0)  # inside its steps
        assert client.terminate_run(run_id) is None
        assert wait_for_run(client, run_id, timeout=120) == dg.DagsterRunStatus.CANCELED
        pid = int(instance.get_run_by_id(run_id).tags[WORKER_PID_TAG])
    deadline = time.monotonic() + 30
    while True:  # the worker exits (and the server reaps it) right after reporting the cancel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the terminated run's worker is still running"
        time.sleep(0.1)

    rerun = submit(
        client, REEMBED_JOB, reembed_run_config(batch_size=256), {"automem/trigger": "test"}
    )
    assert wait_for_run(client, rerun) == dg.DagsterRunStatus.SUCCESS
    assert point_count(settings) == 8_000
