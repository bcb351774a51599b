"""The scheduler's side of the enrichment status: one rule, two sources.

`scheduler_state` is the only place that decides whether the enrichment sensor runs, whether
the daemon that ticks it is alive, and how queued and started runs and their memory ids are
counted. It is fed either from a Dagster instance (`scheduler_state_from_instance`: the CLI,
the tests, the sensor's own run count) or from the webserver's GraphQL answers
(`automem_api.gateway`). Only public instance methods are used.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dagster as dg

from .constants import ENRICHMENT_JOB, ENRICHMENT_SENSOR
from .domain.enrichment_status import SchedulerState
from .run_config import ENRICHMENT_CONFIG_OP

QUEUED_STATUSES = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
]
STARTED_STATUSES = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
SENSOR_DAEMON = "SENSOR"
HEARTBEAT_TOLERANCE_SECONDS = 120.0
MAX_RUNS_READ = 1000
RUNNING_SENSOR_STATUSES = frozenset({"RUNNING", "AUTOMATICALLY_RUNNING", "DECLARED_IN_CODE"})


# -- the rules ---------------------------------------------------------------------------------
def ids_in_run_config(run_config: Mapping[str, Any] | None) -> list[str]:
    """The memory ids an enrichment run was asked to enrich (from its run config)."""
    ops = (run_config or {}).get("ops") or {}
    config = (ops.get(ENRICHMENT_CONFIG_OP) or {}).get("config") or {}
    return [i for i in config.get("ids") or [] if isinstance(i, str)]


def _ids(run_configs: Iterable[Mapping[str, Any] | None]) -> frozenset[str]:
    return frozenset(i for config in run_configs for i in ids_in_run_config(config))


def sensor_is_running(stored_status: str | None, default_running: bool) -> bool:
    """The sensor's stored state if it was ever switched (UI, GraphQL), else its default."""
    if stored_status in RUNNING_SENSOR_STATUSES:
        return True
    if stored_status == "STOPPED":
        return False
    return default_running


def daemon_is_alive(last_heartbeat: float | None, now: float | None = None) -> bool:
    """The sensor daemon sent a heartbeat within the tolerance."""
    if last_heartbeat is None:
        return False
    now = time.time() if now is None else now
    return now - float(last_heartbeat) <= HEARTBEAT_TOLERANCE_SECONDS


def scheduler_state(
    *,
    sensor_status: str | None,
    default_running: bool,
    last_heartbeat: float | None,
    queued_run_configs: Sequence[Mapping[str, Any] | None],
    started_run_configs: Sequence[Mapping[str, Any] | None],
    now: float | None = None,
) -> SchedulerState:
    """The scheduler state from raw facts: the sensor's stored status (None if never
    switched), the sensor daemon's last heartbeat (epoch seconds), and the run configs of
    the enrichment runs waiting to start and of those started."""
    return SchedulerState(
        sensor_running=sensor_is_running(sensor_status, default_running),
        daemon_alive=daemon_is_alive(last_heartbeat, now),
        queued_runs=len(queued_run_configs),
        inflight_ids=len(_ids(started_run_configs)),
        queued_ids=len(_ids(queued_run_configs)),
    )


# -- fed by an instance ------------------------------------------------------------------------
@dataclass(frozen=True)
class InflightRuns:
    queued_runs: int
    started_runs: int
    queued_ids: frozenset[str]
    started_ids: frozenset[str]

    @property
    def busy_ids(self) -> frozenset[str]:
        return self.queued_ids | self.started_ids


def _enrichment_runs(instance: dg.DagsterInstance, statuses: list) -> list[dg.DagsterRun]:
    return list(
        instance.get_runs(
            filters=dg.RunsFilter(job_name=ENRICHMENT_JOB, statuses=statuses), limit=MAX_RUNS_READ
        )
    )


def inflight_runs(instance: dg.DagsterInstance) -> InflightRuns:
    """Enrichment runs waiting to start or running, and the memory ids they hold."""
    queued = _enrichment_runs(instance, QUEUED_STATUSES)
    started = _enrichment_runs(instance, STARTED_STATUSES)
    return InflightRuns(
        len(queued),
        len(started),
        _ids(r.run_config for r in queued),
        _ids(r.run_config for r in started),
    )


def stored_sensor_status(instance: dg.DagsterInstance) -> str | None:
    for state in instance.all_instigator_state():
        if state.instigator_name == ENRICHMENT_SENSOR:
            return getattr(state.status, "value", str(state.status))
    return None


def last_sensor_heartbeat(instance: dg.DagsterInstance) -> float | None:
    heartbeat = instance.get_daemon_heartbeats().get(SENSOR_DAEMON)
    return None if heartbeat is None else float(heartbeat.timestamp)


def scheduler_state_from_instance(
    instance: dg.DagsterInstance, default_running: bool | None = None
) -> SchedulerState:
    if default_running is None:
        from .settings import Settings

        default_running = Settings.from_env().enrichment.sensor_enabled
    return scheduler_state(
        sensor_status=stored_sensor_status(instance),
        default_running=default_running,
        last_heartbeat=last_sensor_heartbeat(instance),
        queued_run_configs=[r.run_config for r in _enrichment_runs(instance, QUEUED_STATUSES)],
        started_run_configs=[r.run_config for r in _enrichment_runs(instance, STARTED_STATUSES)],
    )
