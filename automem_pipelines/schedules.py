from __future__ import annotations

import dagster as dg

from .constants import (
    BACKGROUND_PRIORITY,
    DRIFT_SYNC_SCHEDULE,
    REEMBED_SCHEDULE,
    TAG_PRIORITY,
    TAG_TRIGGER,
)
from .run_config import reembed_run_config, sync_run_config
from .settings import Settings

# behind runs an operator started, like the sensor's (constants.TAG_PRIORITY)
SCHEDULE_TAGS = {TAG_TRIGGER: "schedule", TAG_PRIORITY: BACKGROUND_PRIORITY}


def build_reembed_schedule(job: dg.JobDefinition, settings: Settings) -> dg.ScheduleDefinition:
    """Incremental re-embed (force=false): only memories whose content or embedding
    configuration changed are embedded. Off unless REEMBED_SCHEDULE_ENABLED."""
    return dg.ScheduleDefinition(
        name=REEMBED_SCHEDULE,
        job=job,
        cron_schedule=settings.schedule.reembed_cron,
        run_config=reembed_run_config(force=False),
        tags=SCHEDULE_TAGS,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if settings.schedule.reembed_enabled
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )


def interval_cron(seconds: int) -> str:
    """A cron schedule for "every ``seconds``": the longest interval cron can express that is
    not longer than the one asked for (cron steps must divide the hour or the day)."""
    minutes = max(1, seconds // 60)
    if minutes < 60:
        step = max(d for d in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30) if d <= minutes)
        return "* * * * *" if step == 1 else f"*/{step} * * * *"
    hours = minutes // 60
    if hours < 24:
        step = max(d for d in (1, 2, 3, 4, 6, 8, 12) if d <= hours)
        return "0 * * * *" if step == 1 else f"0 */{step} * * *"
    days = min(hours // 24, 7)
    return "0 0 * * *" if days == 1 else f"0 0 */{days} * *"


def build_drift_sync_schedule(job: dg.JobDefinition, settings: Settings) -> dg.ScheduleDefinition:
    """Detection + repair every SYNC_CHECK_INTERVAL_SECONDS (default hourly); running by
    default when SYNC_AUTO_REPAIR is true (AutoMem's default), stopped otherwise. Orphans are
    reported, never recovered, by the schedule."""
    return dg.ScheduleDefinition(
        name=DRIFT_SYNC_SCHEDULE,
        job=job,
        cron_schedule=interval_cron(settings.sync.check_interval_seconds),
        run_config=sync_run_config(dry_run=False, recover_orphans=False),
        tags=SCHEDULE_TAGS,
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if settings.sync.auto_repair
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )
