"""The auth matrix: every endpoint × every way of presenting (or not) each token, against
an app whose Dagster is down. Rejected calls must never reach the gateway."""

from __future__ import annotations

import pytest

from automem_api.config import RateLimit
from tests.support.api import ADMIN_TOKEN, API_TOKEN

RUN_PATH = "/admin/runs/00000000-0000-4000-8000-000000000000"
ENDPOINTS = [
    # method, path, kind, body, answer once through auth (Dagster is down)
    ("GET", "/health", "public", None, 200),
    ("GET", "/enrichment/status", "api", None, 200),  # reports the scheduler "stopped"
    ("GET", RUN_PATH, "api", None, 503),
    ("POST", "/enrichment/reprocess", "admin", {"ids": ["a"]}, 503),
    ("POST", "/admin/reembed", "admin", {}, 503),
    ("POST", "/admin/sync", "admin", {"dry_run": True}, 503),
]
UNAUTHORIZED = (401, "Unauthorized")
ADMIN_REQUIRED = (401, "Admin authorization required")
ADMIN_NOT_CONFIGURED = (403, "Admin token not configured")
THROUGH = "through"  # passes both layers

BEARER = {"Authorization": f"Bearer {API_TOKEN}"}
# case id, configured (api, admin), headers, query, expected per kind (api, admin)
CASES = [
    ("no-token", (True, True), {}, {}, UNAUTHORIZED, UNAUTHORIZED),
    (
        "wrong-bearer",
        (True, True),
        {"Authorization": "Bearer nope"},
        {},
        UNAUTHORIZED,
        UNAUTHORIZED,
    ),
    ("wrong-x-api-key", (True, True), {"X-API-Key": "nope"}, {}, UNAUTHORIZED, UNAUTHORIZED),
    ("wrong-query", (True, True), {}, {"api_key": "nope"}, UNAUTHORIZED, UNAUTHORIZED),
    (
        "wrong-bearer-does-not-fall-through",
        (True, True),
        {"Authorization": "Bearer nope", "X-API-Key": API_TOKEN},
        {},
        UNAUTHORIZED,
        UNAUTHORIZED,
    ),
    (
        "admin-token-only",
        (True, True),
        {"X-Admin-Token": ADMIN_TOKEN},
        {},
        UNAUTHORIZED,
        UNAUTHORIZED,
    ),
    ("bearer", (True, True), BEARER, {}, THROUGH, ADMIN_REQUIRED),
    (
        "bearer-lowercase",
        (True, True),
        {"Authorization": f"bearer {API_TOKEN}"},
        {},
        THROUGH,
        ADMIN_REQUIRED,
    ),
    ("x-api-key", (True, True), {"X-API-Key": API_TOKEN}, {}, THROUGH, ADMIN_REQUIRED),
    ("query-api-key", (True, True), {}, {"api_key": API_TOKEN}, THROUGH, ADMIN_REQUIRED),
    ("admin-wrong", (True, True), {**BEARER, "X-Admin-Token": "nope"}, {}, THROUGH, ADMIN_REQUIRED),
    ("admin-wrong-query", (True, True), BEARER, {"admin_token": "nope"}, THROUGH, ADMIN_REQUIRED),
    ("x-admin-token", (True, True), {**BEARER, "X-Admin-Token": ADMIN_TOKEN}, {}, THROUGH, THROUGH),
    (
        "x-admin-api-key",
        (True, True),
        {**BEARER, "X-Admin-Api-Key": ADMIN_TOKEN},
        {},
        THROUGH,
        THROUGH,
    ),
    (
        "query-admin-token",
        (True, True),
        {},
        {"api_key": API_TOKEN, "admin_token": ADMIN_TOKEN},
        THROUGH,
        THROUGH,
    ),
    (
        "admin-unconfigured",
        (True, False),
        {**BEARER, "X-Admin-Token": ADMIN_TOKEN},
        {},
        THROUGH,
        ADMIN_NOT_CONFIGURED,
    ),
    (
        "admin-unconfigured-no-api-token",
        (True, False),
        {"X-Admin-Token": ADMIN_TOKEN},
        {},
        UNAUTHORIZED,
        UNAUTHORIZED,
    ),
    ("api-unconfigured-no-token", (False, True), {}, {}, THROUGH, ADMIN_REQUIRED),
    ("api-unconfigured-admin", (False, True), {"X-Admin-Token": ADMIN_TOKEN}, {}, THROUGH, THROUGH),
    ("nothing-configured", (False, False), {}, {}, THROUGH, ADMIN_NOT_CONFIGURED),
]


CELLS = [(case, endpoint) for case in CASES for endpoint in ENDPOINTS]


@pytest.mark.parametrize(
    "case,endpoint", CELLS, ids=[f"{c[0]}-{e[0]} {e[1].split('/0')[0]}" for c, e in CELLS]
)
def test_auth_matrix(make_client, case, endpoint):
    _, (has_api, has_admin), headers, query, api_expect, admin_expect = case
    method, path, kind, body, through_code = endpoint
    client, launcher = make_client(
        api_token=API_TOKEN if has_api else None, admin_token=ADMIN_TOKEN if has_admin else None
    )
    response = client.request(method, path, headers=headers, params=query, json=body)
    expected = {"public": THROUGH, "api": api_expect, "admin": admin_expect}[kind]
    if expected == THROUGH:
        assert response.status_code == through_code, response.text
        return
    code, message = expected
    assert response.status_code == code, response.text
    assert response.json() == {
        "status": "error",
        "code": code,
        "message": message,
        "error": message,
    }
    assert launcher.submits == []  # rejected: no run was even attempted


def test_through_auth_with_dagster_down_is_503_and_names_dagster(make_client):
    client, launcher = make_client()
    response = client.post(
        "/enrichment/reprocess",
        headers={**BEARER, "X-Admin-Token": ADMIN_TOKEN},
        json={"ids": ["b", "a", "b"]},
    )
    assert response.status_code == 503
    assert "Dagster webserver" in response.json()["message"]
    assert "Traceback" not in response.text
    ((job, run_config, tags),) = launcher.submits  # attempted, refused by the dead webserver
    assert job == "enrichment_job"
    assert run_config["ops"]["select_memories"]["config"] == {"ids": ["a", "b"], "forced": True}
    assert tags["automem/trigger"] == "api"
    assert tags["automem/request_id"] == response.headers["x-request-id"]


def test_health_is_public_and_degraded_without_dagster(make_client):
    client, _ = make_client()
    body = client.get("/health").json()
    assert body["dagster"] == "unreachable"
    assert body["status"] == "degraded"
    assert body["falkordb"] == "connected"
    assert body["memory_count"] == 0
    assert body["qdrant"] == "embedded"  # never opened by the API (local mode)
    assert body["vector_count"] is None and body["sync_status"] == "unknown"
    identity = body["embedding_identity"]
    assert identity["configured"] == {"provider": "local", "model": "minilm-l6-static", "dim": 256}
    assert identity["recorded"] is None and identity["match"] is None  # nothing known yet


def test_rate_limit_counts_admin_calls_and_says_when_to_retry(make_client):
    client, launcher = make_client(rate=RateLimit(2, 60.0))
    headers = {**BEARER, "X-Admin-Token": "wrong"}
    codes = [client.post("/admin/reembed", headers=headers, json={}).status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    limited = client.post("/admin/sync", headers={**BEARER, "X-Admin-Token": ADMIN_TOKEN}, json={})
    assert limited.status_code == 429
    assert int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"] == "Too many admin requests; retry later"
    assert client.get("/enrichment/status", headers=BEARER).status_code != 429  # not an admin call
    assert client.post("/admin/reembed", json={}).status_code == 401  # API token checked first
    assert launcher.submits == []


def test_audit_log_records_admin_calls_without_tokens(make_client, tmp_path):
    client, _ = make_client()
    client.post("/admin/reembed", headers=BEARER, json={"batch_size": 8})
    client.post(
        "/admin/reembed",
        params={"api_key": API_TOKEN, "admin_token": ADMIN_TOKEN},
        json={"batch_size": 0},
    )
    client.post(
        "/enrichment/reprocess",
        headers={**BEARER, "X-Admin-Token": ADMIN_TOKEN},
        json={"ids": ["m1"]},
    )
    client.get("/health")
    text = (tmp_path / "audit.jsonl").read_text()
    assert API_TOKEN not in text and ADMIN_TOKEN not in text
    entries = client.app.state.audit.read()
    assert [e["endpoint"] for e in entries] == [
        "/admin/reembed",
        "/admin/reembed",
        "/enrichment/reprocess",
    ]
    first, second, third = entries
    assert (
        first["status_code"] == 401 and first["outcome"] == "rejected: Admin authorization required"
    )
    assert first["token_fingerprint"] is None and len(first["api_token_fingerprint"]) == 12
    assert second["status_code"] == 400 and second["parameters"] == {"batch_size": 0}
    assert second["query"] == {"api_key": "[redacted]", "admin_token": "[redacted]"}
    assert len(second["token_fingerprint"]) == 12
    assert third["status_code"] == 503 and third["parameters"]["ids"] == ["m1"]
    for entry in entries:
        assert {"time", "client_ip", "endpoint", "request_id", "status_code", "outcome"} <= set(
            entry
        )


def test_errors_use_the_envelope(make_client):
    client, _ = make_client()
    missing = client.get("/nope", headers=BEARER)
    assert missing.status_code == 404
    assert missing.json()["status"] == "error" and missing.json()["code"] == 404
    wrong_method = client.get("/admin/reembed", headers=BEARER)
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == 405
    bad_run = client.get("/admin/runs/not-a-run-id", headers=BEARER)
    assert bad_run.status_code == 404  # malformed ids are never sent to Dagster


def test_enrichment_status_without_dagster_reports_the_scheduler_stopped(make_client):
    """Needs the merged enrichment_status module."""
    client, _ = make_client()
    response = client.get("/enrichment/status", headers=BEARER)
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"status", "queue_size", "pending", "inflight", "max_attempts", "stats"} <= set(body)
    assert body["status"] == "stopped" and body["dagster"] == "unreachable"
    assert body["max_attempts"] == 3 and body["inflight"] == 0


def test_audit_line_is_written_before_the_answer_reaches_the_client(tmp_path):
    """A client that reads the audit log as soon as it has its answer finds the line (the
    line used to be written after the app returned, racing the client)."""
    import asyncio

    from automem_api.audit import AuditLog
    from automem_api.middleware import RequestContextMiddleware
    from automem_api.redaction import Redactor

    path = tmp_path / "audit.jsonl"
    seen_at_start: list[int] = []

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 400, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message):
        if message["type"] == "http.response.start":
            seen_at_start.append(len(AuditLog(path).read()))

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    middleware = RequestContextMiddleware(app, AuditLog(path), Redactor(()), 1 << 20)
    scope = {"type": "http", "method": "POST", "path": "/admin/reembed", "headers": []}
    scope.update(query_string=b"", client=("127.0.0.1", 1), http_version="1.1")
    asyncio.run(middleware(scope, receive, send))
    assert seen_at_start == [1]
    (entry,) = AuditLog(path).read()
    assert entry["status_code"] == 400 and entry["endpoint"] == "/admin/reembed"
