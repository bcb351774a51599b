"""What a batch leaves behind: per-memory failures recorded on the nodes (attempts, backoff,
marked failed), and the run's summary over all batches."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from ...stores.graph import GraphStore
from .model import ATTEMPTS, FAILED, BatchResult, EnrichmentOptions, is_true
from .writes import write_rows

log = logging.getLogger(__name__)

IDS_SHOWN = 10

FAILURE_QUERY = """
UNWIND $rows AS row
MATCH (m:Memory {id: row.id})
SET m.enrichment_attempts = row.attempts, m.enrichment_error = row.error,
    m.enrichment_error_at = row.error_at, m.enrichment_retry_at = row.retry_at,
    m.enrichment_failed = row.failed, m.enrichment_retry_forced = row.forced
"""


def record_failures(
    graph: GraphStore,
    failures: dict[str, str],
    props: dict[str, dict[str, Any]],
    forced: bool,
    options: EnrichmentOptions,
    now: datetime,
    result: BatchResult,
) -> None:
    """Write each failed memory's attempt count, error and backoff (marked failed after
    ``max_attempts``). A memory whose failure cannot be written is put in
    ``result.unrecorded`` with the write's error, and logged: its attempts did not move, so
    the sensor will offer it again without backoff."""
    if not failures:
        return
    now_iso = now.isoformat()
    rows = []
    for mid, error in failures.items():
        node = props.get(mid, {})
        previous = node.get(ATTEMPTS)
        previous = previous if isinstance(previous, int) else 0
        if forced and is_true(node.get(FAILED)):
            previous = 0  # a forced reprocess of a failed memory starts a fresh round
        attempts = previous + 1
        exhausted = attempts >= options.max_attempts
        backoff = options.failure_backoff_seconds * (2 ** (attempts - 1))
        rows.append(
            {
                "id": mid,
                "attempts": attempts,
                "error": error,
                "error_at": now_iso,
                "retry_at": None if exhausted else now.timestamp() + backoff,
                "failed": exhausted,
                "forced": forced,
            }
        )
    unrecorded: dict[str, str] = {}
    written = {
        r["id"] for r in write_rows(graph, FAILURE_QUERY, rows, {}, lambda r: r["id"], unrecorded)
    }
    result.exhausted.extend(r["id"] for r in rows if r["failed"] and r["id"] in written)
    result.unrecorded.update(unrecorded)
    if unrecorded:
        mid, why = next(iter(unrecorded.items()))
        log.warning(
            "batch %d: the failure of %d memories could not be recorded (attempts and backoff "
            "unchanged), e.g. %s: %s",
            result.index,
            len(unrecorded),
            mid,
            why,
        )
    result.last_error = list(failures.values())[-1]
    result.last_error_at = now_iso


def summarize_batches(
    results: Sequence[BatchResult], expected: int, forced: bool, seconds: float | None = None
) -> dict[str, Any]:
    """The run's summary; checks that enriched + skipped + failed = the ids requested."""
    enriched = sum(len(r.enriched) for r in results)
    skipped = sum(r.skipped for r in results)
    failed = sum(len(r.failed) for r in results)
    if enriched + skipped + failed != expected:
        raise RuntimeError(
            f"enrichment counts do not add up: enriched {enriched} + skipped {skipped} + "
            f"failed {failed} != requested {expected} ({len(results)} batches collected)"
        )
    ordered = sorted(results, key=lambda r: r.index)
    failed_ids = [m for r in ordered for m in r.failed]
    unrecorded = {m: e for r in ordered for m, e in r.unrecorded.items()}
    successes = [r for r in ordered if r.last_success_id]
    errors = [r for r in ordered if r.last_error]
    summary: dict[str, Any] = {
        "status": "complete",
        "forced": forced,
        "total": expected,
        "enriched": enriched,
        "skipped": skipped,
        "failed": failed,
        "skipped_processed": sum(len(r.skipped_processed) for r in results),
        "skipped_failed": sum(len(r.skipped_failed) for r in results),
        "missing_ids": [m for r in ordered for m in r.missing],
        "skipped_invalid_id": sum(len(r.invalid) for r in results),
        "invalid_ids": [m for r in ordered for m in r.invalid][:IDS_SHOWN],
        "failed_ids": failed_ids[:IDS_SHOWN],
        "exhausted_ids": [m for r in ordered for m in r.exhausted][:IDS_SHOWN],
        # failed, and the failure could not be written to the node (a subset of failed)
        "unrecorded_failures": len(unrecorded),
        "unrecorded_ids": list(unrecorded)[:IDS_SHOWN],
        "last_unrecorded_error": list(unrecorded.values())[-1] if unrecorded else None,
        "no_vector": sum(len(r.no_vector) for r in results),
        "temporal_links": sum(r.temporal_links for r in results),
        "semantic_links": sum(r.semantic_links for r in results),
        "pattern_links": sum(r.pattern_links for r in results),
        "nlp_model": ordered[0].model if ordered else "",
        "nlp_rule_only": any(r.rule_only for r in results),
        "nlp_seconds": round(sum(r.nlp_seconds for r in results), 3),
        "graph_read_seconds": round(sum(r.graph_read_seconds for r in results), 3),
        "graph_write_seconds": round(sum(r.graph_write_seconds for r in results), 3),
        "neighbour_seconds": round(sum(r.neighbour_seconds for r in results), 3),
        "payload_seconds": round(sum(r.payload_seconds for r in results), 3),
        "last_success_id": successes[-1].last_success_id if successes else None,
        "last_success_at": successes[-1].last_success_at if successes else None,
        "last_error": errors[-1].last_error if errors else None,
        "last_error_at": errors[-1].last_error_at if errors else None,
    }
    if failed > IDS_SHOWN:
        summary["failed_ids_truncated"] = True
    if seconds is not None:
        summary["seconds"] = round(seconds, 3)
    return summary
