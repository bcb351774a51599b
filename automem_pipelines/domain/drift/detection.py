"""Drift detection: both stores read completely, in bounded pages, compared by id and content.
Reads only; never writes to either store."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ...stores.graph import GraphStore
from ...stores.vectors import VectorStore
from .. import identity as identity_mod
from ..memory import COMPARED_FIELDS, has_content, id_problem, shown_id
from ..vector_state import STATE_KEYS, EmbeddingIdentity
from .digests import content_digest, expected_digest, payload_fields_digest, vector_is_current
from .findings import DriftReport

# Local-mode Qdrant sorts every point id on each scroll page (O(N log N) per page), so pages
# are large; 10,000 points with payloads is a few MB. A Qdrant server is fine with it too.
SCROLL_PAGE = 10_000
GRAPH_PAGE = 5_000  # node-id range per graph query; below FalkorDB's 10,000-row result cap
PROGRESS_EVERY = 1_000  # rows between two calls of a progress callback

# done, total: nodes read + points compared, of the graph's memories + the collection's points
ProgressCallback = Callable[[int, int], None]

# Only the compared fields are read (memory.PAYLOAD_FIELDS), as columns: the FalkorDB client
# decodes columns far faster than a whole property map, and no other property can be drift.
GRAPH_COLUMNS = COMPARED_FIELDS
SCROLL_KEYS = tuple(dict.fromkeys((*COMPARED_FIELDS, *STATE_KEYS)))


@dataclass
class GraphIndex:
    """Per memory: (compared-fields digest, content digest or None); keyed by its id."""

    nodes: dict[str, tuple[bytes, bytes | None]]
    excluded: set[str]
    excluded_count: int
    invalid_ids: list[str]
    duplicate_ids: list[str]  # shared by several nodes: left out of the comparison
    seconds: float
    rows: int = 0  # nodes read


def _graph_columns(columns: Sequence[str] = GRAPH_COLUMNS) -> str:
    return "m.id" + "".join(f", m.`{k}`" for k in columns)


def index_graph(
    graph: GraphStore,
    excluded_types: Sequence[str],
    page: int = GRAPH_PAGE,
    on_rows: Callable[[int], None] | None = None,
) -> GraphIndex:
    """Read every :Memory node's compared fields in node-id ranges and keep a digest of each.
    Nodes whose id cannot be a point id are reported as invalid, ids several nodes share as
    duplicates; neither is compared (which node would the point belong to?)."""
    started = time.perf_counter()
    excluded_set = set(excluded_types)
    nodes: dict[str, tuple[bytes, bytes | None]] = {}
    excluded: set[str] = set()
    invalid: list[str] = []
    duplicates: set[str] = set()
    n = 0
    for n, row in enumerate(graph.scan(_graph_columns(), page=page), 1):
        if on_rows is not None and n % PROGRESS_EVERY == 0:
            on_rows(n)
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
        nodes[mid] = (
            expected_digest(props),
            content_digest(content) if has_content(content) else None,
        )
    for mid in duplicates:
        nodes.pop(mid, None)
        excluded.discard(mid)
    return GraphIndex(
        nodes,
        excluded,
        len(excluded),
        invalid,
        sorted(duplicates),
        time.perf_counter() - started,
        rows=n,
    )


def detect(
    graph: GraphStore,
    vectors: VectorStore,
    identity: EmbeddingIdentity,
    excluded_types: Sequence[str],
    scroll_page: int = SCROLL_PAGE,
    graph_page: int = GRAPH_PAGE,
    progress: ProgressCallback | None = None,
) -> DriftReport:
    """Compare both stores completely. Reads only; never writes to either store.

    Runs as the store's bulk phase (VectorStore.bulk_phase): the pages read here die by
    refcount, and with local mode's collection in the heap every full collection would walk
    all of it.

    ``progress(done, total)`` is called every thousand nodes and every page of points: nodes read plus points
    compared, of all memories plus all points (two count queries, only when it is given)."""
    with vectors.bulk_phase():
        return _detect(graph, vectors, identity, excluded_types, scroll_page, graph_page, progress)


def _detect(
    graph: GraphStore,
    vectors: VectorStore,
    identity: EmbeddingIdentity,
    excluded_types: Sequence[str],
    scroll_page: int,
    graph_page: int,
    progress: ProgressCallback | None = None,
) -> DriftReport:
    total = 0
    if progress is not None:
        exists = vectors.collection_dim() is not None
        total = graph.count_memories() + (vectors.count() if exists else 0)
        progress(0, total)
    index = index_graph(
        graph,
        excluded_types,
        graph_page,
        None if progress is None else (lambda n: progress(n, max(total, n))),
    )
    read = index.rows
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
            if progress is not None:
                progress(read, max(total, read))
            read += len(records)
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
    if progress is not None:
        progress(read, read)
    return report
