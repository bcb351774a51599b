from __future__ import annotations

from pathlib import Path

import dagster as dg
from pydantic import Field

from ..stores.vectors import VectorConfig, VectorStore, connect


class QdrantResource(dg.ConfigurableResource):
    """The vector collection. With no URL, qdrant-client local mode on disk under
    ``data_dir`` (one process at a time; the client is kept open for the whole process)."""

    url: str | None = Field(None, description="Qdrant URL; unset = local mode on disk; ':memory:'")
    api_key: str | None = Field(None, description="Qdrant API key")
    collection: str = Field("memories", description="Collection name (QDRANT_COLLECTION)")
    data_dir: str = Field(description="Data directory of the local-mode store")
    timeout_seconds: int = Field(30, description="Request timeout for a Qdrant server")
    lock_timeout_seconds: float = Field(
        600.0, description="How long to wait for another process to release the local store"
    )

    def vector_config(self) -> VectorConfig:
        return VectorConfig(
            self.url, self.api_key, self.collection, Path(self.data_dir),
            self.timeout_seconds, self.lock_timeout_seconds,
        )  # fmt: skip

    def get_store(self) -> VectorStore:
        return connect(self.vector_config())
