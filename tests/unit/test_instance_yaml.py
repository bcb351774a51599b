"""The generated dagster.yaml: run monitoring from the settings, regenerated while unedited
(also when an earlier version wrote it), kept when edited — loudly when that leaves runs
without monitoring."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml

from automem_pipelines.instance import (
    START_TIMEOUT_SECONDS,
    dagster_yaml,
    ensure_dagster_home,
    is_unedited,
    write_dagster_yaml,
)
from automem_pipelines.run_workers import PreforkRunLauncher
from automem_pipelines.settings import Settings, SettingsError

# dagster.yaml as the previous version of the project wrote it (no run monitoring).
EARLIER_VERSION = """\
# Written by automem-pipelines; edit freely, it is not overwritten.
telemetry:
  enabled: false
# Run workers are forked from a process that has already imported the code location instead
# of starting a fresh interpreter per run (automem_pipelines/run_workers.py); delete this block
# to go back to Dagster's default launcher.
run_launcher:
  module: automem_pipelines.run_workers
  class: PreforkRunLauncher
  config:
    preload_modules: [automem_pipelines.definitions]
run_coordinator:
  module: dagster.core.run_coordinator
  class: QueuedRunCoordinator
  config:
    dequeue_interval_seconds: 1
    # qdrant-client local mode allows one process at a time: runs that open the embedded
    # store (tagged automem/qdrant=local) run one at a time.
    tag_concurrency_limits:
      - key: "automem/qdrant"
        value: "local"
        limit: 1
"""


def settings_for(tmp_path, **env) -> Settings:
    return Settings.from_env({"AUTOMEM_DATA_DIR": str(tmp_path), **env})


def test_the_default_bound_is_within_two_minutes(tmp_path):
    settings = settings_for(tmp_path)
    assert settings.schedule.run_monitoring_poll_seconds == 30
    # a dead worker is noticed at the next poll; a run that never started after the timeout
    assert START_TIMEOUT_SECONDS + settings.schedule.run_monitoring_poll_seconds <= 120


@pytest.mark.parametrize("value", ["0", "601", "soon"])
def test_an_invalid_poll_interval_names_the_variable_and_range(tmp_path, value):
    with pytest.raises(
        SettingsError, match=rf"RUN_MONITORING_POLL_SECONDS='{value}'.*from 1 to 600"
    ):
        settings_for(tmp_path, RUN_MONITORING_POLL_SECONDS=value)


def test_a_new_home_gets_run_monitoring_dagster_understands(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # ensure_dagster_home exports it
    home = ensure_dagster_home(settings_for(tmp_path, RUN_MONITORING_POLL_SECONDS="7"))
    assert (home / "dagster.yaml").read_text() == dagster_yaml(7)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_poll_interval_seconds == 7
        assert instance.run_monitoring_start_timeout_seconds == START_TIMEOUT_SECONDS
        assert instance.run_monitoring_max_resume_run_attempts == 0
        assert isinstance(instance.run_launcher, PreforkRunLauncher)
        assert instance.run_launcher.supports_check_run_worker_health


def test_an_unedited_file_follows_the_settings(tmp_path):
    path = tmp_path / "dagster.yaml"
    assert write_dagster_yaml(path, settings_for(tmp_path)) == "created"
    assert write_dagster_yaml(path, settings_for(tmp_path)) == "unchanged"
    assert (
        write_dagster_yaml(path, settings_for(tmp_path, RUN_MONITORING_POLL_SECONDS="5"))
        == "updated"
    )
    assert path.read_text() == dagster_yaml(5)


def test_a_file_an_earlier_version_wrote_is_regenerated_with_run_monitoring(tmp_path, capsys):
    path = tmp_path / "dagster.yaml"
    path.write_text(EARLIER_VERSION)
    assert is_unedited(EARLIER_VERSION)
    assert write_dagster_yaml(path, settings_for(tmp_path)) == "updated"
    assert "run_monitoring:\n  enabled: true" in path.read_text()
    assert capsys.readouterr().err == ""


def test_an_edited_file_is_kept_and_a_missing_run_monitoring_is_said_loudly(tmp_path, capsys):
    path = tmp_path / "dagster.yaml"
    edited = EARLIER_VERSION.replace("dequeue_interval_seconds: 1", "dequeue_interval_seconds: 5")
    path.write_text(edited)
    assert not is_unedited(edited)
    assert write_dagster_yaml(path, settings_for(tmp_path)) == "kept"
    assert path.read_text() == edited
    err = capsys.readouterr().err
    assert f"WARNING: {path} was edited" in err and "does not enable run monitoring" in err
    assert "run_monitoring:\n  enabled: true\n  poll_interval_seconds: 30" in err


def test_an_edited_file_with_run_monitoring_is_kept_quietly(tmp_path, capsys):
    path = tmp_path / "dagster.yaml"
    edited = dagster_yaml(30).replace("limit: 1", "limit: 2")
    path.write_text(edited)
    assert (
        write_dagster_yaml(path, settings_for(tmp_path, RUN_MONITORING_POLL_SECONDS="9")) == "kept"
    )
    assert path.read_text() == edited
    assert capsys.readouterr().err == ""


def test_dagster_postgres_url_puts_the_storages_on_postgres_by_name_never_by_value(tmp_path):
    path = tmp_path / "dagster.yaml"
    url = "postgresql://dagster:s3cret@db.example:5432/dagster"
    assert write_dagster_yaml(path, settings_for(tmp_path)) == "created"
    assert "storage" not in path.read_text()  # unset: sqlite under DAGSTER_HOME
    assert write_dagster_yaml(path, settings_for(tmp_path, DAGSTER_POSTGRES_URL=url)) == "updated"
    text = path.read_text()
    assert "s3cret" not in text and is_unedited(text)
    config = yaml.safe_load(text)
    for key, name in (
        ("run_storage", "Run"),
        ("event_log_storage", "EventLog"),
        ("schedule_storage", "Schedule"),
    ):
        assert config[key] == {
            "module": "automem_pipelines.dagster_storage",
            "class": f"PooledPostgres{name}Storage",
            "config": {"postgres_url": {"env": "DAGSTER_POSTGRES_URL"}},
        }
    assert write_dagster_yaml(path, settings_for(tmp_path)) == "updated"  # and back
    assert "storage" not in path.read_text()
