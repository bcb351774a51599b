"""`POST /admin/migrate` over a real stack (Dagster webserver + daemon, the admin API, the
embedded FalkorDB, local-mode Qdrant), the OpenAI-wire test server in this process as the
target: the plan is answered with no provider call, a budget below it is a 422, the migration
runs as a Dagster run through its stages, `action: status` reports its state, the same
migration again confirms the cutover without a provider call, and rollback answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.test_api_e2e import E2E, running_site
from tests.support.openai_server import OpenAIEmbeddingsServer

MEMORIES = 150
TARGET = {"to_provider": "openai", "to_model": "text-embedding-3-large", "to_dim": 1024}


@pytest.fixture(scope="module")
def site() -> Iterator[tuple[E2E, OpenAIEmbeddingsServer]]:
    server = OpenAIEmbeddingsServer().start()
    try:
        with running_site(
            "amm-",
            MEMORIES,
            OPENAI_API_KEY="test-key",
            OPENAI_BASE_URL=server.base_url,
            EMBEDDING_MAX_RETRIES="0",
        ) as e2e:
            e2e.embedded()  # the live collection, with the local model
            yield e2e, server
    finally:
        server.stop()


def test_migrate_over_the_api_plan_budget_run_status_confirm_rollback(site):
    e2e, server = site
    server.reset()
    planned = e2e.post("/admin/migrate", {**TARGET, "plan": True, "batch_size": 25})
    assert planned.status_code == 200, planned.text
    assert planned.json()["status"] == "planned" and planned.json()["memories"] == MEMORIES
    refused = e2e.post("/admin/migrate", {**TARGET, "max_cost_usd": 0, "wait": True})
    assert refused.status_code == 422 and "refused before any provider call" in refused.text
    assert server.request_count == 0

    done = e2e.post("/admin/migrate", {**TARGET, "batch_size": 25, "wait": True})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["status"] == "cut_over" and body["migration"]["verified"]["ok"]
    assert server.request_count == MEMORIES // 25
    run = e2e.wait_run(body["run_id"])
    assert run["status"] == "success" and run["job"] == "migrate_job"

    state = e2e.post("/admin/migrate", {"action": "status", "wait": True}).json()
    assert state["status"] == "cut_over" and state["target_lacks"] == 0
    assert state["migration"]["target"] == {
        **dict(zip(("provider", "model", "dim"), TARGET.values()))
    }
    assert any("restart AutoMem" in line for line in state["instructions"])

    again = e2e.post("/admin/migrate", {**TARGET, "wait": True}).json()
    assert again["status"] == "confirmed" and server.request_count == MEMORIES // 25
    rolled = e2e.post("/admin/migrate", {"action": "rollback", "wait": True})
    assert rolled.status_code == 200 and rolled.json()["status"] == "rolled_back", rolled.text
