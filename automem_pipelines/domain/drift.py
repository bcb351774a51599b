"""Drift between the graph (source of truth) and the vector collection: detect → repair.

Detection reads both stores completely, in bounded pages on each side, and compares them by
id *and* content:

* the graph is walked in node-id ranges (``GraphStore.scan``) reading only the compared
  payload fields (``memory.PAYLOAD_FIELDS``); for every memory we keep only a 16-byte hash of
  those fields as its payload should hold them, and the sha256 of its content (about 100
  bytes per memory, never the memory itself);
* Qdrant is scrolled with those payload keys and the stamps (no vectors) in large pages, and
  each point is checked against that digest as it arrives, then forgotten.

Kinds: ``missing`` (memory with content, no point), ``orphaned`` (point, no memory),
``stale_vector`` (not current by the one rule, ``vector_state``), ``payload_drift`` (the vector
is current but a compared field disagrees with the node: node-only properties and fields
AutoMem never reads back are never drift), and the store-level ``dimension_mismatch`` and
``identity_mismatch`` (the collection's identity record names another embedding). Memory types
in RECALL_EXCLUDED_TYPES are left out of the accounting, as AutoMem does.

Repair reuses the re-embed path for ``missing`` and ``stale_vector`` (same payload merge and
stamps), rewrites drifted payloads from the graph without embedding, and restores orphans into
the graph only when asked. Nothing is ever deleted.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..stores.graph import MAX_IDS_PER_QUERY, GraphStore
from ..stores.vectors import VectorStore, dimension_message
from . import reembed
from . import identity as identity_mod
from .embeddings import EmbeddingProvider
from .memory import (
    COMPARED_FIELDS, has_content, id_problem, node_props_for_write, payload_from_node, shown_id,
)  # fmt: skip
from .vector_state import (
    STATE_KEYS, EmbeddingIdentity, VectorState, raw_content_digest, sha256_hash, vector_state,
)  # fmt: skip

KINDS = ("missing", "orphaned", "stale_vector", "payload_drift", "duplicate_id")
SAMPLE_SIZE = 10
FAILED_IDS_SHOWN = 10
# Local-mode Qdrant sorts every point id on each scroll page (O(N log N) per page), so pages
# are large; 10,000 points with payloads is a few MB. A Qdrant server is fine with it too.
SCROLL_PAGE = 10_000
GRAPH_PAGE = 5_000  # node-id range per graph query; below FalkorDB's 10,000-row result cap
REPAIR_CHUNK = 1_000  # memories per repair round trip (fetch, embed, upsert)

# Only the compared fields are read (memory.PAYLOAD_FIELDS), as columns: the FalkorDB client
# decodes columns far faster than a whole property map, and no other property can be drift.
GRAPH_COLUMNS = COMPARED_FIELDS
SCROLL_KEYS = tuple(dict.fromkeys((*COMPARED_FIELDS, *STATE_KEYS)))
_ABSENT = "\x00absent"  # stands for "the point has no such key" in a payload digest


# -- canonical digests ------------------------------------------------------------------------
def canonical(value: Any) -> Any:
    """A JSON-able form in which equal payload values are equal: every number a float rounded
    to 15 significant digits (1 == 1.0; a float that went through a text round trip still
    matches), tuples as lists, dict keys as strings."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):
        number = float(value)
        return float(format(number, ".15g")) if math.isfinite(number) else repr(number)
    if isinstance(value, dict):
        return {str(k): canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [canonical(v) for v in value]
    return str(value)


def digest(value: Any) -> bytes:
    text = json.dumps(canonical(value), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


content_digest = raw_content_digest


def expected_payload(props: dict[str, Any]) -> dict[str, Any]:
    """The compared payload fields a point must carry for this node (memory.PAYLOAD_FIELDS:
    those AutoMem reads back), as ``payload_from_node`` writes them."""
    payload = payload_from_node(props)
    return {k: payload[k] for k in COMPARED_FIELDS if k in payload}


def payload_fields_digest(payload: dict[str, Any]) -> bytes:
    """Digest of the point's values for the compared fields (absent ones included as absent);
    every other key of the payload is ignored."""
    return digest({k: payload.get(k, _ABSENT) for k in COMPARED_FIELDS})


def expected_digest(props: dict[str, Any]) -> bytes:
    expected = expected_payload(props)
    return digest({k: expected.get(k, _ABSENT) for k in COMPARED_FIELDS})


def canonical_id(value: Any) -> str | None:
    """How Qdrant spells a memory id (UUID, lowercase, hyphenated); None if it cannot be a
    point id."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        return None


def vector_is_current(payload: dict[str, Any], content: bytes, identity: EmbeddingIdentity,
                      trust_unstamped: bool = True) -> bool:  # fmt: skip
    """The one rule (``vector_state``), from a raw content digest: a current or adoptable point
    is current here (an unstamped AutoMem point with the node's content is the collection
    model's vector unless the collection's identity record says otherwise)."""
    state = vector_state(payload, sha256_hash(content), identity, trust_unstamped)
    return state in (VectorState.CURRENT, VectorState.ADOPTABLE)


# -- detection --------------------------------------------------------------------------------
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


@dataclass
class GraphIndex:
    """Per memory: (compared-fields digest, content digest or None); keyed by its id."""

    nodes: dict[str, tuple[bytes, bytes | None]]
    excluded: set[str]
    excluded_count: int
    invalid_ids: list[str]
    duplicate_ids: list[str]  # shared by several nodes: left out of the comparison
    seconds: float


def _graph_columns(columns: Sequence[str] = GRAPH_COLUMNS) -> str:
    return "m.id" + "".join(f", m.`{k}`" for k in columns)


def index_graph(graph: GraphStore, excluded_types: Sequence[str], page: int = GRAPH_PAGE) -> GraphIndex:
    """Read every :Memory node's compared fields in node-id ranges and keep a digest of each.
    Nodes whose id cannot be a point id are reported as invalid, ids several nodes share as
    duplicates; neither is compared (which node would the point belong to?)."""
    started = time.perf_counter()
    excluded_set = set(excluded_types)
    nodes: dict[str, tuple[bytes, bytes | None]] = {}
    excluded: set[str] = set()
    invalid: list[str] = []
    duplicates: set[str] = set()
    for row in graph.scan(_graph_columns(), page=page):
        mid, values = row[0], row[1:]
        if id_problem(mid) is not None:
            invalid.append(shown_id(mid))
            continue
        if mid in nodes or mid in excluded:
            duplicates.add(mid)
            continue
        props = {k: v for k, v in zip(GRAPH_COLUMNS, values) if v is not None}
        if props.get("type") in excluded_set:
            excluded.add(mid)
            continue
        content = props.get("content")
        nodes[mid] = (expected_digest(props), content_digest(content) if has_content(content) else None)
    for mid in duplicates:
        nodes.pop(mid, None)
        excluded.discard(mid)
    return GraphIndex(
        nodes, excluded, len(excluded), invalid, sorted(duplicates), time.perf_counter() - started
    )


def detect(
    graph: GraphStore,
    vectors: VectorStore,
    identity: EmbeddingIdentity,
    excluded_types: Sequence[str],
    scroll_page: int = SCROLL_PAGE,
    graph_page: int = GRAPH_PAGE,
) -> DriftReport:
    """Compare both stores completely. Reads only; never writes to either store.

    Runs as the store's bulk phase (VectorStore.bulk_phase): the pages read here die by
    refcount, and with local mode's collection in the heap every full collection would walk
    all of it."""
    with vectors.bulk_phase():
        return _detect(graph, vectors, identity, excluded_types, scroll_page, graph_page)


def _detect(
    graph: GraphStore,
    vectors: VectorStore,
    identity: EmbeddingIdentity,
    excluded_types: Sequence[str],
    scroll_page: int,
    graph_page: int,
) -> DriftReport:
    index = index_graph(graph, excluded_types, graph_page)
    excluded_set = set(excluded_types)
    report = DriftReport(
        vector_size=identity.dim,
        excluded_types=list(excluded_types),
        excluded_falkordb=index.excluded_count,
        invalid_ids=index.invalid_ids,
        duplicate_id=index.duplicate_ids,
        graph_seconds=index.seconds,
    )
    report.falkordb_count = len(index.nodes) + len(index.duplicate_ids)
    nodes = index.nodes
    duplicates = set(index.duplicate_ids)
    report.collection_dim = vectors.collection_dim()
    report.collection_exists = report.collection_dim is not None
    record = identity_mod.read_record(vectors) if report.collection_exists else None
    report.identity_configured = identity.as_dict()
    report.identity_recorded = record.as_dict() if record else None
    report.identity_mismatch = record is not None and record.identity != identity
    trust = identity_mod.trust_unstamped(record, identity)
    compare = 0.0
    started = time.perf_counter()
    if report.collection_exists:
        for records in vectors.scroll(page=scroll_page, with_payload=SCROLL_KEYS):
            t0 = time.perf_counter()
            for rec in records:
                pid = str(rec.id)
                payload = rec.payload or {}
                node = nodes.pop(pid, None)
                if node is None and pid in duplicates:
                    report.qdrant_count += 1  # its memory exists, twice: reported as such
                    continue
                if node is None:
                    if pid in index.excluded or payload.get("type") in excluded_set:
                        report.excluded_qdrant += 1
                    else:
                        report.orphaned.append(pid)
                        report.qdrant_count += 1
                    continue
                report.qdrant_count += 1
                fields_digest, content = node
                if content is not None and not vector_is_current(payload, content, identity, trust):
                    report.stale_vector.append(pid)
                elif payload_fields_digest(payload) != fields_digest:
                    report.payload_drift.append(pid)
            compare += time.perf_counter() - t0
    t0 = time.perf_counter()
    for pid, (_digest, content) in nodes.items():  # no point was found for these
        (report.missing if content is not None else report.no_content).append(pid)
    compare += time.perf_counter() - t0
    report.vector_seconds = time.perf_counter() - started - compare
    report.compare_seconds = compare
    return report


# -- repair -----------------------------------------------------------------------------------
@dataclass
class RepairResult:
    kind: str
    total: int = 0
    repaired: int = 0
    skipped: int = 0  # gone from the graph (or the collection) since detection, or empty content
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    tokens: int | None = None
    seconds: float = 0.0
    pending_links: list[str] = field(default_factory=list)  # written; enriched before a vector

    def check(self) -> None:
        if self.repaired + self.skipped + len(self.failed) != self.total:
            raise reembed.CountMismatchError(
                f"{self.kind}: repaired {self.repaired} + skipped {self.skipped} + failed "
                f"{len(self.failed)} != {self.total}; re-run the sync to finish it"
            )


def _chunks(ids: Sequence[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


def repair_vectors(
    kind: str,
    ids: Sequence[str],
    graph: GraphStore,
    vectors: VectorStore,
    provider: EmbeddingProvider,
    batch_size: int,
    chunk_size: int = REPAIR_CHUNK,
) -> RepairResult:
    """Embed and upsert through the re-embed path (the detection already decided which), so
    the payload merge and the stamps are exactly the re-embed job's. A provider failure fails
    only its batch's ids; store errors propagate (the step is retried, writes are idempotent)."""
    started = time.perf_counter()
    result = RepairResult(kind, total=len(ids))
    if ids:  # raises DimensionMismatchError / EmbeddingIdentityError before any write
        identity_mod.check_identity(vectors, provider)
    for index, part in enumerate(_chunks(ids, chunk_size)):
        embedded = reembed.embed_chunk(index, part, graph, provider, batch_size)
        written = reembed.upsert_chunk(embedded, graph, vectors)
        result.pending_links.extend(written.pending_links)
        result.repaired += written.processed
        result.skipped += written.skipped
        result.failed.update(written.failed)
        result.requests += written.requests
        if written.tokens is not None:
            result.tokens = (result.tokens or 0) + written.tokens
    result.seconds = time.perf_counter() - started
    result.check()
    return result


def repair_payloads(
    ids: Sequence[str], graph: GraphStore, vectors: VectorStore, chunk_size: int = REPAIR_CHUNK
) -> RepairResult:
    """Write the graph's compared fields into each drifted point's payload (no embedding, no
    provider): merged, and a compared field the node no longer has is removed. Every other key
    survives; stamps are left as they are."""
    started = time.perf_counter()
    result = RepairResult("payload_drift", total=len(ids))
    for part in _chunks(ids, chunk_size):
        props = graph.fetch_properties(part)
        present = vectors.payloads([canonical_id(m) or m for m in props], keys=list(COMPARED_FIELDS))
        updates: dict[str, dict[str, Any]] = {}
        removals: dict[str, list[str]] = {}
        for mid in part:
            pid = canonical_id(mid) or mid
            if mid not in props or pid not in present:
                result.skipped += 1
                continue
            updates[pid] = expected_payload(props[mid])
            removals[pid] = [k for k in COMPARED_FIELDS if k in present[pid] and k not in updates[pid]]
        vectors.delete_payload_keys(removals)
        vectors.set_payloads(updates)
        result.repaired += len(updates)
    result.seconds = time.perf_counter() - started
    result.check()
    return result


def recover_orphans(
    ids: Sequence[str], graph: GraphStore, vectors: VectorStore, chunk_size: int = REPAIR_CHUNK
) -> RepairResult:
    """Restore orphaned points into the graph as :Memory nodes built from their payloads
    (MERGE by id: idempotent). A point whose payload has no content is not restored."""
    started = time.perf_counter()
    result = RepairResult("orphaned", total=len(ids))
    for part in _chunks(ids, chunk_size):
        payloads = vectors.payloads(part)
        existing = graph.fetch(part, "ID(m)")
        rows: list[dict[str, Any]] = []
        for pid in part:
            payload = payloads.get(pid)
            if payload is None or pid in existing:  # point deleted, or node came back
                result.skipped += 1
                continue
            if not has_content(payload.get("content")):
                result.failed[pid] = "payload has no content to restore a memory from"
                continue
            rows.append(node_props_for_write({**payload, "id": pid}))
        if rows:
            graph.upsert_memories(rows)
        result.repaired += len(rows)
    result.seconds = time.perf_counter() - started
    result.check()
    return result


# -- results ----------------------------------------------------------------------------------
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
