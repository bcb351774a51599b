"""Drift repair: vectors through the re-embed path, drifted payloads rewritten from the graph,
orphans restored into the graph when asked. Nothing is ever deleted."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ...stores.graph import GraphStore
from ...stores.vectors import VectorStore
from .. import identity as identity_mod
from .. import reembed
from ..embeddings import EmbeddingProvider
from ..memory import COMPARED_FIELDS, has_content, node_props_for_write
from .digests import canonical_id, expected_payload

REPAIR_CHUNK = 1_000  # memories per repair round trip (fetch, embed, upsert)

# Each repair calls ``progress(done)`` with the ids done so far (repaired, skipped or failed)
# after each round trip (for vectors: each write window).
ProgressCallback = Callable[[int], None]


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
    progress: ProgressCallback | None = None,
) -> RepairResult:
    """Embed and upsert through the re-embed path (the detection already decided which), so
    the payload merge and the stamps are exactly the re-embed job's. A provider failure fails
    only its batch's ids; store errors propagate (the step is retried, writes are idempotent)."""
    started = time.perf_counter()
    result = RepairResult(kind, total=len(ids))
    if ids:  # raises DimensionMismatchError / EmbeddingIdentityError before any write
        identity_mod.check_identity(vectors, provider)
    before = 0  # ids of the earlier rounds

    def window_done(done: int) -> None:
        if progress is not None:
            progress(before + done)

    for index, part in enumerate(_chunks(ids, chunk_size)):
        written = reembed.reembed_ids(
            index, part, graph, vectors, provider, batch_size, progress=window_done
        )
        before += len(part)
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
    ids: Sequence[str],
    graph: GraphStore,
    vectors: VectorStore,
    chunk_size: int = REPAIR_CHUNK,
    progress: ProgressCallback | None = None,
) -> RepairResult:
    """Write the graph's compared fields into each drifted point's payload (no embedding, no
    provider): merged, and a compared field the node no longer has is removed. Every other key
    survives; stamps are left as they are."""
    started = time.perf_counter()
    result = RepairResult("payload_drift", total=len(ids))
    for part in _chunks(ids, chunk_size):
        props = graph.fetch_properties(part)
        present = vectors.payloads(
            [canonical_id(m) or m for m in props], keys=list(COMPARED_FIELDS)
        )
        updates: dict[str, dict[str, Any]] = {}
        removals: dict[str, list[str]] = {}
        for mid in part:
            pid = canonical_id(mid) or mid
            if mid not in props or pid not in present:
                result.skipped += 1
                continue
            updates[pid] = expected_payload(props[mid])
            removals[pid] = [
                k for k in COMPARED_FIELDS if k in present[pid] and k not in updates[pid]
            ]
        vectors.delete_payload_keys(removals)
        vectors.set_payloads(updates)
        result.repaired += len(updates)
        if progress is not None:
            progress(result.repaired + result.skipped)
    result.seconds = time.perf_counter() - started
    result.check()
    return result


def recover_orphans(
    ids: Sequence[str],
    graph: GraphStore,
    vectors: VectorStore,
    chunk_size: int = REPAIR_CHUNK,
    progress: ProgressCallback | None = None,
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
        if progress is not None:
            progress(result.repaired + result.skipped + len(result.failed))
    result.seconds = time.perf_counter() - started
    result.check()
    return result
