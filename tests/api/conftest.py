from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from automem_api.app import create_app
from automem_api.config import ApiConfig, RateLimit
from tests.support.api import ADMIN_TOKEN, API_TOKEN, RecordingGateway
from tests.support.dagster_stack import free_port


@pytest.fixture
def make_client(
    make_settings, tmp_path: Path
) -> Iterator[Callable[..., tuple[TestClient, RecordingGateway]]]:
    """An app whose gateway points at a loopback port where nothing listens (Dagster down):
    anything that passes auth and validation ends in 503, and every submit is recorded."""
    clients: list[TestClient] = []

    def make(
        api_token: str | None = API_TOKEN,
        admin_token: str | None = ADMIN_TOKEN,
        rate: RateLimit = RateLimit(0, 60.0),  # noqa: B008 - frozen value
        settings_env: dict[str, str] | None = None,
        **overrides,
    ) -> tuple[TestClient, RecordingGateway]:
        config = ApiConfig(
            settings=make_settings(**(settings_env or {})),
            api_token=api_token,
            admin_token=admin_token,
            dagster_url=f"http://127.0.0.1:{free_port()}",
            admin_rate_limit=rate,
            audit_log=tmp_path / "audit.jsonl",
            status_cache_seconds=0,
            **overrides,
        )
        launcher = RecordingGateway(config)
        client = TestClient(create_app(config, launcher), raise_server_exceptions=False)
        clients.append(client)
        return client, launcher

    yield make
    for client in clients:
        client.app.state.graph.close()
        client.close()
