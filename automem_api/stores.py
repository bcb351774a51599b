"""The API's read-only view of the stores, for /health and /enrichment/status.

* FalkorDB is a real server (embedded or not), so the API queries it directly; it never
  *starts* the embedded server: if nobody runs it, FalkorDB is reported disconnected.
* Qdrant is opened only when QDRANT_URL names a server. The embedded local-mode store allows
  one process, and Dagster runs hold it, so the API never opens it (its vector count comes
  from the last drift-sync summary instead, see app.py).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis

from automem_pipelines.settings import Settings
from automem_pipelines.stores import falkordb_server
from automem_pipelines.stores.graph import GraphConfig, GraphStore, GraphUnavailableError, connect

QDRANT_HEALTH_TIMEOUT = 5


class GraphAccess:
    """One lazily opened connection, shared by the request threads under a lock."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._store: GraphStore | None = None
        self._lock = threading.Lock()

    @contextmanager
    def store(self) -> Iterator[GraphStore]:
        with self._lock:
            if self._store is None:
                if self.settings.falkordb.embedded and not falkordb_server.is_running(
                    self.settings.data_dir
                ):
                    raise GraphUnavailableError("the embedded FalkorDB server is not running")
                self._store = connect(GraphConfig.from_settings(self.settings))
            try:
                yield self._store
            except (GraphUnavailableError, redis.RedisError, OSError) as exc:
                self._store.close()
                self._store = None
                if isinstance(exc, GraphUnavailableError):
                    raise
                raise GraphUnavailableError(f"FalkorDB query failed: {exc}") from exc

    def count_memories(self) -> int:
        with self.store() as graph:
            return graph.count_memories(self.settings.recall_excluded_types)

    def close(self) -> None:
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None


def qdrant_server_view(settings: Settings) -> tuple[int, dict[str, Any] | None]:
    """Vectors in the collection (excluded types left out, as AutoMem counts) and the
    collection's embedding identity record (automem_pipelines.domain.identity), if any.
    Server only."""
    if settings.qdrant.local:
        raise RuntimeError("the embedded Qdrant store is never opened by the API")
    from automem_pipelines.domain.identity import read_record
    from automem_pipelines.stores.vectors import VectorConfig, open_store

    config = VectorConfig.from_settings(settings, timeout_seconds=QDRANT_HEALTH_TIMEOUT)
    with open_store(config) as store:
        if store.collection_dim() is None:
            return 0, None
        record = read_record(store)
        return store.count(settings.recall_excluded_types), record.as_dict() if record else None


def embedding_identity(
    settings: Settings, recorded: dict[str, Any] | None, source: str | None
) -> dict[str, Any]:
    """What /health says of the collection's embedding: configured, recorded, and whether
    they agree (None when nothing was recorded yet)."""
    configured = {
        "provider": settings.embedding.provider,
        "model": settings.embedding.model,
        "dim": settings.embedding.vector_size,
    }
    match = None
    if recorded:
        match = (
            all(recorded.get(k) == v for k, v in configured.items())
            and recorded.get("status") == "verified"
        )
    return {"configured": configured, "recorded": recorded, "match": match, "source": source}
