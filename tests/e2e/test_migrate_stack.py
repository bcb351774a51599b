"""`POST /admin/migrate` over a real stack (Dagster webserver + daemon, the admin API, the
embedded FalkorDB, local-mode Qdrant), the OpenAI-wire test server in this process as the
target: the plan is answered with no provider call, a budget below it is a 422, the migration
runs as a Dagster run through its stages, `action: status` reports its state, the same
migration again confirms the cutover without a provider call, and rollback answers; in a
browser, the collection asset's page shows the migration's state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automem_pipelines.constants import VECTOR_ASSET_KEY
from tests.e2e.test_api_e2e import E2E, running_site
from tests.e2e.test_browser import LOCAL, _requests_of
from tests.support.browser import browser_page
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


def test_the_collection_asset_page_shows_the_migrations_state_in_a_browser(site):
    """As an operator sees it in the Dagster UI: the vector collection asset's Events tab
    shows the migration's latest state (stage, where readers are, the target's identity)."""
    e2e, server = site
    body = e2e.post("/admin/migrate", {**TARGET, "batch_size": 25, "wait": True}).json()
    assert body["status"] in ("cut_over", "confirmed"), body
    new = body["migration"]["target_collection"]
    with browser_page() as page:
        seen = _requests_of(page)
        page.goto(f"{e2e.stack.url}/assets/{'/'.join(VECTOR_ASSET_KEY)}?view=events")
        page.get_by_text("Embedding-model migration: ", exact=False).first.wait_for()
        text = page.locator("body").inner_text()
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    assert f"Embedding-model migration: {body['status'].replace('_', ' ')}" in lines, lines
    after = lines[lines.index("stage") :]
    assert after[1] == "cut_over", after[:4]
    assert "readers on" in after and after[after.index("readers on") + 1] == new
    assert f"{new}: openai:text-embedding-3-large (1024-d)" in after
    assert all(LOCAL.match(url) for url in seen), [u for u in seen if not LOCAL.match(u)]
