"""Dagster's run, event-log and schedule storage on PostgreSQL, each holding its connection.

dagster-postgres opens a new connection for every statement outside the webserver
(SQLAlchemy's NullPool): every event a run writes costs a PostgreSQL backend started and
stopped, which made a 20-step run slower on PostgreSQL than on sqlite. These classes are
dagster-postgres's own, configured as the webserver configures them for itself
(``optimize_for_webserver``, a public method of each storage): one pooled connection per
process, a few more under load, recycled hourly. They are named in the dagster.yaml the project
writes when ``DAGSTER_POSTGRES_URL`` is set (automem_pipelines.instance).

A pooled connection must not cross a fork: the run-worker server (run_workers.py) creates no
instance before it forks, and each forked worker opens its own.
"""

from __future__ import annotations

from typing import Any

from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

POOL_RECYCLE_SECONDS = 3600
MAX_OVERFLOW = 4  # connections beyond the pooled one, for a process's concurrent threads
NO_STATEMENT_TIMEOUT = 0  # runs' statements are not cut short (the webserver sets its own)


def _pooled(storage: Any) -> Any:
    storage.optimize_for_webserver(
        statement_timeout=NO_STATEMENT_TIMEOUT,
        pool_recycle=POOL_RECYCLE_SECONDS,
        max_overflow=MAX_OVERFLOW,
    )
    return storage


class PooledPostgresRunStorage(PostgresRunStorage):
    @classmethod
    def from_config_value(cls, inst_data, config_value):  # type: ignore[override]
        return _pooled(super().from_config_value(inst_data, config_value))


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    @classmethod
    def from_config_value(cls, inst_data, config_value):  # type: ignore[override]
        return _pooled(super().from_config_value(inst_data, config_value))


class PooledPostgresScheduleStorage(PostgresScheduleStorage):
    @classmethod
    def from_config_value(cls, inst_data, config_value):  # type: ignore[override]
        return _pooled(super().from_config_value(inst_data, config_value))
