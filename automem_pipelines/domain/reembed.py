"""Re-embedding, as plain functions: enumerate → select → chunk → embed → upsert → summarize.

Each stage reads what it needs from the stores itself, so the Dagster steps pass only ids
and vectors between them, and a retried upsert never pays for embeddings again. The
selection (which memories already hold a current vector) runs before the fan-out, so an
incremental run over an unchanged store starts no embed or upsert step at all.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..stores.graph import GraphStore
from ..stores.vectors import VectorStore
from .embeddings import EmbeddingProvider, embed_batches
from .memory import (
    SIMILAR_PENDING,
    content_hash,
    has_content,
    make_stamps,
    merged_payload,
)
from .selection import (
    ADOPT_BATCH,
    CHUNK_SIZE,
    SELECT_PAGE,
    Selection,
    adopt,
    enumerate_ids,
    plan_chunks,
    plan_reembed,
    select_memories,
)

__all__ = [
    "ADOPT_BATCH",
    "CHUNK_SIZE",
    "SELECT_PAGE",
    "Selection",
    "adopt",
    "enumerate_ids",
    "plan_chunks",
    "plan_reembed",
    "select_memories",
    "CountMismatchError",
    "EmbeddedChunk",
    "UpsertedChunk",
    "embed_chunk",
    "summarize",
    "upsert_chunk",
]

FAILED_IDS_SHOWN = 10
WRITE_WINDOW = 1024  # points read from the graph and written to Qdrant per round


class CountMismatchError(RuntimeError):
    """processed + skipped + failed did not add up to the enumerated total."""


@dataclass
class EmbeddedChunk:
    index: int
    total: int
    provider: str
    model: str
    dim: int
    ids: list[str] = field(default_factory=list)  # embedded, row i of vectors
    vectors: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    hashes: list[str] = field(default_factory=list)  # hash of the content each vector came from
    skipped_empty: list[str] = field(default_factory=list)
    skipped_missing: list[str] = field(default_factory=list)  # deleted since enumeration
    failed: dict[str, str] = field(default_factory=dict)
    tokens: int | None = None
    requests: int = 0
    seconds: float = 0.0


def embed_chunk(
    index: int,
    ids: Sequence[str],
    graph: GraphStore,
    provider: EmbeddingProvider,
    batch_size: int,
) -> EmbeddedChunk:
    """Embed the current content of ``ids`` (already selected); memories deleted or emptied
    since the selection are skipped, a batch the provider refuses fails only its ids."""
    started = time.perf_counter()
    out = EmbeddedChunk(index, len(ids), provider.provider, provider.model, provider.dim)
    contents = graph.fetch_contents(ids)
    todo: list[tuple[str, str]] = []
    for mid in ids:
        if mid not in contents:
            out.skipped_missing.append(mid)
        elif not has_content(contents[mid]):
            out.skipped_empty.append(mid)
        else:
            todo.append((mid, contents[mid]))
    batches = [
        ([m for m, _ in todo[i : i + batch_size]], [c for _, c in todo[i : i + batch_size]])
        for i in range(0, len(todo), batch_size)
    ]
    by_id = dict(todo)
    rows: list[np.ndarray] = []
    tokens: int | None = None
    for outcome in embed_batches(provider, batches):
        out.requests += outcome.requests
        if outcome.result is None:
            for mid in outcome.ids:
                out.failed[mid] = outcome.error or "embedding failed"
            continue
        out.ids.extend(outcome.ids)
        out.hashes.extend(content_hash(by_id[m]) for m in outcome.ids)
        rows.append(outcome.result.vectors)
        if outcome.result.tokens is not None:
            tokens = (tokens or 0) + outcome.result.tokens
    out.vectors = np.vstack(rows) if rows else np.zeros((0, provider.dim), np.float32)
    out.tokens = tokens
    out.seconds = time.perf_counter() - started
    return out


@dataclass
class UpsertedChunk:
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


def upsert_chunk(
    chunk: EmbeddedChunk,
    graph: GraphStore,
    vectors: VectorStore,
    window: int = WRITE_WINDOW,
    checkpoint: Callable[[], None] | None = None,
) -> UpsertedChunk:
    """Write a chunk's vectors with payload = existing payload ⊕ fresh node properties ⊕ stamps
    (the merge is Qdrant's: VectorStore.write_vectors never reads a payload back).

    Works through the chunk in windows; the next window's node properties are read from the
    graph while the current one is written, so graph reads hide behind Qdrant writes.
    Store errors propagate (the step is retried); nothing here calls the provider.
    ``checkpoint`` is called before each window; it may raise to stop between two windows.
    """
    started = time.perf_counter()
    windows = [
        list(range(i, min(i + window, len(chunk.ids)))) for i in range(0, len(chunk.ids), window)
    ]
    written = 0
    vanished: list[str] = []
    waiting_links: list[str] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-prefetch") as pool:
        pending = (
            pool.submit(graph.fetch_properties, [chunk.ids[r] for r in windows[0]])
            if windows
            else None
        )
        for n, rows in enumerate(windows):
            if checkpoint is not None:
                checkpoint()
            with vectors.bulk_phase():  # a window's temporaries die with it
                props = pending.result()
                if n + 1 < len(windows):
                    pending = pool.submit(
                        graph.fetch_properties, [chunk.ids[r] for r in windows[n + 1]]
                    )
                present = [r for r in rows if chunk.ids[r] in props]
                waiting_links += [
                    chunk.ids[r]
                    for r in present
                    if props[chunk.ids[r]].get(SIMILAR_PENDING) is True
                ]
                vanished += [chunk.ids[r] for r in rows if chunk.ids[r] not in props]
                if not present:
                    continue
                ids = [chunk.ids[r] for r in present]
                payloads = [  # merged into the point's payload by Qdrant: nothing read back
                    merged_payload(
                        None,
                        props[mid],
                        make_stamps(chunk.hashes[r], chunk.provider, chunk.model, chunk.dim),
                    )
                    for r, mid in zip(present, ids)
                ]
                vectors.write_vectors(ids, chunk.vectors[present], payloads)
                written += len(ids)
                del props, payloads
    skipped = len(chunk.skipped_empty) + len(chunk.skipped_missing) + len(vanished)
    return UpsertedChunk(
        index=chunk.index,
        total=chunk.total,
        processed=written,
        skipped=skipped,
        failed=dict(chunk.failed),
        skipped_empty=len(chunk.skipped_empty),
        skipped_missing=len(chunk.skipped_missing) + len(vanished),
        tokens=chunk.tokens,
        requests=chunk.requests,
        embed_seconds=chunk.seconds,
        seconds=time.perf_counter() - started,
        pending_links=waiting_links,
    )


def summarize(
    results: Sequence[UpsertedChunk],
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
        "skipped_invalid_id": len(selection.invalid_ids),
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
