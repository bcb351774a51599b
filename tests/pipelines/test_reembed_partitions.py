"""The re-embed as a partitioned backfill, in process: each partition a run of its own over
its id range, every memory embedded exactly once across them, counts adding up per partition,
and a partition that failed finished by a rerun of it alone."""

from __future__ import annotations

from collections import Counter

import dagster as dg
import pytest

from automem_pipelines.constants import (
    POOL_PROVIDER,
    POOL_STORE_SCAN,
    QDRANT_LOCAL_TAG_VALUE,
    REEMBED_PARTITIONED_JOB,
    SUMMARY_OPS,
    TAG_QDRANT_LOCK,
)
from automem_pipelines.definitions import build_definitions, build_resources
from automem_pipelines.domain.identity import IDENTITY_KEY
from automem_pipelines.domain.partitions import id_range
from automem_pipelines.instance import (
    DEFAULT_POOL_LIMIT,
    FREE_SLOTS_AFTER_RUN_END_SECONDS,
    dagster_yaml,
)
from automem_pipelines.jobs import build_reembed_partitioned_job
from automem_pipelines.run_config import reembed_run_config
from automem_pipelines.settings import SettingsError
from tests.helpers import failure_messages, new_id, run_reembed, summary_of
from tests.support.automem_fixture import DIM, load_fixture

KEYS = ["00-3f", "40-7f", "80-bf", "c0-ff"]
ODD = ["Legacy-7", "zz-not-a-uuid"]  # not point ids: listed in one partition, skipped as invalid


@pytest.fixture
def store(make_settings, graph_factory, fake_openai):
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MAX_RETRIES="0",
        VECTOR_SIZE="384",
    )
    graph = graph_factory(settings)
    graph.ensure_indexes()
    ids = [new_id() for _ in range(400)] + ODD
    contents = {m: f"Note {i} about the Atlas project" for i, m in enumerate(ids)}
    graph.upsert_memories({"id": m, "content": c} for m, c in contents.items())
    yield settings, graph, contents
    fake_openai.reset()


def run_partition(settings, key: str, job=None, **config) -> dg.ExecuteInProcessResult:
    job = job or build_reembed_partitioned_job(settings.qdrant.local, len(KEYS))
    return job.execute_in_process(
        run_config=reembed_run_config(**config),
        resources=build_resources(settings, from_env=False),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key=key,
        raise_on_error=False,
    )


def embedded_contents(fake_openai) -> Counter:
    return Counter(t for r in fake_openai.state.requests for t in r.texts)


def test_four_partitions_embed_every_memory_exactly_once(store, fake_openai, vectors_factory):
    settings, graph, contents = store
    totals = {}
    for key in KEYS:
        result = run_partition(settings, key, batch_size=16, chunk_size=100)
        assert result.success, failure_messages(result)
        assert result.dagster_run.tags["dagster/partition"] == key
        summary = summary_of(result)
        assert summary["processed"] + summary["skipped"] + summary["failed"] == summary["total"]
        inside = {m for m in contents if id_range(key).contains(m)}
        odd = inside & set(ODD)
        assert (summary["failed"], summary["skipped"], summary["total"]) == (
            0,
            len(odd),
            len(inside),
        )
        assert summary["processed"] == len(inside - odd)
        totals[key] = summary["total"]
    assert sum(totals.values()) == len(contents)
    usable = {m: c for m, c in contents.items() if m not in ODD}
    counts = embedded_contents(fake_openai)
    assert {c: counts[c] for c in contents.values()} == {
        c: int(c in usable.values()) for c in contents.values()
    }
    assert set(vectors_factory(settings).payloads(list(contents))) == set(usable)

    # A second pass over a partition finds it current: nothing embedded again.
    before = fake_openai.state.texts
    odd = sum(id_range(KEYS[2]).contains(m) for m in ODD)  # "Legacy-7": "L" sorts after "8"
    assert odd == 1
    again = summary_of(run_partition(settings, KEYS[2]))
    assert (again["processed"], again["skipped_unchanged"]) == (0, totals[KEYS[2]] - odd)
    assert fake_openai.state.texts == before


def test_a_failed_partition_is_finished_by_its_own_rerun(store, fake_openai, vectors_factory):
    settings, graph, contents = store
    broken = {m for m in contents if id_range(KEYS[1]).contains(m)}
    for m in broken:  # the provider refuses every batch of this partition
        graph.query(
            "MATCH (m:Memory {id: $id}) SET m.content = $c", {"id": m, "c": contents[m] + " X9"}
        )
        contents[m] += " X9"
    fake_openai.state.fail_marker, fake_openai.state.fail_status = "X9", 400
    results = {key: run_partition(settings, key, batch_size=16) for key in KEYS}
    assert [results[k].success for k in KEYS] == [True, False, True, True]
    failed = summary_of(results[KEYS[1]])
    assert (failed["processed"], failed["failed"], failed["total"]) == (0, len(broken), len(broken))
    assert "failed" in failure_messages(results[KEYS[1]])
    store_ids = set(vectors_factory(settings).payloads(list(contents)))
    assert store_ids == set(contents) - broken - set(ODD)

    fake_openai.state.fail_marker = None  # the fault is gone: rerun that partition only
    rerun = run_partition(settings, KEYS[1], batch_size=16)
    assert rerun.success
    summary = summary_of(rerun)
    assert (summary["processed"], summary["failed"], summary["total"]) == (
        len(broken),
        0,
        len(broken),
    )
    assert set(vectors_factory(settings).payloads(list(contents))) == set(contents) - set(ODD)
    counts = embedded_contents(fake_openai)
    assert all(counts[contents[m]] == 1 for m in contents if m not in broken and m not in ODD)


def test_a_resumed_partition_embeds_only_what_its_first_run_left(store, fake_openai):
    settings, graph, contents = store
    key = KEYS[0]
    inside = [m for m in contents if id_range(key).contains(m) and m not in ODD]
    half = set(inside[: len(inside) // 2])
    for m in half:
        graph.query(
            "MATCH (m:Memory {id: $id}) SET m.content = $c", {"id": m, "c": contents[m] + " X9"}
        )
    fake_openai.state.fail_marker, fake_openai.state.fail_status = "X9", 400
    first = summary_of(run_partition(settings, key, batch_size=1))  # one memory per request
    assert (first["processed"], first["failed"]) == (len(inside) - len(half), len(half))
    fake_openai.state.fail_marker = None
    second = summary_of(run_partition(settings, key, batch_size=1))
    assert (second["processed"], second["skipped_unchanged"], second["failed"]) == (
        len(half),
        len(inside) - len(half),
        0,
    )


def test_the_partition_comes_from_the_key_and_a_conflicting_config_is_refused(
    store, vectors_factory
):
    settings, _graph, contents = store
    job = build_definitions(settings).get_job_def(REEMBED_PARTITIONED_JOB)
    assert job.partitions_def.get_partition_keys()[:2] == ["00-0f", "10-1f"]
    assert SUMMARY_OPS[REEMBED_PARTITIONED_JOB] == "summarize_reembed"
    config = reembed_run_config()
    config["ops"]["enumerate_memories"]["config"]["partition"] = "40-4f"
    result = run_partition(settings, "00-0f", job=job, **{})
    assert result.success
    conflicting = job.execute_in_process(
        run_config=config,
        resources=build_resources(settings, from_env=False),
        instance=dg.DagsterInstance.ephemeral(),
        partition_key="00-0f",
        raise_on_error=False,
    )
    assert not conflicting.success
    assert "partition is '40-4f' in the config but the run is for partition '00-0f'" in (
        failure_messages(conflicting)
    )


@pytest.mark.parametrize("bad", ["0-f", "10-0f", "00-0G", ""])
def test_a_bad_partition_in_the_plain_jobs_config_fails_before_any_write(
    store, vectors_factory, bad
):
    settings, _graph, _contents = store
    job = build_definitions(settings).get_job_def("reembed_job")
    result = job.execute_in_process(
        run_config={"ops": {"enumerate_memories": {"config": {"partition": bad}}}},
        resources=build_resources(settings, from_env=False),
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    assert "partition must be an id range 'XX-YY'" in failure_messages(result)
    assert vectors_factory(settings).collection_dim() is None


def test_the_plain_job_takes_one_id_range_from_its_config(store, fake_openai):
    settings, _graph, contents = store
    job = build_definitions(settings).get_job_def("reembed_job")
    config = reembed_run_config()
    config["ops"]["enumerate_memories"]["config"]["partition"] = "f0-ff"
    result = job.execute_in_process(
        run_config=config,
        resources=build_resources(settings, from_env=False),
        instance=dg.DagsterInstance.ephemeral(),
    )
    inside = {m for m in contents if id_range("f0-ff").contains(m)}
    summary = summary_of(result)
    assert "zz-not-a-uuid" in inside and summary["invalid_ids"] == ["zz-not-a-uuid"]
    assert (summary["processed"], summary["total"]) == (len(inside) - 1, len(inside))


def test_the_instance_limits_the_pools_and_the_local_store_runs(store, tmp_path):
    """The dagster.yaml the project writes: the run queue keeps local-mode Qdrant runs (a
    backfill's partitions too) to one at a time, and a step of a pool claims a slot of the
    default pool limit (the enumeration's pool, seen after one partition's run)."""
    settings, _graph, _contents = store
    (tmp_path / "dagster.yaml").write_text(dagster_yaml(30))
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == (
            FREE_SLOTS_AFTER_RUN_END_SECONDS
        )
        concurrency = instance.get_concurrency_config()
        assert concurrency.pool_config.default_pool_limit == DEFAULT_POOL_LIMIT
        assert concurrency.run_queue_config.tag_concurrency_limits == [
            {"key": TAG_QDRANT_LOCK, "value": QDRANT_LOCAL_TAG_VALUE, "limit": 1}
        ]
        job = build_reembed_partitioned_job(settings.qdrant.local, len(KEYS))
        assert job.tags[TAG_QDRANT_LOCK] == QDRANT_LOCAL_TAG_VALUE  # every partition's run
        assert job.get_node_named("enumerate_memories").definition.pool == POOL_STORE_SCAN
        assert job.get_node_named("reembed_chunk").definition.pool == POOL_PROVIDER
        result = job.execute_in_process(
            run_config=reembed_run_config(),
            resources=build_resources(settings, from_env=False),
            instance=instance,
            partition_key=KEYS[0],
        )
        assert result.success
        info = instance.event_log_storage.get_concurrency_info(POOL_STORE_SCAN)
        assert POOL_STORE_SCAN in instance.event_log_storage.get_concurrency_keys()
        assert info.slot_count == DEFAULT_POOL_LIMIT and info.active_slot_count == 0


def test_the_partition_count_is_a_setting_checked_at_start(make_settings):
    job = build_definitions(make_settings(REEMBED_PARTITIONS="10")).get_job_def(
        REEMBED_PARTITIONED_JOB
    )
    keys = job.partitions_def.get_partition_keys()
    assert keys[:2] == ["00-18", "19-32"] and keys[-1] == "e6-ff" and len(keys) == 10
    with pytest.raises(SettingsError, match="REEMBED_PARTITIONS='300'.*from 1 to 256"):
        make_settings(REEMBED_PARTITIONS="300")


def test_a_model_replaced_partition_by_partition_is_finished_by_one_whole_store_run(
    make_settings, fake_openai
):
    """A partition is not the whole store: the replacement stays open through the backfill,
    and one plain run with the flag afterwards embeds nothing and records the new model."""
    settings = make_settings(
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="test-key",
        OPENAI_BASE_URL=fake_openai.base_url,
        EMBEDDING_MODEL="text-embedding-3-large",
        VECTOR_SIZE=str(DIM),
        EMBEDDING_MAX_RETRIES="0",
    )
    resources = build_resources(settings, from_env=False)
    with resources["falkordb"].get_store() as graph, resources["qdrant"].open_store() as vectors:
        store = load_fixture(graph, vectors)  # AutoMem's points, another model's vectors
        processed = 0
        for key in KEYS:
            summary = summary_of(run_partition(settings, key, replace_model_in_place=True))
            assert summary["failed"] == 0
            processed += summary["processed"]
            assert vectors.collection_metadata()[IDENTITY_KEY]["status"] == "replacing"
        assert processed == len(store.ids)
        texts = fake_openai.state.texts
        whole = run_reembed(settings, resources, replace_model_in_place=True)
        summary = summary_of(whole)
        assert (summary["processed"], summary["failed"]) == (0, 0)
        assert fake_openai.state.texts == texts  # nothing embedded again
        record = vectors.collection_metadata()[IDENTITY_KEY]
        assert record["model"] == "text-embedding-3-large" and record["status"] == "verified"
