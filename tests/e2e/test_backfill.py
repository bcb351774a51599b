"""End to end: a backfill of the partitioned re-embed launched over GraphQL on a real
dagster-webserver + dagster-daemon, as the UI's "Launch backfill" does. Its partitions run one
at a time (local-mode Qdrant: the run queue's tag limit), each partition's status shows, and
the memories of the chosen partitions, and only those, get a point."""

from __future__ import annotations

import os
import time

import dagster as dg
import httpx
import pytest

from automem_pipelines.constants import (
    CODE_LOCATION_NAME,
    REEMBED_PARTITIONED_JOB,
    REPOSITORY_NAME,
    TAG_QDRANT_LOCK,
)
from automem_pipelines.definitions import build_resources
from automem_pipelines.domain.partitions import id_range
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack
from tests.helpers import load_sample
from tests.support.dagster_stack import free_port
from tests.support.drills import drill_root
from tests.support.local_qdrant import opened_vector_store

pytestmark = pytest.mark.slow

KEYS = ["00-0f", "10-1f", "f0-ff"]

LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on Error { message }
  }
}"""

STATUS = """
query($id: String!) {
  partitionBackfillOrError(backfillId: $id) {
    __typename
    ... on PartitionBackfill {
      status
      partitionStatuses { results { partitionName runId runStatus } }
    }
  }
}"""


def graphql(port: int, query: str, variables: dict) -> dict:
    reply = httpx.post(
        f"http://127.0.0.1:{port}/graphql",
        json={"query": query, "variables": variables},
        timeout=60,
    )
    reply.raise_for_status()
    body = reply.json()
    assert "errors" not in body, body
    return body["data"]


def test_a_backfill_over_graphql_runs_its_partitions_one_at_a_time():
    with drill_root("amb-") as root:
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env["AUTOMEM_DATA_DIR"] = str(root)
        settings = Settings.from_env(env)
        port = free_port()
        with running_stack(settings, port=port, env=env) as running:
            with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
                rows = load_sample(graph, 300)
            launched = graphql(
                port,
                LAUNCH,
                {
                    "params": {
                        "selector": {
                            "partitionSetName": f"{REEMBED_PARTITIONED_JOB}_partition_set",
                            "repositorySelector": {
                                "repositoryLocationName": CODE_LOCATION_NAME,
                                "repositoryName": REPOSITORY_NAME,
                            },
                        },
                        "partitionNames": KEYS,
                        "runConfigData": {
                            "ops": {"enumerate_memories": {"config": {"batch_size": 64}}}
                        },
                        "tags": [{"key": "automem/trigger", "value": "test"}],
                    }
                },
            )["launchPartitionBackfill"]
            assert launched["__typename"] == "LaunchBackfillSuccess", launched
            deadline = time.monotonic() + 240
            while True:
                backfill = graphql(port, STATUS, {"id": launched["backfillId"]})[
                    "partitionBackfillOrError"
                ]
                statuses = {s["partitionName"]: s for s in backfill["partitionStatuses"]["results"]}
                if len(statuses) == len(KEYS) and all(
                    s["runStatus"] in ("SUCCESS", "FAILURE", "CANCELED") for s in statuses.values()
                ):
                    break
                assert time.monotonic() < deadline, backfill
                time.sleep(1)
            assert {k: s["runStatus"] for k, s in statuses.items()} == dict.fromkeys(
                KEYS, "SUCCESS"
            )

            run_ids = [s["runId"] for s in statuses.values()]
            with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
                records = instance.get_run_records(dg.RunsFilter(run_ids=run_ids))
                spans = []
                for record in records:
                    tags = record.dagster_run.tags
                    assert tags[TAG_QDRANT_LOCK] == "local" and tags["automem/trigger"] == "test"
                    assert tags["dagster/backfill"] == launched["backfillId"]
                    spans.append((record.start_time, record.end_time))
                    summary = [
                        e
                        for e in instance.all_logs(
                            record.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT
                        )
                        if e.step_key == "summarize_reembed"
                    ]
                    assert summary, record.dagster_run.run_id
                spans.sort()
                for (_, end), (start, _) in zip(spans, spans[1:]):
                    assert end <= start  # never two partitions' runs at once

        inside = {r["id"] for r in rows if any(id_range(k).contains(r["id"]) for k in KEYS)}
        with opened_vector_store(settings) as store:
            assert set(store.payloads([r["id"] for r in rows])) == inside
