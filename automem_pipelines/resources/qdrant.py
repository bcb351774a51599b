from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import dagster as dg
from pydantic import Field, PrivateAttr

from ..stores.vectors import VectorConfig, VectorStore, open_store


class QdrantResource(dg.ConfigurableResource):
    """The vector collection. With no URL, qdrant-client local mode on disk under
    ``data_dir``, which one process at a time may open.

    In a run the resource owns the store: opened at the first ``get_store()`` (inside a step,
    so an unavailable store is retried like any other store outage) and closed when the run's
    resources are torn down. Outside a run, ``with resource.open_store() as store:``."""

    url: str | None = Field(
        description="Qdrant URL (QDRANT_URL); unset = local mode on disk; ':memory:'"
    )
    api_key: str | None = Field(None, description="Qdrant API key (QDRANT_API_KEY)")
    collection: str = Field(description="Collection name (QDRANT_COLLECTION)")
    data_dir: str = Field(description="Data directory of the local-mode store (AUTOMEM_DATA_DIR)")
    timeout_seconds: int = Field(
        description="Request timeout for a Qdrant server (QDRANT_TIMEOUT_SECONDS)"
    )
    lock_timeout_seconds: float = Field(
        description="How long to wait for another process to release the local store "
        "(QDRANT_LOCAL_LOCK_TIMEOUT_SECONDS)"
    )

    _opened: ExitStack | None = PrivateAttr(None)
    _store: VectorStore | None = PrivateAttr(None)

    def vector_config(self) -> VectorConfig:
        return VectorConfig(
            self.url,
            self.api_key,
            self.collection,
            Path(self.data_dir),
            self.timeout_seconds,
            self.lock_timeout_seconds,
        )

    @contextmanager
    def open_store(self) -> Iterator[VectorStore]:
        with open_store(self.vector_config()) as store:
            yield store

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._opened = ExitStack()

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._opened is not None:
            self._opened.close()
        self._opened = self._store = None

    def get_store(self) -> VectorStore:
        """The run's store (opened on first use, closed with the run's resources)."""
        if self._opened is None:
            raise RuntimeError(
                "QdrantResource.get_store() is for steps of a run, which own the store; "
                "elsewhere use `with resource.open_store() as store:`"
            )
        if self._store is None:
            self._store = self._opened.enter_context(self.open_store())
        return self._store
