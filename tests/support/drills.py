"""Helpers for the fault drills (kill -9, Terminate, Ctrl-C of the stack): wait for a run to
reach a point, peek at the local Qdrant store's own sqlite file, kill a run's worker."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from automem_pipelines.run_workers import WORKER_PID_TAG, check_tagged_worker
from automem_pipelines.settings import Settings
from automem_pipelines.stores import falkordb_server

LIMIT_SECONDS = 180.0  # a bound on waiting, not an assertion about speed
FINISHED = (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@contextmanager
def drill_root(prefix: str) -> Iterator[Path]:
    """A throw-away data dir for a drill's stack: DAGSTER_HOME is taken out of this process's
    environment while it runs and put back after, and whatever the drill left (cached Qdrant
    clients, the embedded FalkorDB server, the files) is gone afterwards, even on failure."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    saved = os.environ.pop("DAGSTER_HOME", None)
    try:
        yield root
    finally:
        os.environ.pop("DAGSTER_HOME", None)  # running_stack exported the drill's own home
        if saved is not None:
            os.environ["DAGSTER_HOME"] = saved
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def wait_until(what: str, predicate, limit: float = LIMIT_SECONDS, every: float = 0.05):
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {limit:.0f}s")
        time.sleep(every)


def step_starts(instance: dg.DagsterInstance, run_id: str) -> list[tuple[str, float]]:
    """(step key, timestamp) of every STEP_START of the run, in order."""
    return [
        (entry.step_key, entry.timestamp)
        for entry in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    ]


def wait_for_step(instance: dg.DagsterInstance, run_id: str, step_key: str) -> None:
    wait_until(
        f"step {step_key} of run {run_id} started",
        lambda: any(key == step_key for key, _ in step_starts(instance, run_id)),
    )


def wait_for_status(
    instance: dg.DagsterInstance,
    run_id: str,
    *statuses: dg.DagsterRunStatus,
    limit: float = LIMIT_SECONDS,
) -> dg.DagsterRunStatus:
    return wait_until(
        f"run {run_id} reached {[s.value for s in statuses]}",
        lambda: (run := instance.get_run_by_id(run_id)) and run.status in statuses and run.status,
        limit,
        every=0.1,
    )


def wait_for_end(
    instance: dg.DagsterInstance, run_id: str, limit: float = LIMIT_SECONDS
) -> dg.DagsterRunStatus:
    return wait_for_status(instance, run_id, *FINISHED, limit=limit)


def local_points(settings: Settings) -> int:
    """Points in the local Qdrant store, read from a copy of its sqlite file and journal (the
    run that holds the store keeps it; after a kill -9 the journal may be hot, which a
    read-only connection cannot roll back — the copy is rolled back on open, as the next
    writer of the store would)."""
    path = (
        Path(settings.data_dir)
        / "qdrant"
        / "collection"
        / settings.qdrant.collection
        / "storage.sqlite"
    )
    if not path.exists():
        return 0
    with tempfile.TemporaryDirectory(prefix="amq-") as tmp:
        for suffix in ("", "-journal", "-wal"):
            try:  # a journal comes and goes with each transaction of a live writer
                shutil.copyfile(Path(str(path) + suffix), Path(tmp) / ("storage.sqlite" + suffix))
            except FileNotFoundError:
                pass
        with sqlite3.connect(Path(tmp) / "storage.sqlite", timeout=5) as db:
            try:
                return db.execute("SELECT count(*) FROM points").fetchone()[0]
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):  # not created yet
                    return 0
                raise


def wait_for_points(settings: Settings, at_least: int) -> int:
    return wait_until(
        f"{at_least} points written", lambda: (n := local_points(settings)) >= at_least and n
    )


def kill_worker(instance: dg.DagsterInstance, run_id: str) -> int:
    """SIGKILL the run's worker, after checking the tags name a live process that is it."""
    tags = instance.get_run_by_id(run_id).tags
    worker = check_tagged_worker(tags)
    assert worker.alive, worker.why
    os.kill(worker.pid, signal.SIGKILL)
    wait_until(f"worker {worker.pid} gone", lambda: not check_tagged_worker(tags).alive)
    return int(tags[WORKER_PID_TAG])


def engine_messages(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    return [e.message for e in instance.all_logs(run_id) if e.message]


def failure_of(instance: dg.DagsterInstance, run_id: str) -> str:
    """What a failed run's failure events say (for an assertion's message)."""
    lines = []
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None or not event.is_failure:
            continue
        error = getattr(event.event_specific_data, "error", None)
        lines.append(
            f"{event.step_key or 'run'}: {record.user_message}"
            + (f"\n{error.to_string()}" if error is not None else "")
        )
    return "\n".join(lines)[-4000:] or "no failure event"


def stack_env(root: Path, **variables: str) -> dict[str, str]:
    """The environment of a stack under ``root``: this process's, without DAGSTER_HOME and the
    OpenAI variables, with the local provider and no enrichment sensor, then ``variables``."""
    env = {
        k: v for k, v in os.environ.items() if k != "DAGSTER_HOME" and not k.startswith("OPENAI")
    }
    env.update(
        {
            "AUTOMEM_DATA_DIR": str(root),
            "EMBEDDING_PROVIDER": "local",
            "ENRICHMENT_SENSOR_ENABLED": "false",
        }
    )
    env.update(variables)
    return env
