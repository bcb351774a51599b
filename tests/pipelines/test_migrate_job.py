"""The migrate job in process, the shipped local model → an OpenAI-wire model of another size
(the test server, every request counted): readers never without recall and on the old model
until the cutover, writes made during the backfill present after the catch-up, a stop in each
stage resumed without paying twice, both cutover forms, rollback, finalize, the budget gate,
the plan's tokens, and an AutoMem-written store (the 0.16.1 fixture) moved with every payload
field it had."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pytest

from automem_pipelines.constants import VECTOR_ASSET_KEY
from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain import migration as mig
from automem_pipelines.domain.embeddings import local_provider
from automem_pipelines.domain.memory import node_props_for_write, payload_from_node
from automem_pipelines.domain.sample import sample_memories
from automem_pipelines.domain.tokens import counter_for
from automem_pipelines.run_config import migrate_run_config
from automem_pipelines.worker_identity import process_identity
from tests.helpers import failure_messages, run_reembed, summary_of
from tests.support.automem_fixture import load_fixture, snapshot
from tests.support.embedding_models import model_vectors
from tests.support.embedding_server import Fault

TARGET_MODEL = "text-embedding-3-large"
TARGET = {"to_provider": "openai", "to_model": TARGET_MODEL, "to_dim": 1024}
LOCAL = local_provider().model
MEMORIES = 120
BATCH = 16


def run_migrate(settings, resources, raise_on_error=True, instance=None, **config):
    job = build_definitions(settings).get_job_def("migrate_job")
    return job.execute_in_process(
        run_config=migrate_run_config(**{"batch_size": BATCH, **config}),
        resources=resources,
        instance=instance or dg.DagsterInstance.ephemeral(),
        raise_on_error=raise_on_error,
    )


def outcome(result) -> dict:
    return result.output_for_node("cut_over_readers")


def observations(result) -> list[tuple[str, dict]]:
    """The migration's state as each stage left it: the vector asset's observations."""
    found = [
        e.asset_observation_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    ]
    assert {o.asset_key for o in found} <= {dg.AssetKey(list(VECTOR_ASSET_KEY))}
    return [(o.description.removeprefix("Embedding-model migration: "), o.metadata) for o in found]


def texts_embedded(server) -> Counter:
    return Counter(t for r in server.state.requests for t in r.texts)


def graph_contents(graph) -> Counter:
    """Each content of the graph's memories, as many times as memories hold it."""
    return Counter(r[0] for r in graph.query("MATCH (m:Memory) RETURN m.content") if r[0])


def target_name(settings) -> str:
    return mig.target_name(
        settings.qdrant.collection, mig.EmbeddingIdentity("openai", TARGET_MODEL, 1024)
    )


@pytest.fixture
def env(make_settings, fake_openai):
    """120 sample memories embedded by the shipped local model (the live collection), the
    OpenAI-wire test server as the target's provider."""
    settings = make_settings(
        EMBEDDING_PROVIDER="local",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MAX_RETRIES="0",
    )
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        graph.ensure_indexes()
        graph.upsert_memories(node_props_for_write(m) for m in sample_memories(MEMORIES, seed=3))
        assert summary_of(run_reembed(settings, resources, batch_size=32))["processed"] == MEMORIES
        fake_openai.reset()
        yield settings, resources, graph, vectors
        try:
            vectors.for_collection(target_name(settings)).delete_collection()
        except Exception:  # noqa: BLE001
            pass


class Reader(threading.Thread):
    """Queries a collection without pause, as a recall would, and keeps what it saw."""

    def __init__(self, query, lock: threading.Lock | None = None):
        super().__init__(daemon=True)
        self.query = query
        # local-mode Qdrant is one in-process client with no locking of its own: the test's
        # stand-in for AutoMem writes the live collection under this lock, which the reader
        # takes too (the migration never writes the live collection, and takes no lock)
        self.lock = lock or threading.Lock()
        self.stop = threading.Event()
        self.reads = 0
        self.failures: list[str] = []
        self.empty = 0
        self.models: list[str] = []  # the model stamped on each read's best hit, in order

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                with self.lock:
                    hits = self.query()
                if hits:
                    self.models.append((hits[0].payload or {}).get("embedding_model"))
                else:
                    self.empty += 1
            except Exception as exc:  # noqa: BLE001 - a failed read is what we count
                self.failures.append(repr(exc))
            self.reads += 1
            time.sleep(0.002)

    def finish(self) -> Reader:
        self.stop.set()
        self.join(10)
        return self


def automem_writes(graph, vectors, count: int, seed: int) -> list[dict]:
    """Memories as AutoMem stores them while the job runs: a node, then an unstamped point
    embedded with the model it is configured with (here the local one)."""
    rows = [node_props_for_write(m) for m in sample_memories(count, seed=seed)]
    graph.upsert_memories(rows)
    vecs = local_provider().embed([r["content"] for r in rows]).vectors
    vectors.upsert([r["id"] for r in rows], vecs, [payload_from_node(r) for r in rows])
    return rows


def test_readers_keep_recall_and_writes_during_the_backfill_are_caught_up(env, fake_openai):
    settings, resources, graph, vectors = env
    source = settings.qdrant.collection
    query = local_provider().embed(["what did we decide about the deployment"]).vectors[0]
    reader = Reader(
        lambda: (
            vectors.client.query_points(
                source, query=query, limit=5, with_payload=["embedding_model"]
            ).points
        )
    )
    ids = [row[0] for row in graph.query("MATCH (m:Memory) RETURN m.id")]
    changed, deleted = ids[-1], ids[-2]
    old_contents = graph.fetch_contents([changed, deleted])
    written: list[dict] = []
    lock = reader.lock

    def during_backfill(number: int) -> None:
        if number == 2:  # AutoMem adds, changes and deletes memories while the backfill runs
            with lock:
                written.extend(automem_writes(graph, vectors, 10, seed=77))
            graph.query(
                "MATCH (m:Memory {id: $id}) SET m.content = 'changed while migrating'",
                {"id": changed},
            )
            graph.query("MATCH (m:Memory {id: $id}) DETACH DELETE m", {"id": deleted})
            with lock:
                vectors.delete_points([deleted])

    fake_openai.state.on_request = during_backfill
    reader.start()
    before = snapshot(graph, vectors)["points"]
    result = run_migrate(settings, resources, **TARGET)
    reader.finish()

    summary = outcome(result)
    record = summary["migration"]
    assert summary["status"] == "cut_over" and record["stage"] == "cut_over"
    assert record["mode"] == "collection" and record["live"] == target_name(settings)
    assert record["verified"]["ok"] and record["verified"]["missing_or_stale"] == 0
    assert f"QDRANT_COLLECTION={target_name(settings)}" in summary["instructions"][0]
    # the readers of the old collection never lacked recall, and saw only the old model
    assert reader.reads > 20 and reader.failures == [] and reader.empty == 0
    assert set(reader.models) == {LOCAL}
    # the old collection's points were never written by the migration (AutoMem's were)
    after = snapshot(graph, vectors)["points"]
    untouched = set(before) - {deleted} - {w["id"] for w in written}
    assert {k: after[k] for k in untouched} == {k: before[k] for k in untouched}
    # the new collection: every memory of the graph, current, with the target's stamps
    target = vectors.for_collection(target_name(settings))
    assert target.count() == graph.count_memories()
    payloads = target.payloads([w["id"] for w in written] + [changed, deleted])
    assert deleted not in payloads
    assert payloads[changed]["content"] == "changed while migrating"
    assert all(p["embedding_model"] == TARGET_MODEL for p in payloads.values())
    # no text embedded twice, and one request per batch
    # each memory once; besides, at most the two texts AutoMem replaced or deleted after the
    # backfill had read them (a content that is gone is not a memory paid twice)
    embedded, present = texts_embedded(fake_openai), graph_contents(graph)
    assert all(embedded[c] == n for c, n in present.items())
    assert set(embedded - present) <= {old_contents[changed], old_contents[deleted]}
    assert record["requests"] == fake_openai.request_count <= -(-MEMORIES // BATCH) + 2

    # AutoMem restarted on the new collection: its recall answers with the new model
    fresh = model_vectors(["what did we decide about the deployment"], TARGET_MODEL, 1024)[0]
    hits = vectors.client.query_points(
        target.collection, query=fresh, limit=5, with_payload=["embedding_model"]
    ).points
    assert hits and {h.payload["embedding_model"] for h in hits} == {TARGET_MODEL}


def test_an_alias_reader_switches_at_once_and_rollback_switches_it_back(
    env, fake_openai, make_settings
):
    settings, resources, graph, vectors = env
    source = settings.qdrant.collection
    alias = f"{source}_live"
    vectors.point_alias(alias, source)
    aliased = make_settings(
        EMBEDDING_PROVIDER="local",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        FALKORDB_GRAPH=settings.falkordb.graph,
        QDRANT_COLLECTION=alias,
    )
    resources = build_resources(aliased, from_env=False)
    anchor = next(
        iter(vectors.payloads([r[0] for r in graph.query("MATCH (m:Memory) RETURN m.id LIMIT 1")]))
    )
    reader = Reader(  # by a point's own vector: the same read works on either model's collection
        lambda: (
            vectors.client.query_points(
                alias, query=anchor, limit=5, with_payload=["embedding_model"]
            ).points
        )
    )
    reader.start()
    result = run_migrate(aliased, resources, **TARGET)
    summary = outcome(result)
    time.sleep(0.2)
    reader.finish()
    seen = observations(result)  # the state the UI shows on the collection's asset
    new = target_name(settings)
    assert [what for what, _ in seen] == [
        f"built {new!r}",
        f"backfill into {new!r}",
        f"catch_up into {new!r}",
        "verified",
        "cut over",
    ]
    assert [m["stage"].value for _, m in seen] == ["backfill", "backfill", "catch_up", "verify"] + [
        "cut_over"
    ]
    last = seen[-1][1]
    assert last["readers on"].value == new and last["cutover"].value == "alias"
    assert last["target"].value == f"{new}: openai:{TARGET_MODEL} (1024-d)"
    assert seen[1][1]["done / total"].value == f"{MEMORIES}/{MEMORIES}"  # the backfill's
    assert seen[1][1]["embedded (all runs)"].value == MEMORIES
    assert summary["migration"]["mode"] == "alias" and summary["status"] == "cut_over"
    assert vectors.aliases()[alias] == target_name(settings)
    assert reader.failures == [] and reader.empty == 0
    switch = reader.models.index(TARGET_MODEL)
    assert switch > 0 and set(reader.models[:switch]) == {LOCAL}
    assert set(reader.models[switch:]) == {TARGET_MODEL}  # never back to the old one
    # finalize is refused until a run after the cutover has confirmed it
    refused = run_migrate(aliased, resources, raise_on_error=False, action="finalize")
    assert not refused.success and "not confirmed" in failure_messages(refused)
    assert vectors.exists()

    requests = fake_openai.request_count
    rolled_run = run_migrate(aliased, resources, action="rollback")
    rolled = outcome(rolled_run)
    assert rolled["status"] == "rolled_back" and vectors.aliases()[alias] == source
    # the switch back, then what changed since the cutover embedded into the old collection
    (what, state), (refill, after) = observations(rolled_run)
    assert what == "rollback" and state["stage"].value == "rolled_back"
    assert state["readers on"].value == source and after["readers on"].value == source
    assert refill == f"backfill into {source!r}"
    assert mig.read_record(vectors).stage == mig.ROLLED_BACK
    # a new migration to the same model reuses the new collection's points: nothing paid
    again = outcome(run_migrate(aliased, resources, **TARGET))
    assert again["status"] == "cut_over" and fake_openai.request_count == requests
    assert again["migration"]["id"] != rolled["migration"]["id"]
    confirmed = outcome(run_migrate(aliased, resources, **TARGET))
    assert confirmed["status"] == "confirmed" and fake_openai.request_count == requests
    final = outcome(run_migrate(aliased, resources, action="finalize"))
    assert final["status"] == "finalized"
    assert not vectors.exists()  # the old collection is gone, the alias serves the new one
    assert vectors.client.query_points(alias, query=anchor, limit=3).points


KILL_POINTS = {
    # the stage whose first record write is where the run dies (after what it wrote before)
    "build": lambda r: r.stage == mig.BUILD,
    "backfill": lambda r: r.stage == mig.BACKFILL and r.done > 0,  # after its first chunk
    "catch_up": lambda r: r.stage == mig.CATCH_UP,
    "verify": lambda r: r.stage == mig.VERIFY and r.verified is not None,
    "cutover": lambda r: r.stage == mig.CUT_OVER,
}


@pytest.mark.parametrize("stage", list(KILL_POINTS))
def test_a_run_stopped_in_any_stage_is_finished_by_the_next_without_paying_twice(
    env, fake_openai, monkeypatch, stage
):
    settings, resources, graph, vectors = env
    save = mig.save_record
    died = []

    def dying_save(record, *stores):
        if not died and KILL_POINTS[stage](record):
            died.append(record.stage)
            raise RuntimeError(f"worker killed in {stage}")
        return save(record, *stores)

    monkeypatch.setattr(mig, "save_record", dying_save)
    first = run_migrate(settings, resources, raise_on_error=False, chunk_size=100, **TARGET)
    assert not first.success and died and f"worker killed in {stage}" in failure_messages(first)
    monkeypatch.setattr(mig, "save_record", save)
    state = outcome(run_migrate(settings, resources, action="status"))  # what the API answers
    # the record holds the last stage saved before the death (none: died before the first)
    saved = {"build": "none", "backfill": "backfill", "catch_up": "backfill"}
    assert state["action"] == "status" and state["status"] == saved.get(stage, "verify")
    if stage != "build":
        assert state["migration"]["target"]["model"] == TARGET_MODEL
    if "target_lacks" in state:  # counted now from the stores, not from the record
        assert state["target_lacks"] == MEMORIES - state["target_points"]
    summary = outcome(run_migrate(settings, resources, chunk_size=100, **TARGET))
    assert summary["migration"]["stage"] == "cut_over" and summary["migration"]["verified"]["ok"]
    assert texts_embedded(fake_openai) == graph_contents(graph)  # nobody paid twice
    assert fake_openai.request_count == -(-MEMORIES // BATCH)
    assert vectors.for_collection(target_name(settings)).count() == MEMORIES


def test_a_provider_failing_every_call_fails_the_run_and_a_rerun_finishes(env, fake_openai):
    """Every request answered 503: the run ends (FAILURE, not stuck), readers stay on the
    old collection with every point, and once the provider is back a rerun completes,
    embedding each memory once."""
    settings, resources, graph, vectors = env
    fake_openai.script(*[Fault(503)] * 5000)
    failed = run_migrate(settings, resources, raise_on_error=False, **TARGET)
    message = failure_messages(failed)
    assert not failed.success and "memories failed to embed" in message, message
    assert "run the migration again" in message
    record = mig.read_record(vectors)
    assert record.stage == mig.BACKFILL and record.live == settings.qdrant.collection
    assert vectors.count() == MEMORIES  # the live collection untouched
    fake_openai.reset()
    summary = outcome(run_migrate(settings, resources, **TARGET))
    assert summary["status"] == "cut_over" and summary["migration"]["verified"]["ok"]
    assert texts_embedded(fake_openai) == graph_contents(graph)


def test_over_budget_is_refused_before_any_call_and_writes_nothing(env, fake_openai):
    settings, resources, graph, vectors = env
    before = snapshot(graph, vectors)
    result = run_migrate(settings, resources, raise_on_error=False, max_cost_usd=0.0, **TARGET)
    message = failure_messages(result)
    assert not result.success and "refused before any provider call" in message
    assert f"{MEMORIES} memories" in message and "max_cost_usd=0" in message
    assert fake_openai.state.requests == []
    assert snapshot(graph, vectors) == before  # no record, no metadata, nothing
    assert not vectors.for_collection(target_name(settings)).exists()


def test_the_plan_counts_the_tokenizers_tokens_and_calls_nobody(env, fake_openai):
    settings, resources, graph, vectors = env
    before = snapshot(graph, vectors)
    plan = outcome(run_migrate(settings, resources, plan=True, **TARGET))
    contents = [r[0] for r in graph.query("MATCH (m:Memory) RETURN m.content")]
    assert plan["status"] == "planned" and plan["memories"] == MEMORIES
    assert plan["tokens"] == counter_for("openai", TARGET_MODEL).count(contents)
    assert plan["tokens_method"].startswith("exact") and plan["cost_usd"] > 0
    assert plan["requests"] == -(-MEMORIES // BATCH)
    assert fake_openai.state.requests == [] and snapshot(graph, vectors) == before


def test_the_plan_prices_its_seconds_at_the_targets_own_rate_limits(make_settings, fake_openai):
    """The source (local) is never paced; the OpenAI target's OPENAI_REQUESTS_PER_MINUTE sets
    the plan's seconds (60 per minute: one second per request)."""
    settings = make_settings(
        EMBEDDING_PROVIDER="local",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        OPENAI_REQUESTS_PER_MINUTE="60",
    )
    resources = build_resources(settings, from_env=False)
    assert resources["embeddings"].rate_limits().requests_per_minute is None
    with resources["falkordb"].get_store() as graph:
        graph.ensure_indexes()
        graph.upsert_memories(node_props_for_write(m) for m in sample_memories(40, seed=5))
    run_reembed(settings, resources, batch_size=32)
    plan = outcome(run_migrate(settings, resources, plan=True, **TARGET))
    assert plan["requests"] == 3 and plan["seconds"] == pytest.approx(3.0)
    assert fake_openai.state.requests == []


def test_one_migration_at_a_time_and_bad_targets_are_named(env, fake_openai, monkeypatch):
    settings, resources, graph, vectors = env
    save = mig.save_record

    def stop_at_verify(record, *stores):
        if record.stage == mig.VERIFY:
            raise RuntimeError("stopped")
        return save(record, *stores)

    monkeypatch.setattr(mig, "save_record", stop_at_verify)
    assert not run_migrate(settings, resources, raise_on_error=False, **TARGET).success
    monkeypatch.setattr(mig, "save_record", save)
    other = {**TARGET, "to_model": "text-embedding-3-small", "to_dim": 512}
    refused = run_migrate(settings, resources, raise_on_error=False, **other)
    message = failure_messages(refused)
    assert "in progress (stage catch_up" in message and "--rollback" in message
    bad = run_migrate(settings, resources, raise_on_error=False, **{**TARGET, "to_dim": 5000})
    assert "to_dim=5000" in failure_messages(bad) and "Traceback" not in failure_messages(bad)
    with pytest.raises(ValueError, match="to_dim"):
        migrate_run_config(to_provider="openai", to_model="m", to_dim=0)


def test_a_run_another_dagster_instance_started_holds_the_migration_while_its_worker_lives(
    env, fake_openai, monkeypatch
):
    """The record names the run and its worker process: an instance that does not know the
    run (another DAGSTER_HOME on the same Qdrant) refuses while that process lives, and takes
    the migration over once it is gone and the record has gone quiet."""
    settings, resources, graph, vectors = env
    save = mig.save_record

    def stop_in_backfill(record, *stores):
        if record.stage == mig.BACKFILL and record.done > 0:
            raise RuntimeError("stopped")
        return save(record, *stores)

    monkeypatch.setattr(mig, "save_record", stop_in_backfill)
    assert not run_migrate(
        settings, resources, raise_on_error=False, chunk_size=100, **TARGET
    ).success
    monkeypatch.setattr(mig, "save_record", save)
    target = vectors.for_collection(target_name(settings))
    record = mig.read_record(target)
    assert record.stage == mig.BACKFILL and record.worker["pid"] == os.getpid()

    def rewrite(worker: dict, seconds_ago: float) -> None:
        record.worker = worker
        record.updated_at = (datetime.now(UTC) - timedelta(seconds=seconds_ago)).isoformat()
        for store in (vectors, target):
            store.update_collection_metadata({mig.MIGRATION_KEY: record.as_dict()})

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        rewrite({"pid": other.pid, "process": process_identity(other.pid)}, 300)
        requests = fake_openai.request_count
        refused = run_migrate(settings, resources, raise_on_error=False, **TARGET)
        message = failure_messages(refused)
        assert not refused.success and "this Dagster instance does not know" in message
        assert f"pid {other.pid}, this machine) is running" in message
        assert (
            fake_openai.request_count == requests
            and mig.read_record(target).worker["pid"] == other.pid
        )
    finally:
        other.kill()
        other.wait()
    rewrite({"pid": other.pid, "process": record.worker["process"]}, 5)  # gone, just saved
    assert "next step may be starting" in failure_messages(
        run_migrate(settings, resources, raise_on_error=False, **TARGET)
    )
    rewrite({"pid": other.pid, "process": record.worker["process"]}, 60)  # gone, quiet
    summary = outcome(run_migrate(settings, resources, chunk_size=100, **TARGET))
    assert summary["status"] == "cut_over" and summary["migration"]["verified"]["ok"]
    assert texts_embedded(fake_openai) == graph_contents(graph)  # taken over, nobody paid twice


def test_an_automem_store_moves_with_every_payload_field(make_settings, fake_openai):
    """The 0.16.1 fixture (unstamped points AutoMem wrote with text-embedding-3-small 1024-d)
    → text-embedding-3-large 1024-d: every payload key AutoMem wrote is on the new point."""
    settings = make_settings(
        OPENAI_API_KEY="test-key", OPENAI_BASE_URL=fake_openai.base_url, EMBEDDING_MAX_RETRIES="0"
    )
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        store = load_fixture(graph, vectors)
        summary = outcome(run_migrate(settings, resources, **TARGET))
        assert summary["migration"]["verified"]["ok"]
        assert summary["migration"]["source"]["model"] == "text-embedding-3-small"
        target = vectors.for_collection(target_name(settings))
        moved = target.payloads(store.ids)
        with_content = [p for p in store.points if p["payload"].get("content")]
        assert len(moved) == len(with_content)
        for point in with_content:
            new = moved[point["id"]]
            assert set(point["payload"]) <= set(new)
            assert new["metadata"] == point["payload"]["metadata"]
            assert new["embedding_model"] == TARGET_MODEL
        vec = target.retrieve([with_content[0]["id"]], with_vectors=True)[with_content[0]["id"]]
        want = model_vectors([with_content[0]["payload"]["content"]], TARGET_MODEL, 1024)[0]
        assert np.allclose(np.asarray(vec.vector), want, atol=1e-5)
        target.delete_collection()


def test_a_voyage_target_over_its_wire(make_settings):
    """The same migration to Voyage's wire (voyage-4 at 512-d): one request per batch, the
    new points Voyage's vectors, and the live collection left for its readers."""
    from tests.support.voyage_server import VoyageEmbeddingsServer

    server = VoyageEmbeddingsServer().start()
    try:
        settings = make_settings(
            EMBEDDING_PROVIDER="local",
            VOYAGE_API_KEY="voyage-test-key",
            VOYAGE_BASE_URL=server.base_url,
            EMBEDDING_MAX_RETRIES="0",
        )
        resources = build_resources(settings, from_env=False)
        with (
            resources["falkordb"].get_store() as graph,
            resources["qdrant"].open_store() as vectors,
        ):
            graph.ensure_indexes()
            graph.upsert_memories(node_props_for_write(m) for m in sample_memories(50, seed=4))
            run_reembed(settings, resources, batch_size=32)
            target = {"to_provider": "voyage", "to_model": "voyage-4", "to_dim": 512}
            summary = outcome(run_migrate(settings, resources, **target))
            assert summary["migration"]["verified"]["ok"]
            assert server.request_count == -(-50 // BATCH)
            new = vectors.for_collection(summary["migration"]["target_collection"])
            assert new.collection_dim() == 512 and new.count() == 50
            assert vectors.collection_dim() == 256 and vectors.count() == 50
            new.delete_collection()
    finally:
        server.stop()


def test_verify_finds_a_stale_point_an_orphan_and_a_lost_payload_key(env, fake_openai):
    settings, resources, graph, vectors = env
    assert outcome(run_migrate(settings, resources, **TARGET))["migration"]["verified"]["ok"]
    target = vectors.for_collection(target_name(settings))
    identity = mig.EmbeddingIdentity("openai", TARGET_MODEL, 1024)
    ids = [r[0] for r in graph.query("MATCH (m:Memory) RETURN m.id")]
    graph.query("MATCH (m:Memory {id: $id}) SET m.content = 'edited'", {"id": ids[0]})
    target.delete_payload_keys({ids[1]: ["tags"]})
    graph.query("MATCH (m:Memory {id: $id}) DETACH DELETE m", {"id": ids[2]})
    report = mig.verify(graph, target, vectors, identity, payload_sample=MEMORIES)
    assert not report["ok"]
    assert report["missing_or_stale"] == 1 and report["missing_or_stale_ids"] == [ids[0]]
    assert report["orphaned_points"] == 1 and report["payload_incomplete"] == 1
    assert report["payload_incomplete_examples"] == [f"{ids[1]}: tags"]
    problems = mig.verify_problems(report)
    assert "1 memories without a current target point" in problems and "tags" in problems
