"""The code location loads, and everything that builds run config builds valid config."""

import dagster as dg

from automem_pipelines.constants import (
    GRAPH_ASSET_KEY,
    REEMBED_SCHEDULE,
    TAG_QDRANT_LOCK,
    VECTOR_ASSET_KEY,
)
from automem_pipelines.definitions import build_definitions
from automem_pipelines.run_config import reembed_run_config


def test_definitions_load_with_external_store_assets(settings):
    defs = build_definitions(settings)
    dg.Definitions.validate_loadable(defs)
    keys = {spec.key for spec in defs.resolve_all_asset_specs()}
    assert {dg.AssetKey(GRAPH_ASSET_KEY), dg.AssetKey(VECTOR_ASSET_KEY)} <= keys


def test_local_qdrant_jobs_run_in_process_and_are_tagged_for_the_run_queue(make_settings):
    job = build_definitions(make_settings()).get_job_def("reembed_job")
    assert job.executor_def.name == "in_process"
    assert job.tags[TAG_QDRANT_LOCK] == "local"
    server = build_definitions(make_settings(QDRANT_URL="http://qdrant.example:6333")).get_job_def(
        "reembed_job"
    )
    assert (
        TAG_QDRANT_LOCK not in server.tags
        and server.executor_def.name == "multi_or_in_process_executor"
    )


def test_incremental_schedule_is_off_by_default_and_its_config_is_valid(make_settings):
    defs = build_definitions(make_settings())
    schedule = next(s for s in defs.schedules if s.name == REEMBED_SCHEDULE)
    assert schedule.default_status == dg.DefaultScheduleStatus.STOPPED
    on = next(
        s
        for s in build_definitions(make_settings(REEMBED_SCHEDULE_ENABLED="true")).schedules
        if s.name == REEMBED_SCHEDULE
    )
    assert on.default_status == dg.DefaultScheduleStatus.RUNNING
    job = defs.get_job_def("reembed_job")
    with dg.instance_for_test() as instance:
        data = schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
    run_config = data.run_requests[0].run_config
    assert run_config == reembed_run_config(force=False)
    assert dg.validate_run_config(job, run_config)


def test_importing_the_definitions_reads_and_changes_nothing():
    """In a fresh interpreter, as pytest or the CLI imports it: no settings are read (an
    invalid one does not stop the import), no Definitions are built, and the garbage
    collector is left as it was (the freeze happens in the worker server, before it forks)."""
    import os
    import subprocess
    import sys

    probe = (
        "import gc, sys, automem_pipelines.definitions; "
        "print(gc.isenabled(), gc.get_freeze_count(), 'automem_pipelines.location' in sys.modules)"
    )
    env = {**os.environ, "FALKORDB_PORT": "not a port"}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env
    )
    assert out.stdout.split() == ["True", "0", "True"]


def test_dagster_builds_the_location_from_the_environment_when_it_loads_it(settings, monkeypatch):
    from automem_pipelines import definitions

    monkeypatch.setenv("AUTOMEM_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("QDRANT_COLLECTION", "collection_read_at_load")
    defs = definitions.defs()
    dg.Definitions.validate_loadable(defs)
    assert defs.resolve_all_asset_specs()[1].description.startswith(
        "Qdrant collection 'collection_read_at_load'"
    )
