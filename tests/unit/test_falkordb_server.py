"""The embedded FalkorDB server: one per data dir, shared, persistent, stoppable.

Slow-loading stores (concurrent starters while a server loads, stores written by older
versions) are in test_falkordb_loading.py.
"""

import os
import signal
import socket as socketlib
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from falkordb import FalkorDB

from automem_pipelines.settings import Settings, SettingsError
from automem_pipelines.stores import falkordb_server
from automem_pipelines.stores.falkordb_server import EmbeddedFalkorDBError
from tests.support.falkordb_stores import redis_servers_on, server_pid


@pytest.fixture
def fresh_dir(tmp_path_factory):
    root = Path(tmp_path_factory.mktemp("fdb"))
    yield root
    falkordb_server.stop(root)


def status_cli(data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOMEM_DATA_DIR": str(data_dir)}
    env.pop("FALKORDB_HOST", None)
    return subprocess.run(
        [sys.executable, "-m", "automem_pipelines.cli", "falkordb", "status"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


START = "import sys; from pathlib import Path; from automem_pipelines.stores import falkordb_server as s; print(s.ensure_running(Path(sys.argv[1])))"


def test_concurrent_starters_share_one_server(fresh_dir):
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", START, str(fresh_dir)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    sockets = {p.communicate(timeout=60)[0].strip() for p in procs}
    assert len(sockets) == 1
    socket = Path(sockets.pop())
    pid = server_pid(socket)
    assert int((fresh_dir / "falkordb" / "falkordb.pid").read_text()) == pid
    # Only one redis-server serves this data dir.
    assert redis_servers_on(socket) == [pid]
    assert falkordb_server.server_pids(falkordb_server.paths_for(fresh_dir)) == [pid]


def test_server_outlives_a_crashed_client_and_keeps_data_after_kill9(fresh_dir):
    crash = subprocess.Popen(
        [sys.executable, "-c", START + "; import time; time.sleep(60)", str(fresh_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
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
    rows = (
        FalkorDB(unix_socket_path=str(socket))
        .select_graph("g")
        .query("MATCH (m:Memory) RETURN m.content")
        .result_set
    )
    assert rows == [["survives"]]


def test_stop_is_clean_and_idempotent(fresh_dir):
    socket = falkordb_server.ensure_running(fresh_dir)
    FalkorDB(unix_socket_path=str(socket)).select_graph("g").query("CREATE (:Memory {id: 'x'})")
    assert falkordb_server.stop(fresh_dir) is True
    assert not falkordb_server.is_running(fresh_dir)
    assert falkordb_server.status(fresh_dir).state == falkordb_server.STOPPED
    assert falkordb_server.stop(fresh_dir) is False
    socket = falkordb_server.ensure_running(fresh_dir)
    assert FalkorDB(unix_socket_path=str(socket)).select_graph("g").query(
        "MATCH (m) RETURN count(m)"
    ).result_set == [[1]]


def test_result_sets_are_capped_like_hosted_servers(graph):
    graph.query("UNWIND range(1, 10050) AS i CREATE (:Memory {id: toString(i)})")
    assert len(graph.query("MATCH (m:Memory) RETURN m.id")) == 10_000  # truncated silently
    assert len(list(graph.memory_ids())) == 10_050  # our scans page


def test_status_command_tells_running_and_stopped_with_exit_codes(fresh_dir):
    stopped = status_cli(fresh_dir)
    assert (stopped.returncode, stopped.stdout.split()[0]) == (3, "stopped"), stopped
    socket = falkordb_server.ensure_running(fresh_dir)
    running = status_cli(fresh_dir)
    assert running.returncode == 0, running
    assert running.stdout.startswith(f"running (pid {server_pid(socket)}, {socket})")


def test_a_pidfile_naming_a_dead_pid_and_a_stale_socket_do_not_stop_a_start(fresh_dir):
    paths = falkordb_server.paths_for(fresh_dir)
    paths.root.mkdir(parents=True)
    gone = subprocess.Popen(["true"])
    gone.wait()
    paths.pidfile.write_text(f"{gone.pid}\n")
    listener = socketlib.socket(socketlib.AF_UNIX)
    listener.bind(str(paths.socket))  # the file stays after close; nobody listens on it
    listener.close()

    assert falkordb_server.status(fresh_dir).state == falkordb_server.STOPPED
    socket = falkordb_server.ensure_running(fresh_dir)
    pid = server_pid(socket)
    assert pid != gone.pid
    assert int(paths.pidfile.read_text()) == pid
    assert redis_servers_on(socket) == [pid]


def test_a_pidfile_naming_an_unrelated_live_process_is_not_our_server(fresh_dir):
    paths = falkordb_server.paths_for(fresh_dir)
    paths.root.mkdir(parents=True)
    # Alive, and even working in the data dir: still not a redis-server.
    bystander = subprocess.Popen(["sleep", "300"], cwd=paths.root)
    try:
        paths.pidfile.write_text(f"{bystander.pid}\n")
        assert not falkordb_server.is_server_process(bystander.pid, paths)
        st = falkordb_server.status(fresh_dir)
        assert (st.state, st.pids) == (falkordb_server.STOPPED, ())
        assert falkordb_server.stop(fresh_dir) is False

        socket = falkordb_server.ensure_running(fresh_dir)
        pid = server_pid(socket)
        assert pid != bystander.pid and int(paths.pidfile.read_text()) == pid

        # The server's pidfile is overwritten to name the bystander again: the server is
        # still found (through /proc), stopped, and the bystander is never signalled.
        paths.pidfile.write_text(f"{bystander.pid}\n")
        st = falkordb_server.status(fresh_dir)
        assert (st.state, st.pids) == (falkordb_server.RUNNING, (pid,))
        assert falkordb_server.stop(fresh_dir) is True
        assert not falkordb_server.is_server_process(pid, paths)
        assert bystander.poll() is None  # alive, untouched
    finally:
        bystander.kill()
        bystander.wait()


def test_a_server_that_does_not_answer_is_never_replaced(fresh_dir):
    socket = falkordb_server.ensure_running(fresh_dir)
    paths = falkordb_server.paths_for(fresh_dir)
    pid = server_pid(socket)
    os.kill(pid, signal.SIGSTOP)
    try:
        st = falkordb_server.status(fresh_dir, answer_timeout=0.5)
        assert (st.state, st.pids, st.exit_code) == (falkordb_server.NOT_ANSWERING, (pid,), 5)
        with pytest.raises(
            EmbeddedFalkorDBError, match="made no progress.*not starting a second server"
        ):
            falkordb_server.ensure_running(fresh_dir, timeout=120, stall_timeout=1.5)
        # Its socket and pidfile are still there, and it is still the only server.
        assert paths.socket.exists() and int(paths.pidfile.read_text()) == pid
        assert redis_servers_on(socket) == [pid]
    finally:
        os.kill(pid, signal.SIGCONT)
    assert falkordb_server.ensure_running(fresh_dir) == socket
    assert server_pid(socket) == pid


def test_a_server_that_exits_while_starting_fails_the_start_with_its_log(fresh_dir):
    paths = falkordb_server.paths_for(fresh_dir)
    falkordb_server.ensure_running(fresh_dir)
    falkordb_server.stop(fresh_dir)
    (paths.aof_dir / "appendonly.aof.manifest").write_text("this is not a manifest\n")
    with pytest.raises(EmbeddedFalkorDBError, match="exited before it was ready") as err:
        falkordb_server.ensure_running(fresh_dir)
    assert "manifest" in str(err.value).lower()  # the log tail says why
    assert falkordb_server.server_pids(paths) == []


def write_notes(graph, nodes: int, round_: int, size: int = 1000) -> None:
    """Set every node's note (random hex: a snapshot cannot compress it away)."""
    for lo in range(0, nodes, 500):
        rows = [
            {"id": str(i), "note": os.urandom(size // 2).hex()}
            for i in range(lo, min(lo + 500, nodes))
        ]
        graph.query(
            "UNWIND $rows AS row MATCH (m:Memory {id: row.id}) SET m.note = row.note, m.round = $round",
            {"rows": rows, "round": round_},
        )


def wait_rewrite_done(client: redis.Redis) -> dict:
    while True:
        info = client.info("persistence")
        if not info["aof_rewrite_in_progress"] and not info["aof_rewrite_scheduled"]:
            return info
        time.sleep(0.05)


def test_churn_is_compacted_and_survives_restart_and_kill9(fresh_dir):
    nodes, rounds = 6000, 12
    socket = falkordb_server.ensure_running(fresh_dir)
    db = FalkorDB(unix_socket_path=str(socket))
    graph = db.select_graph("g")
    graph.query("CREATE INDEX FOR (m:Memory) ON (m.id)")
    graph.query("UNWIND range(0, $n - 1) AS i CREATE (:Memory {id: toString(i)})", {"n": nodes})
    for r in range(rounds):
        write_notes(graph, nodes, r)
    client = redis.Redis(unix_socket_path=str(socket))
    info = wait_rewrite_done(client)
    on_disk = falkordb_server.persistence_bytes(fresh_dir)
    client.save()  # a fresh snapshot of the same graph, to compare with
    paths = falkordb_server.paths_for(fresh_dir)
    snapshot = paths.rdb.stat().st_size
    paths.rdb.unlink()
    client.close()

    written = rounds * nodes * 1000
    assert written > 10 * snapshot  # without compaction the log would hold all of it
    assert info["aof_rewrites"] >= 2
    # Between rewrites the log holds up to 1.5x its size after the last rewrite, which counts
    # the writes made while that rewrite ran (this test writes fast): well under 4 snapshots.
    assert on_disk <= 4 * snapshot, (on_disk, snapshot)
    assert list(paths.aof_dir.glob("*.base.rdb"))  # the log's base is a snapshot

    falkordb_server.stop(fresh_dir)
    socket = falkordb_server.ensure_running(fresh_dir)
    graph = FalkorDB(unix_socket_path=str(socket)).select_graph("g")
    assert graph.query(
        "MATCH (m:Memory) WHERE m.round = $r RETURN count(m)", {"r": rounds - 1}
    ).result_set == [[nodes]]

    write_notes(graph, nodes, rounds)
    time.sleep(1.5)  # appendfsync everysec
    os.kill(server_pid(socket), signal.SIGKILL)
    while falkordb_server.server_pids(paths):
        time.sleep(0.05)
    socket = falkordb_server.ensure_running(fresh_dir)
    graph = FalkorDB(unix_socket_path=str(socket)).select_graph("g")
    assert graph.query(
        "MATCH (m:Memory) WHERE m.round = $r RETURN count(m)", {"r": rounds}
    ).result_set == [[nodes]]


def test_server_runs_with_the_persistence_policy(fresh_dir):
    client = redis.Redis(
        unix_socket_path=str(falkordb_server.ensure_running(fresh_dir)), decode_responses=True
    )
    config = client.config_get("*")
    assert config["appendonly"] == "yes" and config["aof-use-rdb-preamble"] == "yes"
    assert config["auto-aof-rewrite-percentage"] == "50"
    assert config["auto-aof-rewrite-min-size"] == str(8 << 20)
    assert config["save"] == ""
    assert client.execute_command("GRAPH.CONFIG", "GET", "EFFECTS_THRESHOLD") == [
        "EFFECTS_THRESHOLD",
        0,
    ]
    client.close()


@pytest.mark.parametrize("raw", ["0", "abc", "-5", "86401", "nan"])
def test_start_timeout_must_be_in_range(raw):
    env = {falkordb_server.START_TIMEOUT_ENV: raw}
    with pytest.raises(
        EmbeddedFalkorDBError,
        match=r"FALKORDB_START_TIMEOUT_SECONDS=.* expected a number from 1 to 86400",
    ):
        falkordb_server.start_timeout_from_env(env)
    with pytest.raises(
        SettingsError, match=r"FALKORDB_START_TIMEOUT_SECONDS=.* expected a number from 1 to 86400"
    ):
        Settings.from_env(env)


def test_start_timeout_defaults_and_reads_the_variable():
    assert falkordb_server.start_timeout_from_env({}) == 600
    assert (
        falkordb_server.start_timeout_from_env({falkordb_server.START_TIMEOUT_ENV: "1800"}) == 1800
    )
    assert (
        Settings.from_env({falkordb_server.START_TIMEOUT_ENV: "45"}).falkordb.start_timeout_seconds
        == 45
    )
