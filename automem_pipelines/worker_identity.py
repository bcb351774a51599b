"""Which process is a run's worker: its pid and its start time (boot id + start tick from
``/proc/<pid>/stat``), recorded as run tags. A pid alone could belong to an unrelated
process after the worker died; pid + start time cannot. Nothing is signalled without that
proof."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import dagster as dg

WORKER_PID_TAG = "automem/run_worker_pid"
# "<boot id>:<start time in clock ticks after boot>" of the worker process.
WORKER_START_TAG = "automem/run_worker_start"
# A run started the default way records its worker's pid in an event; a live process with that
# pid that started before the event (plus this much for clock granularity) is that worker.
SPAWNED_START_TOLERANCE_SECONDS = 2.0


@cache
def boot_id() -> str:
    """This machine's current boot (a process identity's first part)."""
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
    return None if ticks is None else f"{boot_id()}:{ticks}"


def started_at(pid: int) -> float | None:
    """Start of a live process as a Unix time (to ~1 s: the boot time has whole seconds)."""
    ticks = _start_ticks(pid)
    if ticks is None:
        return None
    btime = next(
        int(line.split()[1])
        for line in Path("/proc/stat").read_text().splitlines()
        if line.startswith("btime ")
    )
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
        return WorkerCheck(
            False,
            pid,
            f"run worker (pid {pid}) has no recorded start time, so it cannot be told from another process",
        )
    if current is None:
        return WorkerCheck(False, pid, f"run worker (pid {pid}) is not running")
    if current != recorded:
        return WorkerCheck(
            False, pid, f"run worker (pid {pid}) is gone: pid {pid} now belongs to another process"
        )
    return WorkerCheck(True, pid, f"run worker (pid {pid}) is running")


def check_spawned_worker(instance: dg.DagsterInstance, run: dg.DagsterRun) -> WorkerCheck:
    """A run started the default way: its worker recorded its pid in an engine event. A
    live process with that pid that started before the event held the pid then, so it is
    the worker (pids are not reused while in use)."""
    events = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
    for entry in reversed(events):
        data = entry.dagster_event.event_specific_data if entry.dagster_event else None
        pid_value = getattr(data, "metadata", {}).get("pid") if data is not None else None
        if pid_value is None:
            continue
        pid = int(pid_value.value)
        started = started_at(pid)
        if started is None:
            return WorkerCheck(False, pid, f"run worker (pid {pid}) is not running")
        if started > entry.timestamp + SPAWNED_START_TOLERANCE_SECONDS:
            return WorkerCheck(
                False,
                pid,
                f"run worker (pid {pid}) is gone: pid {pid} now belongs to another process",
            )
        return WorkerCheck(True, pid, f"run worker (pid {pid}) is running")
    return WorkerCheck(True, None, "no run worker process recorded yet; not checked")
