"""Helpers for the API tests: a recording gateway, and a scripted stand-in for Dagster used
by the run tests and the schema fuzz (no 5xx from our own code)."""

from __future__ import annotations

import uuid
from typing import Any

from automem_api.gateway import DagsterGateway, RunInfo, RunOutcome
from automem_pipelines.domain.enrichment_status import SchedulerState

API_TOKEN = "api-token-0123456789"
ADMIN_TOKEN = "admin-token-9876543210"


class RecordingGateway(DagsterGateway):
    """The real gateway, with every submit attempt recorded before it goes to Dagster."""

    def __init__(self, config):
        super().__init__(config)
        self.submits: list[tuple[str, dict, dict]] = []

    def submit(self, job: str, run_config: dict[str, Any], tags: dict[str, str]) -> str:
        self.submits.append((job, run_config, tags))
        return super().submit(job, run_config, tags)


class ScriptedGateway(DagsterGateway):
    """Answers like a healthy Dagster whose runs finish at once (for the schema fuzz)."""

    def __init__(self, config):
        super().__init__(config)
        self.runs_by_id: dict[str, RunInfo] = {}

    def ping(self) -> bool:
        return True

    def submit(self, job, run_config, tags):
        run_id = str(uuid.uuid4())
        self.runs_by_id[run_id] = RunInfo(run_id, job, "SUCCESS", dict(tags), run_config)
        return run_id

    def active_runs(self, job):
        return []

    def run(self, run_id):
        return self.runs_by_id.get(run_id)

    def run_status(self, run_id):
        run = self.runs_by_id.get(run_id)
        return run.status if run else None

    def latest_successful_run(self, job):
        return None

    def latest_check_results(self, asset_key, names):
        return dict.fromkeys(names)  # no check has reported yet

    def outcome(self, run_id, job):
        return RunOutcome(
            {
                "status": "complete",
                "processed": 0,
                "failed": 0,
                "total": 0,
                "batch_size": 32,
                "metadata_preserved": True,
            },
            [],
        )

    def scheduler_state(self):
        return SchedulerState(
            sensor_running=True, daemon_alive=True, queued_runs=0, inflight_ids=0, queued_ids=0
        )
