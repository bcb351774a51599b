"""Sensors. The enrichment sensor runs in the daemon's process: it reads FalkorDB and the
Dagster instance, and never opens Qdrant (a local-mode store may be held by a run)."""

import hashlib
import json
import time
from collections.abc import Sequence

import dagster as dg

from .constants import (
    BACKGROUND_PRIORITY,
    ENRICHMENT_JOB,
    ENRICHMENT_SENSOR,
    TAG_PRIORITY,
    TAG_TRIGGER,
)
from .domain.enrichment import Candidate, find_candidates
from .resources import FalkorDBResource
from .resources.sync import SyncPolicyResource
from .run_config import ENRICHMENT_CONFIG_OP, enrichment_run_config
from .settings import Settings
from .status import inflight_runs

MAX_RUNS_PER_TICK = 4
MAX_RUNS_IN_FLIGHT = 4  # queued + started enrichment runs; beyond this the sensor waits
# After an enrichment run failed as a whole (a store outage outlasting the RetryPolicy), the
# sensor requests nothing for this long, so an outage does not turn into a run per tick.
FAILED_RUN_PAUSE_SECONDS = 60.0


def run_key_for(batch: Sequence[Candidate], forced: bool, generation: int) -> str:
    """From the data: the memories, their attempt numbers and last enrichment time, whether
    the run is forced, plus the count of enrichment runs that ever failed or were cancelled
    (so memories of a run that died as a whole get a new key and are requested again)."""
    material = "|".join(
        f"{c.id}@{c.attempts}@{c.enriched_at}" for c in sorted(batch, key=lambda c: c.id)
    )
    digest = hashlib.sha256(material.encode()).hexdigest()[:24]
    return f"enrich-{'forced' if forced else 'new'}-{digest}-g{generation}"


def plan_run_requests(
    candidates: Sequence[Candidate], batch_size: int, max_runs: int, generation: int
) -> list[dg.RunRequest]:
    requests: list[dg.RunRequest] = []
    for forced in (False, True):
        group = [c for c in candidates if c.forced == forced]
        for start in range(0, len(group), batch_size):
            if len(requests) >= max_runs:
                return requests
            batch = group[start : start + batch_size]
            requests.append(
                dg.RunRequest(
                    run_key=run_key_for(batch, forced, generation),
                    run_config=enrichment_run_config([c.id for c in batch], forced),
                    # behind runs an operator started (constants.TAG_PRIORITY)
                    tags={TAG_TRIGGER: "sensor", TAG_PRIORITY: BACKGROUND_PRIORITY},
                )
            )
    return requests


def evaluate_enrichment(
    context: dg.SensorEvaluationContext,
    falkordb: FalkorDBResource,
    batch_size: int,
    excluded_types: Sequence[str],
    max_runs_per_tick: int = MAX_RUNS_PER_TICK,
    max_runs_in_flight: int = MAX_RUNS_IN_FLIGHT,
) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    ticks = int(cursor.get("ticks", 0)) + 1
    requested_total = int(cursor.get("requested_ids", 0))
    runs = inflight_runs(context.instance)
    generation = context.instance.get_runs_count(
        dg.RunsFilter(
            job_name=ENRICHMENT_JOB,
            statuses=[dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED],
        )
    )
    room = min(max_runs_per_tick, max_runs_in_flight - runs.queued_runs - runs.started_runs)

    def result(requests: list[dg.RunRequest], skip: str | None = None) -> dg.SensorResult:
        ids = sum(len(r.run_config["ops"][ENRICHMENT_CONFIG_OP]["config"]["ids"]) for r in requests)
        new_cursor = json.dumps(
            {
                "ticks": ticks,
                "requested_ids": requested_total + ids,
                "generation": generation,
                "last_run_keys": [r.run_key for r in requests],
            },
            sort_keys=True,
        )
        if skip is not None:
            return dg.SensorResult(skip_reason=dg.SkipReason(skip), cursor=new_cursor)
        return dg.SensorResult(run_requests=requests, cursor=new_cursor)

    failed = context.instance.get_run_records(
        dg.RunsFilter(job_name=ENRICHMENT_JOB, statuses=[dg.DagsterRunStatus.FAILURE]), limit=1
    )
    ended = failed[0].end_time if failed else None
    if ended is not None and time.time() - ended < FAILED_RUN_PAUSE_SECONDS:
        return result(
            [],
            f"enrichment run {failed[0].dagster_run.run_id} failed "
            f"{time.time() - ended:.0f}s ago; pausing {FAILED_RUN_PAUSE_SECONDS:.0f}s "
            "before requesting more",
        )
    if room <= 0:
        return result(
            [],
            f"{runs.queued_runs} queued and {runs.started_runs} running "
            "enrichment runs; waiting for them to finish",
        )
    with falkordb.get_store() as graph:
        candidates = find_candidates(
            graph, batch_size * room, busy=sorted(runs.busy_ids), excluded_types=excluded_types
        )
    if not candidates:
        return result(
            [],
            f"no memories waiting for enrichment ({len(runs.busy_ids)} in queued or running runs)",
        )
    requests = plan_run_requests(candidates, batch_size, room, generation)
    context.log.info(f"requesting {len(requests)} enrichment runs for {len(candidates)} memories")
    return result(requests)


def build_enrichment_sensor(job: dg.JobDefinition, settings: Settings) -> dg.SensorDefinition:
    batch_size = settings.enrichment.sensor_batch_size

    @dg.sensor(
        name=ENRICHMENT_SENSOR,
        job=job,
        minimum_interval_seconds=settings.enrichment.sensor_interval_seconds,
        default_status=(
            dg.DefaultSensorStatus.RUNNING
            if settings.enrichment.sensor_enabled
            else dg.DefaultSensorStatus.STOPPED
        ),
        description=f"Requests enrichment runs (≤{batch_size} memories each, "
        f"≤{MAX_RUNS_PER_TICK} per tick) for memories that are not processed and not failed.",
    )
    def enrichment_sensor(
        context: dg.SensorEvaluationContext, falkordb: FalkorDBResource, sync: SyncPolicyResource
    ) -> dg.SensorResult:
        return evaluate_enrichment(context, falkordb, batch_size, sync.excluded_types)

    return enrichment_sensor
