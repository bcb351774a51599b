"""`automem-pipelines migrate` as operators run it (subprocesses on the on-disk stores, the
OpenAI-wire test server in this process counting every request): the plan and the budget
refusal call nobody; a migration whose process is SIGKILLed mid-backfill is finished by the
next one with no memory paid twice; --status reads the state; --rollback and --finalize."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import pytest

from automem_pipelines.definitions import build_resources
from automem_pipelines.domain.memory import node_props_for_write
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.domain.tokens import counter_for

REPO = Path(__file__).resolve().parents[2]
MODEL = "text-embedding-3-large"
MEMORIES = 1000
BATCH = 10
TO = ["--to-provider", "openai", "--to-model", MODEL, "--to-dim", "1024"]


@pytest.fixture
def cli(settings, graph, fake_openai, tmp_path):
    rows = [node_props_for_write(m) for m in sample_memories(MEMORIES, seed=11)]
    graph.ensure_indexes()
    graph.upsert_memories(rows)
    env = {
        **os.environ,
        "AUTOMEM_DATA_DIR": str(settings.data_dir),
        "FALKORDB_GRAPH": settings.falkordb.graph,
        "QDRANT_COLLECTION": settings.qdrant.collection,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "EMBEDDING_PROVIDER": "local",
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "EMBEDDING_MAX_RETRIES": "0",
    }
    command = [sys.executable, "-m", "automem_pipelines.cli"]

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [*command, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=300
        )

    def start(*args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [*command, *args],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    done = run("reembed", "--batch-size", "100")  # the live collection, local model
    assert done.returncode == 0, done.stderr
    fake_openai.reset()
    yield run, start, rows
    res = build_resources(settings, from_env=False)
    with res["qdrant"].open_store() as store:
        for name in [c.name for c in store.client.get_collections().collections]:
            if name.startswith(settings.qdrant.collection + "__"):
                store.client.delete_collection(name)


def test_plan_and_budget_call_no_provider(cli, fake_openai):
    run, _, rows = cli
    done = run("migrate", *TO, "--plan", "--batch-size", str(BATCH))
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["status"] == "planned" and plan["memories"] == MEMORIES
    assert plan["tokens"] == counter_for("openai", MODEL).count(r["content"] for r in rows)
    assert plan["requests"] == MEMORIES // BATCH and plan["cost_usd"] > 0 and "seconds" in plan
    refused = run("migrate", *TO, "--max-cost-usd", "0.000001")
    assert refused.returncode != 0 and "refused before any provider call" in refused.stderr
    assert f"{MEMORIES} memories" in refused.stderr and "Traceback" not in refused.stderr
    assert fake_openai.state.requests == []
    status = json.loads(run("migrate", "--status").stdout)
    assert status["status"] == "none"  # a plan or a refusal starts no migration


def test_a_killed_migration_is_finished_by_the_next_without_paying_twice(cli, fake_openai):
    run, start, rows = cli
    halfway = threading.Event()
    fake_openai.state.latency = 0.05

    def count(number: int) -> None:
        if number == MEMORIES // BATCH // 2:
            halfway.set()

    fake_openai.state.on_request = count
    proc = start("migrate", *TO, "--batch-size", str(BATCH))
    assert halfway.wait(180), proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)  # the worker dies mid-backfill, nothing cleaned up
    proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    paid = fake_openai.request_count
    assert paid < MEMORIES // BATCH

    status = json.loads(run("migrate", "--status").stdout)
    assert status["status"] == "backfill" and 0 < status["target_lacks"] < MEMORIES

    done = run("migrate", *TO, "--batch-size", str(BATCH))
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["status"] == "cut_over" and summary["migration"]["verified"]["ok"]
    # every memory embedded once over both processes, but for what the killed one had
    # embedded and not yet written: at most three rounds of its 16 concurrent requests
    texts = Counter(t for r in fake_openai.state.requests for t in r.texts)
    contents = Counter(r["content"] for r in rows)
    assert all(texts[c] >= n for c, n in contents.items())
    repeated = sum(texts[c] - n for c, n in contents.items())
    assert repeated <= 3 * BATCH * 16
    assert summary["migration"]["runs"] == 2

    status = json.loads(run("migrate", "--status").stdout)
    assert status["status"] == "cut_over" and status["target_lacks"] == 0
    assert any("QDRANT_COLLECTION=" in line for line in status["instructions"])
    rolled = run("migrate", "--rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert json.loads(rolled.stdout)["status"] == "rolled_back"
    again = run("migrate", "--finalize")
    assert again.returncode != 0 and "only a migration that was cut over" in again.stderr
