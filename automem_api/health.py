"""What /health and /enrichment/status answer, computed from Dagster and the stores.

Both answers are reused for `status_cache_seconds` (concurrent callers share one
computation). The computations are synchronous (they run in a threadpool).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from automem_pipelines.constants import DRIFT_SYNC_JOB, SUMMARY_OPS
from automem_pipelines.domain.enrichment_status import SchedulerState, enrichment_status
from automem_pipelines.stores.graph import GraphUnavailableError

from . import __version__
from .config import ApiConfig
from .gateway import DagsterGateway, DagsterUnavailableError, LaunchError
from .runs import RunService
from .stores import GraphAccess, embedding_identity, qdrant_server_view

# Without the webserver nobody can tell the sensor is running: report it stopped.
UNKNOWN_SCHEDULER = SchedulerState(
    sensor_running=False, daemon_alive=False, queued_runs=0, inflight_ids=0, queued_ids=0
)


class TtlCache:
    """Reuse a computed answer for `ttl` seconds; concurrent callers share one computation."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._value: Any = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self, compute: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl <= 0:
            return await compute()
        if time.monotonic() < self._expires:
            return self._value
        async with self._lock:
            if time.monotonic() < self._expires:
                return self._value
            value = await compute()
            self._value, self._expires = value, time.monotonic() + self.ttl
            return value


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat() if ts else None


def sync_status(memories: int | None, vectors: int | None) -> str:
    if memories is None or vectors is None:
        return "unknown"
    if memories == vectors:
        return "synced"
    return "drift_detected" if vectors < memories else "orphaned_vectors"


class StatusService:
    def __init__(
        self, config: ApiConfig, gateway: DagsterGateway, graph: GraphAccess, runs: RunService
    ):
        self.config = config
        self.settings = config.settings
        self.gateway = gateway
        self.graph = graph
        self.runs = runs
        self.started = time.monotonic()
        self.health_cache = TtlCache(config.status_cache_seconds)
        self.status_cache = TtlCache(config.status_cache_seconds)

    def enrichment_status(self) -> dict[str, Any]:
        try:
            scheduler, dagster = self.gateway.scheduler_state(), "reachable"
        except DagsterUnavailableError:
            scheduler, dagster = UNKNOWN_SCHEDULER, "unreachable"
        settings = self.settings
        with self.graph.store() as store:
            status = enrichment_status(
                store, scheduler, settings.enrichment.max_attempts, settings.recall_excluded_types
            )
        return {**status, "dagster": dagster}

    def last_drift_sync(self) -> dict[str, Any] | None:
        try:
            run = self.gateway.latest_successful_run(DRIFT_SYNC_JOB)
            if run is None:
                return None
            outcome = self.runs.finished_outcome(run) if DRIFT_SYNC_JOB in SUMMARY_OPS else None
        except (DagsterUnavailableError, LaunchError):
            return None
        return {
            "run_id": run.run_id,
            "finished_at": iso(run.ended_at),
            "summary": outcome.summary if outcome else None,
        }

    def _vectors(self, memory_count: int | None, sync_summary: dict[str, Any]) -> dict[str, Any]:
        settings = self.settings
        if settings.qdrant.local:
            # The API never opens the embedded store: the last drift-sync run's count stands in.
            vector_count = sync_summary.get("qdrant_count")
            recorded = (sync_summary.get("embedding_identity") or {}).get("recorded")
            source = "last_drift_sync" if sync_summary else None
            return {
                "qdrant": "embedded",
                "vector_count": vector_count,
                "vector_source": "last_drift_sync" if vector_count is not None else None,
                "basis": (sync_summary.get("falkordb_count"), vector_count),
                "identity": embedding_identity(settings, recorded, source),
            }
        try:
            vector_count, recorded = qdrant_server_view(settings)
            qdrant, vector_source = "connected", "qdrant"
        except Exception:  # noqa: BLE001 - any failure means "not reachable" here
            vector_count, qdrant, vector_source, recorded = None, "disconnected", None, None
        source = "qdrant" if qdrant == "connected" else None
        return {
            "qdrant": qdrant,
            "vector_count": vector_count,
            "vector_source": vector_source,
            "basis": (memory_count, vector_count),
            "identity": embedding_identity(settings, recorded, source),
        }

    def health(self) -> dict[str, Any]:
        dagster_ok = self.gateway.ping()
        try:
            memory_count: int | None = self.graph.count_memories()
            falkordb = "connected"
        except GraphUnavailableError:
            memory_count, falkordb = None, "disconnected"
        last_sync = self.last_drift_sync() if dagster_ok else None
        vectors = self._vectors(memory_count, (last_sync or {}).get("summary") or {})
        status_of_sync = sync_status(*vectors["basis"])
        identity = vectors["identity"]
        degraded = (
            falkordb != "connected"
            or vectors["qdrant"] == "disconnected"
            or not dagster_ok
            or status_of_sync == "drift_detected"
            or identity["match"] is False
        )
        return {
            "status": "degraded" if degraded else "healthy",
            "falkordb": falkordb,
            "qdrant": vectors["qdrant"],
            "memory_count": memory_count,
            "vector_count": vectors["vector_count"],
            "sync_status": status_of_sync,
            "counts_source": {
                "memory_count": "falkordb" if memory_count is not None else None,
                "vector_count": vectors["vector_source"],
            },
            "embedding_identity": identity,
            "dagster": "reachable" if dagster_ok else "unreachable",
            "last_drift_sync": last_sync,
            "api": {
                "version": __version__,
                "uptime_seconds": round(time.monotonic() - self.started, 1),
            },
            "timestamp": datetime.now(UTC).isoformat(),
            "graph": self.settings.falkordb.graph,
            "collection": self.settings.qdrant.collection,
        }
