"""The embedded FalkorDB server while it loads a store whose log takes seconds to replay.

The store is written the way older versions ran the server (writes logged as Cypher text,
Redis's default rewrite policy, under whose 64 MB minimum a young store is never rewritten;
see tests/support/falkordb_stores.py): it is also what those versions left on disk, so these
tests cover upgrading too. Each test starts from a copy of it.
"""

import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis
from falkordb import FalkorDB

from automem_pipelines.stores import falkordb_server
from automem_pipelines.stores.falkordb_server import (
    LOADING,
    RUNNING,
    STOPPED,
    EmbeddedFalkorDBError,
)
from automem_pipelines.stores.falkordb_server.processes import log_lines_since_start
from tests.support.falkordb_stores import build_slow_loading_dir, redis_servers_on, server_pid

NODES, QUERIES, ROWS = 1200, 60, 500


def expected_values() -> dict[str, int]:
    """m.v of every node after the churn (the last update query that touched it)."""
    values = {str(i): 0 for i in range(NODES)}
    for k in range(QUERIES):
        for j in range(ROWS):
            values[str((k * ROWS + j) % NODES)] = k
    return values


@pytest.fixture(scope="module")
def slow_store(tmp_path_factory) -> Path:
    root = Path(tmp_path_factory.mktemp("slowfdb"))
    build_slow_loading_dir(root, NODES, QUERIES)
    return root


@pytest.fixture
def store(slow_store, tmp_path_factory) -> Path:
    root = Path(tmp_path_factory.mktemp("fdbcopy"))
    shutil.copytree(slow_store, root, dirs_exist_ok=True)
    (root / "falkordb" / "start.lock").unlink(missing_ok=True)
    yield root
    falkordb_server.stop(root)


def graph_values(socket: Path) -> dict[str, int]:
    db = FalkorDB(unix_socket_path=str(socket))
    try:
        rows = db.select_graph("g").query("MATCH (m:Memory) RETURN m.id, m.v").result_set
    finally:
        db.connection.close()
    return {mid: v for mid, v in rows}


class Watch:
    """Samples status and the redis-server processes of a data dir until stopped, then once
    more (the last sample sees what the starters left, not a CLI call begun while loading)."""

    def __init__(self, root: Path, cli: bool = False):
        self.root, self.cli = root, cli
        self.states: list[str] = []
        self.codes: list[int] = []
        self.direct: list[str] = []  # in cli mode: status() sampled between CLI calls too
        self.servers: list[list[int]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        socket = falkordb_server.paths_for(self.root).socket
        last = False
        while not last:  # the last sample starts after the watch was stopped
            last = self.done.is_set()
            if self.cli:
                env = {**os.environ, "AUTOMEM_DATA_DIR": str(self.root)}
                env.pop("FALKORDB_HOST", None)
                cli = subprocess.Popen(
                    [sys.executable, "-m", "automem_pipelines.cli", "falkordb", "status"],
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                    env=env,
                )
                while cli.poll() is None:  # status() itself, often, while the CLI starts
                    self.direct.append(falkordb_server.status(self.root, answer_timeout=0.5).state)
                    time.sleep(0.05)
                stdout, _ = cli.communicate(timeout=60)
                self.codes.append(cli.returncode)
                self.states.append(stdout.split(" (")[0].split(":")[0])
            else:
                self.states.append(falkordb_server.status(self.root, answer_timeout=0.5).state)
            self.servers.append(redis_servers_on(socket))
            if last:
                return
            time.sleep(0.05)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join(60)


def test_threads_starting_a_loading_store_share_one_server(store):
    paths = falkordb_server.paths_for(store)
    results: list[tuple[Path, int]] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            socket = falkordb_server.ensure_running(store)
            results.append((socket, server_pid(socket)))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with Watch(store) as watch:
        threads = [threading.Thread(target=start) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(300)
    assert not errors, errors
    assert len(results) == 4 and len(set(results)) == 1  # one socket, one server behind it
    socket, pid = results[0]
    assert int(paths.pidfile.read_text()) == pid and redis_servers_on(socket) == [pid]
    # While it loaded: reported as loading, never as stopped once it was up, never two.
    assert LOADING in watch.states
    first_up = next(i for i, s in enumerate(watch.states) if s != STOPPED)
    assert STOPPED not in watch.states[first_up:]
    assert max(len(s) for s in watch.servers) == 1
    assert graph_values(socket) == expected_values()


START_AND_REPORT = (
    "import sys, redis; from pathlib import Path; from automem_pipelines.stores import falkordb_server as s; "
    "sock = s.ensure_running(Path(sys.argv[1])); c = redis.Redis(unix_socket_path=str(sock)); "
    "print(sock, c.info('server')['process_id'])"
)


def test_processes_starting_a_loading_store_share_one_server(store):
    with Watch(store, cli=True) as watch:
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", START_AND_REPORT, str(store)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(3)
        ]
        outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    reports = {out.strip() for out, _ in outputs}
    assert len(reports) == 1  # the same socket and the same server pid for every starter
    socket, pid = reports.pop().split()
    assert redis_servers_on(Path(socket)) == [int(pid)]
    assert max(len(s) for s in watch.servers) == 1
    # While it loaded it was reported loading; `falkordb status` (a second per call, so it may
    # or may not land inside the load) only ever said stopped (3, before the start), loading
    # (4) or running (0), never stopped once up, and running at the end.
    assert LOADING in watch.direct, watch.direct
    assert set(watch.codes) <= {0, 3, 4}, list(zip(watch.states, watch.codes))
    first_up = next(i for i, c in enumerate(watch.codes) if c != 3)
    assert 3 not in watch.codes[first_up:] and watch.codes[-1] == 0


def test_a_start_timeout_leaves_the_loading_server_alone(store):
    paths = falkordb_server.paths_for(store)
    with pytest.raises(EmbeddedFalkorDBError, match=r"still loading.* after 1s"):
        falkordb_server.ensure_running(store, timeout=1)
    pids = falkordb_server.server_pids(paths)
    assert len(pids) == 1
    assert paths.socket.exists() and int(paths.pidfile.read_text()) == pids[0]
    socket = falkordb_server.ensure_running(store)  # waits for the same server
    assert server_pid(socket) == pids[0]
    assert graph_values(socket) == expected_values()


def test_stop_while_loading_stops_it_and_loses_nothing(store):
    paths = falkordb_server.paths_for(store)
    errors: list[BaseException] = []

    def start() -> None:
        try:
            falkordb_server.ensure_running(store)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    starter = threading.Thread(target=start)
    starter.start()
    while falkordb_server.status(store, answer_timeout=0.5).state != LOADING:
        assert starter.is_alive(), errors
        time.sleep(0.02)
    assert falkordb_server.stop(store) is True
    starter.join(120)
    assert falkordb_server.server_pids(paths) == []
    # The waiting starter does not launch a second server: it fails, saying why.
    assert len(errors) == 1 and "exited before it was ready" in str(errors[0])
    socket = falkordb_server.ensure_running(store)
    assert graph_values(socket) == expected_values()


def test_a_store_written_by_older_versions_loads_and_is_compacted(store):
    paths = falkordb_server.paths_for(store)
    manifest = (paths.aof_dir / "appendonly.aof.manifest").read_text()
    assert ".incr.aof" in manifest  # the old log, replayed query by query

    socket = falkordb_server.ensure_running(store)
    client = redis.Redis(unix_socket_path=str(socket))
    while True:  # the start rewrote the log
        info = client.info("persistence")
        if info["aof_rewrites"] >= 1 and not info["aof_rewrite_in_progress"]:
            break
        time.sleep(0.05)
    client.close()
    incr = [f for f in paths.aof_dir.glob("*.incr.aof")]
    base = [f for f in paths.aof_dir.glob("*.base.rdb")]
    assert len(base) == 1 and base[0].stat().st_size > 0
    assert sum(f.stat().st_size for f in incr) < 1000  # nothing left to replay as queries
    assert graph_values(socket) == expected_values()

    falkordb_server.stop(store)
    socket = falkordb_server.ensure_running(store)
    pid = server_pid(socket)
    log = log_lines_since_start(paths, pid)
    assert any("DB loaded from base file" in line for line in log), log
    assert graph_values(socket) == expected_values()
    status = falkordb_server.status(store)
    assert (status.state, status.pids) == (RUNNING, (pid,))
