"""Which memories a re-embed must embed: the collection's identity proven, the graph's memories
listed, each judged against its point by the one rule for "current" (vector_state), and the
points AutoMem wrote with the configured model adopted (stamped, no provider call).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ..stores.graph import GraphStore
from ..stores.vectors import VectorStore
from . import identity as identity_mod
from .embeddings import EmbeddingProvider
from .memory import (
    CHECK_KEY,
    adoption_stamps,
    content_hash,
    has_content,
    split_usable_ids,
)
from .partitions import IdRange
from .vector_state import STATE_KEYS, EmbeddingIdentity, VectorState, needs_content, vector_state

# Memories per re-embed step, whatever the store size: a step's memory (its vectors, handed to
# the write step) and what a retry repeats are bounded by configuration, never by the store.
CHUNK_SIZE = 10_000
ADOPT_BATCH = 1_024  # stamp writes per round
SELECT_PAGE = (
    1_000  # ids per round: small pages keep short-lived objects out of the old GC generation
)


def enumerate_ids(
    graph: GraphStore, limit: int | None, id_range: IdRange | None = None
) -> list[str]:
    """Every memory id (graph order), or the ``limit`` newest memories that have content;
    of ``id_range`` only, when one is given (a partition of the store)."""
    if limit is None:
        return list(graph.memory_ids(id_range=id_range))
    return graph.newest_ids_with_content(limit, id_range=id_range)


def plan_chunks(
    ids: Sequence[str], batch_size: int, chunk_size: int = CHUNK_SIZE
) -> list[list[str]]:
    """Split ids into chunks of ``chunk_size`` (rounded up to a whole number of API batches);
    the last one holds the rest."""
    if not ids:
        return []
    size = math.ceil(chunk_size / batch_size) * batch_size
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
    graph: GraphStore, limit: int | None, id_range: IdRange | None
) -> tuple[list[str], tuple[list[str], list[str], list[str]]]:
    found = enumerate_ids(graph, limit, id_range)
    return found, split_usable_ids(found)


def plan_reembed(
    graph: GraphStore,
    vectors: VectorStore,
    provider: EmbeddingProvider,
    limit: int | None,
    force: bool,
    replace_in_place: bool = False,
    id_range: IdRange | None = None,
) -> Selection:
    """Prove the collection's embedding identity (creating the collection if absent) while the
    graph's memories are listed (a read, in a thread), then select, all in one read phase (the
    store's bulk phase: see VectorStore.bulk_phase), then adopt what can be adopted. Raises
    DimensionMismatchError / EmbeddingIdentityError before anything is written (a refusal
    wins over a graph error of the listing running beside it). ``id_range``: only the
    memories of that range are listed (a partition; the identity check is the collection's)."""
    with vectors.bulk_phase():
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="graph-enumerate") as pool:
            # read-only: the listing may overlap the check
            listing = pool.submit(_listed, graph, limit, id_range)
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
