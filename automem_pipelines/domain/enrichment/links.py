"""The edges enrichment writes (PRECEDED_BY, SIMILAR_TO, EXEMPLIFIES and the :Pattern nodes),
and the late semantic step for memories that were enriched before they had a vector."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from ...stores.graph import GraphStore
from ...stores.vectors import VectorStore
from ..memory import SIMILAR_PENDING, dump_metadata, mirror_of, parse_metadata
from ..vector_state import EmbeddingIdentity
from .lookups import find_neighbours
from .model import BatchResult, EnrichmentOptions, Work
from .writes import write_rows

PRECEDED_BY_QUERY = """
UNWIND $rows AS row
MATCH (a:Memory {id: row.a}), (b:Memory {id: row.b})
MERGE (a)-[r:PRECEDED_BY]->(b)
ON CREATE SET r.count = 1
SET r.updated_at = $now, r.count = coalesce(r.count, 1)
"""

SIMILAR_TO_QUERY = """
UNWIND $rows AS row
MATCH (a:Memory {id: row.a}), (b:Memory {id: row.b})
MERGE (a)-[r1:SIMILAR_TO]->(b)
MERGE (b)-[r2:SIMILAR_TO]->(a)
SET r1.score = row.score, r2.score = row.score, r1.updated_at = $now, r2.updated_at = $now
"""

PATTERN_QUERY = """
UNWIND $rows AS row
MERGE (p:Pattern {type: row.type})
ON CREATE SET p.id = row.pattern_id, p.content = row.content, p.created_at = $now,
              p.observations = 0, p.confidence = 0.30
WITH p, row
OPTIONAL MATCH (m:Memory)-[e:EXEMPLIFIES]->(p) WHERE m.id IN row.ids
WITH p, row, size(row.ids) - count(e) AS fresh
SET p.observations = p.observations + fresh,
    p.confidence = CASE WHEN p.confidence + 0.05 * fresh > 0.95 THEN 0.95
                        ELSE p.confidence + 0.05 * fresh END,
    p.key_terms = row.key_terms,
    p.updated_at = $now
"""

EXEMPLIFIES_QUERY = """
UNWIND $rows AS row
MATCH (m:Memory {id: row.id}), (p:Pattern {type: row.type})
MERGE (m)-[r:EXEMPLIFIES]->(p)
SET r.confidence = row.confidence, r.updated_at = $now
"""

LINK_UPDATE_QUERY = (
    """
UNWIND $rows AS row
MATCH (m:Memory {id: row.id})
SET m.metadata = row.metadata, m."""
    + SIMILAR_PENDING
    + """ = NULL
"""
)


def pattern_node_id(mtype: str) -> str:
    return f"pattern-{mtype}-{hashlib.sha1(mtype.encode()).hexdigest()[:8]}"


def write_edges(
    graph: GraphStore, work: list[Work], now_iso: str, result: BatchResult, failures: dict[str, str]
) -> None:
    params = {"now": now_iso}
    temporal = [{"a": w.id, "b": o} for w in work for o in w.temporal]
    result.temporal_links += len(
        write_rows(graph, PRECEDED_BY_QUERY, temporal, params, lambda r: r["a"], failures)
    )
    # One row per pair: both memories of a pair may be in the batch, and their two searches
    # can differ in the last float digits; the pair's score is then the first one found.
    pairs: dict[frozenset[str], dict[str, Any]] = {}
    for w in sorted(work, key=lambda w: w.id):
        for n, s in w.neighbours:
            pairs.setdefault(frozenset((w.id, n)), {"a": w.id, "b": n, "score": s})
    similar = list(pairs.values())
    result.semantic_links += len(
        write_rows(graph, SIMILAR_TO_QUERY, similar, params, lambda r: r["a"], failures)
    )
    groups: dict[str, dict[str, Any]] = {}
    links = []
    for w in work:
        for p in w.patterns:
            group = groups.setdefault(
                p["type"],
                {
                    "type": p["type"],
                    "pattern_id": pattern_node_id(p["type"]),
                    "ids": [],
                    "content": f"Pattern across {p['similar_memories'] + 1} {p['type']} memories"
                    + (f" highlighting {', '.join(p['key_terms'])}" if p["key_terms"] else ""),
                },
            )
            group["ids"].append(w.id)
            group["key_terms"] = p["key_terms"]
            conf = w.props.get("confidence")
            links.append(
                {
                    "id": w.id,
                    "type": p["type"],
                    "confidence": float(conf) if isinstance(conf, (int, float)) else 0.5,
                }
            )
    write_rows(graph, PATTERN_QUERY, list(groups.values()), params, lambda r: r["ids"][0], failures)
    result.pattern_links += len(
        write_rows(graph, EXEMPLIFIES_QUERY, links, params, lambda r: r["id"], failures)
    )


def link_pending(
    graph: GraphStore,
    vectors: VectorStore,
    ids: Sequence[str],
    options: EnrichmentOptions,
    identity: EmbeddingIdentity,
    now: datetime | None = None,
) -> int:
    """The semantic step for memories enriched before they had a current vector (flagged
    ``SIMILAR_PENDING``), once a re-embed or a sync repair has written it: SIMILAR_TO both
    ways, ``metadata.enrichment.semantic_neighbors``, the flag cleared, the metadata mirrored
    to the payload. Memories still without a current vector keep waiting. Returns how many
    memories were linked. Store errors propagate; the writes are MERGEs (a retry is safe)."""
    if not ids:
        return 0
    now_iso = (now or datetime.now(UTC)).isoformat()
    props = graph.fetch_properties(list(dict.fromkeys(ids)))
    work = [
        Work(mid, node, node.get("content") or "", parse_metadata(node.get("metadata")))
        for mid, node in props.items()
        if node.get(SIMILAR_PENDING) is True and isinstance(node.get("content"), str)
    ]
    result = BatchResult(0, [w.id for w in work], False)
    find_neighbours(vectors, work, options, result, identity)
    waiting = set(result.no_vector)
    ready = [w for w in work if w.id not in waiting]
    failures: dict[str, str] = {}
    write_edges(graph, ready, now_iso, result, failures)
    rows, payloads = [], {}
    for w in ready:
        if w.id in failures:
            continue
        section = w.metadata.get("enrichment")
        section = dict(section) if isinstance(section, dict) else {}
        section["semantic_neighbors"] = [{"id": n, "score": sc} for n, sc in w.neighbours]
        w.metadata["enrichment"] = section
        rows.append({"id": w.id, "metadata": dump_metadata(w.metadata)})
        payloads[w.id] = mirror_of({"metadata": w.metadata})
    written = write_rows(graph, LINK_UPDATE_QUERY, rows, {}, lambda r: r["id"], failures)
    done = {r["id"] for r in written}
    vectors.set_payloads({mid: p for mid, p in payloads.items() if mid in done})
    return len(done)
