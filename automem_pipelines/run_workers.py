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
- The server checks at start that the private Dagster calls it makes still have the pinned
  shape (``PRIVATE_API``); if not, or if it cannot be started or dies, the launch falls back
  to Dagster's default (code-server spawn) path, with an engine event saying so.
- Identity: the worker's pid and its process start time (boot id + start tick from
  ``/proc/<pid>/stat``) are run tags. A pid alone could belong to an unrelated process after
  the worker died; pid + start time cannot. Nothing is signalled without that proof.
- Health (Dagster's run monitoring, in the daemon): a STARTED run whose worker is gone is
  reported FAILED, so the daemon fails the run.
- Termination: ``terminate`` marks the run canceling and sends SIGINT to the proven worker,
  which stops at the next write window and reports the run canceled; a run whose worker is
  already gone is marked canceled at once.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
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
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dagster as dg

# Pinned by PRIVATE_API below (checked by tests/unit/test_dagster_contract.py and at server start).
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

if TYPE_CHECKING:
    from dagster._core.launcher import LaunchRunContext
    from dagster._serdes import ConfigurableClassData

WORKER_PID_TAG = "automem/run_worker_pid"
# "<boot id>:<start time in clock ticks after boot>" of the worker process.
WORKER_START_TAG = "automem/run_worker_start"

# What a run worker imports on top of the code location before its first step (opening the
# sqlite instance storages, the filesystem IO manager, the executor): ~0.3 s per run unless the
# server has imported them. Importing opens nothing; a missing one is reported (stderr of the
# daemon, and the engine event of each forked run), then the run imports what it needs itself.
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

# Dagster calls that are not public API, pinned for the project's dagster==1.13.27: (module,
# attribute, the parameters our calls rely on in order, or EXISTS, or PROPERTY). A parameter
# list must be the start of the real one, and any further parameter optional.
EXISTS, PROPERTY = "exists", "property"
PRIVATE_API: tuple[tuple[str, str, tuple[str, ...] | str], ...] = (
    # what a forked worker runs: `dagster api execute_run` without its CLI wrapper
    ("dagster._cli.api", "_execute_run_command_body",
     ("run_id", "instance", "write_stream_fn", "set_exit_code_on_failure")),
    ("dagster._utils.interrupts", "capture_interrupts", ()),
    # the run-monitoring answer, and the launcher hooks Dagster calls
    ("dagster._core.launcher", "CheckRunHealthResult", ("status", "msg")),
    ("dagster._core.launcher", "WorkerStatus.RUNNING", EXISTS),
    ("dagster._core.launcher", "WorkerStatus.FAILED", EXISTS),
    ("dagster._core.launcher", "RunLauncher.supports_check_run_worker_health", PROPERTY),
    ("dagster._core.launcher", "RunLauncher.check_run_worker_health", ("self", "run")),
    ("dagster._core.launcher", "RunLauncher.terminate", ("self", "run_id")),
    ("dagster._core.launcher", "RunLauncher.launch_run", ("self", "context")),
    ("dagster._core.launcher", "RunLauncher.join", ("self", "timeout")),
    ("dagster._core.launcher", "RunLauncher.dispose", ("self",)),
    ("dagster._core.launcher", "LaunchRunContext.dagster_run", EXISTS),
    ("dagster", "DefaultRunLauncher.__init__", ("self", "inst_data")),
    ("dagster", "DefaultRunLauncher.launch_run", ("self", "context")),
    ("dagster", "DefaultRunLauncher.terminate", ("self", "run_id")),
    ("dagster", "DefaultRunLauncher.join", ("self", "timeout")),
    # the pid a worker records when it starts (read for runs started the default way)
    ("dagster._core.events", "EngineEventData.in_process", ("pid",)),
    # instance methods that are not marked public
    ("dagster", "DagsterInstance.from_ref", ("instance_ref",)),
    ("dagster", "DagsterInstance.get_ref", ("self",)),
    ("dagster", "DagsterInstance.add_run_tags", ("self", "run_id", "new_tags")),
    ("dagster", "DagsterInstance.all_logs", ("self", "run_id", "of_type")),
    ("dagster", "DagsterInstance.report_engine_event", ("self", "message", "dagster_run")),
    ("dagster", "DagsterInstance.report_run_canceling", ("self", "run", "message")),
    ("dagster", "DagsterInstance.report_run_canceled", ("self", "dagster_run", "message")),
    ("dagster", "DagsterInstance.report_run_failed", ("self", "dagster_run", "message")),
)  # fmt: skip

READY_TIMEOUT_SECONDS = 30.0  # both well under run monitoring's start timeout (instance.py)
REPLY_TIMEOUT_SECONDS = 10.0
# A run started the default way records its worker's pid in an event; a live process with that
# pid that started before the event (plus this much for clock granularity) is that worker.
SPAWNED_START_TOLERANCE_SECONDS = 2.0


def _resolve(module: str, attribute: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in attribute.split("."):
        obj = inspect.getattr_static(obj, part) if isinstance(obj, type) else getattr(obj, part)
    return obj


def private_api_problems() -> list[str]:
    """What no longer matches PRIVATE_API in the installed Dagster (empty when all does)."""
    problems = []
    for module, attribute, expected in PRIVATE_API:
        name = f"{module}.{attribute}"
        try:
            obj = _resolve(module, attribute)
        except (ImportError, AttributeError) as exc:
            problems.append(f"{name} is missing ({type(exc).__name__}: {exc})")
            continue
        if expected == EXISTS:
            continue
        if expected == PROPERTY:
            if not isinstance(obj, property):
                problems.append(f"{name} is no longer a property ({type(obj).__name__})")
            continue
        if isinstance(obj, (staticmethod, classmethod)):
            obj = obj.__func__
        try:
            params = list(inspect.signature(obj).parameters.values())
        except (TypeError, ValueError) as exc:
            problems.append(f"{name} has no signature ({exc})")
            continue
        names = [p.name for p in params]
        if names[: len(expected)] != list(expected):
            problems.append(f"{name}{inspect.signature(obj)}: expected parameters {list(expected)} first")
            continue
        optional = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
        required = [p.name for p in params[len(expected) :]
                    if p.default is inspect.Parameter.empty and p.kind not in optional]  # fmt: skip
        if required:
            problems.append(f"{name} has new required parameters {required}")
    return problems


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


# -- process identity (Linux /proc) --------------------------------------------------------------
@cache
def _boot_id() -> str:
    return Path("/proc/sys/kernel/random/boot_id").read_text().strip()


def _start_ticks(pid: int) -> int | None:
    """Start time (clock ticks after boot) of a live process; None if there is none (a zombie
    counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    if fields[0] in ("Z", "X", "x"):
        return None
    return int(fields[19])  # field 22 of proc(5), counted from the state (field 3)


def process_identity(pid: int) -> str | None:
    """pid-reuse-proof identity of a live process: "<boot id>:<start tick>"; None if gone."""
    ticks = _start_ticks(pid)
    return None if ticks is None else f"{_boot_id()}:{ticks}"


def _started_at(pid: int) -> float | None:
    """Start of a live process as a Unix time (to ~1 s: the boot time has whole seconds)."""
    ticks = _start_ticks(pid)
    if ticks is None:
        return None
    btime = next(
        int(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )  # fmt: skip
    return btime + ticks / os.sysconf("SC_CLK_TCK")


def worker_tags(pid: int | None = None) -> dict[str, str]:
    """The identity tags of a run's worker process (default: this process; the CLI tags its
    in-process runs with them, so the daemon's run monitoring can tell when it died)."""
    pid = os.getpid() if pid is None else pid
    identity = process_identity(pid)
    if identity is None:
        raise ProcessLookupError(f"no process {pid}")
    return {WORKER_PID_TAG: str(pid), WORKER_START_TAG: identity}


@dataclass(frozen=True)
class WorkerCheck:
    alive: bool
    pid: int | None  # None when the run records no worker process
    why: str  # what was found, for engine events and the monitoring daemon's log


def check_tagged_worker(tags: dict[str, str]) -> WorkerCheck:
    """Is the process named by the run's worker tags still that process?"""
    pid = int(tags[WORKER_PID_TAG])
    recorded = tags.get(WORKER_START_TAG)
    current = process_identity(pid)
    if not recorded:
        return WorkerCheck(False, pid, f"run worker (pid {pid}) has no recorded start time, so it cannot be told from another process")  # fmt: skip
    if current is None:
        return WorkerCheck(False, pid, f"run worker (pid {pid}) is not running")
    if current != recorded:
        return WorkerCheck(False, pid, f"run worker (pid {pid}) is gone: pid {pid} now belongs to another process")  # fmt: skip
    return WorkerCheck(True, pid, f"run worker (pid {pid}) is running")


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
            self.proc.stdin.write(json.dumps({"run_id": run_id, "instance_ref": instance_ref}).encode() + b"\n")
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

    def __init__(self, preload_modules: Sequence[str] = (), inst_data: ConfigurableClassData | None = None):
        self._preload_modules = list(preload_modules)
        self._server: WorkerServer | None = None
        self._server_lock = threading.Lock()
        self._forked_run_ids: set[str] = set()
        super().__init__(inst_data=inst_data)

    @classmethod
    def config_type(cls):
        return {"preload_modules": dg.Field(dg.Array(dg.StringSource), is_required=False, default_value=[])}

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
                    print(f"run worker server: not preloaded (not in this Dagster): "
                          f"{', '.join(server.missing_warm_modules)}", file=sys.stderr)  # fmt: skip
            return server

    def launch_run(self, context: LaunchRunContext) -> None:
        run = context.dagster_run
        if run.job_code_origin is None:
            return super().launch_run(context)
        try:
            server = self._worker_server()
            tags = server.start_run(run.run_id, dg.serialize_value(self._instance.get_ref()))
        except Exception as exc:  # noqa: BLE001 - any failure here means: use the default path
            self._instance.report_engine_event(
                f"Pre-forked run worker unavailable ({exc}); starting the run the default way.",
                run, cls=self.__class__,
            )  # fmt: skip
            return super().launch_run(context)
        self._instance.add_run_tags(run.run_id, tags)
        message = f"Run worker forked from the pre-imported worker server (pid {tags[WORKER_PID_TAG]})."
        if server.missing_warm_modules:
            message += f" Not preloaded (not in this Dagster): {', '.join(server.missing_warm_modules)}."
        self._instance.report_engine_event(message, run, cls=self.__class__)
        self._forked_run_ids.add(run.run_id)

    # -- which process is the run's worker ----------------------------------------------------
    def _check_worker(self, run: dg.DagsterRun) -> WorkerCheck:
        if WORKER_PID_TAG in run.tags:
            return check_tagged_worker(run.tags)
        return self._check_spawned_worker(run)

    def _check_spawned_worker(self, run: dg.DagsterRun) -> WorkerCheck:
        """A run started the default way: its worker recorded its pid in an engine event. A
        live process with that pid that started before the event held the pid then, so it is
        the worker (pids are not reused while in use)."""
        events = self._instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        for entry in reversed(events):
            data = entry.dagster_event.event_specific_data if entry.dagster_event else None
            pid_value = getattr(data, "metadata", {}).get("pid") if data is not None else None
            if pid_value is None:
                continue
            pid = int(pid_value.value)
            started = _started_at(pid)
            if started is None:
                return WorkerCheck(False, pid, f"run worker (pid {pid}) is not running")
            if started > entry.timestamp + SPAWNED_START_TOLERANCE_SECONDS:
                return WorkerCheck(False, pid, f"run worker (pid {pid}) is gone: pid {pid} now belongs to another process")  # fmt: skip
            return WorkerCheck(True, pid, f"run worker (pid {pid}) is running")
        return WorkerCheck(True, None, "no run worker process recorded yet; not checked")

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """For Dagster's run monitoring: a STARTED run whose worker is gone is FAILED."""
        worker = self._check_worker(run)
        return CheckRunHealthResult(WorkerStatus.RUNNING if worker.alive else WorkerStatus.FAILED, worker.why)

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
                os.kill(worker.pid, signal.SIGINT)  # the proven worker stops at its next write window
                return True
            except ProcessLookupError:
                worker = WorkerCheck(False, worker.pid, f"run worker (pid {worker.pid}) has just exited")
        self._instance.report_engine_event(
            f"{worker.why[0].upper()}{worker.why[1:]}: nothing to interrupt (no process was "
            "signalled); the run is marked canceled.", run, cls=self.__class__,
        )  # fmt: skip
        self._instance.report_run_canceled(run, message="Run canceled: its worker was no longer running.")
        return True

    def join(self, timeout: int = 30) -> None:
        super().join(timeout)  # runs started the default way
        deadline = time.monotonic() + timeout
        while True:
            running = [
                run_id for run_id in self._forked_run_ids
                if (run := self._instance.get_run_by_id(run_id)) is not None and not run.is_finished
            ]  # fmt: skip
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
            with dg.DagsterInstance.from_ref(dg.deserialize_value(request["instance_ref"])) as instance:
                try:
                    code = _execute_run_command_body(
                        request["run_id"], instance, lambda _event: None, set_exit_code_on_failure=False
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
    for name in modules:
        importlib.import_module(name)
    missing = missing_warm_modules()
    for name in WARM_MODULES:
        if name not in missing:
            importlib.import_module(name)
    if missing:
        print(f"run worker server: not preloaded (not in this Dagster): {', '.join(missing)}", file=sys.stderr)
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
