"""The drift sync's summary: the reference's response shapes, with every kind's counts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from .findings import KINDS, DriftReport
from .repair import RepairResult

FAILED_IDS_SHOWN = 10


def needs_repair(report: DriftReport, recover: bool) -> bool:
    kinds = ("missing", "stale_vector", "payload_drift") + (("orphaned",) if recover else ())
    return any(getattr(report, k) for k in kinds)


def summarize(
    report: DriftReport,
    results: Sequence[RepairResult],
    dry_run: bool,
    recover: bool,
    batch_size: int,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The reference's response shapes, extended with every kind's counts and samples."""
    findings = report.findings()
    if dry_run:
        summary = {"status": "dry_run", **findings}
    elif not needs_repair(report, recover):
        summary = {"status": "already_synced", **findings, "synced": 0}
    else:
        for r in results:
            r.check()
        by_kind = {r.kind: r for r in results}
        failed_ids = [mid for r in results for mid in r.failed]
        synced = sum(r.repaired for r in results)
        missing_synced = by_kind["missing"].repaired if "missing" in by_kind else 0
        recovered = by_kind["orphaned"].repaired if "orphaned" in by_kind else 0
        summary = {
            "status": "complete",
            **findings,
            "falkordb_count": report.falkordb_count + recovered,
            "qdrant_count": report.qdrant_count + missing_synced,
            "synced": synced,
            "failed": len(failed_ids),
            "skipped": sum(r.skipped for r in results),
            "failed_ids": failed_ids[:FAILED_IDS_SHOWN],
            "batch_size": batch_size,
        }
        for kind in KINDS:
            r = by_kind.get(kind)
            summary[f"{kind}_synced"] = r.repaired if r else 0
            summary[f"{kind}_failed"] = len(r.failed) if r else 0
        summary["orphans_recovered"] = recovered
        tokens = [r.tokens for r in results if r.tokens is not None]
        summary["provider_requests"] = sum(r.requests for r in results)
        summary["tokens"] = sum(tokens) if tokens else None
        if len(failed_ids) > FAILED_IDS_SHOWN:
            summary["failed_ids_truncated"] = True
        errors = [e for r in results for e in r.failed.values()]
        if errors:
            summary["last_error"] = errors[-1][:500]
    summary["recover_orphans"] = recover
    if seconds is not None:
        summary["seconds"] = round(seconds, 3)
    return summary
