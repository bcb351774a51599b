"""Drift as pass/fail checks on the vector collection: what each check counts, how severe a
failure is, and the state a sync leaves behind.

Plain data (no Dagster): the code location declares one asset check per ``CHECKS`` entry on
the Qdrant collection asset, and the drift-sync ops turn ``outcomes(...)`` into check results.

A check passes when its count is zero (``stale_vectors`` also fails while the collection
belongs to another embedding: dimension or identity mismatch). Which state is reported:

* ``outcomes(report)``: the state detection found (a dry run, or a sync before its repairs);
* ``outcomes(report, results)``: the state the store is in when a repairing sync ends, i.e.
  what detection found less what the repairs resolved (repaired, or gone since detection).
  Failed repairs, orphans left alone (no ``recover_orphans``) and duplicate ids (never merged)
  still count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .findings import DriftReport
from .repair import RepairResult

ERROR = "error"
WARN = "warn"


@dataclass(frozen=True)
class DriftCheck:
    name: str  # the asset check's name
    kind: str  # the DriftReport kind it counts
    severity: str  # ERROR or WARN
    description: str


CHECKS: tuple[DriftCheck, ...] = (
    DriftCheck(
        "missing_vectors",
        "missing",
        ERROR,
        "Every memory with content has a point in the collection (recall cannot find the "
        "others). Repaired by a drift sync.",
    ),
    DriftCheck(
        "stale_vectors",
        "stale_vector",
        ERROR,
        "Every point's vector is current: made by the configured embedding for the memory's "
        "present content. Repaired by a drift sync (or a re-embed).",
    ),
    DriftCheck(
        "payload_drift",
        "payload_drift",
        WARN,
        "Every point's payload agrees with its memory's fields that AutoMem reads back. "
        "Repaired by a drift sync (payload rewrite, no embedding).",
    ),
    DriftCheck(
        "orphaned_points",
        "orphaned",
        WARN,
        "Every point has its memory in the graph. Orphans are never deleted; a drift sync with "
        "recover_orphans restores them into the graph.",
    ),
    DriftCheck(
        "duplicate_ids",
        "duplicate_id",
        WARN,
        "No memory id is shared by several graph nodes (never merged automatically: needs a "
        "person).",
    ),
)
CHECK_NAMES = tuple(c.name for c in CHECKS)


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    severity: str
    count: int
    metadata: dict[str, Any]


def remaining(report: DriftReport, results: Iterable[RepairResult] | None = None) -> dict[str, int]:
    """Count per kind: found by detection, less what the repairs resolved (when given)."""
    counts = {c.kind: len(getattr(report, c.kind)) for c in CHECKS}
    for r in results or ():
        if r.kind in counts:
            counts[r.kind] = max(0, counts[r.kind] - r.repaired - r.skipped)
    return counts


def outcomes(
    report: DriftReport, results: Iterable[RepairResult] | None = None
) -> list[CheckOutcome]:
    """One outcome per check. ``results`` given: the state after those repairs."""
    results = list(results) if results is not None else None
    counts = remaining(report, results)
    state = "after_repair" if results is not None else "detected"

    def repaired(kind: str) -> int:
        return sum(r.repaired for r in results or () if r.kind == kind)

    common = {  # store sizes in the same state: points written, memories restored
        "state": state,
        "falkordb_count": report.falkordb_count + repaired("orphaned"),
        "qdrant_count": report.qdrant_count + repaired("missing"),
    }
    out = []
    for c in CHECKS:
        passed = counts[c.kind] == 0
        meta: dict[str, Any] = {"count": counts[c.kind], "detected": len(getattr(report, c.kind))}
        meta.update(common)
        if c.kind == "stale_vector":
            meta["dimension_mismatch"] = report.dimension_mismatch
            meta["identity_mismatch"] = report.identity_mismatch
            meta["embedding_identity"] = {
                "configured": report.identity_configured,
                "recorded": report.identity_recorded,
            }
            # a collection of another embedding is stale as a whole (and refused repairs)
            passed = passed and not (report.dimension_mismatch or report.identity_mismatch)
        out.append(CheckOutcome(c.name, passed, c.severity, counts[c.kind], meta))
    return out


def drift_plot_metadata(report: DriftReport) -> dict[str, int]:
    """The drift counts an observation of the collection carries, under keys of their own
    (``drift_<check>``), so the asset's plots of drift show nothing else."""
    return {f"drift_{c.name}": len(getattr(report, c.kind)) for c in CHECKS}
