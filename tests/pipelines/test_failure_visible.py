"""A run whose memories all failed is a failed run (schedules, alerting and the CLI see it),
and a batch the provider refuses fails only the memories it refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import dagster as dg
import pytest

from tests.helpers import failure_messages, new_id, run_reembed, summary_of
from tests.support.embedding_server import Fault

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def openai_store(make_settings, graph_factory, fake_openai):
    def make(count: int, **env):
        settings = make_settings(
            EMBEDDING_PROVIDER="openai",
            OPENAI_API_KEY="sk-test",
            OPENAI_BASE_URL=fake_openai.base_url,
            EMBEDDING_MAX_RETRIES="0",
            VECTOR_SIZE="384",
            **env,
        )
        graph = graph_factory(settings)
        ids = [new_id() for _ in range(count)]
        graph.ensure_indexes()
        graph.upsert_memories(
            {"id": m, "content": f"Note {i} about the Atlas project"} for i, m in enumerate(ids)
        )
        return settings, graph, ids

    yield make
    fake_openai.reset()  # releases hung requests


@pytest.mark.parametrize("fault", ["wrong_dimension", "hang"])
def test_a_provider_failing_every_batch_fails_the_run_with_its_summary(
    openai_store, fake_openai, fault
):
    settings, graph, ids = openai_store(30, EMBEDDING_TIMEOUT_SECONDS="1")
    fake_openai.state.fail_marker = "Note"
    fake_openai.state.fail_fault = (
        Fault.wrong_dimension() if fault == "wrong_dimension" else Fault.hang()
    )
    result = run_reembed(settings, raise_on_error=False, batch_size=10)
    assert not result.success
    assert result.dagster_run.status == dg.DagsterRunStatus.FAILURE
    summary = summary_of(result)  # recorded before the run failed: AutoMem's fields kept
    assert (summary["processed"], summary["failed"], summary["total"]) == (0, 30, 30)
    assert summary["status"] == "failed" and summary["run_failed"] is True
    assert set(summary["failed_ids"]) <= set(ids) and summary["batch_size"] == 10
    assert "30 of the 30 memories" in failure_messages(result)


def test_the_threshold_decides_and_a_rerun_of_only_failures_fails(openai_store, fake_openai):
    settings, graph, ids = openai_store(30)
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = 'POISON'", {"id": ids[0]})
    fake_openai.state.fail_marker, fake_openai.state.fail_status = "POISON", 500  # not split
    result = run_reembed(settings, batch_size=10)
    summary = summary_of(result)
    assert result.success and summary["status"] == "complete" and summary["run_failed"] is False
    assert summary["failed"] == 10  # a failure after retries fails its batch (not split)
    graph.upsert_memories([{"id": new_id(), "content": "Note extra"} for _ in range(30)])
    strict = run_reembed(settings, raise_on_error=False, batch_size=10, failure_threshold=0.25)
    assert not strict.success  # 10 of 40 attempted failed: 25% reaches 0.25
    assert summary_of(strict)["run_failed"] is True
    # the rerun attempts only the 10 left, which fail again: 100% of its attempts
    again = run_reembed(settings, raise_on_error=False, batch_size=10)
    assert not again.success and summary_of(again)["failed"] == 10


def test_one_poisoned_text_in_a_batch_of_100_fails_alone(
    openai_store, fake_openai, vectors_factory
):
    settings, graph, ids = openai_store(100)
    poisoned = ids[37]
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = 'POISON text'", {"id": poisoned})
    fake_openai.state.fail_marker, fake_openai.state.fail_status = "POISON", 400
    summary = summary_of(run_reembed(settings, batch_size=100))
    assert (summary["processed"], summary["failed"], summary["failed_ids"]) == (99, 1, [poisoned])
    assert summary["provider_requests"] <= 1 + 2 * 7  # halves down to the one text
    store = vectors_factory(settings)
    assert len(store.payloads(ids)) == 99 and poisoned not in store.payloads([poisoned])


def test_the_cli_exits_non_zero_when_the_run_failed(openai_store, fake_openai, data_dir, tmp_path):
    settings, graph, ids = openai_store(12)
    fake_openai.state.fail_marker = "Note"
    fake_openai.state.fail_fault = Fault.wrong_dimension()
    env = {
        **os.environ,
        "AUTOMEM_DATA_DIR": str(data_dir),
        "FALKORDB_GRAPH": settings.falkordb.graph,
        "QDRANT_URL": ":memory:",
        "QDRANT_COLLECTION": settings.qdrant.collection,
        "EMBEDDING_PROVIDER": "openai",
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_BASE_URL": fake_openai.base_url,
        "EMBEDDING_MAX_RETRIES": "0",
        "VECTOR_SIZE": "384",
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "automem_pipelines.cli", "reembed", "--batch-size", "4"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode != 0, done.stdout + done.stderr
    assert "reembed_job run failed" in done.stderr and "12 of the 12 memories" in done.stderr
    summary = json.loads(done.stdout[done.stdout.index("{") :])
    assert summary["status"] == "failed" and summary["failed"] == 12
