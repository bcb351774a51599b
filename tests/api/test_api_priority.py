"""The API's runs are operator work: queued ahead of the enrichment sensor's
(tests/pipelines/test_run_priority.py has the queue's order)."""

from __future__ import annotations

from fastapi.testclient import TestClient

from automem_api.app import create_app
from automem_api.config import ApiConfig, RateLimit
from automem_pipelines.constants import (
    DRIFT_SYNC_JOB,
    ENRICHMENT_JOB,
    OPERATOR_PRIORITY,
    REEMBED_JOB,
    TAG_PRIORITY,
)
from tests.support.api import ADMIN_TOKEN, API_TOKEN, ScriptedGateway

ADMIN = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}


def test_the_api_launches_with_the_operator_priority(make_settings, tmp_path):
    config = ApiConfig(
        settings=make_settings(),
        api_token=API_TOKEN,
        admin_token=ADMIN_TOKEN,
        admin_rate_limit=RateLimit(0, 60.0),
        audit_log=tmp_path / "audit.jsonl",
        status_cache_seconds=0,
    )
    gateway = ScriptedGateway(config)
    client = TestClient(create_app(config, gateway), raise_server_exceptions=False)
    try:
        for path, body in (
            ("/admin/reembed", {}),
            ("/admin/sync", {}),
            ("/enrichment/reprocess", {"ids": ["0b7f6b8e-5d3a-4f7e-9d0a-2b8c1f1e4a11"]}),
        ):
            answer = client.post(path, json=body, headers=ADMIN)
            assert answer.status_code < 300, (path, answer.text)
    finally:
        client.app.state.graph.close()
        client.close()
    runs = list(gateway.runs_by_id.values())
    assert sorted(r.job for r in runs) == sorted([REEMBED_JOB, DRIFT_SYNC_JOB, ENRICHMENT_JOB])
    assert all(r.tags[TAG_PRIORITY] == OPERATOR_PRIORITY for r in runs)
