"""/health reads the drift state from the latest results of the drift asset checks (Dagster
GraphQL `assetCheckExecutions`), not from the last drift-sync run."""

from __future__ import annotations

import json

import graphql
import pytest
from dagster_graphql.schema import create_schema
from fastapi.testclient import TestClient

from automem_api import queries
from automem_api.app import create_app
from automem_api.config import ApiConfig, RateLimit
from automem_api.gateway import DagsterGateway
from automem_pipelines.constants import DRIFT_CHECKS, VECTOR_ASSET_KEY
from tests.support.api import ADMIN_TOKEN, API_TOKEN
from tests.support.dagster_stack import free_port

SYNC_RUN = "0f1e2d3c-0000-4000-8000-000000000001"


def entry(label, value):
    if isinstance(value, bool):
        return {"__typename": "BoolMetadataEntry", "label": label, "boolValue": value}
    if isinstance(value, int):
        return {"__typename": "IntMetadataEntry", "label": label, "intValue": value}
    if isinstance(value, dict):
        return {"__typename": "JsonMetadataEntry", "label": label, "jsonString": json.dumps(value)}
    return {"__typename": "TextMetadataEntry", "label": label, "text": value}


def execution(name: str, count: int, memories: int, points: int, recorded=None, run=SYNC_RUN):
    metadata = {
        "count": count,
        "detected": count,
        "state": "detected",
        "falkordb_count": memories,
        "qdrant_count": points,
    }
    if name == "stale_vectors":
        metadata["embedding_identity"] = {"configured": {}, "recorded": recorded}
    return {
        "runId": run,
        "status": "SUCCEEDED" if count == 0 else "FAILED",
        "timestamp": 1764700000.0,
        "evaluation": {
            "success": count == 0,
            "severity": "ERROR" if name in ("missing_vectors", "stale_vectors") else "WARN",
            "timestamp": 1764700001.5,
            "metadataEntries": [entry(k, v) for k, v in metadata.items()],
        },
    }


class ChecksGateway(DagsterGateway):
    """A reachable Dagster whose GraphQL answers the check-executions query with `answer`
    (what the webserver returns: one aliased list per check); every query is recorded."""

    def __init__(self, config, answer):
        super().__init__(config)
        self.answer = answer
        self.sent: list[tuple[str, dict]] = []

    def ping(self) -> bool:
        return True

    def query(self, query, variables=None):
        self.sent.append((query, variables or {}))
        if query.startswith("query CheckExecutions"):
            return self.answer
        raise AssertionError(f"unexpected query: {query[:60]}")


@pytest.fixture
def health(make_settings, graph, tmp_path):
    """GET /health of an app whose Dagster answers with the given check executions."""
    clients = []

    def get(answer):
        config = ApiConfig(
            settings=make_settings(),
            api_token=API_TOKEN,
            admin_token=ADMIN_TOKEN,
            dagster_url=f"http://127.0.0.1:{free_port()}",
            admin_rate_limit=RateLimit(0, 60.0),
            audit_log=tmp_path / "audit.jsonl",
            status_cache_seconds=0,
        )
        gateway = ChecksGateway(config, answer)
        client = TestClient(create_app(config, gateway), raise_server_exceptions=False)
        clients.append(client)
        response = client.get("/health")
        assert response.status_code == 200
        return response.json(), gateway

    yield get
    for client in clients:
        client.app.state.graph.close()
        client.close()


def test_the_query_is_valid_against_the_pinned_dagster_graphql_schema():
    document = graphql.parse(queries.check_executions(DRIFT_CHECKS, 5))
    assert graphql.validate(create_schema().graphql_schema, document) == []


def test_health_reports_each_check_and_counts_from_its_metadata(health):
    recorded = {"provider": "local", "model": "minilm-l6-static", "dim": 256, "status": "verified"}
    answer = {name: [execution(name, 0, 0, 0, recorded)] for name in DRIFT_CHECKS}
    body, gateway = health(answer)
    [(_, variables)] = gateway.sent
    assert variables == {"assetKey": {"path": VECTOR_ASSET_KEY}}
    assert set(body["drift_checks"]) == set(DRIFT_CHECKS)
    missing = body["drift_checks"]["missing_vectors"]
    assert missing["passed"] is True and missing["severity"] == "error"
    assert missing["count"] == 0 and missing["state"] == "detected"
    assert missing["run_id"] == SYNC_RUN and missing["evaluated_at"].startswith("2025-12-02T")
    assert body["drift_checks"]["orphaned_points"]["severity"] == "warn"
    # the embedded store is never opened: the checks' counts and recorded identity stand in
    assert body["qdrant"] == "embedded" and body["vector_count"] == 0
    assert body["counts_source"]["vector_count"] == "drift_checks"
    assert body["embedding_identity"]["recorded"] == recorded
    assert body["embedding_identity"]["source"] == "drift_checks"
    assert body["sync_status"] == "synced" and body["status"] == "healthy"
    assert "last_drift_sync" not in body


def test_a_failed_error_check_degrades_health(health):
    answer = {name: [execution(name, 0, 3, 3)] for name in DRIFT_CHECKS}
    answer["stale_vectors"] = [execution("stale_vectors", 2, 3, 3)]  # same counts, stale vectors
    body, _ = health(answer)
    stale = body["drift_checks"]["stale_vectors"]
    assert stale["passed"] is False and stale["count"] == 2
    assert body["sync_status"] == "synced"  # the counts agree ...
    assert body["status"] == "degraded"  # ... but recall finds stale vectors


def test_a_failed_warn_check_does_not_degrade_health(health):
    answer = {name: [execution(name, 0, 3, 3)] for name in DRIFT_CHECKS}
    answer["duplicate_ids"] = [execution("duplicate_ids", 1, 3, 3)]
    body, _ = health(answer)
    assert body["drift_checks"]["duplicate_ids"]["passed"] is False
    assert body["status"] == "healthy"


def test_the_latest_execution_with_a_result_counts(health):
    running = {"runId": "still-running", "status": "IN_PROGRESS", "timestamp": 1.0}
    answer = {
        name: [{**running, "evaluation": None}, execution(name, 0, 4, 4)] for name in DRIFT_CHECKS
    }
    body, _ = health(answer)
    assert body["drift_checks"]["missing_vectors"]["run_id"] == SYNC_RUN
    assert body["vector_count"] == 4


def test_no_check_ever_reported(health):
    body, _ = health({name: [] for name in DRIFT_CHECKS})
    assert body["drift_checks"] == dict.fromkeys(DRIFT_CHECKS)
    assert body["vector_count"] is None and body["sync_status"] == "unknown"
