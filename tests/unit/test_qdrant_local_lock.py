"""Local-mode Qdrant allows one process: a second one waits for the store, then proceeds."""

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


def hold(path: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


def test_second_process_waits_for_the_store_then_opens_it(tmp_path):
    config = VectorConfig(None, None, "c", tmp_path, lock_timeout_seconds=60)
    holder = hold(Path(config.location), 1.5)
    try:
        store = vectors.connect(config)
        assert Path(config.location + ".released").exists()  # we got in only after the holder let go
        store.ensure_collection(8)
        assert store.collection_dim() == 8
    finally:
        holder.wait()
        vectors.forget(config)


def test_without_waiting_the_error_names_the_store_and_the_way_out(tmp_path):
    config = VectorConfig(None, None, "c", tmp_path, lock_timeout_seconds=0)
    holder = hold(Path(config.location), 30)
    try:
        with pytest.raises(VectorStoreUnavailableError) as info:
            vectors.connect(config)
        message = str(info.value)
        assert str(tmp_path / "qdrant") in message and "QDRANT_URL" in message
    finally:
        holder.kill()
        holder.wait()
