"""The end-to-end tests run with the Dagster instance on sqlite under DAGSTER_HOME (the
default) or, with ``AUTOMEM_TEST_DAGSTER_STORAGE=postgres`` (.ci/run's second pass), on
PostgreSQL: a server the project starts (automem_pipelines.postgres_server), a database of its
own for each test module, exported as DAGSTER_POSTGRES_URL to the stacks the module starts."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from automem_pipelines import postgres_server
from automem_pipelines.instance import POSTGRES_URL_ENV

STORAGE_ENV = "AUTOMEM_TEST_DAGSTER_STORAGE"
AUTO_REPAIR_ENV = "SYNC_AUTO_REPAIR"


@pytest.fixture(scope="session", autouse=True)
def no_drift_sync_on_the_hour() -> Iterator[None]:
    """The drift-sync schedule runs by default (SYNC_AUTO_REPAIR is true, as in AutoMem) at the
    top of every hour: in a test's stack it would repair, at :00, what the test left missing on
    purpose (a CI run at 06:00 saw it write the points of partitions a backfill had skipped).
    Off in the environment the stacks these tests start inherit."""
    saved = os.environ.get(AUTO_REPAIR_ENV)
    os.environ[AUTO_REPAIR_ENV] = "false"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(AUTO_REPAIR_ENV, None)
        else:
            os.environ[AUTO_REPAIR_ENV] = saved


@pytest.fixture(scope="session")
def postgres_root() -> Iterator[Path]:
    with postgres_server.temporary_server() as root:
        yield root


def fresh_database(root: Path) -> str:
    return postgres_server.create_database(root, "t_" + uuid.uuid4().hex[:16])


@pytest.fixture(scope="module", autouse=True)
def dagster_storage(request) -> Iterator[str | None]:
    storage = os.environ.get(STORAGE_ENV, "sqlite")
    if storage not in ("sqlite", "postgres"):
        raise pytest.UsageError(f"{STORAGE_ENV}={storage!r}: expected sqlite or postgres")
    if storage == "sqlite":
        yield None
        return
    url = fresh_database(request.getfixturevalue("postgres_root"))
    saved = os.environ.get(POSTGRES_URL_ENV)
    os.environ[POSTGRES_URL_ENV] = url
    try:
        yield url
    finally:
        if saved is None:
            os.environ.pop(POSTGRES_URL_ENV, None)
        else:
            os.environ[POSTGRES_URL_ENV] = saved
