"""What a data dir's server is doing right now: running, loading, starting, not answering or
stopped, with its loading progress."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .client import ask, ping
from .paths import aof_bytes, paths_for
from .processes import cpu_and_read, logged_ready, proc_stat, server_pids

RUNNING, LOADING, STARTING, NOT_ANSWERING, STOPPED = (
    "running",
    "loading",
    "starting",
    "not answering",
    "stopped",
)
# `automem-pipelines falkordb status` exits with these.
EXIT_CODES = {RUNNING: 0, STOPPED: 3, LOADING: 4, STARTING: 4, NOT_ANSWERING: 5}


@dataclass(frozen=True)
class ServerStatus:
    state: str  # RUNNING, LOADING, STARTING, NOT_ANSWERING or STOPPED
    socket: Path
    pids: tuple[int, ...] = ()
    loaded_perc: float | None = None
    eta_seconds: float | None = None
    read_bytes: int | None = None  # bytes the server process has read (while loading)
    data_bytes: int | None = None  # bytes of its append-only files (what it loads)
    detail: str = ""

    @property
    def pid(self) -> int | None:
        return self.pids[0] if self.pids else None

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.state]

    def progress(self) -> str:
        if self.loaded_perc:
            eta = f", eta {self.eta_seconds:.0f} s" if self.eta_seconds is not None else ""
            return f"{self.loaded_perc:.0f}%{eta}"
        if self.read_bytes is not None and self.data_bytes:
            done = min(self.read_bytes, self.data_bytes)
            return f"read {done / 1e6:.1f} of {self.data_bytes / 1e6:.1f} MB"
        return ""

    def describe(self) -> str:
        head = self.state
        extra = self.progress() if self.state == LOADING else ""
        extra = "; ".join(x for x in (extra, self.detail) if x)
        if extra:
            head += f": {extra}"
        where = []
        if self.pids:
            where.append("pid " + ", ".join(map(str, self.pids)))
        where.append(str(self.socket))
        return f"{head} ({', '.join(where)})"


def status(data_dir: Path, answer_timeout: float = 2.0) -> ServerStatus:
    """What the data dir's server is doing right now."""
    paths = paths_for(data_dir)
    answer, info = ask(paths.socket, answer_timeout)
    pids = server_pids(paths)
    extra = f"{len(pids)} servers on one data dir" if len(pids) > 1 else ""
    if answer == "ready":  # the process that answered first
        pid = int(info.get("process_id") or 0)
        pids = ([pid] if pid else []) + [p for p in pids if p != pid]
        return ServerStatus(RUNNING, paths.socket, tuple(pids), detail=extra)
    if not pids:
        if answer == "absent":
            return ServerStatus(STOPPED, paths.socket)
        # Something answers on the socket, but it is no process we can see: never "stopped".
        state = LOADING if answer == "loading" else NOT_ANSWERING
        return ServerStatus(state, paths.socket, detail="server process not found in /proc")
    pid = pids[0]
    _, rchar = cpu_and_read(pid)
    progress = {"read_bytes": rchar if rchar >= 0 else None, "data_bytes": aof_bytes(paths) or None}
    if answer == "loading":
        perc = info.get("loading_loaded_perc")
        eta = info.get("loading_eta_seconds")
        return ServerStatus(
            LOADING,
            paths.socket,
            tuple(pids),
            float(perc) if perc else None,
            float(eta) if eta is not None and perc else None,
            detail=extra,
            **progress,
        )
    fields = proc_stat(pid)
    if fields and fields[0] in ("T", "t"):
        return ServerStatus(
            NOT_ANSWERING, paths.socket, tuple(pids), detail="process is stopped (SIGSTOP)"
        )
    ready = logged_ready(paths, pid)
    if ready:  # it was ready once, and no longer answers
        why = "socket file missing" if not paths.socket.exists() else "no answer"
        return ServerStatus(NOT_ANSWERING, paths.socket, tuple(pids), detail=why)
    if answer == "absent":  # not listening yet
        return ServerStatus(STARTING, paths.socket, tuple(pids), detail=extra)
    # Accepted but silent, never ready: it is busy replaying its log (the server answers
    # only between batches of replayed commands).
    return ServerStatus(LOADING, paths.socket, tuple(pids), detail=extra, **progress)


def is_running(data_dir: Path) -> bool:
    """The data dir's server answers (it is up and has loaded its data)."""
    return ping(paths_for(data_dir).socket)
