"""The re-embed plain functions on real stores, without Dagster."""

import threading
import time

import pytest

from automem_pipelines.domain import identity, reembed, selection
from automem_pipelines.domain.embeddings import local_provider
from automem_pipelines.domain.memory import utc_now_iso
from automem_pipelines.domain.vector_state import EmbeddingIdentity
from automem_pipelines.stores.graph import GraphUnavailableError
from automem_pipelines.stores.vectors import VectorStoreUnavailableError
from tests.helpers import load_sample, new_id


def test_plan_chunks_are_of_the_configured_size_whatever_the_store_size():
    ids = [str(i) for i in range(1_000_000)]
    chunks = reembed.plan_chunks(ids, batch_size=100)
    assert len(chunks) == 100  # chunks of CHUNK_SIZE: more steps, never bigger ones
    assert {len(c) for c in chunks} == {reembed.CHUNK_SIZE}
    assert [m for c in chunks for m in c] == ids
    odd = reembed.plan_chunks(ids[:15000], batch_size=32, chunk_size=1000)
    assert [len(c) for c in odd[:2]] == [1024, 1024]  # whole API batches
    assert sum(len(c) for c in odd) == 15000 and len(odd[-1]) == 15000 - 14 * 1024
    assert reembed.plan_chunks([], batch_size=32) == []


def test_memories_deleted_or_emptied_after_selection_are_counted_skipped(graph, vector_store):
    rows = load_sample(graph, 30)
    ids = [r["id"] for r in rows] + [new_id()]  # one id that never existed
    vector_store.ensure_collection(256)
    gone, emptied = rows[3]["id"], rows[5]["id"]
    graph.query("MATCH (m:Memory {id: $id}) DELETE m", {"id": gone})
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = ' '", {"id": emptied})
    result = reembed.reembed_ids(0, ids, graph, vector_store, local_provider(), 8, window=7)
    assert (result.processed, result.skipped_missing, result.skipped_empty) == (28, 2, 1)
    assert result.requests == 4  # windows of one API batch (8): 28 texts
    assert set(vector_store.payloads(ids)) == set(ids[:31]) - {gone, emptied, ids[-1]}
    summary = reembed.summarize([result], reembed.Selection(31, ids), batch_size=8)
    assert (summary["processed"], summary["skipped"], summary["failed"]) == (28, 3, 0)


def test_counts_that_do_not_add_up_fail_loudly(graph, vector_store):
    load_sample(graph, 5)
    ids = list(graph.memory_ids())
    vector_store.ensure_collection(256)
    result = reembed.reembed_ids(0, ids, graph, vector_store, local_provider(), 8)
    try:
        reembed.summarize([result], reembed.Selection(9, ids), batch_size=8)  # a chunk lost
    except reembed.CountMismatchError as exc:
        assert "5 + skipped 0 + failed 0 != total 9" in str(exc)
    else:
        raise AssertionError("expected CountMismatchError")


class _CountingProvider:
    """The local provider, counting the texts it is asked to embed."""

    def __init__(self):
        self.inner, self.texts = local_provider(), 0

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def embed(self, texts):
        self.texts += len(texts)
        return self.inner.embed(texts)


def test_a_resumed_unit_skips_what_this_run_already_wrote_and_nothing_else(graph, vector_store):
    rows = load_sample(graph, 40)
    ids = [r["id"] for r in rows]
    provider = _CountingProvider()
    vector_store.ensure_collection(provider.dim)
    reembed.reembed_ids(0, ids[:10], graph, vector_store, provider, 8)  # an older run
    started = time.time()
    reembed.reembed_ids(0, ids[10:25], graph, vector_store, provider, 8)  # this run, 1st try
    changed = ids[12]  # rewritten since: its vector is not current any more
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = 'new words'", {"id": changed})
    provider.texts = 0
    result = reembed.reembed_ids(
        0, ids, graph, vector_store, provider, 8, window=16, resume_since=started
    )
    assert result.resumed == 14  # ids[10:25] but the changed one
    assert provider.texts == 40 - 14  # the older run's ten are re-embedded: it is a forced run
    assert (result.processed, result.skipped, result.failed) == (40, 0, {})
    assert vector_store.payloads([changed])[changed]["content"] == "new words"


class _WritesFailing:
    """The real store, with its first ``failures`` vector writes refused as an outage."""

    def __init__(self, store, failures):
        self.store, self.failures, self.calls = store, failures, 0

    def __getattr__(self, name):
        return getattr(self.store, name)

    def write_vectors(self, ids, vectors, payloads):
        self.calls += 1
        if self.calls <= self.failures:
            raise VectorStoreUnavailableError("injected outage")
        return self.store.write_vectors(ids, vectors, payloads)


def test_a_short_store_outage_is_retried_with_the_vectors_in_hand(graph, vector_store, monkeypatch):
    monkeypatch.setattr(reembed, "WRITE_RETRY_SECONDS", 0.01)
    rows = load_sample(graph, 20)
    ids = [r["id"] for r in rows]
    provider = _CountingProvider()
    vector_store.ensure_collection(provider.dim)
    store = _WritesFailing(vector_store, failures=reembed.WRITE_ATTEMPTS - 1)
    result = reembed.reembed_ids(0, ids, graph, store, provider, 8)
    assert (result.processed, provider.texts, store.calls) == (20, 20, reembed.WRITE_ATTEMPTS)
    assert vector_store.count() == 20

    longer = _WritesFailing(vector_store, failures=reembed.WRITE_ATTEMPTS)
    with pytest.raises(VectorStoreUnavailableError):  # the step's retry takes it from here
        reembed.reembed_ids(0, ids, graph, longer, provider, 8)
    assert longer.calls == reembed.WRITE_ATTEMPTS


def test_the_chunk_stages_overlap_reading_embedding_and_writing(graph, vector_store):
    """Window k+1 is embedded while window k is written: the provider is called while a
    write is still in progress."""
    rows = load_sample(graph, 48)
    ids = [r["id"] for r in rows]
    provider = _CountingProvider()
    vector_store.ensure_collection(provider.dim)
    writing = threading.Event()
    overlapped: list[int] = []
    embed = provider.embed

    def embed_noting_overlap(texts):
        overlapped.append(writing.is_set())
        return embed(texts)

    provider.embed = embed_noting_overlap

    class SlowWrites(_WritesFailing):
        def write_vectors(self, ids, vectors, payloads):
            writing.set()
            time.sleep(0.2)
            try:
                return super().write_vectors(ids, vectors, payloads)
            finally:
                writing.clear()

    result = reembed.reembed_ids(0, ids, graph, SlowWrites(vector_store, 0), provider, 8, window=8)
    assert result.processed == 48
    assert any(overlapped), overlapped  # some batch was embedded during a write


def test_selection_keeps_only_memories_without_a_current_vector(graph, vector_store):
    provider = local_provider()
    ident = EmbeddingIdentity.of(provider)
    rows = load_sample(graph, 12)
    ids = [r["id"] for r in rows]
    vector_store.ensure_collection(provider.dim)
    first = reembed.select_memories(ids, graph, vector_store, ident, False, True, page=5)
    assert (first.todo, first.skipped) == (ids, 0)  # no points yet
    reembed.reembed_ids(0, ids, graph, vector_store, provider, 8)

    changed, emptied, deleted = ids[1], ids[4], ids[7]
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = 'rewritten text'", {"id": changed})
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = '  '", {"id": emptied})
    graph.query("MATCH (m:Memory {id: $id}) DELETE m", {"id": deleted})
    again = reembed.select_memories(ids, graph, vector_store, ident, False, True, page=5)
    assert again.todo == [changed]
    assert (again.skipped_unchanged, again.skipped_empty, again.skipped_missing) == (9, 1, 1)
    assert again.total == 12 and again.skipped + len(again.todo) == 12

    forced = reembed.select_memories(ids, graph, vector_store, ident, True, True)
    assert (forced.todo, forced.skipped) == (ids, 0)  # the embed step skips empty/deleted


def test_reading_contents_first_decides_exactly_as_the_adaptive_reads(graph, vector_store):
    """A mostly unstamped store read stamps-and-contents at once from the first page (the
    identity check's hint) gets the same verdict per memory, in one Qdrant read per page."""
    provider = local_provider()
    ident = EmbeddingIdentity.of(provider)
    rows = load_sample(graph, 12)
    ids = [r["id"] for r in rows]
    vector_store.ensure_collection(provider.dim)
    stamped = ids[7:10]
    reembed.reembed_ids(0, stamped, graph, vector_store, provider, 8)
    unstamped = rows[:7]  # AutoMem's points: payload content, no stamps
    vecs = provider.embed([r["content"] for r in unstamped]).vectors
    payloads = [{"content": r["content"]} for r in unstamped]
    payloads[0]["content"] = "an older text"  # not the node's content: stale
    vector_store.upsert([r["id"] for r in unstamped], vecs, payloads)  # ids[10:] have no point

    reads: list[int] = []
    payloads_of = vector_store.payloads
    vector_store.payloads = lambda part, keys=None: (
        reads.append(len(part)) or payloads_of(part, keys)
    )
    verdicts = []
    for first in (False, True):
        reads.clear()
        sel = reembed.select_memories(
            ids, graph, vector_store, ident, False, True, page=5, contents_first=first
        )
        verdicts.append((sel.todo, sorted(sel._adoptable), sel.skipped_unchanged))
        # adaptive: page 1 reads stamps, then the contents of those that need them (all);
        # contents first: page 1 in one read; then both adapt alike
        assert reads == ([5, 5, 2] if first else [5, 5, 5, 2]), reads
    assert verdicts[0] == verdicts[1]
    assert verdicts[1] == (
        [unstamped[0]["id"], *ids[10:]],
        sorted(r["id"] for r in unstamped[1:]),
        3,
    )

    check = identity.check_identity(vector_store, provider)  # samples 7 unstamped of 10 points
    assert check.mostly_unstamped and check.provider_texts == 7
    assert not identity.check_identity(
        vector_store, provider
    ).mostly_unstamped  # recorded: no sample


def test_a_refusal_wins_over_the_graph_listing_beside_it(graph, vector_store):
    """The identity check and the graph's listing run side by side: a collection of another
    model is refused with its own error even when the graph fails meanwhile."""
    provider = local_provider()
    vector_store.ensure_collection(provider.dim)
    other = EmbeddingIdentity(provider.provider, "another-model", provider.dim)
    identity.write_record(
        vector_store, identity.IdentityRecord(other, identity.VERIFIED, "sampled", utc_now_iso())
    )

    def down(*_args, **_kwargs):
        raise GraphUnavailableError("FalkorDB is unreachable")

    graph.memory_ids = down
    with pytest.raises(identity.EmbeddingIdentityError, match="another-model"):
        reembed.plan_reembed(graph, vector_store, provider, None, False)
    vector_store.client.delete_collection(vector_store.collection)
    with pytest.raises(GraphUnavailableError):  # no refusal: the graph's error surfaces
        reembed.plan_reembed(graph, vector_store, provider, None, False)


def test_cyclic_gc_pause_restores_the_collector():
    import gc

    from automem_pipelines.stores.gc_pause import cyclic_gc_paused

    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not re-enable early
    assert gc.isenabled()
    try:
        with cyclic_gc_paused():
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            pass
        assert not gc.isenabled()  # left as it was found
    finally:
        gc.enable()


def test_packed_ids_read_back_the_same_ids_in_order_and_pickle_small():
    import pickle

    ids = [new_id() for _ in range(1000)]
    packed = reembed.PackedIds(ids[:600])
    packed.extend(ids[600:999])
    packed.append(ids[999])
    assert len(packed) == 1000 and list(packed) == ids and packed == ids
    assert packed[0] == ids[0] and packed[-1] == ids[-1] and packed[10:20] == ids[10:20]
    assert isinstance(packed[10:20], reembed.PackedIds) and packed[::7] == ids[::7]
    data = pickle.dumps(packed)
    assert pickle.loads(data) == ids and len(data) < 16 * 1000 + 200  # not ~45 bytes an id
    chunks = reembed.plan_chunks(packed, batch_size=100, chunk_size=300)
    assert [len(c) for c in chunks] == [300, 300, 300, 100]
    assert all(isinstance(c, reembed.PackedIds) for c in chunks)
    assert [m for c in chunks for m in c] == ids
    with pytest.raises(IndexError):
        packed[1000]


def test_the_plan_listed_in_segments_decides_as_in_one(graph, vector_store):
    """Segments of the listing (the plan's bounded memory) change no verdict and no count,
    ids several nodes share included, wherever in the listing those nodes are."""
    from tests.unit.test_drift import bad_rows

    provider = local_provider()
    rows = load_sample(graph, 25)
    bad = bad_rows(graph)  # invalid ids and a shared id, after the sample in graph order
    graph.query(  # a third node with the shared id, created last
        "CREATE (:Memory {id: $id, content: 'third'})", {"id": bad["dup"]}
    )
    vector_store.ensure_collection(provider.dim)
    ids = [r["id"] for r in rows]
    reembed.reembed_ids(0, ids[:10], graph, vector_store, provider, 8)
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = 'changed'", {"id": ids[3]})

    def plan(segment: int, force: bool = False):
        sel = reembed.plan_reembed(graph, vector_store, provider, None, force, segment=segment)
        return (
            list(sel.todo),
            sel.total,
            sel.skipped_unchanged,
            sel.skipped_empty,
            sel.invalid_count,
            sel.duplicate_nodes,
            sel.duplicate_ids,
        )

    whole = plan(selection.SEGMENT)
    assert plan(4) == whole and plan(1) == whole
    assert whole[2] == 9 and ids[3] in whole[0] and whole[5] == 3  # three nodes share the id
    assert whole[6] == [bad["dup"]] and whole[1] == len(list(graph.memory_ids()))
    assert plan(3, force=True)[1:] == plan(selection.SEGMENT, force=True)[1:]
