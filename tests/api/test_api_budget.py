"""`"plan": true` and the budget on /admin/reembed and /admin/sync: validated fields (the
range in the message), the run config the jobs read, a plan answered (never queued), and a
run refused by its budget answered 422 with the estimate. Dagster is a scripted stand-in
whose runs end as the real job ends them (the job's side: tests/pipelines/test_reembed_budget)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from automem_api.app import create_app
from automem_api.config import ApiConfig, RateLimit
from automem_api.gateway import RunInfo, RunOutcome
from automem_pipelines.domain import pricing
from automem_pipelines.domain.vector_state import EmbeddingIdentity
from automem_pipelines.run_config import MIGRATE_CONFIG_OP, REEMBED_CONFIG_OP, SYNC_CONFIG_OP
from tests.support.api import ADMIN_TOKEN, API_TOKEN, ScriptedGateway

ADMIN = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}
PLAN = pricing.price_texts(
    ["a memory to embed", "another one"],
    EmbeddingIdentity("openai", "text-embedding-3-small", 1536),
    batch_size=32,
)


class BudgetGateway(ScriptedGateway):
    """Plan-only runs succeed with the plan as their summary; runs whose budget is below the
    plan fail with the gate's message (pricing.over_budget); others complete."""

    def __init__(self, config):
        super().__init__(config)
        self.configs: list[dict] = []

    def submit(self, job, run_config, tags):
        self.configs.append(run_config)
        run_id = super().submit(job, run_config, tags)
        op_config = next(iter(run_config["ops"].values()))["config"]
        budget = pricing.Budget(op_config.get("max_cost_usd"), op_config.get("max_tokens"))
        if pricing.over_budget(PLAN, budget) is not None:
            self.runs_by_id[run_id] = RunInfo(run_id, job, "FAILURE", dict(tags), run_config)
        return run_id

    def outcome(self, run_id, job):
        run = self.runs_by_id[run_id]
        op_config = next(iter(run.run_config["ops"].values()))["config"]
        if run.status == "FAILURE":
            budget = pricing.Budget(op_config.get("max_cost_usd"), op_config.get("max_tokens"))
            return RunOutcome(None, [f"Failure: {pricing.over_budget(PLAN, budget)}"])
        if op_config.get("plan_only"):
            return RunOutcome({"status": "planned", **PLAN.as_dict()}, [])
        return super().outcome(run_id, job)


@pytest.fixture
def client(make_settings, tmp_path):
    config = ApiConfig(
        settings=make_settings(),
        api_token=API_TOKEN,
        admin_token=ADMIN_TOKEN,
        dagster_url="http://127.0.0.1:9",
        admin_rate_limit=RateLimit(0, 60.0),
        audit_log=tmp_path / "audit.jsonl",
        status_cache_seconds=0,
    )
    gateway = BudgetGateway(config)
    app = create_app(config, gateway)
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client, gateway
    app.state.graph.close()


@pytest.mark.parametrize("path", ["/admin/reembed", "/admin/sync", "/admin/migrate"])
@pytest.mark.parametrize("value", [-1, 1e7, "5", True, "ten"])
def test_max_cost_usd_is_validated_with_its_range(client, path, value):
    test_client, gateway = client
    response = test_client.post(path, headers=ADMIN, json={"max_cost_usd": value})
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "max_cost_usd"
    assert "0 to 1,000,000" in response.json()["message"]
    assert gateway.configs == []


def test_plan_is_answered_without_a_paid_run(client):
    test_client, gateway = client
    response = test_client.post("/admin/reembed", headers=ADMIN, json={"plan": True})
    assert response.status_code == 200, response.text  # answered, though `wait` is false
    body = response.json()
    assert body["status"] == "planned"
    assert {k: body[k] for k in ("memories", "tokens", "cost_usd", "seconds")} == {
        k: PLAN.as_dict()[k] for k in ("memories", "tokens", "cost_usd", "seconds")
    }
    (config,) = gateway.configs
    assert config["ops"][REEMBED_CONFIG_OP]["config"]["plan_only"] is True


def test_a_run_over_budget_is_a_422_with_the_estimate(client):
    test_client, gateway = client
    body = {"max_cost_usd": 0, "wait": True}
    response = test_client.post("/admin/reembed", headers=ADMIN, json=body)
    assert response.status_code == 422, response.text
    message = response.json()["message"]
    assert "refused before any provider call" in message
    assert f"{PLAN.tokens} tokens" in message and "max_cost_usd=0" in message
    assert gateway.configs[-1]["ops"][REEMBED_CONFIG_OP]["config"]["max_cost_usd"] == 0.0

    response = test_client.post("/admin/sync", headers=ADMIN, json={"max_tokens": 1, "wait": True})
    assert response.status_code == 422 and "max_tokens=1" in response.json()["message"]
    assert gateway.configs[-1]["ops"][SYNC_CONFIG_OP]["config"]["max_tokens"] == 1

    response = test_client.post("/admin/reembed", headers=ADMIN, json={"max_cost_usd": 5.5})
    assert response.status_code == 202  # within budget: queued as before
    assert gateway.configs[-1]["ops"][REEMBED_CONFIG_OP]["config"]["max_cost_usd"] == 5.5


TARGET = {"to_provider": "openai", "to_model": "text-embedding-3-large", "to_dim": 1024}


def test_migrate_plan_budget_and_target_fields(client):
    test_client, gateway = client
    response = test_client.post("/admin/migrate", headers=ADMIN, json={**TARGET, "plan": True})
    assert response.status_code == 200, response.text  # a plan is answered, never queued
    assert response.json()["status"] == "planned" and response.json()["tokens"] == PLAN.tokens
    config = gateway.configs[-1]["ops"][MIGRATE_CONFIG_OP]["config"]
    assert config["plan_only"] is True and config["action"] == "migrate"
    assert {k: config[k] for k in TARGET} == TARGET

    body = {**TARGET, "max_cost_usd": 0, "wait": True}
    response = test_client.post("/admin/migrate", headers=ADMIN, json=body)
    assert response.status_code == 422 and "refused before any provider call" in response.text

    sent = len(gateway.configs)
    for bad, field in (
        ({"to_provider": "openai", "to_model": "m"}, "to_dim"),
        ({**TARGET, "to_dim": 0}, "to_dim"),
        ({**TARGET, "action": "explode"}, "action"),
        ({**TARGET, "to_collection": "no/slash"}, "to_collection"),
    ):
        response = test_client.post("/admin/migrate", headers=ADMIN, json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert response.json()["field"] == field, response.text
    assert len(gateway.configs) == sent  # nothing launched

    response = test_client.post("/admin/migrate", headers=ADMIN, json={"action": "rollback"})
    assert response.status_code == 202
    assert gateway.configs[-1]["ops"][MIGRATE_CONFIG_OP]["config"]["action"] == "rollback"
    response = test_client.post(
        "/admin/migrate", headers={"Authorization": f"Bearer {API_TOKEN}"}, json=TARGET
    )
    assert response.status_code in (401, 403)  # the admin token is required
