"""What drift detection reports: the kinds of drift, and ``DriftReport`` with its counts,
samples and the store-level findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ...stores.vectors import dimension_message

KINDS = ("missing", "orphaned", "stale_vector", "payload_drift", "duplicate_id")
SAMPLE_SIZE = 10


@dataclass
class DriftReport:
    """What detection found. Id lists hold graph ids (missing, stale, payload drift) or point
    ids (orphaned); they travel to the repair steps."""

    falkordb_count: int = 0
    qdrant_count: int = 0
    missing: list[str] = field(default_factory=list)
    orphaned: list[str] = field(default_factory=list)
    stale_vector: list[str] = field(default_factory=list)
    payload_drift: list[str] = field(default_factory=list)
    duplicate_id: list[str] = field(default_factory=list)  # ids several nodes share: never merged
    collection_exists: bool = True
    collection_dim: int | None = None
    vector_size: int = 0
    excluded_types: list[str] = field(default_factory=list)
    excluded_falkordb: int = 0
    excluded_qdrant: int = 0
    no_content: list[str] = field(default_factory=list)  # memories that cannot have a vector
    invalid_ids: list[str] = field(default_factory=list)  # graph ids that cannot be point ids
    identity_configured: dict[str, Any] = field(default_factory=dict)
    identity_recorded: dict[str, Any] | None = None  # the collection's record (identity.py)
    identity_mismatch: bool = False  # the record names another embedding (store-level)
    graph_seconds: float = 0.0
    vector_seconds: float = 0.0
    compare_seconds: float = 0.0

    @property
    def dimension_mismatch(self) -> bool:
        return self.collection_dim is not None and self.collection_dim != self.vector_size

    def dimension_message(self, collection: str) -> str:
        return dimension_message(collection, self.collection_dim or 0, self.vector_size)

    def counts(self) -> dict[str, int]:
        return {f"{kind}_count": len(getattr(self, kind)) for kind in KINDS}

    def drift_total(self) -> int:
        return sum(len(getattr(self, kind)) for kind in KINDS)

    def findings(self) -> dict[str, Any]:
        """Counts and samples of every kind, plus the store-level and informational findings."""
        out: dict[str, Any] = {
            "falkordb_count": self.falkordb_count,
            "qdrant_count": self.qdrant_count,
        }
        out.update(self.counts())
        for kind in KINDS:
            out[f"{kind}_sample"] = sorted(getattr(self, kind))[:SAMPLE_SIZE]
        out["dimension_mismatch"] = self.dimension_mismatch
        out["identity_mismatch"] = self.identity_mismatch
        out["embedding_identity"] = {
            "configured": self.identity_configured,
            "recorded": self.identity_recorded,
        }
        out["collection_dim"] = self.collection_dim
        out["vector_size"] = self.vector_size
        out["excluded_types"] = list(self.excluded_types)
        out["excluded_falkordb_count"] = self.excluded_falkordb
        out["excluded_qdrant_count"] = self.excluded_qdrant
        out["no_content_count"] = len(self.no_content)
        out["invalid_id_count"] = len(self.invalid_ids)
        if self.invalid_ids:
            out["invalid_id_sample"] = sorted(self.invalid_ids)[:SAMPLE_SIZE]
        out["detect_seconds"] = {
            "graph_read": round(self.graph_seconds, 3),
            "vector_scroll": round(self.vector_seconds, 3),
            "comparison": round(self.compare_seconds, 3),
        }
        return out
