"""The re-embed plain functions on real stores, without Dagster."""

from automem_pipelines.domain import reembed
from automem_pipelines.domain.embeddings import local_provider
from tests.helpers import load_sample, new_id


def test_plan_chunks_stays_bounded_and_batch_aligned():
    ids = [str(i) for i in range(1_000_000)]
    chunks = reembed.plan_chunks(ids, batch_size=100)
    assert len(chunks) <= reembed.MAX_CHUNKS
    assert sum(len(c) for c in chunks) == len(ids)
    assert all(len(c) % 100 == 0 for c in chunks[:-1])
    assert len(reembed.plan_chunks(ids[:15000], batch_size=32)) == 2
    assert reembed.plan_chunks([], batch_size=32) == []


def test_memories_deleted_mid_run_are_counted_skipped_not_failed(graph, vector_store):
    rows = load_sample(graph, 30)
    ids = [r["id"] for r in rows] + [new_id()]  # one id that never existed
    vector_store.ensure_collection(256)
    chunk = reembed.embed_chunk(0, ids, graph, vector_store, local_provider(), 8, force=False)
    assert chunk.skipped_missing == [ids[-1]] and len(chunk.ids) == 30

    gone = rows[3]["id"]
    graph.query("MATCH (m:Memory {id: $id}) DELETE m", {"id": gone})
    result = reembed.upsert_chunk(chunk, graph, vector_store, window=7)  # several windows
    assert (result.processed, result.skipped, result.skipped_missing) == (29, 2, 2)
    assert gone not in vector_store.payloads(ids)
    summary = reembed.summarize([result], total=31, batch_size=8)
    assert (summary["processed"], summary["skipped"], summary["failed"]) == (29, 2, 0)


def test_counts_that_do_not_add_up_fail_loudly(graph, vector_store):
    load_sample(graph, 5)
    ids = list(graph.memory_ids())
    vector_store.ensure_collection(256)
    chunk = reembed.embed_chunk(0, ids, graph, vector_store, local_provider(), 8, force=True)
    result = reembed.upsert_chunk(chunk, graph, vector_store)
    try:
        reembed.summarize([result], total=9, batch_size=8)  # a chunk that never ran
    except reembed.CountMismatchError as exc:
        assert "5 + skipped 0 + failed 0 != total 9" in str(exc)
    else:
        raise AssertionError("expected CountMismatchError")
