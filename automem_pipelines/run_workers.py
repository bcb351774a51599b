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
so a fork copies only imported modules.

- Runs of any code location work (a module not preloaded is imported in the worker).
- Edited code is picked up: before each launch the launcher compares the modification times
  of the preloaded packages' files with those at server start, and restarts the server when
  they changed.
- If the server cannot be started or dies, the launch falls back to Dagster's default
  (code-server spawn) path, with an engine event saying so.
- Termination: the worker's pid is a run tag; ``terminate`` marks the run canceling and sends
  SIGINT, which the worker turns into a canceled run like a spawned one.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import select
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dagster import Array, Field, StringSource
from dagster._core.launcher import LaunchRunContext
from dagster._core.launcher.default_run_launcher import DefaultRunLauncher
from dagster._serdes import ConfigurableClassData
from dagster_shared.serdes import deserialize_value, serialize_value

WORKER_PID_TAG = "automem/run_worker_pid"
# What a run worker imports on top of the code location before its first step (opening the
# sqlite instance storages, the filesystem IO manager, the executor): ~0.3 s per run unless the
# server has imported them. Importing opens nothing; a missing module is skipped.
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
)
READY_TIMEOUT_SECONDS = 120.0
REPLY_TIMEOUT_SECONDS = 30.0


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


class WorkerServer:
    """The launcher's handle on one worker server process."""

    def __init__(self, modules: Sequence[str]):
        self.modules = list(modules)
        self.fingerprint = package_fingerprint(self.modules)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "automem_pipelines.run_workers", *self.modules],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=None,
        )  # fmt: skip
        self._lock = threading.Lock()
        ready = self._read_line(READY_TIMEOUT_SECONDS)
        if ready.get("ready") is not True:
            self.stop()
            raise RuntimeError(f"run worker server did not start: {ready}")

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

    def start_run(self, run_id: str, instance_ref: str) -> int:
        """Fork a worker for the run; returns its pid."""
        assert self.proc.stdin is not None
        with self._lock:
            self.proc.stdin.write(json.dumps({"run_id": run_id, "instance_ref": instance_ref}).encode() + b"\n")
            self.proc.stdin.flush()
            reply = self._read_line(REPLY_TIMEOUT_SECONDS)
        if "pid" not in reply:
            raise RuntimeError(f"run worker server refused the run: {reply}")
        return int(reply["pid"])

    def stop(self) -> None:
        """Close its stdin (it exits at EOF); running workers are not affected."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


class PreforkRunLauncher(DefaultRunLauncher):
    """Launches each run in a worker forked from a process that already imported
    ``preload_modules``; falls back to Dagster's default launch path when it cannot."""

    def __init__(self, preload_modules: Sequence[str] = (), inst_data: ConfigurableClassData | None = None):
        self._preload_modules = list(preload_modules)
        self._server: WorkerServer | None = None
        self._server_lock = threading.Lock()
        super().__init__(inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"preload_modules": Field(Array(StringSource), is_required=False, default_value=[])}

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
            return server

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if run.job_code_origin is None:
            return super().launch_run(context)
        try:
            pid = self._worker_server().start_run(run.run_id, serialize_value(self._instance.get_ref()))
        except Exception as exc:  # noqa: BLE001 - any failure here means: use the default path
            self._instance.report_engine_event(
                f"Pre-forked run worker unavailable ({exc}); starting the run the default way.",
                run, cls=self.__class__,
            )  # fmt: skip
            return super().launch_run(context)
        self._instance.add_run_tags(run.run_id, {WORKER_PID_TAG: str(pid)})
        self._instance.report_engine_event(
            f"Run worker forked from the pre-imported worker server (pid {pid}).",
            run, cls=self.__class__,
        )  # fmt: skip
        self._run_ids.add(run.run_id)

    def terminate(self, run_id: str) -> bool:
        if not self.has_instance:
            return False
        run = self._instance.get_run_by_id(run_id)
        if not run or run.is_finished:
            return False
        pid = run.tags.get(WORKER_PID_TAG)
        if pid is None:
            return super().terminate(run_id)
        self._instance.report_run_canceling(run)
        try:
            os.kill(int(pid), signal.SIGINT)
        except ProcessLookupError:
            self._instance.report_engine_event(
                f"Run worker (pid {pid}) is gone; nothing to terminate.", run, cls=self.__class__
            )
            return False
        return True

    def dispose(self) -> None:
        with self._server_lock:
            if self._server is not None:
                self._server.stop()
                self._server = None


# -- the worker server process -------------------------------------------------------------------
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
        from dagster._core.instance import DagsterInstance
        from dagster._utils.interrupts import capture_interrupts

        with capture_interrupts():
            with DagsterInstance.from_ref(deserialize_value(request["instance_ref"])) as instance:
                code = _execute_run_command_body(
                    request["run_id"], instance, lambda _event: None, set_exit_code_on_failure=False
                )
    except BaseException:  # noqa: BLE001 - the worker must never return into the server loop
        traceback.print_exc()
    finally:
        sys.stderr.flush()
        os._exit(code)


def serve(modules: Sequence[str]) -> None:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps finished workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # stopped by EOF on stdin, after the daemon
    for name in modules:
        importlib.import_module(name)
    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    out.write(b'{"ready": true}\n')
    for line in sys.stdin.buffer:
        try:
            request = json.loads(line)
            pid = os.fork()
        except Exception as exc:  # noqa: BLE001
            out.write(json.dumps({"error": str(exc)}).encode() + b"\n")
            continue
        if pid == 0:
            _run_worker(request, out.fileno())
        out.write(json.dumps({"pid": pid}).encode() + b"\n")


if __name__ == "__main__":
    serve(sys.argv[1:])
