"""The end-to-end tests run with the Dagster instance on sqlite under DAGSTER_HOME (the
default) or, with ``AUTOMEM_TEST_DAGSTER_STORAGE=postgres`` (.ci/run's second pass), on
PostgreSQL: a server the project starts (automem_pipelines.postgres_server), a database of its
own for each test module, exported as DAGSTER_POSTGRES_URL to the stacks the module starts."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from automem_pipelines import postgres_server
from automem_pipelines.instance import POSTGRES_URL_ENV

STORAGE_ENV = "AUTOMEM_TEST_DAGSTER_STORAGE"


@pytest.fixture(scope="session")
def postgres_root() -> Iterator[Path]:
    # Under /tmp with mode 755: as root the server runs as the postgres user, who must be able
    # to enter every parent of its directory.
    root = Path(tempfile.mkdtemp(prefix="amp-pg-", dir="/tmp"))
    root.chmod(0o755)
    postgres_server.ensure_running(root)
    try:
        yield root
    finally:
        postgres_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


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
