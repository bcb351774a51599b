"""`automem-pipelines reembed --plan` and `--max-cost-usd`, as users run them (a subprocess),
against the OpenAI-wire test server: the plan is JSON with no provider request; a budget below
the estimate exits non-zero with the estimate and no provider request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from automem_pipelines.domain.memory import node_props_for_write
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.domain.tokens import counter_for

REPO = Path(__file__).resolve().parents[2]
MODEL = "text-embedding-3-small"


@pytest.fixture
def run_cli(settings, graph, fake_openai, tmp_path):
    rows = [node_props_for_write(m) for m in sample_memories(120, seed=5)]
    graph.ensure_indexes()
    graph.upsert_memories(rows)
    env = {
        **os.environ,
        "AUTOMEM_DATA_DIR": str(settings.data_dir),
        "FALKORDB_GRAPH": settings.falkordb.graph,
        "QDRANT_COLLECTION": settings.qdrant.collection,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "EMBEDDING_PROVIDER": "openai",
        "OPENAI_API_KEY": "test-key",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "EMBEDDING_MODEL": MODEL,
        "VECTOR_SIZE": "256",
        "EMBEDDING_MAX_RETRIES": "0",
    }

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "automem_pipelines.cli", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
        )

    return run, rows


def test_plan_prints_json_and_calls_no_provider(run_cli, fake_openai):
    run, rows = run_cli
    done = run("reembed", "--plan", "--batch-size", "50")
    assert done.returncode == 0, done.stderr
    plan = json.loads(done.stdout)
    assert plan["status"] == "planned" and plan["memories"] == 120
    assert plan["tokens"] == counter_for("openai", MODEL).count(r["content"] for r in rows)
    assert plan["requests"] == 3 and plan["cost_usd"] > 0 and "seconds" in plan
    assert fake_openai.state.requests == []


def test_max_cost_usd_below_the_estimate_refuses(run_cli, fake_openai):
    run, rows = run_cli
    done = run("reembed", "--max-cost-usd", "0.000001")
    assert done.returncode != 0
    assert "refused before any provider call" in done.stderr and "120 memories" in done.stderr
    assert "Traceback" not in done.stderr
    assert fake_openai.state.requests == []
