"""The pre-forked run-worker launcher: change detection, start failures, worker identity and
health, Terminate (of a live worker and of a dead one), and the fallback to Dagster's default
launch path, with a real webserver + daemon."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from automem_pipelines.constants import REEMBED_JOB
from automem_pipelines.definitions import build_resources
from automem_pipelines.instance import dagster_home, dagster_yaml
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.run_workers import (
    WORKER_PID_TAG,
    WORKER_START_TAG,
    PreforkRunLauncher,
    WorkerServer,
    check_tagged_worker,
    package_fingerprint,
    worker_tags,
)
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack
from automem_pipelines.stores import falkordb_server
from tests.helpers import load_sample
from tests.support.dagster_stack import free_port, submit, wait_for_run
from tests.support.drills import (
    drill_root,
    engine_messages,
    kill_worker,
    step_starts,
    wait_for_end,
    wait_for_points,
    wait_for_status,
    wait_for_step,
    wait_until,
)
from tests.support.local_qdrant import point_count

ROOT = Path(__file__).resolve().parents[2]
MEMORIES = 5000


def test_fingerprint_changes_when_a_preloaded_file_changes(tmp_path, monkeypatch):
    package = tmp_path / "amw_probe_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = package_fingerprint(["amw_probe_pkg.mod"])
    assert before[0] == 2
    assert package_fingerprint(["amw_probe_pkg.mod"]) == before
    stamp = time.time_ns() + 5_000_000_000
    os.utime(package / "mod.py", ns=(stamp, stamp))
    assert package_fingerprint(["amw_probe_pkg.mod"]) != before
    (package / "new.py").write_text("")
    assert package_fingerprint(["amw_probe_pkg"])[0] == 3


def test_a_server_that_cannot_import_its_modules_refuses_to_start():
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="gave no answer"):
        WorkerServer(["automem_no_such_module_for_tests"])
    assert time.monotonic() - started < 60


def _run(tags: dict[str, str]) -> dg.DagsterRun:
    return dg.DagsterRun(job_name=REEMBED_JOB, run_id=str(uuid.uuid4()), tags=tags)


def test_a_worker_is_known_by_pid_and_start_time_not_by_pid_alone():
    first = subprocess.Popen(["sleep", "600"])
    time.sleep(0.05)  # start times count in clock ticks (10 ms): let the second start later
    second = subprocess.Popen(["sleep", "600"])
    try:
        tags = worker_tags(first.pid)
        assert check_tagged_worker(tags).alive
        assert not check_tagged_worker(
            {WORKER_PID_TAG: str(first.pid)}
        ).alive  # no start time: no proof
        # the pid of another process with the recorded start time of the first: not it
        reused = {WORKER_PID_TAG: str(second.pid), WORKER_START_TAG: tags[WORKER_START_TAG]}
        assert "belongs to another process" in check_tagged_worker(reused).why
        first.kill()
        first.wait()
        gone = check_tagged_worker(tags)
        assert not gone.alive and "is not running" in gone.why
    finally:
        for proc in (first, second):
            proc.kill()
            proc.wait()


def test_a_fresh_launcher_judges_worker_health_from_the_tags_alone():
    """As after a restart of the stack: the launcher knows nothing but the run's tags."""
    launcher = PreforkRunLauncher()
    assert launcher.supports_check_run_worker_health
    alive = launcher.check_run_worker_health(_run(worker_tags()))
    assert alive.status.value == "RUNNING"
    sleeper = subprocess.Popen(["sleep", "600"])
    tags = worker_tags(sleeper.pid)
    sleeper.kill()
    sleeper.wait()
    dead = launcher.check_run_worker_health(_run(tags))
    assert dead.status.value == "FAILED" and f"pid {sleeper.pid}" in dead.msg


@pytest.fixture(scope="module")
def stack():
    """Run monitoring polls rarely here (600 s), so the tests decide what happens to a run
    whose worker is gone, not the daemon."""
    with drill_root("amt-") as root:
        env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
        env.update(
            {
                "AUTOMEM_DATA_DIR": str(root),
                "EMBEDDING_PROVIDER": "local",
                "ENRICHMENT_SENSOR_ENABLED": "false",
                "RUN_MONITORING_POLL_SECONDS": "600",
            }
        )
        env.pop("OPENAI_API_KEY", None)
        settings = Settings.from_env(env)
        port = free_port()
        falkordb_server.ensure_running(root)
        with build_resources(settings, from_env=False)["falkordb"].get_store() as graph:
            load_sample(graph, MEMORIES, seed=21)  # a forced run over them takes seconds
        with running_stack(settings, port=port, env=env) as running:
            with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
                yield settings, DagsterGraphQLClient("127.0.0.1", port_number=port), instance


@pytest.mark.slow
def test_terminate_during_a_long_step_cancels_the_run_and_starts_no_other_step(stack):
    settings, client, instance = stack
    run_id = submit(
        client,
        REEMBED_JOB,
        reembed_run_config(batch_size=256, force=True),
        {"automem/trigger": "test"},
    )
    wait_for_step(instance, run_id, "reembed_chunk[chunk_000]")
    wait_for_points(settings, 300)
    pid = int(instance.get_run_by_id(run_id).tags[WORKER_PID_TAG])
    terminated_at = time.time()
    assert client.terminate_run(run_id) is None
    assert wait_for_end(instance, run_id) == dg.DagsterRunStatus.CANCELED
    assert all(at < terminated_at for _, at in step_starts(instance, run_id))
    assert not any(key == "summarize_reembed" for key, _ in step_starts(instance, run_id))
    wait_until("the terminated run's worker exits", lambda: not os.path.exists(f"/proc/{pid}"), 60)

    rerun = submit(
        client, REEMBED_JOB, reembed_run_config(batch_size=256), {"automem/trigger": "test"}
    )
    assert wait_for_end(instance, rerun) == dg.DagsterRunStatus.SUCCESS
    assert point_count(settings) == MEMORIES


@pytest.mark.slow
def test_terminate_of_a_run_whose_worker_died_cancels_it_and_signals_no_one(stack):
    settings, client, instance = stack
    run_id = submit(
        client,
        REEMBED_JOB,
        reembed_run_config(batch_size=256, force=True),
        {"automem/trigger": "test"},
    )
    wait_for_step(instance, run_id, "reembed_chunk[chunk_000]")
    kill_worker(instance, run_id)
    assert (
        instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED
    )  # nobody noticed yet
    # The dead worker's pid now names an unrelated process (as after pid reuse).
    bystander = subprocess.Popen(["sleep", "600"])
    try:
        instance.add_run_tags(run_id, {WORKER_PID_TAG: str(bystander.pid)})
        assert client.terminate_run(run_id) is None
        assert (
            wait_for_status(
                instance,
                run_id,
                dg.DagsterRunStatus.CANCELED,
                dg.DagsterRunStatus.FAILURE,
                dg.DagsterRunStatus.SUCCESS,
            )
            == dg.DagsterRunStatus.CANCELED
        )
        time.sleep(0.5)  # a SIGINT, had one been sent, would have ended `sleep` by now
        assert bystander.poll() is None, "the unrelated process was signalled"
        assert any(
            f"pid {bystander.pid} now belongs to another process" in m
            and "no process was signalled" in m
            for m in engine_messages(instance, run_id)
        )
    finally:
        bystander.kill()
        bystander.wait()

    rerun = submit(
        client, REEMBED_JOB, reembed_run_config(batch_size=256), {"automem/trigger": "test"}
    )
    assert wait_for_end(instance, rerun) == dg.DagsterRunStatus.SUCCESS
    assert point_count(settings) == MEMORIES


@pytest.mark.slow
def test_runs_start_the_default_way_when_the_private_dagster_api_changed():
    with drill_root("amw-") as root:  # an earlier test's stack exported its own DAGSTER_HOME
        env = {**os.environ, "AUTOMEM_DATA_DIR": str(root), "PYTHONPATH": str(ROOT)}
        env.pop("DAGSTER_HOME", None)
        settings = Settings.from_env(env)
        home = dagster_home(settings)
        assert home.is_relative_to(root)
        home.mkdir(parents=True)
        # The worker server also preloads a module that changes a private function the worker
        # calls, as a Dagster upgrade could: the server must refuse to start.
        broken = dagster_yaml(settings.schedule.run_monitoring_poll_seconds).replace(
            "[automem_pipelines.definitions]",
            "[automem_pipelines.definitions, tests.support.breaks_dagster_contract]",
        )
        (home / "dagster.yaml").write_text(broken)  # edited: the stack keeps it
        port = free_port()
        with running_stack(settings, port=port, env=env) as running:
            assert (home / "dagster.yaml").read_text() == broken
            res = build_resources(settings, from_env=False)
            with res["falkordb"].get_store() as graph:
                load_sample(graph, 20)
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            run_id = submit(
                client, REEMBED_JOB, reembed_run_config(force=True), {"automem/trigger": "test"}
            )
            assert wait_for_run(client, run_id) == dg.DagsterRunStatus.SUCCESS
            with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
                run = instance.get_run_by_id(run_id)
                assert WORKER_PID_TAG not in run.tags  # not forked: spawned by the code server
                [fallback] = [
                    m
                    for m in engine_messages(instance, run_id)
                    if "Pre-forked run worker unavailable" in m
                ]
                assert "the private Dagster API it relies on changed" in fallback
                assert "dagster._cli.api._execute_run_command_body" in fallback
                # run monitoring can still tell this worker's health, from the pid it recorded
                wait_until(
                    "the spawned worker is seen to have exited",
                    lambda: (
                        instance.run_launcher.check_run_worker_health(run).status.value == "FAILED"
                    ),
                    60,
                )
