"""Re-embedding, as plain functions: enumerate → select → chunk → embed → upsert → summarize.

Each stage reads what it needs from the stores itself, so the Dagster steps pass only ids
and vectors between them, and a retried upsert never pays for embeddings again. The
selection (which memories already hold a current vector) runs before the fan-out, so an
incremental run over an unchanged store starts no embed or upsert step at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..stores.graph import GraphStore
from ..stores.vectors import VectorStore
from . import identity as identity_mod
from .embeddings import EmbeddingProvider, embed_batches
from .memory import (
    CHECK_KEY,
    SIMILAR_PENDING,
    adoption_stamps,
    content_hash,
    has_content,
    make_stamps,
    merged_payload,
    split_usable_ids,
)
from .vector_state import STATE_KEYS, EmbeddingIdentity, VectorState, needs_content, vector_state

MAX_CHUNKS = 32  # dynamic steps stay in the tens whatever the store size
MIN_CHUNK = 10_000  # below this per chunk, per-step overhead (events, IO) outweighs the gain
FAILED_IDS_SHOWN = 10
WRITE_WINDOW = 1024  # points read from the graph and written to Qdrant per round
ADOPT_BATCH = 1_024  # stamp writes per round
SELECT_PAGE = (
    1_000  # ids per round: small pages keep short-lived objects out of the old GC generation
)


class CountMismatchError(RuntimeError):
    """processed + skipped + failed did not add up to the enumerated total."""


def enumerate_ids(graph: GraphStore, limit: int | None) -> list[str]:
    """Every memory id (graph order), or the ``limit`` newest memories that have content."""
    if limit is None:
        return list(graph.memory_ids())
    return graph.newest_ids_with_content(limit)


def plan_chunks(
    ids: Sequence[str], batch_size: int, max_chunks: int = MAX_CHUNKS, min_chunk: int = MIN_CHUNK
) -> list[list[str]]:
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
    adopted: int = 0  # unstamped points of the collection's model: stamps written, no embedding
    invalid_ids: list[str] = field(default_factory=list)  # nodes whose id cannot be a point id
    duplicate_ids: list[str] = field(default_factory=list)  # ids several nodes share
    duplicate_nodes: int = 0  # the nodes behind them
    identity_texts: int = 0  # texts the identity check embedded (0 once it is recorded)
    identity: str = ""  # what the identity check found, for the log and the summary
    replacing: bool = False  # re-embedding in place with another model (see identity.py)
    _adoptable: dict[str, str] = field(default_factory=dict, repr=False)  # id -> content hash

    @property
    def skipped(self) -> int:
        return (
            self.skipped_empty
            + self.skipped_unchanged
            + self.skipped_missing
            + self.adopted
            + len(self.invalid_ids)
            + self.duplicate_nodes
        )


def select_memories(
    ids: Sequence[str],
    graph: GraphStore,
    vectors: VectorStore,
    identity: EmbeddingIdentity,
    force: bool,
    trust_unstamped: bool,
    page: int = SELECT_PAGE,
    contents_first: bool = False,
) -> Selection:
    """Keep the ids that need a vector, by the one rule (``vector_state``). ``force`` keeps them
    all (the embed step still skips empty content); otherwise, a page at a time, memories
    without content are skipped, current points are skipped, adoptable ones (unstamped, same
    content, collection identity proven) are set aside for adoption.

    Reads adapt to the store: a page whose points mostly need their payload content (unstamped
    or adopted) makes the next page read the rule's keys and the contents at once, instead of
    the stamps first; ``contents_first`` starts so (the identity check found the store mostly
    unstamped). The next page's node contents are read from the graph while this page's points
    are read from Qdrant and judged."""
    if force:
        return Selection(len(ids), list(ids))
    selection = Selection(len(ids), [])
    whole = contents_first  # the previous page mostly needed contents too: read them at once
    pages = [ids[start : start + page] for start in range(0, len(ids), page)]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-prefetch") as pool:
        pending = pool.submit(graph.fetch_contents, pages[0]) if pages else None
        for n, part in enumerate(pages):
            contents = pending.result()
            if n + 1 < len(pages):
                pending = pool.submit(graph.fetch_contents, pages[n + 1])
            payloads = vectors.payloads(part, keys=list(STATE_KEYS) if whole else [CHECK_KEY])
            if not whole:
                more = [m for m in part if m in payloads and needs_content(payloads[m])]
                if more:  # unstamped or adopted: read what the rule needs (older stamps, content)
                    payloads.update(vectors.payloads(more, keys=list(STATE_KEYS)))
                whole = len(more) > len(part) // 2
            else:
                whole = sum(needs_content(p) for p in payloads.values()) > len(part) // 2
            _judge(part, contents, payloads, identity, trust_unstamped, selection)
    return selection


def _judge(
    part: Sequence[str],
    contents: dict[str, Any],
    payloads: dict[str, dict],
    identity: EmbeddingIdentity,
    trust_unstamped: bool,
    selection: Selection,
) -> None:
    for mid in part:
        if mid not in contents:
            selection.skipped_missing += 1
            continue
        if not has_content(contents[mid]):
            selection.skipped_empty += 1
            continue
        hashed = content_hash(contents[mid])
        state = vector_state(payloads.get(mid), hashed, identity, trust_unstamped)
        if state is VectorState.CURRENT:
            selection.skipped_unchanged += 1
        elif state is VectorState.ADOPTABLE:
            selection._adoptable[mid] = hashed
        else:
            selection.todo.append(mid)


def adopt(vectors: VectorStore, selection: Selection, identity: EmbeddingIdentity) -> int:
    """Stamp adoptable points (their vectors are the configured model's for their present
    content) with ``adoption_stamps``: one payload write per batch of points, no provider
    call, no vector or other payload key touched."""
    ids = list(selection._adoptable)
    stamps = adoption_stamps(identity.provider, identity.model, identity.dim)
    for start in range(0, len(ids), ADOPT_BATCH):
        vectors.set_payload_many(ids[start : start + ADOPT_BATCH], stamps)
    selection.adopted += len(ids)
    selection._adoptable = {}
    return len(ids)


def _listed(
    graph: GraphStore, limit: int | None
) -> tuple[list[str], tuple[list[str], list[str], list[str]]]:
    found = enumerate_ids(graph, limit)
    return found, split_usable_ids(found)


def plan_reembed(
    graph: GraphStore,
    vectors: VectorStore,
    provider: EmbeddingProvider,
    limit: int | None,
    force: bool,
    replace_in_place: bool = False,
) -> Selection:
    """Prove the collection's embedding identity (creating the collection if absent) while the
    graph's memories are listed (a read, in a thread), then select, all in one read phase (the
    store's bulk phase: see VectorStore.bulk_phase), then adopt what can be adopted. Raises
    DimensionMismatchError / EmbeddingIdentityError before anything is written (a refusal
    wins over a graph error of the listing running beside it)."""
    with vectors.bulk_phase():
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-enumerate") as pool:
            listing = pool.submit(_listed, graph, limit)  # read-only: may overlap the check
            check = identity_mod.check_identity(vectors, provider, replace_in_place)
            found, (ids, invalid, shared) = listing.result()
        configured = check.configured
        selection = select_memories(
            ids,
            graph,
            vectors,
            configured,
            force,
            check.trust_unstamped,
            contents_first=check.mostly_unstamped,
        )
    selection.total = len(found)
    selection.invalid_ids = invalid
    selection.duplicate_ids = shared
    selection.duplicate_nodes = len(found) - len(ids) - len(invalid)
    selection.identity = check.describe()
    selection.replacing = check.record.status == identity_mod.REPLACING
    selection.identity_texts = check.provider_texts
    if selection._adoptable and check.provider_texts == 0:
        selection.identity_texts, far = identity_mod.verify_points(
            vectors, provider, list(selection._adoptable), check
        )
        for mid in far:  # checked, and another model's: embedded again, never adopted
            del selection._adoptable[mid]
            selection.todo.append(mid)
    adopt(vectors, selection, configured)
    return selection


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
    """Write a chunk's vectors with payload = existing payload ⊕ fresh node properties ⊕ stamps.

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
                existing = vectors.payloads(ids)
                payloads = [
                    merged_payload(
                        existing.get(mid),
                        props[mid],
                        make_stamps(chunk.hashes[r], chunk.provider, chunk.model, chunk.dim),
                    )
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
