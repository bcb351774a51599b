"""Run workers forked from a process that has already imported the code location.

Dagster's default launcher asks the code server to start each run, and the code server starts
a fresh interpreter for it (``multiprocessing`` *spawn*, hard-coded): every run pays for
starting Python, importing dagster and importing the code location again — about 2 s here
before the first step of a re-embed, most of a small run's latency (dagster-io/dagster#8638
asks for a pre-loaded alternative upstream).

``PreforkRunLauncher`` (configured in the ``dagster.yaml`` that the project writes into
DAGSTER_HOME) keeps one *worker server* per launching process (the daemon): a child
interpreter that imports the configured modules once and then, for each run, ``fork()``s a
run worker that executes the run exactly as ``dagster api execute_run`` does. The server is
single-threaded and opens nothing before forking (no storage connection, no gRPC channel),
so a fork copies only imported modules; it imports them with the cyclic collector paused and
freezes them (``gc.freeze``) just before each fork.

- Runs of any code location work (a module not preloaded is imported in the worker).
- Edited code is picked up: before each launch the launcher compares the modification times
  of the preloaded packages' files with those at server start, and restarts the server when
  they changed.
- The server checks at start that the private Dagster calls it makes still have the pinned
  shape (``PRIVATE_API`` in ``dagster_contract.py``); if not, or if it cannot be started or dies, the launch falls back
  to Dagster's default (code-server spawn) path, with an engine event saying so.
- Identity: the worker's pid and its process start time are run tags
  (``worker_identity.py``); nothing is signalled without that proof.
- Health (Dagster's run monitoring, in the daemon): a STARTED run whose worker is gone is
  reported FAILED, so the daemon fails the run.
- Termination: ``terminate`` marks the run canceling and sends SIGINT to the proven worker,
  which stops at the next write window and reports the run canceled; a run whose worker is
  already gone is marked canceled at once.
"""

from __future__ import annotations

import gc
import importlib
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

# Pinned by PRIVATE_API (dagster_contract.py; checked by tests/unit/test_dagster_contract.py
# and at server start).
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

from .dagster_contract import EXISTS, PRIVATE_API, PROPERTY, private_api_problems
from .run_tags import ui_trigger_tags
from .stores.gc_pause import cyclic_gc_paused
from .worker_identity import (
    WORKER_PID_TAG,
    WORKER_START_TAG,
    WorkerCheck,
    check_spawned_worker,
    check_tagged_worker,
    process_identity,
    worker_tags,
)

__all__ = [
    "EXISTS",
    "PRIVATE_API",
    "PROPERTY",
    "WARM_MODULES",
    "WORKER_PID_TAG",
    "WORKER_START_TAG",
    "PreforkRunLauncher",
    "WorkerCheck",
    "WorkerServer",
    "check_tagged_worker",
    "missing_warm_modules",
    "package_fingerprint",
    "private_api_problems",
    "process_identity",
    "serve",
    "worker_tags",
]

if TYPE_CHECKING:
    from dagster._core.launcher import LaunchRunContext
    from dagster._serdes import ConfigurableClassData

# What a run worker imports on top of the code location before its first step (opening the
# sqlite instance storages, the filesystem IO manager, the executor): ~0.3 s per run unless the
# server has imported them; then what its steps import. Importing opens nothing; a missing one
# is reported (stderr of the daemon, and the engine event of each forked run), then the run
# imports what it needs itself.
WARM_MODULES = (
    "dagster._cli.api",
    "dagster._core.execution.api",
    "dagster._core.storage.sqlite_storage",
    "dagster._core.storage.runs.sqlite.sqlite_run_storage",
    "dagster._core.storage.event_log.sqlite.sqlite_event_log",
    "dagster._core.storage.schedules.sqlite.sqlite_schedule_storage",
    "dagster._core.storage.local_compute_log_manager",
    "dagster._core.storage.fs_io_manager",
    "alembic.command",
    "alembic.config",
    "alembic.runtime.migration",
    "fsspec.implementations.local",
    "upath.implementations.local",
    # What the steps import on first use: the code location imports no client library (so the
    # CLI's in-process runs reach their first step sooner, tests/unit/test_cli_imports.py), but
    # a forked worker should not pay for qdrant-client's import (~1 s) in its first step.
    "qdrant_client",
    "tokenizers",  # the shipped local embedding model (domain/static_model.py)
    "safetensors.numpy",
)

READY_TIMEOUT_SECONDS = 30.0  # both well under run monitoring's start timeout (instance.py)
REPLY_TIMEOUT_SECONDS = 10.0


def missing_warm_modules() -> list[str]:
    missing = []
    for name in WARM_MODULES:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:
            found = False
        if not found:
            missing.append(name)
    return missing


class WorkerServer:
    """The launcher's handle on one worker server process."""

    def __init__(self, modules: Sequence[str]):
        self.modules = list(modules)
        self.fingerprint = package_fingerprint(self.modules)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "automem_pipelines.run_workers", *self.modules],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None,
        )
        self._lock = threading.Lock()
        ready = self._read_line(READY_TIMEOUT_SECONDS)
        if ready.get("ready") is not True:
            self.stop()
            raise RuntimeError(f"run worker server did not start: {ready.get('error', ready)}")
        self.missing_warm_modules: list[str] = ready.get("missing_warm_modules", [])

    def _read_line(self, timeout: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        readable, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if readable else b""
        if not line:
            raise RuntimeError(f"run worker server gave no answer (exit code {self.proc.poll()})")
        return json.loads(line)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def is_stale(self) -> bool:
        return package_fingerprint(self.modules) != self.fingerprint

    def start_run(self, run_id: str, instance_ref: str) -> dict[str, str]:
        """Fork a worker for the run; returns its identity tags."""
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(
                json.dumps({"run_id": run_id, "instance_ref": instance_ref}).encode() + b"\n"
            )
            self.proc.stdin.flush()
            reply = self._read_line(REPLY_TIMEOUT_SECONDS)
        if "pid" not in reply:
            raise RuntimeError(f"run worker server refused the run: {reply}")
        if not reply.get("start"):
            raise RuntimeError(f"run worker (pid {reply['pid']}) exited as soon as it was forked")
        return {WORKER_PID_TAG: str(reply["pid"]), WORKER_START_TAG: reply["start"]}

    def stop(self) -> None:
        """Close its stdin (it exits at EOF); running workers are not affected."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


def package_fingerprint(modules: Sequence[str]) -> tuple[int, int]:
    """(number of .py files, newest mtime in ns) under the packages of ``modules``."""
    count = newest = 0
    roots: set[Path] = set()
    for name in modules:
        spec = importlib.util.find_spec(name.split(".")[0])
        if spec is None or spec.origin is None:
            continue
        origin = Path(spec.origin)
        roots.add(origin.parent if origin.name == "__init__.py" else origin)
    for root in sorted(roots):
        files = root.rglob("*.py") if root.is_dir() else [root]
        for path in files:
            try:
                newest = max(newest, path.stat().st_mtime_ns)
            except FileNotFoundError:
                continue
            count += 1
    return count, newest


class PreforkRunLauncher(dg.DefaultRunLauncher):
    """Launches each run in a worker forked from a process that already imported
    ``preload_modules``; falls back to Dagster's default launch path when it cannot."""

    def __init__(
        self, preload_modules: Sequence[str] = (), inst_data: ConfigurableClassData | None = None
    ):
        self._preload_modules = list(preload_modules)
        self._server: WorkerServer | None = None
        self._server_lock = threading.Lock()
        self._forked_run_ids: set[str] = set()
        super().__init__(inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {
            "preload_modules": dg.Field(
                dg.Array(dg.StringSource), is_required=False, default_value=[]
            )
        }

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value: dict[str, Any]):
        return cls(preload_modules=config_value.get("preload_modules", []), inst_data=inst_data)

    def _worker_server(self) -> WorkerServer:
        with self._server_lock:
            server = self._server
            if server is not None and (not server.alive() or server.is_stale()):
                server.stop()
                server = self._server = None
            if server is None:
                server = self._server = WorkerServer(self._preload_modules)
                if server.missing_warm_modules:
                    print(
                        f"run worker server: not preloaded (not in this Dagster): "
                        f"{', '.join(server.missing_warm_modules)}",
                        file=sys.stderr,
                    )
            return server

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        ui_tags = ui_trigger_tags(run.tags)  # before anything can fail, even its config
        if ui_tags:
            self._instance.add_run_tags(run.run_id, ui_tags)
        from .ops.launch_check import refused_run_config

        refusal = refused_run_config(run.run_config)
        if refusal is not None:  # no worker, no step: the run fails with this one line
            self._instance.report_run_failed(run, f"Run refused before it started: {refusal}")
            return
        if run.job_code_origin is None:
            return super().launch_run(context)
        try:
            server = self._worker_server()
            tags = server.start_run(run.run_id, dg.serialize_value(self._instance.get_ref()))
        except Exception as exc:  # noqa: BLE001 - any failure here means: use the default path
            self._instance.report_engine_event(
                f"Pre-forked run worker unavailable ({exc}); starting the run the default way.",
                run,
                cls=self.__class__,
            )
            return super().launch_run(context)
        self._instance.add_run_tags(run.run_id, tags)
        message = (
            f"Run worker forked from the pre-imported worker server (pid {tags[WORKER_PID_TAG]})."
        )
        if server.missing_warm_modules:
            message += (
                f" Not preloaded (not in this Dagster): {', '.join(server.missing_warm_modules)}."
            )
        self._instance.report_engine_event(message, run, cls=self.__class__)
        self._forked_run_ids.add(run.run_id)

    # -- which process is the run's worker ----------------------------------------------------
    def _check_worker(self, run: dg.DagsterRun) -> WorkerCheck:
        if WORKER_PID_TAG in run.tags:
            return check_tagged_worker(run.tags)
        return check_spawned_worker(self._instance, run)

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """For Dagster's run monitoring: a STARTED run whose worker is gone is FAILED."""
        worker = self._check_worker(run)
        return CheckRunHealthResult(
            WorkerStatus.RUNNING if worker.alive else WorkerStatus.FAILED, worker.why
        )

    def terminate(self, run_id: str) -> bool:
        if not self.has_instance:
            return False
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        worker = self._check_worker(run)
        if WORKER_PID_TAG not in run.tags and worker.alive:
            return super().terminate(run_id)  # started the default way: ask the code server
        self._instance.report_run_canceling(run)
        if worker.alive and worker.pid is not None:
            try:
                os.kill(
                    worker.pid, signal.SIGINT
                )  # the proven worker stops at its next write window
                return True
            except ProcessLookupError:
                worker = WorkerCheck(
                    False, worker.pid, f"run worker (pid {worker.pid}) has just exited"
                )
        self._instance.report_engine_event(
            f"{worker.why[0].upper()}{worker.why[1:]}: nothing to interrupt (no process was "
            "signalled); the run is marked canceled.",
            run,
            cls=self.__class__,
        )
        self._instance.report_run_canceled(
            run, message="Run canceled: its worker was no longer running."
        )
        return True

    def join(self, timeout: int = 30) -> None:
        super().join(timeout)  # runs started the default way
        deadline = time.monotonic() + timeout
        while True:
            running = [
                run_id
                for run_id in self._forked_run_ids
                if (run := self._instance.get_run_by_id(run_id)) is not None and not run.is_finished
            ]
            if not running:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"Timed out waiting for these runs to finish: {running!r}")
            time.sleep(0.1)

    def dispose(self) -> None:
        with self._server_lock:
            if self._server is not None:
                self._server.stop()
                self._server = None


# -- the worker server process -------------------------------------------------------------------
def _fail_unfinished_run(instance: dg.DagsterInstance, run_id: str, error: str) -> None:
    """A worker that failed outside Dagster's own handling still ends its run."""
    try:
        run = instance.get_run_by_id(run_id)
        if run is not None and not run.is_finished:
            instance.report_engine_event(f"Run worker failed: {error}", run)
            instance.report_run_failed(run, message="Run worker failed before finishing the run.")
    except Exception:  # noqa: BLE001 - best effort: run monitoring fails the run otherwise
        traceback.print_exc()


def _run_worker(request: dict[str, Any], answer_fd: int) -> None:
    """In the forked child: execute the run as `dagster api execute_run` does, then exit."""
    code = 1
    try:
        # Same process group as the daemon (like Dagster's spawned workers, which share the
        # code server's): stopping the stack interrupts running runs instead of orphaning them.
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        os.close(answer_fd)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(2, 1)  # fd 1 is the server's answer pipe: the worker never writes to it
        sys.stdin = open(os.devnull)  # noqa: SIM115
        sys.stdout = sys.stderr
        from dagster._cli.api import _execute_run_command_body
        from dagster._utils.interrupts import capture_interrupts

        with capture_interrupts():
            with dg.DagsterInstance.from_ref(
                dg.deserialize_value(request["instance_ref"])
            ) as instance:
                try:
                    code = _execute_run_command_body(
                        request["run_id"],
                        instance,
                        lambda _event: None,
                        set_exit_code_on_failure=False,
                    )
                except BaseException:
                    _fail_unfinished_run(instance, request["run_id"], traceback.format_exc(limit=5))
                    raise
    except BaseException:  # noqa: BLE001 - the worker must never return into the server loop
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def serve(modules: Sequence[str]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopped by EOF on stdin, after the daemon
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    # Importing dagster, qdrant-client, redis, numpy and our modules creates several hundred
    # thousand long-lived objects, none of them garbage: with the cyclic collector on, CPython
    # would run four or five full collections during the imports.
    with cyclic_gc_paused():
        for name in modules:
            importlib.import_module(name)
        missing = missing_warm_modules()  # after them: a preloaded module may add to the list
        for name in WARM_MODULES:
            if name not in missing:
                importlib.import_module(name)
    if missing:
        print(
            f"run worker server: not preloaded (not in this Dagster): {', '.join(missing)}",
            file=sys.stderr,
        )
    problems = private_api_problems()
    if problems:
        error = "the private Dagster API it relies on changed: " + "; ".join(problems)
        print(f"run worker server: {error}", file=sys.stderr)
        out.write(json.dumps({"ready": False, "error": error}).encode() + b"\n")
        sys.exit(1)
    out.write(json.dumps({"ready": True, "missing_warm_modules": missing}).encode() + b"\n")
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            # Just before forking: what the server imported is frozen out of the collections
            # of the worker (which would otherwise walk all of it, 0.16 s early in each run),
            # and the pages it shares with the server stay shared (refcounts still free).
            gc.freeze()
            pid = os.fork()
        except Exception as exc:  # noqa: BLE001
            out.write(json.dumps({"error": str(exc)}).encode() + b"\n")
            continue
        if pid == 0:
            _run_worker(request, out.fileno())
        # Read at once: the child runs for far longer than this takes, and cannot have been
        # reaped and its pid reused in between.
        out.write(json.dumps({"pid": pid, "start": process_identity(pid)}).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1:])
