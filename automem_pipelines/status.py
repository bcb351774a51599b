"""The scheduler's side of the enrichment status, read from a Dagster instance.

Used in process (CLI, tests, the sensor); the API builds the same ``SchedulerState`` from
GraphQL. Only public instance methods are used.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg

from .constants import ENRICHMENT_JOB, ENRICHMENT_SENSOR
from .domain.enrichment_status import SchedulerState
from .run_config import ENRICHMENT_CONFIG_OP
from .settings import Settings

QUEUED_STATUSES = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED,
                   dg.DagsterRunStatus.STARTING]  # fmt: skip
STARTED_STATUSES = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
SENSOR_DAEMON = "SENSOR"
HEARTBEAT_TOLERANCE_SECONDS = 120.0
MAX_RUNS_READ = 1000


@dataclass(frozen=True)
class InflightRuns:
    queued_runs: int
    started_runs: int
    queued_ids: frozenset[str]
    started_ids: frozenset[str]

    @property
    def busy_ids(self) -> frozenset[str]:
        return self.queued_ids | self.started_ids


def run_ids_of(run: dg.DagsterRun) -> list[str]:
    """The memory ids an enrichment run was asked to enrich (from its run config)."""
    config = (run.run_config or {}).get("ops", {}).get(ENRICHMENT_CONFIG_OP, {}).get("config", {})
    ids = config.get("ids", [])
    return [i for i in ids if isinstance(i, str)]


def _ids(runs: Sequence[dg.DagsterRun]) -> frozenset[str]:
    return frozenset(i for run in runs for i in run_ids_of(run))


def inflight_runs(instance: dg.DagsterInstance) -> InflightRuns:
    """Enrichment runs waiting to start or running, and the memory ids they hold."""
    queued = instance.get_runs(
        filters=dg.RunsFilter(job_name=ENRICHMENT_JOB, statuses=QUEUED_STATUSES), limit=MAX_RUNS_READ
    )
    started = instance.get_runs(
        filters=dg.RunsFilter(job_name=ENRICHMENT_JOB, statuses=STARTED_STATUSES), limit=MAX_RUNS_READ
    )
    return InflightRuns(len(queued), len(started), _ids(queued), _ids(started))


def sensor_running(instance: dg.DagsterInstance, default_running: bool) -> bool:
    """The sensor's stored state if it was ever switched in the UI/GraphQL, else its default."""
    for state in instance.all_instigator_state():
        if state.instigator_name == ENRICHMENT_SENSOR:
            status = getattr(state.status, "value", str(state.status))
            if status in ("RUNNING", "AUTOMATICALLY_RUNNING"):
                return True
            if status == "STOPPED":
                return False
    return default_running


def daemon_alive(instance: dg.DagsterInstance, now: float | None = None) -> bool:
    heartbeat = instance.get_daemon_heartbeats().get(SENSOR_DAEMON)
    if heartbeat is None:
        return False
    now = time.time() if now is None else now
    return now - float(heartbeat.timestamp) <= HEARTBEAT_TOLERANCE_SECONDS


def scheduler_state_from_instance(
    instance: dg.DagsterInstance, default_running: bool | None = None
) -> SchedulerState:
    if default_running is None:
        default_running = Settings.from_env().enrichment.sensor_enabled
    runs = inflight_runs(instance)
    return SchedulerState(
        sensor_running=sensor_running(instance, default_running),
        daemon_alive=daemon_alive(instance),
        queued_runs=runs.queued_runs,
        inflight_ids=len(runs.started_ids),
        queued_ids=len(runs.queued_ids),
    )
