"""Re-embedding, as plain functions: enumerate → select → chunk → embed → upsert → summarize.

Each stage reads what it needs from the stores itself, so the Dagster steps pass only ids
and vectors between them, and a retried upsert never pays for embeddings again. The
selection (which memories already hold a current vector) runs before the fan-out, so an
incremental run over an unchanged store starts no embed or upsert step at all.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..stores.graph import GraphStore
from ..stores.vectors import VectorStore
from .embeddings import EmbeddingProvider, embed_batches
from .gc_pause import cyclic_gc_paused
from .memory import CHECK_KEY, content_hash, has_content, make_stamps, merged_payload, stamp_is_current

MAX_CHUNKS = 32  # dynamic steps stay in the tens whatever the store size
MIN_CHUNK = 10_000  # below this per chunk, per-step overhead (events, IO) outweighs the gain
FAILED_IDS_SHOWN = 10
WRITE_WINDOW = 1024  # points read from the graph and written to Qdrant per round
SELECT_PAGE = 1_000  # ids per round: small pages keep short-lived objects out of the old GC generation


class CountMismatchError(RuntimeError):
    """processed + skipped + failed did not add up to the enumerated total."""


def enumerate_ids(graph: GraphStore, limit: int | None) -> list[str]:
    """Every memory id (graph order), or the ``limit`` newest memories that have content."""
    if limit is None:
        return list(graph.memory_ids())
    return graph.newest_ids_with_content(limit)


def plan_chunks(ids: Sequence[str], batch_size: int, max_chunks: int = MAX_CHUNKS,
                min_chunk: int = MIN_CHUNK) -> list[list[str]]:
    """Split ids into at most ``max_chunks`` chunks, each a whole number of API batches."""
    if not ids:
        return []
    size = max(min_chunk, math.ceil(len(ids) / max_chunks))
    size = math.ceil(size / batch_size) * batch_size
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


@dataclass
class Selection:
    """What enumeration decided before any embedding: the ids to embed and what it skipped."""

    total: int
    todo: list[str]
    skipped_empty: int = 0
    skipped_unchanged: int = 0
    skipped_missing: int = 0

    @property
    def skipped(self) -> int:
        return self.skipped_empty + self.skipped_unchanged + self.skipped_missing


def select_memories(
    ids: Sequence[str],
    graph: GraphStore,
    vectors: VectorStore,
    provider: EmbeddingProvider,
    force: bool,
    page: int = SELECT_PAGE,
) -> Selection:
    """Keep the ids that need a vector. ``force`` keeps them all (the embed step still skips
    empty content); otherwise a page at a time, a memory is skipped when it has no content or
    its point's stamp says this provider/model/dim already embedded this content."""
    if force:
        return Selection(len(ids), list(ids))
    selection = Selection(len(ids), [])
    for start in range(0, len(ids), page):
        part = ids[start : start + page]
        contents = graph.fetch_contents(part)
        stamps = vectors.payloads(part, keys=[CHECK_KEY])
        for mid in part:
            if mid not in contents:
                selection.skipped_missing += 1
            elif not has_content(contents[mid]):
                selection.skipped_empty += 1
            elif stamp_is_current(
                stamps.get(mid), contents[mid], provider.provider, provider.model, provider.dim
            ):
                selection.skipped_unchanged += 1
            else:
                selection.todo.append(mid)
    return selection


def plan_reembed(
    graph: GraphStore,
    vectors: VectorStore,
    provider: EmbeddingProvider,
    limit: int | None,
    force: bool,
) -> Selection:
    """Enumerate and select in one read phase, with the cyclic GC paused (see gc_pause)."""
    with cyclic_gc_paused():
        ids = enumerate_ids(graph, limit)
        return select_memories(ids, graph, vectors, provider, force)


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
        out.requests += 1
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


def upsert_chunk(chunk: EmbeddedChunk, graph: GraphStore, vectors: VectorStore,
                 window: int = WRITE_WINDOW,
                 checkpoint: Callable[[], None] | None = None) -> UpsertedChunk:
    """Write a chunk's vectors with payload = existing payload ⊕ fresh node properties ⊕ stamps.

    Works through the chunk in windows; the next window's node properties are read from the
    graph while the current one is written, so graph reads hide behind Qdrant writes.
    Store errors propagate (the step is retried); nothing here calls the provider.
    ``checkpoint`` is called before each window; it may raise to stop between two windows.
    """
    started = time.perf_counter()
    windows = [list(range(i, min(i + window, len(chunk.ids)))) for i in range(0, len(chunk.ids), window)]
    written = 0
    vanished: list[str] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-prefetch") as pool:
        pending = pool.submit(graph.fetch_properties, [chunk.ids[r] for r in windows[0]]) if windows else None
        for n, rows in enumerate(windows):
            if checkpoint is not None:
                checkpoint()
            with cyclic_gc_paused():  # a window's temporaries die with it (see gc_pause)
                props = pending.result()
                if n + 1 < len(windows):
                    pending = pool.submit(graph.fetch_properties, [chunk.ids[r] for r in windows[n + 1]])
                present = [r for r in rows if chunk.ids[r] in props]
                vanished += [chunk.ids[r] for r in rows if chunk.ids[r] not in props]
                if not present:
                    continue
                ids = [chunk.ids[r] for r in present]
                existing = vectors.payloads(ids)
                payloads = [
                    merged_payload(existing.get(mid), props[mid],
                                   make_stamps(chunk.hashes[r], chunk.provider, chunk.model, chunk.dim))
                    for r, mid in zip(present, ids)
                ]
                vectors.upsert(ids, chunk.vectors[present], payloads)
                written += len(ids)
                del props, existing, payloads
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
    )


def summarize(results: Sequence[UpsertedChunk], selection: Selection, batch_size: int,
              seconds: float | None = None) -> dict[str, Any]:
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
        "provider_requests": sum(r.requests for r in results),
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
