"""What ``/enrichment/status`` returns, computed from the live system.

Where each field comes from:

* ``status``, ``queue_size``, ``inflight``: the scheduler (Dagster), handed in as a
  ``SchedulerState`` (built from the instance in process, or from GraphQL by the API).
* ``pending``: the graph: memories waiting for enrichment (not processed, not marked failed,
  type not excluded), so it is right whichever process asks, and after any restart.
* ``stats``: one ``:EnrichmentStats {id: 'enrichment'}`` node in the graph, updated once per
  run by the job's summarizing step with atomic increments (FalkorDB runs each query
  atomically), guarded by the run id so a retried step never counts twice. It lives next to
  the data it describes, survives restarts, is shared by every process, and costs one
  point lookup to read (summing Dagster run records would grow with history).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..stores.graph import GraphStore
from .enrichment.selection import count_awaiting
from .memory import DEFAULT_RECALL_EXCLUDED_TYPES

STATS_LABEL = "EnrichmentStats"
STATS_ID = "enrichment"
RECENT_RUNS_KEPT = 200
STATS_FIELDS = (
    "processed_total",
    "successes",
    "failures",
    "last_success_id",
    "last_success_at",
    "last_error",
    "last_error_at",
)


@dataclass(frozen=True)
class SchedulerState:
    sensor_running: bool  # the enrichment sensor is switched on
    daemon_alive: bool  # the dagster-daemon (which ticks sensors) sent a recent heartbeat
    queued_runs: int  # enrichment runs waiting to start (queued / not started / starting)
    inflight_ids: int  # memory ids in enrichment runs that have started
    queued_ids: int = 0  # memory ids in the queued runs


RECORD_QUERY = f"""
MERGE (s:{STATS_LABEL} {{id: $sid}})
ON CREATE SET s.processed_total = 0, s.successes = 0, s.failures = 0, s.recent_runs = []
WITH s
WHERE NOT $run_id IN coalesce(s.recent_runs, [])
SET s.processed_total = coalesce(s.processed_total, 0) + $successes + $failures,
    s.successes = coalesce(s.successes, 0) + $successes,
    s.failures = coalesce(s.failures, 0) + $failures,
    s.last_success_id = CASE WHEN $last_success_id IS NULL THEN s.last_success_id
                             ELSE $last_success_id END,
    s.last_success_at = CASE WHEN $last_success_at IS NULL THEN s.last_success_at
                             ELSE $last_success_at END,
    s.last_error = CASE WHEN $last_error IS NULL THEN s.last_error ELSE $last_error END,
    s.last_error_at = CASE WHEN $last_error_at IS NULL THEN s.last_error_at
                           ELSE $last_error_at END,
    s.nlp_model = $nlp_model,
    s.nlp_rule_only = $nlp_rule_only,
    s.recent_runs = ([$run_id] + coalesce(s.recent_runs, []))[0..{RECENT_RUNS_KEPT}]
RETURN s.processed_total
"""


def record_run(graph: GraphStore, run_id: str, summary: dict[str, Any]) -> bool:
    """Add one run's outcome to the lifetime stats. AutoMem counts a skipped memory as a
    success; so do we. Returns False when this run was already counted."""
    rows = graph.query(
        RECORD_QUERY,
        {
            "sid": STATS_ID,
            "run_id": run_id,
            "successes": int(summary["enriched"]) + int(summary["skipped"]),
            "failures": int(summary["failed"]),
            "last_success_id": summary.get("last_success_id"),
            "last_success_at": summary.get("last_success_at"),
            "last_error": summary.get("last_error"),
            "last_error_at": summary.get("last_error_at"),
            "nlp_model": summary.get("nlp_model") or None,
            "nlp_rule_only": bool(summary.get("nlp_rule_only")),
        },
    )
    return bool(rows)


def read_stats(graph: GraphStore) -> dict[str, Any]:
    rows = graph.query(
        f"MATCH (s:{STATS_LABEL} {{id: $sid}}) RETURN properties(s)", {"sid": STATS_ID}
    )
    props = dict(rows[0][0]) if rows else {}
    return props


def enrichment_status(
    graph: GraphStore,
    scheduler: SchedulerState,
    max_attempts: int,
    excluded_types: Sequence[str] = DEFAULT_RECALL_EXCLUDED_TYPES,
) -> dict[str, Any]:
    """The documented ``/enrichment/status`` fields, plus ``nlp`` (which entity model the
    last run used; ``rule_only`` true means no spaCy model could be loaded)."""
    props = read_stats(graph)
    stats = {
        "processed_total": int(props.get("processed_total") or 0),
        "successes": int(props.get("successes") or 0),
        "failures": int(props.get("failures") or 0),
        "last_success_id": props.get("last_success_id"),
        "last_success_at": props.get("last_success_at"),
        "last_error": props.get("last_error"),
        "last_error_at": props.get("last_error_at"),
    }
    return {
        "status": "running" if scheduler.sensor_running and scheduler.daemon_alive else "stopped",
        "queue_size": int(scheduler.queued_runs),
        "pending": count_awaiting(graph, excluded_types),
        "inflight": int(scheduler.inflight_ids),
        "max_attempts": int(max_attempts),
        "stats": stats,
        "nlp": {
            "model": props.get("nlp_model"),
            "rule_only": bool(props.get("nlp_rule_only", False)),
        },
    }
