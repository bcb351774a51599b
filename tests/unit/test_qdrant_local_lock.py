"""Local-mode Qdrant allows one client per store per process: a second process waits for the
store, then proceeds; openers in one process share the one client, which closes with the last
of them (freeing the store for other processes)."""

import subprocess
import sys
from pathlib import Path

import pytest

from automem_pipelines.stores import vectors
from automem_pipelines.stores.vectors import VectorConfig, VectorStoreUnavailableError

HOLD = """
import sys, time
from qdrant_client import QdrantClient
c = QdrantClient(path=sys.argv[1]); print("holding", flush=True); time.sleep(float(sys.argv[2]))
open(sys.argv[1] + ".released", "w").close()  # written before the lock goes
c.close()
"""

PROBE = """
import sys
from qdrant_client import QdrantClient
try:
    QdrantClient(path=sys.argv[1]).close(); print("opened")
except RuntimeError as exc:
    print("held" if "already accessed" in str(exc) else exc)
"""


def local(path: Path, lock_timeout: float = 60) -> VectorConfig:
    return VectorConfig(
        None, None, "c", path, timeout_seconds=30, lock_timeout_seconds=lock_timeout
    )


def hold(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "holding"
    return proc


def probe(path: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, timeout=120
    )
    return done.stdout.strip() or done.stderr


def test_second_process_waits_for_the_store_then_opens_it(tmp_path):
    config = local(tmp_path)
    holder = hold(Path(config.location), 1.5)
    try:
        with vectors.open_store(config) as store:
            assert Path(
                config.location + ".released"
            ).exists()  # we got in only after the holder let go
            store.ensure_collection(8)
            assert store.collection_dim() == 8
    finally:
        holder.wait()


def test_without_waiting_the_error_names_the_store_and_the_way_out(tmp_path):
    config = local(tmp_path, lock_timeout=0)
    holder = hold(Path(config.location), 30)
    try:
        with pytest.raises(VectorStoreUnavailableError) as info:
            with vectors.open_store(config):
                pass
        message = str(info.value)
        assert str(tmp_path / "qdrant") in message and "QDRANT_URL" in message
        assert vectors.local_holders(config) == 0
    finally:
        holder.kill()
        holder.wait()


def test_openers_in_one_process_share_one_client_until_the_last_lets_go(tmp_path):
    config = local(tmp_path)
    with vectors.open_store(config) as first:
        first.ensure_collection(8)
        with vectors.open_store(config) as second:  # a run beside a test, the CLI beside a run
            assert second.client is first.client
            assert vectors.local_holders(config) == 2
        assert vectors.local_holders(config) == 1
        assert first.collection_dim() == 8  # the first opener's client is still open
        assert probe(Path(config.location)) == "held"  # other processes wait meanwhile
    assert vectors.local_holders(config) == 0
    assert probe(Path(config.location)) == "opened"  # closed with the last opener


def test_an_in_memory_store_lives_while_it_is_open(tmp_path):
    config = VectorConfig(
        ":memory:", None, "c", tmp_path, timeout_seconds=30, lock_timeout_seconds=0
    )
    with vectors.open_store(config) as store:
        store.ensure_collection(8)
        with vectors.open_store(config) as again:
            assert again.collection_dim() == 8  # the same store, not a second empty one
    with vectors.open_store(config) as fresh:
        assert fresh.collection_dim() is None
