"""Which memories wait for enrichment: what the sensor offers, the status counts, and the ids
never enriched because several nodes share them."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from ...stores.graph import GraphStore
from ..memory import id_problem
from .model import ATTEMPTS, FAILED, RETRY_AT, RETRY_FORCED

# Nodes whose id cannot be a point id are never awaited: the string-of-36 test keeps nodes
# without id, integer ids and most junk out in the query (FalkorDB has no regex); the few
# left are dropped by memory.id_problem.
AWAITING_WHERE = (
    "m.id IS NOT NULL AND toString(m.id) = m.id AND size(m.id) = 36 "
    f"AND coalesce(m.{FAILED}, false) = false "
    f"AND (coalesce(m.processed, false) = false OR coalesce(m.{RETRY_FORCED}, false) = true) "
    "AND NOT coalesce(m.type, '') IN $excluded"
)


@dataclass(frozen=True)
class Candidate:
    id: str
    attempts: int
    forced: bool  # a retry of a forced attempt
    enriched_at: str = ""  # last enrichment, if any (a memory reset to unprocessed differs)


def find_candidates(
    graph: GraphStore,
    limit: int,
    busy: Sequence[str] = (),
    excluded_types: Sequence[str] = (),
    now: float | None = None,
) -> list[Candidate]:
    """Up to ``limit`` memories that wait for enrichment (not processed, not failed, backoff
    elapsed), leaving out ``busy`` ids (those in queued or running runs)."""
    rows = graph.query(
        f"MATCH (m:Memory) WHERE {AWAITING_WHERE} "
        f"AND coalesce(m.{RETRY_AT}, 0) <= $now AND NOT m.id IN $busy "
        f"RETURN m.id, coalesce(m.{ATTEMPTS}, 0), coalesce(m.{RETRY_FORCED}, false), "
        "coalesce(toString(m.enriched_at), '') LIMIT $limit",
        {
            "excluded": list(excluded_types),
            "busy": list(busy),
            "limit": int(limit),
            "now": time.time() if now is None else now,
        },
    )
    return [
        Candidate(r[0], int(r[1]), bool(r[2]), r[3] or "") for r in rows if id_problem(r[0]) is None
    ]


def count_awaiting(graph: GraphStore, excluded_types: Sequence[str] = ()) -> int:
    rows = graph.query(
        f"MATCH (m:Memory) WHERE {AWAITING_WHERE} RETURN count(m)",
        {"excluded": list(excluded_types)},
    )
    return int(rows[0][0]) if rows else 0


def shared_ids(graph: GraphStore, ids: Sequence[str]) -> set[str]:
    """The ids among these that several nodes share (never enriched: which node is meant?)."""
    if not ids:
        return set()
    rows = graph.query(
        "MATCH (m:Memory) WHERE m.id IN $ids WITH m.id AS id, count(m) AS n WHERE n > 1 RETURN id",
        {"ids": list(ids)},
    )
    return {r[0] for r in rows}
