"""Launch paths against a scripted Dagster: 409, wait outcomes, /admin/runs visibility."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from automem_api.app import create_app
from automem_api.config import ApiConfig, RateLimit
from automem_api.gateway import LaunchError, RunInfo, RunOutcome
from automem_pipelines.domain.progress import format_plan, format_progress
from tests.support.api import ADMIN_TOKEN, API_TOKEN, ScriptedGateway

ADMIN = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}


class Scripted(ScriptedGateway):
    final_status = "SUCCESS"
    errors: list[str] = []
    active: list[RunInfo] = []
    failed_summary: dict | None = None

    def active_runs(self, job):
        return self.active

    def submit(self, job, run_config, tags):
        run_id = super().submit(job, run_config, tags)
        self.runs_by_id[run_id].status = self.final_status
        return run_id

    def outcome(self, run_id, job):
        if self.final_status != "SUCCESS":
            return RunOutcome(self.failed_summary, self.errors)
        return super().outcome(run_id, job)


@pytest.fixture
def scripted(make_settings, tmp_path):
    made = []

    def make(gateway: type[Scripted] = Scripted, **overrides):
        config = ApiConfig(
            settings=make_settings(),
            api_token=API_TOKEN,
            admin_token=ADMIN_TOKEN,
            admin_rate_limit=RateLimit(0, 60.0),
            audit_log=tmp_path / "audit.jsonl",
            status_cache_seconds=0,
            wait_poll_seconds=0.01,
            **overrides,
        )
        launcher = gateway(config)
        client = TestClient(create_app(config, launcher), raise_server_exceptions=False)
        made.append(client)
        return client, launcher

    yield make
    for client in made:
        client.app.state.graph.close()


def test_active_run_gives_409_with_its_id(scripted):
    client, launcher = scripted()
    launcher.active = [RunInfo("11111111-2222-4333-8444-555555555555", "reembed_job", "STARTED")]
    response = client.post("/admin/reembed", headers=ADMIN, json={})
    assert response.status_code == 409
    assert response.json()["run_id"] == "11111111-2222-4333-8444-555555555555"
    assert response.json()["run_status"] == "started"
    assert launcher.runs_by_id == {}  # nothing submitted


def test_wait_success_returns_summary_with_run_id(scripted):
    client, _ = scripted()
    response = client.post("/admin/reembed", headers=ADMIN, json={"wait": True, "batch_size": 8})
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "complete" and body["metadata_preserved"] is True
    run = client.get(f"/admin/runs/{body['run_id']}", headers=ADMIN).json()
    assert run["status"] == "success" and run["summary"]["status"] == "complete"
    assert run["request_id"] == body["request_id"]


def test_wait_on_a_failed_run_is_500_with_the_step_error_and_no_traceback(scripted):
    client, launcher = scripted()
    launcher.final_status = "FAILURE"
    launcher.errors = ["reembed_chunk[chunk_000]: provider refused the batch"]
    response = client.post("/admin/reembed", headers=ADMIN, json={"wait": True})
    assert response.status_code == 500
    body = response.json()
    assert "ended failure: reembed_chunk[chunk_000]: provider refused the batch" in body["message"]
    assert body["run_status"] == "failure" and body["run_id"]
    run = client.get(f"/admin/runs/{body['run_id']}", headers=ADMIN).json()
    assert run["status"] == "failure" and run["errors"] == launcher.errors


def test_wait_on_a_run_failed_by_its_threshold_keeps_automems_fields_and_says_so(scripted):
    client, launcher = scripted()
    launcher.final_status = "FAILURE"
    launcher.errors = ["summarize_reembed: re-embed failed: 12 of the 12 memories failed"]
    launcher.failed_summary = {
        "status": "failed",
        "processed": 0,
        "failed": 12,
        "total": 12,
        "batch_size": 32,
        "metadata_preserved": True,
        "failed_ids": ["a"],
        "run_failed": True,
        "error": "12 of the 12 memories this run tried to embed failed",
    }
    response = client.post("/admin/reembed", headers=ADMIN, json={"wait": True})
    assert response.status_code == 200  # as AutoMem answers provider failures
    body = response.json()
    assert {k: body[k] for k in ("processed", "failed", "total", "batch_size", "failed_ids")} == {
        "processed": 0,
        "failed": 12,
        "total": 12,
        "batch_size": 32,
        "failed_ids": ["a"],
    }
    assert body["status"] == "failed" and body["run_status"] == "failure" and body["error"]


def test_wait_past_the_bound_answers_202_with_the_run_id(scripted):
    client, launcher = scripted(wait_timeout_seconds=0)
    launcher.final_status = "STARTED"
    response = client.post("/admin/sync", headers=ADMIN, json={"wait": True, "dry_run": True})
    assert response.status_code == 202
    assert response.json()["status"] == "started" and response.json()["run_id"]


def test_runs_not_started_through_the_api_are_not_shown(scripted):
    client, launcher = scripted()
    run_id = "11111111-2222-4333-8444-555555555555"
    launcher.runs_by_id[run_id] = RunInfo(
        run_id, "reembed_job", "SUCCESS", {"automem/trigger": "schedule"}
    )
    assert client.get(f"/admin/runs/{run_id}", headers=ADMIN).status_code == 404


class ProgressLog(Scripted):
    """A run whose event log grows between polls; each poll reads from its cursor."""

    log: list[tuple[str | None, str, float | None]] = []
    cursors: list[str | None] = []

    def progress_page(self, run_id, cursor, limit=1000):
        self.cursors.append(cursor)
        start = int(cursor or 0)
        page = self.log[start : start + limit]
        return page, str(start + len(page)), start + len(page) < len(self.log)


def test_run_status_carries_progress_while_running_and_not_after(scripted):
    client, launcher = scripted(ProgressLog)
    launcher.log, launcher.cursors = [], []
    launcher.final_status = "STARTED"
    run_id = client.post("/admin/reembed", headers=ADMIN, json={}).json()["run_id"]

    def poll() -> dict:
        response = client.get(f"/admin/runs/{run_id}", headers=ADMIN)
        assert response.status_code == 200
        return response.json()

    assert poll()["progress"] is None  # started, no progress event yet
    launcher.log += [
        ("enumerate_memories", "12020 memories: 12020 to embed", None),
        ("batch_memories", format_plan("reembed_chunk", 12020, 2), None),
        (
            "reembed_chunk[chunk_000]",
            format_progress("reembed_chunk", 3072, 10000, 1450, 4.8),
            None,
        ),
    ]
    body = poll()
    assert body["status"] == "started"
    assert body["progress"] == {
        "phase": "reembed_chunk",
        "done": 3072,
        "total": 12020,
        "rate_per_second": 1450.0,
        "eta_seconds": round((12020 - 3072) / 1450, 1),
    }
    launcher.log += [
        ("reembed_chunk[chunk_000]", format_progress("reembed_chunk", 10000, 10000, 1500, 0), None),
        ("reembed_chunk[chunk_001]", format_progress("reembed_chunk", 1024, 2020, 1000, 1.0), None),
    ]
    progress = poll()["progress"]
    assert (progress["done"], progress["total"], progress["rate_per_second"]) == (
        11024,
        12020,
        1000.0,
    )
    # each poll read on from where the previous one stopped: nothing is read twice
    assert launcher.cursors == [None, "0", "3"]

    launcher.runs_by_id[run_id].status = launcher.final_status = "SUCCESS"
    body = poll()
    assert body["status"] == "success" and body["progress"] is None
    assert body["summary"]["status"] == "complete"
    assert len(launcher.cursors) == 3  # a finished run's log is not read for progress


class UnreadableLog(Scripted):
    def progress_page(self, run_id, cursor, limit=1000):
        raise LaunchError(500, "Dagster could not read the events", "PythonError")


def test_a_log_dagster_cannot_read_leaves_the_status_without_progress(scripted):
    client, launcher = scripted(UnreadableLog)
    launcher.final_status = "STARTED"
    run_id = client.post("/admin/reembed", headers=ADMIN, json={}).json()["run_id"]
    response = client.get(f"/admin/runs/{run_id}", headers=ADMIN)
    assert response.status_code == 200
    assert response.json()["status"] == "started" and response.json()["progress"] is None
