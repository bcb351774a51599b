"""End to end: a real dagster-webserver + dagster-daemon over the project's code location.

Re-embed runs are launched over GraphQL like the API launches them; the instance's run queue
keeps runs that open the local-mode Qdrant store from ever running at the same time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from automem_pipelines.constants import REEMBED_JOB, TAG_QDRANT_LOCK
from automem_pipelines.definitions import build_resources
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack
from automem_pipelines.stores import falkordb_server, vectors
from tests.helpers import load_sample
from tests.support.dagster_stack import free_port, submit, wait_for_run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack():
    root = Path(tempfile.mkdtemp(prefix="ame-"))
    env = {**os.environ, "AUTOMEM_DATA_DIR": str(root)}
    settings = Settings.from_env(env)
    port = free_port()
    try:
        with running_stack(settings, port=port, env=env) as running:
            yield settings, DagsterGraphQLClient("127.0.0.1", port_number=port), running
    finally:
        vectors.close_all()
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def test_runs_launched_over_graphql_reembed_and_never_overlap(stack):
    settings, client, running = stack
    res = build_resources(settings, from_env=False)
    with res["falkordb"].get_store() as graph:
        rows = load_sample(graph, 400)

    first = submit(client, REEMBED_JOB, reembed_run_config(batch_size=64, force=True), {"automem/trigger": "test"})
    second = submit(client, REEMBED_JOB, reembed_run_config(batch_size=64), {"automem/trigger": "test"})
    assert wait_for_run(client, first) == dg.DagsterRunStatus.SUCCESS
    assert wait_for_run(client, second) == dg.DagsterRunStatus.SUCCESS

    with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
        records = {r.dagster_run.run_id: r for r in instance.get_run_records(dg.RunsFilter(run_ids=[first, second]))}
        assert records[first].dagster_run.tags[TAG_QDRANT_LOCK] == "local"
        a, b = sorted(records.values(), key=lambda r: r.start_time)
        assert a.end_time <= b.start_time  # one local-mode run at a time

    store = res["qdrant"].get_store()  # both runs are over: the store is free for us
    try:
        assert store.count() == 400
        assert set(store.payloads([r["id"] for r in rows])) == {r["id"] for r in rows}
    finally:
        vectors.forget(res["qdrant"].vector_config())
