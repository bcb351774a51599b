"""Starting the data dir's one server (serialised by a file lock, waiting while it loads)
and stopping it (only a process proven to be that server is signalled)."""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import redis

from .client import client_for, ping
from .config import START_TIMEOUT_ENV, server_command, start_timeout_from_env
from .errors import EmbeddedFalkorDBError
from .paths import ServerPaths, paths_for
from .processes import cpu_and_read, is_server_process, log_tail, logged_ready
from .state import LOADING, NOT_ANSWERING, RUNNING, STARTING, STOPPED, status

log = logging.getLogger(__name__)

STALL_TIMEOUT = 60.0  # alive, not ready, and neither CPU time nor bytes read move: stuck
STOP_TIMEOUT = 60.0
KILL_LOADING_AFTER = 10.0  # a server still loading after SIGTERM is killed (it wrote nothing)
COMPACT_AFTER_START_BYTES = 1 << 20
COMPACT_AFTER_START_SECONDS = 1.0
PROGRESS_LOG_INTERVAL = 5.0


@contextmanager
def _start_lock(paths: ServerPaths) -> Iterator[None]:
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lockfile, "a+") as fh:  # one open file description per caller
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


class _Progress:
    """Tells a server that is loading from one that is stuck."""

    def __init__(self, stall_timeout: float):
        self.stall_timeout = stall_timeout
        self.marker: tuple = ()
        self.moved_at = time.monotonic()

    def stalled(self, pids: Sequence[int], now: float) -> bool:
        marker = tuple(cpu_and_read(p) for p in pids)
        if marker != self.marker:
            self.marker, self.moved_at = marker, now
            return False
        return now - self.moved_at > self.stall_timeout


def ensure_running(
    data_dir: Path, timeout: float | None = None, stall_timeout: float = STALL_TIMEOUT
) -> Path:
    """Return the socket of the data dir's server once it answers, starting it if no server
    is alive. A server that is loading is waited for while it makes progress, up to
    ``timeout`` seconds (default: FALKORDB_START_TIMEOUT_SECONDS, else 600)."""
    paths = paths_for(data_dir)
    if ping(paths.socket):
        return paths.socket
    timeout = start_timeout_from_env() if timeout is None else timeout
    begun = time.monotonic()
    launched = False
    seen: int | None = None  # a server pid seen alive while waiting
    progress = _Progress(stall_timeout)
    logged_at = begun
    pause = 0.02
    while True:
        st = status(data_dir, answer_timeout=1.0)
        now = time.monotonic()
        if st.state == RUNNING:
            if launched:
                _compact_after_start(paths, now - begun)
            if now - begun >= PROGRESS_LOG_INTERVAL:
                log.info("FalkorDB on %s ready after %.1f s", paths.root, now - begun)
            return paths.socket
        if st.state == STOPPED:
            if launched or seen is not None:
                raise EmbeddedFalkorDBError(
                    f"embedded FalkorDB (pid {seen or '?'}) exited before it was ready; "
                    f"log {paths.logfile}:\n{log_tail(paths)}"
                )
            with _start_lock(paths):
                if status(data_dir, answer_timeout=1.0).state == STOPPED:
                    _launch(paths)
                    launched = True
            continue
        seen = st.pid or seen
        if st.state == NOT_ANSWERING and not paths.socket.exists():
            raise EmbeddedFalkorDBError(
                f"embedded FalkorDB is {st.describe()}: it cannot be reached, and a second "
                "server must not run on the same files. Stop it with "
                "`automem-pipelines falkordb stop`, then start again."
            )
        if progress.stalled(st.pids, now):
            raise EmbeddedFalkorDBError(
                f"embedded FalkorDB is {st.describe()} and made no progress for "
                f"{stall_timeout:.0f}s; not starting a second server on {paths.root}. "
                "Stop it with `automem-pipelines falkordb stop`."
            )
        if now - begun > timeout:
            raise EmbeddedFalkorDBError(
                f"embedded FalkorDB is still {st.describe()} after {timeout:.0f}s "
                f"({START_TIMEOUT_ENV}); it keeps loading in the background, try again later"
            )
        if now - logged_at >= PROGRESS_LOG_INTERVAL:
            log.info(
                "waiting for FalkorDB on %s, %.0f s so far: %s",
                paths.root,
                now - begun,
                st.describe(),
            )
            logged_at = now
        time.sleep(pause)
        pause = min(pause * 2, 0.25)


def _launch(paths: ServerPaths) -> None:
    """Start a server. Only under the start lock, with no server of this data dir alive:
    a socket or pidfile left is stale (redis-server would also replace the socket)."""
    for stale in (paths.socket, paths.pidfile):
        stale.unlink(missing_ok=True)
    result = subprocess.run(server_command(paths), capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise EmbeddedFalkorDBError(
            f"redis-server failed to start (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )
    log.info("started FalkorDB on %s", paths.root)


def _compact_after_start(paths: ServerPaths, load_seconds: float) -> None:
    """Rewrite the append-only file once if this start had to replay a long log."""
    client = client_for(paths.socket, 10)
    try:
        info = client.info("persistence")
        tail = int(info.get("aof_current_size", 0)) - int(info.get("aof_base_size", 0))
        if tail >= COMPACT_AFTER_START_BYTES or (
            tail > 0 and load_seconds >= COMPACT_AFTER_START_SECONDS
        ):
            try:
                client.bgrewriteaof()
                log.info(
                    "FalkorDB on %s: replayed %.1f MB of log in %.1f s, rewriting it",
                    paths.root,
                    tail / 1e6,
                    load_seconds,
                )
            except redis.ResponseError:
                pass  # a rewrite is already running
    except redis.RedisError as exc:
        log.warning("FalkorDB on %s: could not check the append-only file: %s", paths.root, exc)
    finally:
        client.close()


def _signal(pid: int, paths: ServerPaths, sig: int) -> bool:
    """Send sig to pid if it is the data dir's server (checked through a pidfd, so a pid
    recycled in between is never signalled)."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        return False
    try:
        if not is_server_process(pid, paths):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


def stop(data_dir: Path, timeout: float = STOP_TIMEOUT) -> bool:
    """Shut the data dir's server down cleanly (AOF flushed). False if none was running.

    A ready server gets SHUTDOWN; one that is starting or loading gets SIGTERM and, if it
    is still loading after KILL_LOADING_AFTER seconds, SIGKILL (it has written nothing yet).
    Only processes proven to be this data dir's server are signalled, and no file is removed
    here: a server removes its own socket and pidfile as it exits."""
    paths = paths_for(data_dir)
    with _start_lock(paths):
        st = status(data_dir)
        if st.state == STOPPED:
            return False
        pids = list(st.pids)
        if not pids:
            raise EmbeddedFalkorDBError(f"embedded FalkorDB is {st.describe()}: no process to stop")
        if st.state == RUNNING:
            client = client_for(paths.socket, timeout)
            try:
                client.shutdown()
            except redis.ConnectionError:
                pass  # the server closes the connection as it exits
            except redis.ResponseError as exc:
                raise EmbeddedFalkorDBError(f"FalkorDB refused to shut down: {exc}") from exc
            finally:
                client.close()
            for pid in pids[1:]:  # another server on the same dir (left by older versions)
                _signal(pid, paths, signal.SIGTERM)
        else:
            for pid in pids:
                _signal(pid, paths, signal.SIGTERM)
        may_kill = st.state in (LOADING, STARTING)
        begun = time.monotonic()
        while True:
            alive = [p for p in pids if is_server_process(p, paths)]
            if not alive:
                return True
            waited = time.monotonic() - begun
            if may_kill and waited > KILL_LOADING_AFTER:
                for pid in alive:
                    if logged_ready(paths, pid) is False:  # still loading: nothing written yet
                        _signal(pid, paths, signal.SIGKILL)
            if waited > timeout:
                raise EmbeddedFalkorDBError(
                    f"embedded FalkorDB (pid {', '.join(map(str, alive))}) did not exit "
                    f"within {timeout:.0f}s of being asked to stop"
                )
            time.sleep(0.05)
