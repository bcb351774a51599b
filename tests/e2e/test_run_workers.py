"""The pre-forked run-worker launcher: change detection, start failures, and the fallback to
Dagster's default launch path with a real webserver + daemon."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from pathlib import Path

import dagster as dg
import pytest
from dagster_graphql import DagsterGraphQLClient

from automem_pipelines.constants import REEMBED_JOB
from automem_pipelines.definitions import build_resources
from automem_pipelines.instance import DAGSTER_YAML, dagster_home
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.run_workers import WORKER_PID_TAG, WorkerServer, package_fingerprint
from automem_pipelines.settings import Settings
from automem_pipelines.stack import running_stack
from automem_pipelines.stores import falkordb_server, vectors
from tests.helpers import load_sample
from tests.support.dagster_stack import free_port, submit, wait_for_run


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


@pytest.mark.slow
def test_runs_still_start_the_default_way_when_the_worker_server_cannot():
    root = Path(tempfile.mkdtemp(prefix="amw-"))
    env = {**os.environ, "AUTOMEM_DATA_DIR": str(root)}
    env.pop("DAGSTER_HOME", None)
    settings = Settings.from_env(env)
    saved = os.environ.pop("DAGSTER_HOME", None)  # an earlier test's stack exported its own
    try:
        home = dagster_home(settings)
        assert home.is_relative_to(root)
        home.mkdir(parents=True)
        broken = DAGSTER_YAML.replace("[automem_pipelines.definitions]", "[automem_no_such_module_for_tests]")
        assert broken != DAGSTER_YAML
        (home / "dagster.yaml").write_text(broken)  # the stack keeps an existing dagster.yaml
        port = free_port()
        with running_stack(settings, port=port, env=env) as running:
            res = build_resources(settings, from_env=False)
            with res["falkordb"].get_store() as graph:
                load_sample(graph, 20)
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            run_id = submit(client, REEMBED_JOB, reembed_run_config(force=True), {"automem/trigger": "test"})
            assert wait_for_run(client, run_id) == dg.DagsterRunStatus.SUCCESS
            with dg.DagsterInstance.from_config(str(running.dagster_home)) as instance:
                run = instance.get_run_by_id(run_id)
                assert WORKER_PID_TAG not in run.tags  # not forked: spawned by the code server
                messages = [r.message for r in instance.all_logs(run_id)]
                assert any("Pre-forked run worker unavailable" in m for m in messages)
    finally:
        os.environ.pop("DAGSTER_HOME", None)  # running_stack exported this test's home
        if saved is not None:
            os.environ["DAGSTER_HOME"] = saved
        vectors.close_all()
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)
