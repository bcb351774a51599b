"""The persistent Dagster instance (DAGSTER_HOME) used by the CLI and the local stack."""

from __future__ import annotations

import os
from pathlib import Path

from .constants import QDRANT_LOCAL_TAG_VALUE, TAG_QDRANT_LOCK
from .settings import Settings

DEQUEUE_INTERVAL_SECONDS = 1  # how often the daemon starts queued runs

DAGSTER_YAML = f"""\
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
    dequeue_interval_seconds: {DEQUEUE_INTERVAL_SECONDS}
    # qdrant-client local mode allows one process at a time: runs that open the embedded
    # store (tagged {TAG_QDRANT_LOCK}={QDRANT_LOCAL_TAG_VALUE}) run one at a time.
    tag_concurrency_limits:
      - key: "{TAG_QDRANT_LOCK}"
        value: "{QDRANT_LOCAL_TAG_VALUE}"
        limit: 1
"""


def create_storages(home: Path) -> None:
    """Create the instance's sqlite storages once, before several processes open them: the
    webserver and the daemon started together on a fresh DAGSTER_HOME race to create the
    tables, and one of them can die with "table alembic_version already exists"."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        instance.get_runs(limit=1)
        instance.all_instigator_state()
        instance.get_daemon_heartbeats()


def dagster_home(settings: Settings) -> Path:
    env = os.environ.get("DAGSTER_HOME")
    return Path(env) if env else settings.data_dir / "dagster_home"


def ensure_dagster_home(settings: Settings) -> Path:
    """Create DAGSTER_HOME (default: <data dir>/dagster_home) with our dagster.yaml, and
    export it for this process and its children."""
    home = dagster_home(settings).resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(home)
    return home
