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

from automem_pipelines.constants import DRIFT_CHECKS, VECTOR_ASSET_KEY
from automem_pipelines.domain.enrichment_status import SchedulerState, enrichment_status
from automem_pipelines.stores.graph import GraphUnavailableError

from . import __version__
from .config import ApiConfig
from .gateway import CheckResult, DagsterGateway, DagsterUnavailableError, LaunchError
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


CHECKS_SOURCE = "drift_checks"


def check_view(result: CheckResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        "passed": result.passed,
        "severity": result.severity.lower(),
        "count": result.metadata.get("count"),
        "state": result.metadata.get("state"),  # detected, or after_repair
        "run_id": result.run_id,
        "evaluated_at": iso(result.evaluated_at),
    }


def store_view(results: dict[str, CheckResult | None]) -> dict[str, Any]:
    """Store sizes and the collection's recorded identity as the latest drift checks saw
    them (what stands in for the embedded store, which the API never opens)."""
    counts = results.get("missing_vectors")
    stale = results.get("stale_vectors")
    view: dict[str, Any] = {}
    if counts is not None:
        view["falkordb_count"] = counts.metadata.get("falkordb_count")
        view["qdrant_count"] = counts.metadata.get("qdrant_count")
    if stale is not None:
        view["embedding_identity"] = stale.metadata.get("embedding_identity") or {}
    return view


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

    def drift_checks(self) -> dict[str, CheckResult | None]:
        """The latest result of each drift check on the collection asset ({} when Dagster
        cannot tell)."""
        try:
            return self.gateway.latest_check_results(VECTOR_ASSET_KEY, DRIFT_CHECKS)
        except (DagsterUnavailableError, LaunchError):
            return {}

    def _vectors(self, memory_count: int | None, seen: dict[str, Any]) -> dict[str, Any]:
        settings = self.settings
        if settings.qdrant.local:
            # The API never opens the embedded store: the latest drift checks' count stands in.
            vector_count = seen.get("qdrant_count")
            recorded = (seen.get("embedding_identity") or {}).get("recorded")
            source = CHECKS_SOURCE if seen else None
            return {
                "qdrant": "embedded",
                "vector_count": vector_count,
                "vector_source": CHECKS_SOURCE if vector_count is not None else None,
                "basis": (seen.get("falkordb_count"), vector_count),
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
        checks = self.drift_checks() if dagster_ok else {}
        vectors = self._vectors(memory_count, store_view(checks))
        status_of_sync = sync_status(*vectors["basis"])
        identity = vectors["identity"]
        # a failed ERROR check: missing or stale vectors, recall misses memories
        failed_error = any(r and not r.passed and r.severity == "ERROR" for r in checks.values())
        degraded = (
            falkordb != "connected"
            or vectors["qdrant"] == "disconnected"
            or not dagster_ok
            or status_of_sync == "drift_detected"
            or identity["match"] is False
            or failed_error
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
            "drift_checks": {name: check_view(r) for name, r in checks.items()} or None,
            "api": {
                "version": __version__,
                "uptime_seconds": round(time.monotonic() - self.started, 1),
            },
            "timestamp": datetime.now(UTC).isoformat(),
            "graph": self.settings.falkordb.graph,
            "collection": self.settings.qdrant.collection,
        }
