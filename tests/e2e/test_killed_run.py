"""A run killed with SIGKILL in the middle of writing loses nothing: a rerun finishes the job."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from automem_pipelines.definitions import build_resources
from automem_pipelines.stores import vectors
from tests.helpers import load_sample, run_reembed, summary_of

pytestmark = pytest.mark.slow


def test_rerun_after_kill9_completes_the_job(settings, graph):
    rows = load_sample(graph, 6000)
    vectors.close_all()  # the CLI process must be able to open the local store
    env = {**os.environ, "AUTOMEM_DATA_DIR": str(settings.data_dir), "FALKORDB_GRAPH": settings.falkordb_graph,
           "QDRANT_COLLECTION": settings.qdrant_collection, "DAGSTER_HOME": str(settings.data_dir / "dh-kill")}
    proc = subprocess.Popen([sys.executable, "-m", "automem_pipelines.cli", "reembed", "--batch-size", "256"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in proc.stdout:  # embedding is done; the upsert step begins
        if "chunk 0: embedded" in line:
            break
    # Peek at the local store's own sqlite file (read-only) until part of the chunk is written.
    points = settings.data_dir / "qdrant" / "collection" / settings.qdrant_collection / "storage.sqlite"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if points.exists():
            with sqlite3.connect(f"file:{points}?mode=ro", uri=True) as db:
                if db.execute("SELECT count(*) FROM points").fetchone()[0] >= 500:
                    break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL

    store = build_resources(settings, from_env=False)["qdrant"].get_store()
    written_before = store.count()
    assert 500 <= written_before < 6000

    summary = summary_of(run_reembed(settings, batch_size=256))
    assert summary["failed"] == 0
    assert summary["processed"] == 6000 - written_before
    assert summary["skipped_unchanged"] == written_before
    assert store.count() == 6000
    assert set(store.payloads([r["id"] for r in rows])) == {r["id"] for r in rows}
