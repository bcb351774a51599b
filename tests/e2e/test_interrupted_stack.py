"""Ctrl-C of the stack in the middle of a re-embed with three chunks: the run worker (in the
daemon's process group) stops at the end of its current write window, no step starts after
the interrupt, the run ends (not left STARTED), and after a restart a force=false rerun
finishes the job."""

from __future__ import annotations

import time

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from automem_pipelines.constants import REEMBED_JOB
from automem_pipelines.definitions import build_resources
from automem_pipelines.domain import reembed
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.run_workers import check_tagged_worker
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack, start_stack
from automem_pipelines.stores import falkordb_server
from tests.helpers import load_sample
from tests.support.dagster_stack import free_port, submit
from tests.support.drills import (
    drill_root,
    local_points,
    stack_env,
    step_starts,
    wait_for_end,
    wait_for_points,
    wait_for_step,
    wait_until,
)
from tests.support.local_qdrant import point_count

pytestmark = pytest.mark.slow
BATCH = 100
CHUNK = 5000  # five write windows of 1,000: the interrupt lands inside the first chunk
MEMORIES = 2 * CHUNK + 500  # chunks of 5,000, 5,000 and 500


def test_ctrl_c_of_the_stack_stops_the_run_at_the_next_write_window():
    with drill_root("ami-") as root:
        env = stack_env(root, RUN_MONITORING_POLL_SECONDS="1")
        settings = Settings.from_env(env)
        falkordb_server.ensure_running(root)
        with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
            load_sample(graph, MEMORIES, seed=5)
        assert len(reembed.plan_chunks(list(range(MEMORIES)), BATCH, CHUNK)) == 3

        port = free_port()
        stack = start_stack(settings, port=port, env=env)
        try:
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            run_id = submit(
                client,
                REEMBED_JOB,
                reembed_run_config(batch_size=BATCH, force=True, chunk_size=CHUNK),
                {"automem/trigger": "test"},
            )
            with dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance:
                wait_for_step(instance, run_id, "reembed_chunk[chunk_000]")
                wait_for_points(settings, 1500)  # inside the first chunk's writes
                tags = instance.get_run_by_id(run_id).tags
                interrupted_at = time.time()
        finally:
            stack.stop()  # SIGINT to every process group, as Ctrl-C of `automem-pipelines stack`
        wait_until("the run worker exits", lambda: not check_tagged_worker(tags).alive, 60)
        written = local_points(settings)

        with dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance:
            run = instance.get_run_by_id(run_id)
            assert run.is_finished, f"the run is left {run.status}"
            started = step_starts(instance, run_id)
            assert all(at < interrupted_at for _, at in started), started
            assert [key for key, _ in started][-1] == "reembed_chunk[chunk_000]"
            [failure] = [
                e for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_FAILURE)
            ]
            assert failure.step_key == "reembed_chunk[chunk_000]"
            assert (
                failure.dagster_event.step_failure_data.error.cls_name
                == "DagsterExecutionInterruptedError"
            )
        assert 1500 <= written < CHUNK
        assert written % reembed.window_size(BATCH) == 0  # whole windows only

        with running_stack(settings, port=free_port(), env=env) as restarted:
            client = DagsterGraphQLClient(
                "127.0.0.1", port_number=int(restarted.url.rsplit(":", 1)[1])
            )
            rerun = submit(
                client,
                REEMBED_JOB,
                reembed_run_config(batch_size=BATCH, chunk_size=CHUNK),
                {"automem/trigger": "test"},
            )
            with dg.DagsterInstance.from_config(str(restarted.dagster_home)) as instance:
                assert wait_for_end(instance, rerun, limit=900) == dg.DagsterRunStatus.SUCCESS
        assert point_count(settings) == MEMORIES
