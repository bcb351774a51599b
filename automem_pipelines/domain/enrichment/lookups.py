"""What a batch finds out before it writes: entities (spaCy), temporal neighbours, pattern
candidates and semantic neighbours, each for the whole batch at once."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ...stores.graph import GraphStore
from ...stores.vectors import VectorStore
from ..entities import extract_entities
from ..identity import read_record, trust_unstamped
from ..memory import content_hash
from ..nlp import EntityModel
from ..vector_state import STATE_KEYS, EmbeddingIdentity, VectorState, vector_state
from .model import BatchResult, EnrichmentOptions, Work, error_text

PATTERN_MIN_SIMILAR = 3
PATTERN_SIMILAR_LIMIT = 10
PATTERN_MIN_CONFIDENCE = 0.5
DEFAULT_PATTERN_TYPE = "Memory"
_TOKEN = re.compile(r"[a-zA-Z]{4,}")
_STOPWORDS = {
    "that",
    "this",
    "with",
    "from",
    "have",
    "were",
    "will",
    "when",
    "what",
    "which",
    "their",
    "there",
    "then",
    "than",
    "them",
    "they",
    "been",
    "into",
    "after",
    "before",
    "about",
    "should",
    "would",
    "could",
    "every",
    "each",
    "over",
    "under",
    "also",
    "just",
    "only",
    "next",
    "last",
    "week",
    "because",
    "while",
    "where",
    "your",
    "ours",
    "very",
    "more",
}


def extract(
    model: EntityModel, work: list[Work], batch_size: int, failures: dict[str, str]
) -> None:
    texts = [w.content for w in work]
    try:
        docs = model.pipe(texts, batch_size=batch_size)
    except Exception:  # noqa: BLE001 - find the text that breaks the pipeline
        docs = []
        for w in work:
            try:
                docs.extend(model.pipe([w.content]))
            except Exception as exc:  # noqa: BLE001
                failures[w.id] = f"entity extraction failed: {error_text(exc)}"
                docs.append(None)
    for w, doc in zip(work, docs):
        if w.id in failures:
            continue
        try:
            w.entities = extract_entities(w.content, doc)
        except Exception as exc:  # noqa: BLE001
            failures[w.id] = f"entity extraction failed: {error_text(exc)}"


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


def find_temporal(
    graph: GraphStore, work: list[Work], options: EnrichmentOptions, now: datetime
) -> None:
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


def find_patterns(graph: GraphStore, work: list[Work]) -> None:
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


def find_neighbours(
    vectors: VectorStore | None,
    work: list[Work],
    options: EnrichmentOptions,
    result: BatchResult,
    identity: EmbeddingIdentity | None,
) -> set[str]:
    """Neighbours per memory whose vector is current by the one rule (``vector_state``): a
    stale or missing vector is no vector (the memory waits for its links, see
    ``links.link_pending``). Returns the ids that have a point (for the payload update)."""
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
            VectorState.MISSING
            if rec is None or vec is None or len(vec) == 0
            else VectorState.CURRENT
            if identity is None
            else vector_state(dict(rec.payload or {}), content_hash(w.content), identity, trust)
        )
        if state in (VectorState.CURRENT, VectorState.ADOPTABLE):
            queries[w.id] = vec
        else:
            result.no_vector.append(w.id)
    if queries and options.similarity_limit > 0:
        found = vectors.neighbours(queries, options.similarity_limit, options.similarity_threshold)
        for w in work:
            w.neighbours = found.get(w.id, [])
    return set(records)
