"""Which memories a re-embed must embed: the collection's identity proven, the graph's memories
listed, each judged against its point by the one rule for "current" (vector_state), and the
points AutoMem wrote with the configured model adopted (stamped, no provider call).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, overload

from ..stores.graph import GraphStore
from ..stores.vectors import VectorStore
from . import identity as identity_mod
from .embeddings import EmbeddingProvider
from .memory import (
    CHECK_KEY,
    adoption_stamps,
    content_hash,
    has_content,
    id_problem,
    shown_id,
)
from .partitions import IdRange
from .vector_state import STATE_KEYS, EmbeddingIdentity, VectorState, needs_content, vector_state

# Memories per re-embed step, whatever the store size: a step's ids and what a retry repeats
# are bounded by configuration, never by the store (its vectors, by the window: reembed_ids).
CHUNK_SIZE = 10_000
ADOPT_BATCH = 1_024  # stamp writes per round
SELECT_PAGE = (
    1_000  # ids per round: small pages keep short-lived objects out of the old GC generation
)
# Memory ids listed, judged and adopted per round of the plan: what the plan holds as strings
# at once. What it keeps across rounds is only the ids still to embed, 16 bytes each.
SEGMENT = 50_000
SHOWN_IDS = 10  # ids a summary shows of a kind (invalid, shared)


class PackedIds(Sequence[str]):
    """Memory ids (lowercase hyphenated UUIDs, the only ids a point can have) held as their 16
    bytes: a million of them are 16 MB in one buffer instead of ~90 MB of str objects, and they
    pickle as one bytes object between steps. Reads back as the same strings, in order."""

    __slots__ = ("_buf",)

    def __init__(self, ids: Iterable[str] = (), _buf: bytes | bytearray | None = None):
        self._buf = bytearray(_buf or b"")
        self.extend(ids)

    def extend(self, ids: Iterable[str]) -> None:
        self._buf += b"".join(bytes.fromhex(m.replace("-", "")) for m in ids)

    def append(self, mid: str) -> None:
        self.extend((mid,))

    def __len__(self) -> int:
        return len(self._buf) // 16

    @overload
    def __getitem__(self, index: int) -> str: ...
    @overload
    def __getitem__(self, index: slice) -> PackedIds: ...
    def __getitem__(self, index):
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return PackedIds(list(self)[index])
            return PackedIds(_buf=self._buf[start * 16 : stop * 16])
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return _unpack(self._buf[index * 16 : index * 16 + 16].hex())

    def __iter__(self) -> Iterator[str]:
        data = self._buf.hex()
        for start in range(0, len(data), 32):
            yield _unpack(data[start : start + 32])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PackedIds):
            return self._buf == other._buf
        return isinstance(other, Sequence) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"PackedIds({len(self)} ids)"

    def __reduce__(self):
        return (PackedIds, ((), bytes(self._buf)))


def _unpack(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def enumerate_ids(
    graph: GraphStore,
    limit: int | None,
    segment: int = SEGMENT,
    id_range: IdRange | None = None,
) -> Iterator[list]:
    """Every memory id (graph order) in lists of ``segment``, streamed from the graph's paged
    scan; or one list of the ``limit`` newest memories that have content; of ``id_range``
    only, when one is given (a partition of the store)."""
    if limit is not None:
        yield graph.newest_ids_with_content(limit, id_range=id_range)
        return
    part: list = []
    for mid in graph.memory_ids(id_range=id_range):
        part.append(mid)
        if len(part) >= segment:
            yield part
            part = []
    if part:
        yield part


def plan_chunks(ids: Sequence[str], batch_size: int, chunk_size: int = CHUNK_SIZE) -> list:
    """Split ids into chunks of ``chunk_size`` (rounded up to a whole number of API batches);
    the last one holds the rest. Slices of PackedIds stay packed."""
    if not ids:
        return []
    size = math.ceil(chunk_size / batch_size) * batch_size
    return [
        ids[i : i + size] if isinstance(ids, PackedIds) else list(ids[i : i + size])
        for i in range(0, len(ids), size)
    ]


@dataclass
class Selection:
    """What enumeration decided before any embedding: the ids to embed and what it skipped."""

    total: int
    todo: Sequence[str]  # PackedIds in a plan; a list where tests build one by hand
    skipped_empty: int = 0
    skipped_unchanged: int = 0
    skipped_missing: int = 0
    adopted: int = 0  # unstamped points of the collection's model: stamps written, no embedding
    invalid_ids: list[str] = field(default_factory=list)  # the first few nodes whose id cannot
    invalid_count: int = 0  # be a point id, and how many there are
    duplicate_ids: list[str] = field(default_factory=list)  # the first few ids nodes share
    duplicate_nodes: int = 0  # the nodes behind all of them
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
            + self.invalid_count
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
    into: Selection | None = None,
) -> Selection:
    """Keep the ids that need a vector, by the one rule (``vector_state``). ``force`` keeps them
    all (the chunk step still skips empty content); otherwise, a page at a time, memories
    without content are skipped, current points are skipped, adoptable ones (unstamped, same
    content, collection identity proven) are set aside for adoption.

    Reads adapt to the store: a page whose points mostly need their payload content (unstamped
    or adopted) makes the next page read the rule's keys and the contents at once, instead of
    the stamps first; ``contents_first`` starts so (the identity check found the store mostly
    unstamped). The next page's node contents are read from the graph while this page's points
    are read from Qdrant and judged. ``into`` adds the verdicts to a selection already begun."""
    selection = into if into is not None else Selection(0, [])
    selection.total += len(ids)
    if force:
        selection.todo.extend(ids)
        return selection
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


def _usable(found: Sequence[Any], shared: dict[str, int], selection: Selection) -> list[str]:
    """The ids a point can have, in order; invalid ones and the nodes sharing an id are counted
    (and the first few shown) in the selection."""
    usable: list[str] = []
    for value in found:
        if id_problem(value) is not None:
            if len(selection.invalid_ids) < SHOWN_IDS:
                selection.invalid_ids.append(shown_id(value))
            selection.invalid_count += 1
        elif value in shared:
            selection.duplicate_nodes += 1
            if value not in selection.duplicate_ids and len(selection.duplicate_ids) < SHOWN_IDS:
                selection.duplicate_ids.append(value)
        else:
            usable.append(value)
    return usable


def plan_reembed(
    graph: GraphStore,
    vectors: VectorStore,
    provider: EmbeddingProvider,
    limit: int | None,
    force: bool,
    replace_in_place: bool = False,
    id_range: IdRange | None = None,
    segment: int = SEGMENT,
    progress: Callable[[int, int], None] | None = None,
) -> Selection:
    """Prove the collection's embedding identity (creating the collection if absent) while the
    graph counts the ids several nodes share (a read, in a thread), then list, select and adopt
    a segment of ids at a time, all in one read phase (the store's bulk phase: see
    VectorStore.bulk_phase), the next segment listed while this one is judged. What is kept
    across segments is counts and the ids to embed, packed: the plan's memory does not grow
    with the store but by 16 bytes per memory to embed. ``id_range``: only the memories of
    that range are listed (a partition; the identity check is the collection's). Raises DimensionMismatchError /
    EmbeddingIdentityError before anything is written (a refusal wins over a graph error).
    ``progress(done, total)``: memories judged so far, of those listed (a count query, only
    when it is given), after each segment."""
    selection = Selection(0, PackedIds())
    with vectors.bulk_phase(), ThreadPoolExecutor(1, thread_name_prefix="graph-list") as pool:
        shared_ids = pool.submit(graph.shared_ids)  # read-only: may overlap the check
        check = identity_mod.check_identity(vectors, provider, replace_in_place)
        shared = shared_ids.result()
        configured = check.configured
        total = 0
        if progress is not None:  # the graph is free again: the listing has not started
            total = graph.count_memories(id_range=id_range)
            total = total if limit is None else min(limit, total)
            progress(0, total)
        segments = enumerate_ids(graph, limit, segment, id_range)
        pending = pool.submit(next, segments, None)
        while (found := pending.result()) is not None:
            pending = pool.submit(next, segments, None)
            usable = _usable(found, shared, selection)
            select_memories(
                usable,
                graph,
                vectors,
                configured,
                force,
                check.trust_unstamped,
                contents_first=check.mostly_unstamped,
                into=selection,
            )
            selection.total += len(found) - len(usable)  # select counted the usable ones
            if selection._adoptable and check.provider_texts == 0:
                texts, far = identity_mod.verify_points(
                    vectors, provider, list(selection._adoptable), check
                )
                selection.identity_texts += texts
                for mid in far:  # checked, and another model's: embedded again, never adopted
                    del selection._adoptable[mid]
                    selection.todo.append(mid)
            adopt(vectors, selection, configured)
            if progress is not None:
                progress(selection.total, max(total, selection.total))
    selection.identity = check.describe()
    selection.replacing = check.record.status == identity_mod.REPLACING
    selection.identity_texts += check.provider_texts
    return selection
