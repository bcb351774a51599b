"""End-to-end fixture support: a real dagster-webserver + dagster-daemon on loopback."""

from __future__ import annotations

import socket
import time

from dagster import DagsterRunStatus
from dagster_graphql import DagsterGraphQLClient

from automem_pipelines.constants import CODE_LOCATION_NAME, REPOSITORY_NAME

FINISHED = {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def submit(
    client: DagsterGraphQLClient, job: str, run_config: dict, tags: dict | None = None
) -> str:
    return client.submit_job_execution(
        job,
        repository_location_name=CODE_LOCATION_NAME,
        repository_name=REPOSITORY_NAME,
        run_config=run_config,
        tags=tags or {},
    )


def wait_for_run(
    client: DagsterGraphQLClient, run_id: str, timeout: float = 180.0
) -> DagsterRunStatus:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get_run_status(run_id)
        if status in FINISHED:
            return status
        time.sleep(0.5)
    raise TimeoutError(f"run {run_id} did not finish within {timeout:.0f}s")
