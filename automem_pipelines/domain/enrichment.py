"""Enrichment of memories, as plain functions, a batch of memories at a time.

For each memory this does what AutoMem's ``enrich_memory`` does (entities, temporal links,
patterns, semantic neighbours, summary, ``metadata.enrichment``, flags, Qdrant payload),
but every stage works on the whole batch: one ``nlp.pipe`` over the texts, one query per
edge type (``UNWIND``), one batched neighbour search and one batched payload update.

Differences from AutoMem, on purpose:

* Idempotent graph writes: ``PRECEDED_BY.count`` is 1 when the edge is created and kept
  after that, and a ``:Pattern``'s ``observations``/``confidence`` grow only when a memory
  links to it for the first time, so enriching twice leaves the same graph (only the
  ``updated_at`` stamps move).
* The pattern type of a memory is its stored ``type`` (the store classified it when it was
  written); there is no LLM classifier here. The ``EXEMPLIFIES`` confidence is the memory's
  stored ``confidence``.
* Failures are per memory: a memory that cannot be enriched gets ``enrichment_attempts``,
  ``enrichment_error`` and a ``enrichment_retry_at`` backoff; after ``max_attempts`` it is
  marked ``enrichment_failed`` and left alone until a forced reprocess. Store outages are
  not per-memory failures: they propagate (the job's RetryPolicy retries the batch).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..stores.graph import GraphStore, GraphUnavailableError
from ..stores.vectors import VectorStore
from .entities import entity_tags, extract_entities, summarize
from .identity import read_record, trust_unstamped
from .memory import (
    SIMILAR_PENDING, content_hash, dump_metadata, id_problem, mirror_of, parse_metadata,
    parse_tags, split_usable_ids, tag_prefixes,
)  # fmt: skip
from .vector_state import STATE_KEYS, EmbeddingIdentity, VectorState, vector_state
from .nlp import EntityModel

# Node properties that track attempts (queryable by the sensor, unlike metadata JSON).
ATTEMPTS = "enrichment_attempts"
LAST_ERROR = "enrichment_error"
LAST_ERROR_AT = "enrichment_error_at"
RETRY_AT = "enrichment_retry_at"  # epoch seconds; the sensor waits until then
FAILED = "enrichment_failed"
RETRY_FORCED = "enrichment_retry_forced"  # the failed attempt was a forced one
ATTEMPT_PROPS = (ATTEMPTS, LAST_ERROR, LAST_ERROR_AT, RETRY_AT, FAILED, RETRY_FORCED)

PATTERN_MIN_SIMILAR = 3
PATTERN_SIMILAR_LIMIT = 10
PATTERN_MIN_CONFIDENCE = 0.5
DEFAULT_PATTERN_TYPE = "Memory"
ERROR_MAX_CHARS = 500
_TOKEN = re.compile(r"[a-zA-Z]{4,}")
_STOPWORDS = {
    "that", "this", "with", "from", "have", "were", "will", "when", "what", "which", "their",
    "there", "then", "than", "them", "they", "been", "into", "after", "before", "about",
    "should", "would", "could", "every", "each", "over", "under", "also", "just", "only",
    "next", "last", "week", "because", "while", "where", "your", "ours", "very", "more",
}  # fmt: skip


@dataclass(frozen=True)
class EnrichmentOptions:
    # AutoMem's ENRICHMENT_* settings (defaults and ranges: automem_pipelines.settings).
    similarity_limit: int
    similarity_threshold: float
    enable_summaries: bool
    max_attempts: int
    failure_backoff_seconds: float
    temporal_limit: int = 5
    temporal_window_days: int = 7
    nlp_batch_size: int = 64


@dataclass
class BatchResult:
    index: int
    ids: list[str]  # deduplicated, as given
    forced: bool
    model: str = ""
    rule_only: bool = False
    enriched: list[str] = field(default_factory=list)
    skipped_processed: list[str] = field(default_factory=list)
    skipped_failed: list[str] = field(default_factory=list)  # marked failed; non-forced run
    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # ids that cannot be a memory's (or shared)
    failed: dict[str, str] = field(default_factory=dict)  # this attempt's error per memory
    exhausted: list[str] = field(default_factory=list)  # marked failed by this batch
    no_vector: list[str] = field(default_factory=list)  # semantic step skipped
    temporal_links: int = 0
    semantic_links: int = 0
    pattern_links: int = 0
    last_success_id: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    nlp_seconds: float = 0.0
    graph_read_seconds: float = 0.0
    graph_write_seconds: float = 0.0
    neighbour_seconds: float = 0.0
    payload_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return (len(self.skipped_processed) + len(self.skipped_failed) + len(self.missing)
                + len(self.invalid))


@dataclass
class _Work:
    """One memory being enriched in this batch."""

    id: str
    props: dict[str, Any]
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    entities: dict[str, list[str]] = field(default_factory=dict)
    temporal: list[str] = field(default_factory=list)
    patterns: list[dict[str, Any]] = field(default_factory=list)
    neighbours: list[tuple[str, float]] = field(default_factory=list)


def _is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


def _timed(result: BatchResult, attr: str) -> Callable[[], None]:
    started = time.perf_counter()

    def stop() -> None:
        setattr(result, attr, getattr(result, attr) + time.perf_counter() - started)

    return stop


def _write_rows(
    graph: GraphStore, cypher: str, rows: list[dict[str, Any]], params: dict[str, Any],
    owner: Callable[[dict[str, Any]], str], failures: dict[str, str],
) -> list[dict[str, Any]]:  # fmt: skip
    """Run one UNWIND $rows write; if the batch is refused (not an outage), write row by row
    so one bad memory cannot fail the others. Returns the rows written."""
    if not rows:
        return []
    try:
        graph.query(cypher, {**params, "rows": rows})
        return rows
    except GraphUnavailableError:
        raise
    except Exception:  # noqa: BLE001 - isolate the culprit below
        pass
    written = []
    for row in rows:
        try:
            graph.query(cypher, {**params, "rows": [row]})
            written.append(row)
        except GraphUnavailableError:
            raise
        except Exception as exc:  # noqa: BLE001
            failures.setdefault(owner(row), _error_text(exc))
    return written


# -- stages ------------------------------------------------------------------------------


def _extract(model: EntityModel, work: list[_Work], batch_size: int,
             failures: dict[str, str]) -> None:  # fmt: skip
    texts = [w.content for w in work]
    try:
        docs = model.pipe(texts, batch_size=batch_size)
    except Exception:  # noqa: BLE001 - find the text that breaks the pipeline
        docs = []
        for w in work:
            try:
                docs.extend(model.pipe([w.content]))
            except Exception as exc:  # noqa: BLE001
                failures[w.id] = f"entity extraction failed: {_error_text(exc)}"
                docs.append(None)
    for w, doc in zip(work, docs):
        if w.id in failures:
            continue
        try:
            w.entities = extract_entities(w.content, doc)
        except Exception as exc:  # noqa: BLE001
            failures[w.id] = f"entity extraction failed: {_error_text(exc)}"


# The per-row bound goes through toString(): FalkorDB 4.16 folds ``o.timestamp < row.ts``
# into a timestamp-index scan and then ignores the bound (every row comes back); the
# constant cutoff may still use the index.
TEMPORAL_QUERY = """
UNWIND $rows AS row
MATCH (o:Memory)
WHERE o.timestamp > $cutoff AND toString(o.timestamp) < row.ts AND o.id <> row.id
WITH row.id AS id, o.id AS oid, o.timestamp AS ots
ORDER BY ots DESC
WITH id, collect(oid) AS older
RETURN id, older[0..$limit]
"""


def _find_temporal(graph: GraphStore, work: list[_Work], options: EnrichmentOptions,
                   now: datetime) -> None:  # fmt: skip
    rows = [
        {"id": w.id, "ts": w.props["timestamp"]}
        for w in work
        if isinstance(w.props.get("timestamp"), str)
    ]
    if not rows or options.temporal_limit <= 0:
        return
    cutoff = (now - timedelta(days=options.temporal_window_days)).isoformat()
    by_id = {w.id: w for w in work}
    for start in range(0, len(rows), 500):
        result = graph.query(
            TEMPORAL_QUERY,
            {"rows": rows[start : start + 500], "cutoff": cutoff, "limit": options.temporal_limit},
        )
        for mid, older in result:
            by_id[mid].temporal = [o for o in older if o]


PATTERN_CANDIDATES_QUERY = """
UNWIND $types AS t
MATCH (o:Memory)
WHERE o.type = t AND o.confidence > $min_confidence
WITH t, collect([o.id, o.content])[0..$k] AS rows
RETURN t, rows
"""


def pattern_type(props: dict[str, Any]) -> str:
    value = props.get("type")
    return value if isinstance(value, str) and value.strip() else DEFAULT_PATTERN_TYPE


def key_terms(texts: Sequence[Any], count: int = 5) -> list[str]:
    tokens: Counter[str] = Counter()
    for text in texts:
        for token in _TOKEN.findall(text.lower() if isinstance(text, str) else ""):
            if token not in _STOPWORDS:
                tokens[token] += 1
    return [term for term, _ in tokens.most_common(count)]


def _find_patterns(graph: GraphStore, work: list[_Work]) -> None:
    types = sorted({pattern_type(w.props) for w in work})
    if not types:
        return
    # Ten others per memory: the first 11 of the type hold ten that are not the memory.
    result = graph.query(
        PATTERN_CANDIDATES_QUERY,
        {"types": types, "k": PATTERN_SIMILAR_LIMIT + 1, "min_confidence": PATTERN_MIN_CONFIDENCE},
    )
    candidates = {t: rows for t, rows in result}
    for w in work:
        mtype = pattern_type(w.props)
        others = [r for r in candidates.get(mtype, []) if r[0] != w.id][:PATTERN_SIMILAR_LIMIT]
        if len(others) >= PATTERN_MIN_SIMILAR:
            terms = key_terms([w.content] + [r[1] for r in others])
            w.patterns = [{"type": mtype, "similar_memories": len(others), "key_terms": terms}]


def _find_neighbours(vectors: VectorStore | None, work: list[_Work], options: EnrichmentOptions,
                     result: BatchResult, identity: EmbeddingIdentity | None) -> set[str]:  # fmt: skip
    """Neighbours per memory whose vector is current by the one rule (``vector_state``): a
    stale or missing vector is no vector (the memory waits for its links, see
    ``link_pending``). Returns the ids that have a point (for the payload update)."""
    ids = [w.id for w in work]
    if vectors is None or not ids or vectors.collection_dim() is None:
        result.no_vector.extend(ids)
        return set()
    trust = identity is None or trust_unstamped(read_record(vectors), identity)
    records = vectors.retrieve(ids, with_payload=list(STATE_KEYS), with_vectors=True)
    queries = {}
    for w in work:
        rec = records.get(w.id)
        vec = rec.vector if rec is not None else None
        if isinstance(vec, dict):  # named vectors: AutoMem uses the unnamed one
            vec = vec.get("") or next(iter(vec.values()), None)
        state = (
            VectorState.MISSING if rec is None or vec is None or len(vec) == 0
            else VectorState.CURRENT if identity is None
            else vector_state(dict(rec.payload or {}), content_hash(w.content), identity, trust)
        )  # fmt: skip
        if state in (VectorState.CURRENT, VectorState.ADOPTABLE):
            queries[w.id] = vec
        else:
            result.no_vector.append(w.id)
    if queries and options.similarity_limit > 0:
        found = vectors.neighbours(queries, options.similarity_limit, options.similarity_threshold)
        for w in work:
            w.neighbours = found.get(w.id, [])
    return set(records)


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

UPDATE_QUERY = """
UNWIND $rows AS row
MATCH (m:Memory {id: row.id})
SET m.metadata = row.metadata, m.tags = row.tags, m.tag_prefixes = row.tag_prefixes,
    m.summary = row.summary, m.enriched = true, m.enriched_at = row.enriched_at,
    m.processed = true, m.""" + SIMILAR_PENDING + """ = row.similar_pending,
""" + ",\n    ".join(f"m.{p} = NULL" for p in ATTEMPT_PROPS)

FAILURE_QUERY = """
UNWIND $rows AS row
MATCH (m:Memory {id: row.id})
SET m.enrichment_attempts = row.attempts, m.enrichment_error = row.error,
    m.enrichment_error_at = row.error_at, m.enrichment_retry_at = row.retry_at,
    m.enrichment_failed = row.failed, m.enrichment_retry_forced = row.forced
"""


def pattern_node_id(mtype: str) -> str:
    return f"pattern-{mtype}-{hashlib.sha1(mtype.encode()).hexdigest()[:8]}"


def _write_edges(graph: GraphStore, work: list[_Work], now_iso: str, result: BatchResult,
                 failures: dict[str, str]) -> None:  # fmt: skip
    params = {"now": now_iso}
    temporal = [{"a": w.id, "b": o} for w in work for o in w.temporal]
    result.temporal_links += len(
        _write_rows(graph, PRECEDED_BY_QUERY, temporal, params, lambda r: r["a"], failures)
    )
    # One row per pair: both memories of a pair may be in the batch, and their two searches
    # can differ in the last float digits; the pair's score is then the first one found.
    pairs: dict[frozenset[str], dict[str, Any]] = {}
    for w in sorted(work, key=lambda w: w.id):
        for n, s in w.neighbours:
            pairs.setdefault(frozenset((w.id, n)), {"a": w.id, "b": n, "score": s})
    similar = list(pairs.values())
    result.semantic_links += len(
        _write_rows(graph, SIMILAR_TO_QUERY, similar, params, lambda r: r["a"], failures)
    )
    groups: dict[str, dict[str, Any]] = {}
    links = []
    for w in work:
        for p in w.patterns:
            group = groups.setdefault(p["type"], {
                "type": p["type"], "pattern_id": pattern_node_id(p["type"]), "ids": [],
                "content": f"Pattern across {p['similar_memories'] + 1} {p['type']} memories"
                + (f" highlighting {', '.join(p['key_terms'])}" if p["key_terms"] else ""),
            })  # fmt: skip
            group["ids"].append(w.id)
            group["key_terms"] = p["key_terms"]
            conf = w.props.get("confidence")
            links.append({"id": w.id, "type": p["type"],
                          "confidence": float(conf) if isinstance(conf, (int, float)) else 0.5})  # fmt: skip
    _write_rows(graph, PATTERN_QUERY, list(groups.values()), params, lambda r: r["ids"][0], failures)
    result.pattern_links += len(
        _write_rows(graph, EXEMPLIFIES_QUERY, links, params, lambda r: r["id"], failures)
    )


def _finish(w: _Work, forced: bool, options: EnrichmentOptions, now_iso: str,
            pending: bool = False) -> dict[str, Any]:  # fmt: skip
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
    section.update({
        "last_run": now_iso,
        "forced": forced,
        "temporal_links": len(w.temporal),
        "patterns_detected": w.patterns,
        "semantic_neighbors": [{"id": n, "score": s} for n, s in w.neighbours],
    })  # fmt: skip
    metadata["enrichment"] = section
    return {
        "id": w.id,
        "metadata": dump_metadata(metadata),
        "tags": tags,
        "tag_prefixes": tag_prefixes(tags),
        "summary": summary,
        "enriched_at": now_iso,
        "similar_pending": True if pending else None,
        "_payload": mirror_of({"tags": tags, "tag_prefixes": tag_prefixes(tags), "metadata": metadata}),
    }


def _record_failures(graph: GraphStore, failures: dict[str, str], props: dict[str, dict[str, Any]],
                     forced: bool, options: EnrichmentOptions, now: datetime,
                     result: BatchResult) -> None:  # fmt: skip
    if not failures:
        return
    now_iso = now.isoformat()
    rows = []
    for mid, error in failures.items():
        node = props.get(mid, {})
        previous = node.get(ATTEMPTS)
        previous = previous if isinstance(previous, int) else 0
        if forced and _is_true(node.get(FAILED)):
            previous = 0  # a forced reprocess of a failed memory starts a fresh round
        attempts = previous + 1
        exhausted = attempts >= options.max_attempts
        backoff = options.failure_backoff_seconds * (2 ** (attempts - 1))
        rows.append({
            "id": mid, "attempts": attempts, "error": error, "error_at": now_iso,
            "retry_at": None if exhausted else now.timestamp() + backoff,
            "failed": exhausted, "forced": forced,
        })  # fmt: skip
        if exhausted:
            result.exhausted.append(mid)
    unrecorded: dict[str, str] = {}
    _write_rows(graph, FAILURE_QUERY, rows, {}, lambda r: r["id"], unrecorded)
    result.last_error = list(failures.values())[-1]
    result.last_error_at = now_iso


# -- the batch ----------------------------------------------------------------------------


def shared_ids(graph: GraphStore, ids: Sequence[str]) -> set[str]:
    """The ids among these that several nodes share (never enriched: which node is meant?)."""
    if not ids:
        return set()
    rows = graph.query(
        "MATCH (m:Memory) WHERE m.id IN $ids WITH m.id AS id, count(m) AS n WHERE n > 1 RETURN id",
        {"ids": list(ids)},
    )
    return {r[0] for r in rows}


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
    searched only from vectors that are current for it (None: any vector counts). Non-forced: memories already processed, or marked
    failed, are skipped. Store outages raise; anything else is a per-memory failure."""
    started = time.perf_counter()
    now = now or datetime.now(UTC)
    now_iso = now.isoformat()
    requested = list(dict.fromkeys(ids))
    result = BatchResult(index, requested, forced, model.name, model.rule_only)
    unique, invalid, _ = split_usable_ids(requested)
    stop = _timed(result, "graph_read_seconds")
    shared = shared_ids(graph, unique)
    if shared:
        unique = [m for m in unique if m not in shared]
    props = graph.fetch_properties(unique)
    stop()
    result.invalid = invalid + sorted(shared)
    work: list[_Work] = []
    failures: dict[str, str] = {}
    for mid in unique:
        node = props.get(mid)
        if node is None:
            result.missing.append(mid)
        elif not forced and _is_true(node.get("processed")):
            result.skipped_processed.append(mid)
        elif not forced and _is_true(node.get(FAILED)):
            result.skipped_failed.append(mid)
        else:
            content = node.get("content")
            if content is not None and not isinstance(content, str):
                failures[mid] = f"content is {type(content).__name__}, not text"
                continue
            work.append(_Work(mid, node, content or "", parse_metadata(node.get("metadata"))))

    def look_around() -> set[str]:
        """What needs no NLP output: temporal and pattern reads, neighbour search."""
        stop = _timed(result, "graph_read_seconds")
        _find_temporal(graph, work, options, now)
        _find_patterns(graph, work)
        stop()
        stop = _timed(result, "neighbour_seconds")
        found = _find_neighbours(vectors, work, options, result, identity)
        stop()
        return found

    # The lookups run on the second core while spaCy parses (BLAS and the stores' sockets
    # release the GIL); stage times are then each stage's own, and overlap.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="enrich-lookups") as pool:
        lookups = pool.submit(look_around)
        stop = _timed(result, "nlp_seconds")
        _extract(model, work, options.nlp_batch_size, failures)
        stop()
        with_points = lookups.result()
    work = [w for w in work if w.id not in failures]

    stop = _timed(result, "graph_write_seconds")
    _write_edges(graph, work, now_iso, result, failures)
    waiting = set(result.no_vector)
    updates = [_finish(w, forced, options, now_iso, w.id in waiting) for w in work if w.id not in failures]
    written = _write_rows(
        graph, UPDATE_QUERY, [{k: v for k, v in u.items() if k != "_payload"} for u in updates],
        {}, lambda r: r["id"], failures,
    )  # fmt: skip
    stop()
    done = {r["id"] for r in written}
    stop = _timed(result, "payload_seconds")
    payloads = {u["id"]: u["_payload"] for u in updates if u["id"] in done and u["id"] in with_points}
    if payloads and vectors is not None:
        vectors.set_payloads(payloads)
    stop()

    result.enriched = [w.id for w in work if w.id in done]
    result.no_vector = [m for m in result.no_vector if m in done]
    result.failed = {m: failures[m] for m in unique if m in failures}
    stop = _timed(result, "graph_write_seconds")
    _record_failures(graph, result.failed, props, forced, options, now, result)
    stop()
    if result.enriched:
        result.last_success_id = result.enriched[-1]
        result.last_success_at = now_iso
    result.seconds = time.perf_counter() - started
    return result


LINK_UPDATE_QUERY = """
UNWIND $rows AS row
MATCH (m:Memory {id: row.id})
SET m.metadata = row.metadata, m.""" + SIMILAR_PENDING + """ = NULL
"""


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
        _Work(mid, node, node.get("content") or "", parse_metadata(node.get("metadata")))
        for mid, node in props.items()
        if node.get(SIMILAR_PENDING) is True and isinstance(node.get("content"), str)
    ]
    result = BatchResult(0, [w.id for w in work], False)
    _find_neighbours(vectors, work, options, result, identity)
    waiting = set(result.no_vector)
    ready = [w for w in work if w.id not in waiting]
    failures: dict[str, str] = {}
    _write_edges(graph, ready, now_iso, result, failures)
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
    written = _write_rows(graph, LINK_UPDATE_QUERY, rows, {}, lambda r: r["id"], failures)
    done = {r["id"] for r in written}
    vectors.set_payloads({mid: p for mid, p in payloads.items() if mid in done})
    return len(done)


# -- what the sensor and the status read ----------------------------------------------------

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
    graph: GraphStore, limit: int, busy: Sequence[str] = (), excluded_types: Sequence[str] = (),
    now: float | None = None,
) -> list[Candidate]:  # fmt: skip
    """Up to ``limit`` memories that wait for enrichment (not processed, not failed, backoff
    elapsed), leaving out ``busy`` ids (those in queued or running runs)."""
    rows = graph.query(
        f"MATCH (m:Memory) WHERE {AWAITING_WHERE} "
        f"AND coalesce(m.{RETRY_AT}, 0) <= $now AND NOT m.id IN $busy "
        f"RETURN m.id, coalesce(m.{ATTEMPTS}, 0), coalesce(m.{RETRY_FORCED}, false), "
        "coalesce(toString(m.enriched_at), '') LIMIT $limit",
        {"excluded": list(excluded_types), "busy": list(busy), "limit": int(limit),
         "now": time.time() if now is None else now},
    )  # fmt: skip
    return [Candidate(r[0], int(r[1]), bool(r[2]), r[3] or "") for r in rows if id_problem(r[0]) is None]


def count_awaiting(graph: GraphStore, excluded_types: Sequence[str] = ()) -> int:
    rows = graph.query(
        f"MATCH (m:Memory) WHERE {AWAITING_WHERE} RETURN count(m)",
        {"excluded": list(excluded_types)},
    )
    return int(rows[0][0]) if rows else 0


def summarize_batches(results: Sequence[BatchResult], expected: int, forced: bool,
                      seconds: float | None = None) -> dict[str, Any]:  # fmt: skip
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
        "invalid_ids": [m for r in ordered for m in r.invalid][:10],
        "failed_ids": failed_ids[:10],
        "exhausted_ids": [m for r in ordered for m in r.exhausted][:10],
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
    if failed > 10:
        summary["failed_ids_truncated"] = True
    if seconds is not None:
        summary["seconds"] = round(seconds, 3)
    return summary

