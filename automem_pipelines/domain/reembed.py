"""Re-embedding, as plain functions: enumerate → select → chunk → (read → embed → write) →
summarize.

The selection (which memories already hold a current vector) runs before the fan-out, so an
incremental run over an unchanged store starts no work unit at all. Each work unit reads what
it needs from the stores itself and overlaps its three stages over windows (stages.run_stages),
so the Dagster steps pass only ids and counts between them; a unit's vectors never leave it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from ..stores.graph import GraphStore
from ..stores.vectors import VectorStore, VectorStoreUnavailableError
from .embeddings import EmbeddingProvider, embed_batches
from .memory import (
    CHECK_KEY,
    SIMILAR_PENDING,
    content_hash,
    has_content,
    make_stamps,
    merged_payload,
    stamp_string,
)
from .selection import (
    ADOPT_BATCH,
    CHUNK_SIZE,
    SELECT_PAGE,
    PackedIds,
    Selection,
    adopt,
    enumerate_ids,
    plan_chunks,
    plan_reembed,
    select_memories,
)
from .stages import run_stages
from .vector_state import EmbeddingIdentity

__all__ = [
    "ADOPT_BATCH",
    "CHUNK_SIZE",
    "SELECT_PAGE",
    "PackedIds",
    "Selection",
    "adopt",
    "enumerate_ids",
    "plan_chunks",
    "plan_reembed",
    "select_memories",
    "CountMismatchError",
    "ChunkResult",
    "reembed_ids",
    "summarize",
    "window_size",
]

FAILED_IDS_SHOWN = 10
WRITE_WINDOW = 1024  # about this many memories read, embedded and written per round
STAGE_DEPTH = 2  # windows waiting between two stages: what a unit holds beyond its three
WRITE_ATTEMPTS = 3  # a window's write, retried in the step: its vectors are not paid twice
WRITE_RETRY_SECONDS = 0.5  # first wait; doubles


class CountMismatchError(RuntimeError):
    """processed + skipped + failed did not add up to the enumerated total."""


@dataclass
class ChunkResult:
    """What one work unit did: small counts, never vectors."""

    index: int
    total: int
    processed: int
    skipped: int
    failed: dict[str, str]
    skipped_empty: int
    skipped_missing: int
    tokens: int | None
    requests: int
    embed_seconds: float
    seconds: float
    pending_links: list[str] = field(default_factory=list)  # enriched before they had a vector
    resumed: int = 0  # written by an earlier attempt of this run: counted processed


@dataclass
class _Window:
    """One window on its way through the stages: read, then embedded, then written."""

    props: dict[str, dict[str, Any]]  # node properties of the memories to embed
    todo: list[tuple[str, str]]  # (id, content) to embed, in unit order
    missing: int = 0
    empty: int = 0
    resumed: int = 0
    size: int = 0  # ids of the unit in this window, whatever became of them
    ids: list[str] = field(default_factory=list)  # embedded, row i of vectors
    vectors: np.ndarray | None = None
    hashes: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    tokens: int | None = None
    embed_seconds: float = 0.0
    base: dict[str, dict] = field(default_factory=dict)  # payloads carried from another store


def window_size(batch_size: int, window: int = WRITE_WINDOW) -> int:
    """Windows of whole API batches (at least one)."""
    return max(batch_size, window // batch_size * batch_size)


def _written_since(
    vectors: VectorStore, todo: list[tuple[str, str]], identity: EmbeddingIdentity, since: float
) -> set[str]:
    """Of ``todo``, the ids whose point holds this identity's vector of the same content,
    stamped at or after ``since`` (epoch s): an earlier attempt of this run wrote them."""
    payloads = vectors.payloads([m for m, _ in todo], keys=[CHECK_KEY, "embedded_at"])
    done: set[str] = set()
    for mid, content in todo:
        payload = payloads.get(mid) or {}
        stamp = stamp_string(content_hash(content), identity.provider, identity.model, identity.dim)
        if payload.get(CHECK_KEY) == stamp and _epoch(payload.get("embedded_at")) >= since:
            done.add(mid)
    return done


def _epoch(value: Any) -> float:
    try:
        return datetime.fromisoformat(value).timestamp()
    except (TypeError, ValueError):
        return float("-inf")


def _retry_write(write: Callable[[], None], attempts: int, wait: float) -> None:
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except VectorStoreUnavailableError:
            if attempt == attempts:
                raise
            time.sleep(wait * 2 ** (attempt - 1))


def reembed_ids(
    index: int,
    ids: Sequence[str],
    graph: GraphStore,
    vectors: VectorStore,
    provider: EmbeddingProvider,
    batch_size: int,
    window: int = WRITE_WINDOW,
    checkpoint: Callable[[], None] | None = None,
    resume_since: float | None = None,
    depth: int = STAGE_DEPTH,
    write_attempts: int = WRITE_ATTEMPTS,
    progress: Callable[[int], None] | None = None,
    carry_from: VectorStore | None = None,
) -> ChunkResult:
    """Re-embed one work unit of ids (already selected), in windows that overlap (run_stages):
    window k+1 is read from the graph and embedded while window k is written.

    Read: the node's properties (content and payload fields) in one graph query; memories
    deleted or emptied since the selection are skipped. Embed: API batches of ``batch_size``
    (a batch the provider refuses fails only its ids). Write: payload = node properties ⊕
    stamps, merged into the point's payload by Qdrant (VectorStore.write_vectors never reads a
    payload back). A store outage during a write is retried in the step ``write_attempts``
    times with the window's vectors in hand; after that it propagates (the step is retried).
    ``resume_since`` (a retry or re-execution of this run's unit) skips, without embedding,
    the memories an earlier attempt already wrote with the same content after that time.
    ``checkpoint`` is called after each window is written; it may raise to stop there.
    ``progress`` is called after each window is written with the ids of the unit done so far
    (written, skipped or failed), in the caller's thread.
    ``carry_from``: another collection (a migration's source) whose points' payloads are the
    base of the written ones, so a payload key only the old point had is carried over.
    """
    started = time.perf_counter()
    identity = EmbeddingIdentity.of(provider)
    size = window_size(batch_size, window)
    windows = [list(ids[i : i + size]) for i in range(0, len(ids), size)]
    finished = [0]  # ids of the unit through the write stage

    def read(part: list[str]) -> _Window:
        props = graph.fetch_properties(part)
        todo = [(m, props[m].get("content")) for m in part if m in props]
        out = _Window(props, [(m, c) for m, c in todo if has_content(c)])
        out.missing = len(part) - len(todo)
        out.empty = len(todo) - len(out.todo)
        out.size = len(part)
        if resume_since is not None and out.todo:
            done = _written_since(vectors, out.todo, identity, resume_since)
            out.todo = [(m, c) for m, c in out.todo if m not in done]
            out.resumed = len(done)
        if carry_from is not None and out.todo:
            out.base = carry_from.payloads([m for m, _ in out.todo])
        return out

    def embed(w: _Window) -> _Window:
        began = time.perf_counter()
        batches = [
            ([m for m, _ in w.todo[i : i + batch_size]], [c for _, c in w.todo[i : i + batch_size]])
            for i in range(0, len(w.todo), batch_size)
        ]
        by_id = dict(w.todo)
        rows: list[np.ndarray] = []
        for outcome in embed_batches(provider, batches):
            w.requests += outcome.requests
            if outcome.result is None:
                for mid in outcome.ids:
                    w.failed[mid] = outcome.error or "embedding failed"
                continue
            w.ids.extend(outcome.ids)
            w.hashes.extend(content_hash(by_id[m]) for m in outcome.ids)
            rows.append(outcome.result.vectors)
            if outcome.result.tokens is not None:
                w.tokens = (w.tokens or 0) + outcome.result.tokens
        w.vectors = np.vstack(rows) if rows else None
        w.embed_seconds = time.perf_counter() - began
        return w

    def stamps(hashed: str) -> dict[str, Any]:
        return make_stamps(hashed, identity.provider, identity.model, identity.dim)

    def write(w: _Window) -> _Window:
        if w.ids:
            payloads = [
                merged_payload(w.base.get(mid), w.props[mid], stamps(h))
                for mid, h in zip(w.ids, w.hashes)
            ]
            _retry_write(
                lambda: vectors.write_vectors(w.ids, w.vectors, payloads),
                write_attempts,
                WRITE_RETRY_SECONDS,
            )
        w.vectors, w.base = None, {}  # only counts outlive the window
        if progress is not None:
            finished[0] += w.size
            progress(finished[0])
        return w

    with vectors.bulk_phase():
        done = run_stages(windows, read, embed, write, depth=depth, between_windows=checkpoint)
    tokens = [w.tokens for w in done if w.tokens is not None]
    empty = sum(w.empty for w in done)
    missing = sum(w.missing for w in done)
    return ChunkResult(
        index=index,
        total=len(ids),
        processed=sum(len(w.ids) + w.resumed for w in done),
        skipped=empty + missing,
        failed={m: e for w in done for m, e in w.failed.items()},
        skipped_empty=empty,
        skipped_missing=missing,
        tokens=sum(tokens) if tokens else None,
        requests=sum(w.requests for w in done),
        embed_seconds=sum(w.embed_seconds for w in done),
        seconds=time.perf_counter() - started,
        pending_links=[m for w in done for m in w.ids if w.props[m].get(SIMILAR_PENDING) is True],
        resumed=sum(w.resumed for w in done),
    )


def summarize(
    results: Sequence[ChunkResult],
    selection: Selection,
    batch_size: int,
    seconds: float | None = None,
) -> dict[str, Any]:
    """The job's summary in the reference's shape, extended; checks that the counts add up."""
    total = selection.total
    processed = sum(r.processed for r in results)
    skipped = selection.skipped + sum(r.skipped for r in results)
    failed_ids = [mid for r in sorted(results, key=lambda r: r.index) for mid in r.failed]
    failed = len(failed_ids)
    if processed + skipped + failed != total:
        raise CountMismatchError(
            f"re-embed counts do not add up: processed {processed} + skipped {skipped} + "
            f"failed {failed} != total {total} ({len(results)} chunk results collected); "
            "some chunks did not run — re-run the job (force=false) to finish it"
        )
    tokens = [r.tokens for r in results if r.tokens is not None]
    errors = [e for r in results for e in r.failed.values()]
    summary: dict[str, Any] = {
        "status": "complete",
        "processed": processed,
        "failed": failed,
        "skipped": skipped,
        "total": total,
        "batch_size": batch_size,
        "metadata_preserved": True,
        "failed_ids": failed_ids[:FAILED_IDS_SHOWN],
        "skipped_empty": selection.skipped_empty + sum(r.skipped_empty for r in results),
        "skipped_unchanged": selection.skipped_unchanged,
        "skipped_missing": selection.skipped_missing + sum(r.skipped_missing for r in results),
        "adopted": selection.adopted,
        "skipped_invalid_id": selection.invalid_count,
        "invalid_ids": selection.invalid_ids[:FAILED_IDS_SHOWN],
        "skipped_duplicate_id": selection.duplicate_nodes,
        "duplicate_ids": selection.duplicate_ids[:FAILED_IDS_SHOWN],
        "identity": selection.identity,
        "identity_check_texts": selection.identity_texts,
        "provider_requests": sum(r.requests for r in results)
        + (1 if selection.identity_texts else 0),
        "tokens": sum(tokens) if tokens else None,
        "embed_seconds": round(sum(r.embed_seconds for r in results), 3),
        "upsert_seconds": round(sum(r.seconds for r in results), 3),
    }
    if failed > FAILED_IDS_SHOWN:
        summary["failed_ids_truncated"] = True
    if errors:
        summary["last_error"] = errors[-1][:500]
    if seconds is not None:
        summary["seconds"] = round(seconds, 3)
    return summary
