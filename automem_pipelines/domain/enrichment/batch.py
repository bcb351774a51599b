"""Enrichment of one batch of memories (AutoMem's ``enrich_memory``, a batch at a time):
read the nodes, look around (lookups), extract entities, write the edges (links) and the node
updates, mirror them to the payloads, and record the failures (outcomes)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from ...stores.graph import GraphStore
from ...stores.vectors import VectorStore
from ..entities import entity_tags, summarize
from ..memory import (
    SIMILAR_PENDING,
    dump_metadata,
    mirror_of,
    parse_metadata,
    parse_tags,
    split_usable_ids,
    tag_prefixes,
)
from ..nlp import EntityModel
from ..vector_state import EmbeddingIdentity
from .links import write_edges
from .lookups import extract, find_neighbours, find_patterns, find_temporal
from .model import ATTEMPT_PROPS, FAILED, BatchResult, EnrichmentOptions, Work, is_true, timed
from .outcomes import record_failures
from .selection import shared_ids
from .writes import write_rows

UPDATE_QUERY = (
    """
UNWIND $rows AS row
MATCH (m:Memory {id: row.id})
SET m.metadata = row.metadata, m.tags = row.tags, m.tag_prefixes = row.tag_prefixes,
    m.summary = row.summary, m.enriched = true, m.enriched_at = row.enriched_at,
    m.processed = true, m."""
    + SIMILAR_PENDING
    + """ = row.similar_pending,
"""
    + ",\n    ".join(f"m.{p} = NULL" for p in ATTEMPT_PROPS)
)


def node_update(
    w: Work, forced: bool, options: EnrichmentOptions, now_iso: str, pending: bool = False
) -> dict[str, Any]:
    """The node update for one memory (AutoMem steps 4, 8, 9, 10)."""
    metadata = w.metadata
    found = {c: v for c, v in w.entities.items() if v}
    tags = list(dict.fromkeys(parse_tags(w.props.get("tags"))))
    if found:
        section = metadata.get("entities")
        section = dict(section) if isinstance(section, dict) else {}
        section.update({c: sorted(v) for c, v in found.items()})
        metadata["entities"] = section
        tags = list(dict.fromkeys(tags + entity_tags(found)))
    existing_summary = w.props.get("summary")
    if options.enable_summaries:
        summary = summarize(w.content, None if forced else existing_summary)
    else:
        summary = existing_summary
    section = metadata.get("enrichment")
    section = dict(section) if isinstance(section, dict) else {}
    section.update(
        {
            "last_run": now_iso,
            "forced": forced,
            "temporal_links": len(w.temporal),
            "patterns_detected": w.patterns,
            "semantic_neighbors": [{"id": n, "score": s} for n, s in w.neighbours],
        }
    )
    metadata["enrichment"] = section
    return {
        "id": w.id,
        "metadata": dump_metadata(metadata),
        "tags": tags,
        "tag_prefixes": tag_prefixes(tags),
        "summary": summary,
        "enriched_at": now_iso,
        "similar_pending": True if pending else None,
        "_payload": mirror_of(
            {"tags": tags, "tag_prefixes": tag_prefixes(tags), "metadata": metadata}
        ),
    }


def enrich_batch(
    graph: GraphStore,
    vectors: VectorStore | None,
    model: EntityModel,
    ids: Sequence[str],
    forced: bool,
    options: EnrichmentOptions,
    index: int = 0,
    now: datetime | None = None,
    identity: EmbeddingIdentity | None = None,
) -> BatchResult:
    """Enrich the memories ``ids``. ``identity`` is the configured embedding: neighbours are
    searched only from vectors that are current for it (None: any vector counts). Non-forced:
    memories already processed, or marked failed, are skipped. Store outages raise; anything else is a per-memory failure."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    now_iso = now.isoformat()
    requested = list(dict.fromkeys(ids))
    result = BatchResult(index, requested, forced, model.name, model.rule_only)
    unique, invalid, _ = split_usable_ids(requested)
    stop = timed(result, "graph_read_seconds")
    shared = shared_ids(graph, unique)
    if shared:
        unique = [m for m in unique if m not in shared]
    props = graph.fetch_properties(unique)
    stop()
    result.invalid = invalid + sorted(shared)
    work: list[Work] = []
    failures: dict[str, str] = {}
    for mid in unique:
        node = props.get(mid)
        if node is None:
            result.missing.append(mid)
        elif not forced and is_true(node.get("processed")):
            result.skipped_processed.append(mid)
        elif not forced and is_true(node.get(FAILED)):
            result.skipped_failed.append(mid)
        else:
            content = node.get("content")
            if content is not None and not isinstance(content, str):
                failures[mid] = f"content is {type(content).__name__}, not text"
                continue
            work.append(Work(mid, node, content or "", parse_metadata(node.get("metadata"))))

    def look_around() -> set[str]:
        """What needs no NLP output: temporal and pattern reads, neighbour search."""
        stop = timed(result, "graph_read_seconds")
        find_temporal(graph, work, options, now)
        find_patterns(graph, work)
        stop()
        stop = timed(result, "neighbour_seconds")
        found = find_neighbours(vectors, work, options, result, identity)
        stop()
        return found

    # The lookups run on the second core while spaCy parses (BLAS and the stores' sockets
    # release the GIL); stage times are then each stage's own, and overlap.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="enrich-lookups") as pool:
        lookups = pool.submit(look_around)
        stop = timed(result, "nlp_seconds")
        extract(model, work, options.nlp_batch_size, failures)
        stop()
        with_points = lookups.result()
    work = [w for w in work if w.id not in failures]

    stop = timed(result, "graph_write_seconds")
    write_edges(graph, work, now_iso, result, failures)
    waiting = set(result.no_vector)
    updates = [
        node_update(w, forced, options, now_iso, w.id in waiting)
        for w in work
        if w.id not in failures
    ]
    written = write_rows(
        graph,
        UPDATE_QUERY,
        [{k: v for k, v in u.items() if k != "_payload"} for u in updates],
        {},
        lambda r: r["id"],
        failures,
    )
    stop()
    done = {r["id"] for r in written}
    stop = timed(result, "payload_seconds")
    payloads = {
        u["id"]: u["_payload"] for u in updates if u["id"] in done and u["id"] in with_points
    }
    if payloads and vectors is not None:
        vectors.set_payloads(payloads)
    stop()

    result.enriched = [w.id for w in work if w.id in done]
    result.no_vector = [m for m in result.no_vector if m in done]
    result.failed = {m: failures[m] for m in unique if m in failures}
    stop = timed(result, "graph_write_seconds")
    record_failures(graph, result.failed, props, forced, options, now, result)
    stop()
    if result.enriched:
        result.last_success_id = result.enriched[-1]
        result.last_success_at = now_iso
    result.seconds = time.perf_counter() - started
    return result
