"""The embedded FalkorDB server: one per data dir, shared, persistent, stoppable."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from falkordb import FalkorDB

from automem_pipelines.stores import falkordb_server


@pytest.fixture
def fresh_dir(tmp_path_factory):
    root = Path(tmp_path_factory.mktemp("fdb"))
    yield root
    falkordb_server.stop(root)


def server_pid(socket: Path) -> int:
    return int(redis.Redis(unix_socket_path=str(socket)).info("server")["process_id"])


START = "import sys; from pathlib import Path; from automem_pipelines.stores import falkordb_server as s; print(s.ensure_running(Path(sys.argv[1])))"


def test_concurrent_starters_share_one_server(fresh_dir):
    procs = [subprocess.Popen([sys.executable, "-c", START, str(fresh_dir)], stdout=subprocess.PIPE, text=True)
             for _ in range(4)]
    sockets = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(sockets) == 1
    socket = Path(sockets.pop())
    pid = server_pid(socket)
    assert int((fresh_dir / "falkordb" / "falkordb.pid").read_text()) == pid
    # Only one redis-server serves this data dir.
    ps = subprocess.run(["pgrep", "-f", str(socket)], capture_output=True, text=True).stdout.split()
    assert [int(p) for p in ps] == [pid]


def test_server_outlives_a_crashed_client_and_keeps_data_after_kill9(fresh_dir):
    crash = subprocess.Popen([sys.executable, "-c", START + "; import time; time.sleep(60)", str(fresh_dir)],
                             stdout=subprocess.PIPE, text=True)
    socket = Path(crash.stdout.readline().strip())
    crash.send_signal(signal.SIGKILL)
    crash.wait()
    assert falkordb_server.is_running(fresh_dir)

    graph = FalkorDB(unix_socket_path=str(socket)).select_graph("g")
    graph.query("CREATE (:Memory {id: 'm1', content: 'survives'})")
    time.sleep(1.5)  # appendfsync everysec
    os.kill(server_pid(socket), signal.SIGKILL)
    time.sleep(0.2)
    assert not falkordb_server.is_running(fresh_dir)

    socket = falkordb_server.ensure_running(fresh_dir)  # restarts, replays the AOF
    rows = FalkorDB(unix_socket_path=str(socket)).select_graph("g").query(
        "MATCH (m:Memory) RETURN m.content").result_set
    assert rows == [["survives"]]


def test_stop_is_clean_and_idempotent(fresh_dir):
    socket = falkordb_server.ensure_running(fresh_dir)
    FalkorDB(unix_socket_path=str(socket)).select_graph("g").query("CREATE (:Memory {id: 'x'})")
    assert falkordb_server.stop(fresh_dir) is True
    assert not falkordb_server.is_running(fresh_dir)
    assert falkordb_server.stop(fresh_dir) is False
    socket = falkordb_server.ensure_running(fresh_dir)
    assert FalkorDB(unix_socket_path=str(socket)).select_graph("g").query(
        "MATCH (m) RETURN count(m)").result_set == [[1]]


def test_result_sets_are_capped_like_hosted_servers(graph):
    graph.query("UNWIND range(1, 10050) AS i CREATE (:Memory {id: toString(i)})")
    assert len(graph.query("MATCH (m:Memory) RETURN m.id")) == 10_000  # truncated silently
    assert len(list(graph.memory_ids())) == 10_050  # our scans page
