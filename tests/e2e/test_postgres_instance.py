"""End to end: the stack's Dagster instance on PostgreSQL, set by one variable
(DAGSTER_POSTGRES_URL), against a server the project starts."""

from __future__ import annotations

import os

import dagster as dg
import psycopg2
import pytest
from dagster_graphql import DagsterGraphQLClient

from automem_pipelines.constants import REEMBED_JOB
from automem_pipelines.definitions import build_resources
from automem_pipelines.instance import POSTGRES_URL_ENV
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack
from tests.e2e.conftest import fresh_database
from tests.helpers import load_sample
from tests.support.dagster_stack import free_port, submit, wait_for_run
from tests.support.drills import drill_root
from tests.support.local_qdrant import point_count

pytestmark = pytest.mark.slow


def test_a_stack_on_postgres_runs_a_reembed_and_keeps_its_runs_and_events_there(
    postgres_root, monkeypatch
):
    url = fresh_database(postgres_root)
    monkeypatch.setenv(POSTGRES_URL_ENV, url)  # put back afterwards: the stack exports it
    with drill_root("amg-") as root:
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env.update({"AUTOMEM_DATA_DIR": str(root), POSTGRES_URL_ENV: url})
        settings = Settings.from_env(env)
        with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
            load_sample(graph, 300)
        port = free_port()
        with running_stack(settings, port=port, env=env) as running:
            written = (running.dagster_home / "dagster.yaml").read_text()
            assert f"env: {POSTGRES_URL_ENV}" in written and url not in written
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            run_id = submit(client, REEMBED_JOB, reembed_run_config(batch_size=64), {})
            assert wait_for_run(client, run_id) == dg.DagsterRunStatus.SUCCESS
        assert point_count(settings) == 300

    # Nothing of the run went to sqlite: its record and its events are in PostgreSQL.
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT status FROM runs WHERE run_id = %s", (run_id,))
        assert cur.fetchall() == [("SUCCESS",)]
        cur.execute("SELECT count(*) FROM event_logs WHERE run_id = %s", (run_id,))
        assert cur.fetchone()[0] > 20


def test_a_dagster_postgres_url_that_is_not_one_is_refused_naming_the_variable():
    with pytest.raises(ValueError, match=rf"{POSTGRES_URL_ENV}='mysql://x' .*postgresql://"):
        Settings.from_env({POSTGRES_URL_ENV: "mysql://x"})


def test_every_storage_of_the_instance_holds_a_pooled_connection(
    postgres_root, tmp_path, monkeypatch
):
    """dagster-postgres alone opens a connection per statement outside the webserver (each
    event a PostgreSQL backend started and stopped); ours keep one per process."""
    from dagster_postgres import (
        PostgresEventLogStorage,
        PostgresRunStorage,
        PostgresScheduleStorage,
    )
    from sqlalchemy.pool import QueuePool

    from automem_pipelines.instance import ensure_dagster_home

    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    url = fresh_database(postgres_root)
    monkeypatch.setenv(POSTGRES_URL_ENV, url)  # put back afterwards: ensure_dagster_home exports it
    home = ensure_dagster_home(
        Settings.from_env({"AUTOMEM_DATA_DIR": str(tmp_path), POSTGRES_URL_ENV: url})
    )
    with dg.DagsterInstance.from_config(str(home)) as instance:
        storages = (instance.run_storage, instance.event_log_storage, instance.schedule_storage)
        kinds = (PostgresRunStorage, PostgresEventLogStorage, PostgresScheduleStorage)
        for storage, kind in zip(storages, kinds, strict=True):
            assert isinstance(storage, kind)
            assert isinstance(storage._engine.pool, QueuePool)  # noqa: SLF001 - what it is for
        instance.get_runs(limit=1)
