"""Property-based fuzz of the served OpenAPI schema (schemathesis, positive and negative
cases): whatever the body, query or path, the API answers without a 5xx.

Dagster is replaced by a scripted stand-in that answers like a healthy webserver whose runs
finish at once (`ScriptedGateway`), so every 5xx would be our own; the stores are real (the
session's embedded FalkorDB). Dagster being down is covered by the auth and e2e tests.
"""

from __future__ import annotations

import uuid

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from automem_api.app import create_app
from automem_api.config import ApiConfig, RateLimit
from automem_pipelines.settings import Settings
from tests.support.api import ADMIN_TOKEN, API_TOKEN, ScriptedGateway

HEADERS = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}


@pytest.fixture(scope="module")
def fuzz_app(data_dir, tmp_path_factory):
    suffix = uuid.uuid4().hex[:10]
    env = {"AUTOMEM_DATA_DIR": str(data_dir), "FALKORDB_GRAPH": f"fuzz_{suffix}"}
    config = ApiConfig(
        settings=Settings.from_env(env),
        api_token=API_TOKEN,
        admin_token=ADMIN_TOKEN,
        admin_rate_limit=RateLimit(0, 60.0),
        status_cache_seconds=0,
        audit_log=tmp_path_factory.mktemp("fuzz") / "audit.jsonl",
    )
    app = create_app(config, ScriptedGateway(config))
    yield app
    app.state.graph.close()


OPERATIONS = [
    "GET /health",
    "GET /enrichment/status",
    "GET /admin/runs/{run_id}",
    "POST /admin/migrate",
    "POST /admin/reembed",
    "POST /admin/sync",
    "POST /enrichment/reprocess",
]


@pytest.fixture(scope="module")
def fuzz_schema(fuzz_app):
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)


def test_schema_covers_every_endpoint(fuzz_schema):
    found = sorted(
        f"{op.ok().method.upper()} {op.ok().path}" for op in fuzz_schema.get_all_operations()
    )
    assert found == sorted(OPERATIONS)


# Negative cases need parameters or a body to break: /health and /enrichment/status have none.
CASES = [(op, GenerationMode.POSITIVE) for op in OPERATIONS] + [
    (op, GenerationMode.NEGATIVE) for op in OPERATIONS if op.startswith("POST") or "{" in op
]


@pytest.mark.parametrize("operation,mode", CASES, ids=[f"{op}-{m.value}" for op, m in CASES])
def test_no_server_errors(fuzz_schema, operation, mode):
    method, path = operation.split(" ")
    api_operation = fuzz_schema[path][method]

    @given(case=api_operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    def check(case):
        response = case.call(headers=HEADERS)
        assert response.status_code < 500, (case.method, case.path, case.body, response.text)
        if response.status_code >= 400:
            body = response.json()
            assert body["status"] == "error" and body["code"] == response.status_code

    check()
