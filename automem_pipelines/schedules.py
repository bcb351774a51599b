from __future__ import annotations

import dagster as dg

from .constants import REEMBED_SCHEDULE, TAG_TRIGGER
from .run_config import reembed_run_config
from .settings import Settings


def build_reembed_schedule(job: dg.JobDefinition, settings: Settings) -> dg.ScheduleDefinition:
    """Incremental re-embed (force=false): only memories whose content or embedding
    configuration changed are embedded. Off unless REEMBED_SCHEDULE_ENABLED."""
    return dg.ScheduleDefinition(
        name=REEMBED_SCHEDULE,
        job=job,
        cron_schedule=settings.reembed_schedule_cron,
        run_config=reembed_run_config(force=False),
        tags={TAG_TRIGGER: "schedule"},
        default_status=(
            dg.DefaultScheduleStatus.RUNNING
            if settings.reembed_schedule_enabled
            else dg.DefaultScheduleStatus.STOPPED
        ),
    )
