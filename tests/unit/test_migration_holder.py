"""Who holds a migration, seen from a Dagster instance that does not know the run in its
record (domain.migration.held_elsewhere): the worker process on this machine, the record's
last save for a worker elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from automem_pipelines.domain import migration as mig
from automem_pipelines.domain.vector_state import EmbeddingIdentity

NOW = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
BOOT = "boot-a"


def record(worker: dict | None, seconds_ago: float) -> mig.MigrationRecord:
    out = mig.new_record(
        "memories",
        EmbeddingIdentity("local", "m", 256),
        "memories__x_1024",
        EmbeddingIdentity("openai", "x", 1024),
        None,
    )
    out.worker = worker
    out.updated_at = (NOW - timedelta(seconds=seconds_ago)).isoformat()
    return out


def held(rec: mig.MigrationRecord, alive: dict[int, str] | None = None) -> str | None:
    return mig.held_elsewhere(rec, 999, BOOT, lambda pid: (alive or {}).get(pid), NOW)


def test_a_live_worker_on_this_machine_holds_it_however_quiet():
    worker = {"pid": 42, "process": f"{BOOT}:1000"}
    assert "pid 42, this machine) is running" in held(record(worker, 3600), {42: f"{BOOT}:1000"})


def test_a_gone_worker_on_this_machine_holds_it_only_for_the_gap_between_steps():
    worker = {"pid": 42, "process": f"{BOOT}:1000"}
    reused = {42: f"{BOOT}:2000"}  # pid 42 is another process now
    assert "next step may be starting" in held(record(worker, mig.STEP_GAP_SECONDS - 1), reused)
    assert held(record(worker, mig.STEP_GAP_SECONDS + 1), reused) is None
    assert held(record(worker, mig.STEP_GAP_SECONDS + 1)) is None


def test_this_process_holds_nothing():
    assert held(record({"pid": 999, "process": f"{BOOT}:5"}, 0), {999: f"{BOOT}:5"}) is None


def test_a_worker_on_another_machine_or_of_no_known_process_holds_it_for_the_lease():
    for worker in ({"pid": 42, "process": "boot-b:1000"}, None):
        assert "s ago by" in held(record(worker, mig.LEASE_SECONDS - 1))
        assert held(record(worker, mig.LEASE_SECONDS + 1)) is None
