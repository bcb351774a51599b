"""Embedded FalkorDB data dirs for the server tests: ones written the way older versions of
this project ran the server (writes logged as Cypher text, no rewrite policy), whose log
takes seconds to replay."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import redis
from falkordb import FalkorDB

from automem_pipelines.stores import falkordb_server

# What the server ran with before the persistence change: Redis's default rewrite policy
# (100% growth, 64 MB minimum), the default RDB save points, queries logged verbatim.
LEGACY_PERSISTENCE = ("--appendonly", "yes", "--appendfsync", "everysec")
LEGACY_MODULE_OPTIONS = ("RESULTSET_SIZE", str(falkordb_server.RESULTSET_SIZE))


def start_legacy(data_dir: Path, timeout: float = 600) -> Path:
    """Start a server on data_dir configured as older versions did; wait until it answers."""
    paths = falkordb_server.paths_for(data_dir)
    paths.root.mkdir(parents=True, exist_ok=True)
    command = falkordb_server.server_command(paths, LEGACY_PERSISTENCE, LEGACY_MODULE_OPTIONS)
    subprocess.run(command, check=True, capture_output=True, timeout=30)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if falkordb_server.is_running(data_dir):
            return paths.socket
        time.sleep(0.05)
    raise TimeoutError(f"legacy FalkorDB on {data_dir} did not answer within {timeout}s")


def write_churn(socket: Path, nodes: int, queries: int, rows: int = 500, graph: str = "g") -> None:
    """nodes :Memory nodes with an id index, then `queries` batched updates by id (the shape of
    the enrichment write). Replayed from a log that still holds the CREATE INDEX, each update
    scans every node (FalkorDB builds a replayed index only when loading ends)."""
    db = FalkorDB(unix_socket_path=str(socket))
    g = db.select_graph(graph)
    g.query("CREATE INDEX FOR (m:Memory) ON (m.id)")
    g.query("UNWIND range(0, $n - 1) AS i CREATE (:Memory {id: toString(i), v: 0})", {"n": nodes})
    for k in range(queries):
        ids = [str((k * rows + j) % nodes) for j in range(rows)]
        g.query(
            "UNWIND $ids AS id MATCH (m:Memory {id: id}) SET m.v = $k, m.note = $note",
            {"ids": ids, "k": k, "note": f"pass {k} " + "x" * 60},
        )
    db.connection.close()


def build_slow_loading_dir(data_dir: Path, nodes: int = 1200, queries: int = 60) -> int:
    """A stopped data dir written by the legacy configuration; returns its node count."""
    socket = start_legacy(data_dir)
    write_churn(socket, nodes, queries)
    client = redis.Redis(unix_socket_path=str(socket))
    try:
        client.shutdown(nosave=True)
    except redis.ConnectionError:
        pass
    paths = falkordb_server.paths_for(data_dir)
    deadline = time.monotonic() + 60
    while falkordb_server.server_pids(paths) and time.monotonic() < deadline:
        time.sleep(0.05)
    return nodes


def server_pid(socket: Path) -> int:
    """The pid of the server answering on this socket."""
    client = redis.Redis(unix_socket_path=str(socket))
    try:
        return int(client.info("server")["process_id"])
    finally:
        client.close()


def redis_servers_on(socket: Path) -> list[int]:
    """Independent of the code under test: processes whose command line names the socket. A
    process whose parent is one of them is the same server caught in its ``--daemonize``
    fork (parent and child share the command line for a moment) and is not counted twice."""
    out = subprocess.run(["pgrep", "-f", str(socket)], capture_output=True, text=True).stdout
    pids = [int(p) for p in out.split()]
    return [p for p in pids if _parent(p) not in pids]


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])
