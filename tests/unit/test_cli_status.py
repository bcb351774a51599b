"""`automem-pipelines enrichment-status`: the scheduler state from the Dagster instance (the
one scheduler-state function the API feeds from GraphQL) and the graph's counts."""

import json

import dagster as dg

from automem_pipelines import cli
from automem_pipelines.status import scheduler_state_from_instance


def test_enrichment_status_reads_the_instance_and_the_graph(
    monkeypatch, settings, tmp_path, capsys
):
    monkeypatch.setenv("AUTOMEM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("FALKORDB_GRAPH", settings.falkordb.graph)
    monkeypatch.setenv("QDRANT_COLLECTION", settings.qdrant.collection)
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # restored after the test
    cli.main(["enrichment-status"])
    body = json.loads(capsys.readouterr().out)
    assert {"status", "queue_size", "pending", "inflight", "max_attempts", "stats"} <= set(body)
    assert body["status"] == "stopped"  # no daemon heartbeat in this instance
    assert body["pending"] == 0 and body["inflight"] == 0
    with dg.DagsterInstance.get() as instance:
        state = scheduler_state_from_instance(instance, default_running=True)
    assert (state.daemon_alive, state.queued_runs) == (False, 0)
