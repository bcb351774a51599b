"""The persistent Dagster instance (DAGSTER_HOME) used by the CLI and the local stack."""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

from .constants import POOL_PROVIDER, POOL_STORE_SCAN, QDRANT_LOCAL_TAG_VALUE, TAG_QDRANT_LOCK
from .settings import Settings

DEQUEUE_INTERVAL_SECONDS = 1  # how often the daemon starts queued runs
# Run monitoring: a run still STARTING (or NOT_STARTED) after this long is failed, and a
# CANCELING run whose worker never confirmed is marked canceled; each is noticed at the next
# poll, so the bound is this plus RUN_MONITORING_POLL_SECONDS.
START_TIMEOUT_SECONDS = 60
CANCEL_TIMEOUT_SECONDS = 60
# Steps of one concurrency pool in progress at once across all runs, for a pool without a limit
# of its own (set one with `dagster instance concurrency set POOL N` or in the UI).
DEFAULT_POOL_LIMIT = 4
# A pool slot held by a step whose worker died (kill -9) is freed this long after its run
# ended; without it the slot stays claimed and the pool shrinks for good.
FREE_SLOTS_AFTER_RUN_END_SECONDS = 10

_HEADER = "# Written by automem-pipelines (sha256 of the lines below: {digest})."
# dagster.yaml files written by earlier versions, unmodified (sha256 of the whole file): they
# are regenerated like a current one.
_EARLIER_VERSIONS_SHA256 = frozenset(
    {
        "fc59235f73885ea39b182916ed1cee3fa82d7280b87f884b95bb9911deefe194",  # queue only
        "33e2876d78fea7e0c6c1ea94c16c3527ebf7eedcd73f96eec6a07be7f0b47758",  # + pre-forked workers
    }
)


_STORAGES = (
    ("run_storage", "Run"),
    ("event_log_storage", "EventLog"),
    ("schedule_storage", "Schedule"),
)
POSTGRES_URL_ENV = "DAGSTER_POSTGRES_URL"


def postgres_storage_yaml() -> str:
    """The dagster.yaml blocks that put the three storages on DAGSTER_POSTGRES_URL."""
    blocks = "".join(
        f"""{key}:
  module: automem_pipelines.dagster_storage
  class: PooledPostgres{name}Storage
  config:
    postgres_url:
      env: {POSTGRES_URL_ENV}
"""
        for key, name in _STORAGES
    )
    return (
        f"# Runs, events and schedules on PostgreSQL ({POSTGRES_URL_ENV}, read by every Dagster\n"
        "# process), one pooled connection per process (automem_pipelines/dagster_storage.py).\n"
        + blocks
    )


def _body(poll_seconds: int, start_timeout: int, cancel_timeout: int, postgres: bool) -> str:
    return (
        (postgres_storage_yaml() if postgres else "")
        + f"""\
# Left as written, it is rewritten when the project's defaults or RUN_MONITORING_POLL_SECONDS
# change; once you edit it, it is kept as it is.
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
concurrency:
  runs:
    # qdrant-client local mode allows one process at a time: runs that open the embedded
    # store (tagged {TAG_QDRANT_LOCK}={QDRANT_LOCAL_TAG_VALUE}) run one at a time, a backfill's
    # partitions too.
    tag_concurrency_limits:
      - key: "{TAG_QDRANT_LOCK}"
        value: "{QDRANT_LOCAL_TAG_VALUE}"
        limit: 1
  pools:
    # Op steps of a pool in progress at once across all runs (pools {POOL_STORE_SCAN}:
    # re-embed enumerations, {POOL_PROVIDER}: embedding-provider steps); one pool's own
    # limit: `dagster instance concurrency set POOL N`.
    default_limit: {DEFAULT_POOL_LIMIT}
# No run stays in progress for ever (the daemon checks): a run whose worker died ends FAILURE,
# one that never started fails after start_timeout_seconds, and one whose cancel was never
# confirmed is marked canceled after cancel_timeout_seconds. Runs are not resumed.
run_monitoring:
  enabled: true
  poll_interval_seconds: {poll_seconds}
  start_timeout_seconds: {start_timeout}
  cancel_timeout_seconds: {cancel_timeout}
  max_resume_run_attempts: 0
  # pool slots a dead worker's steps still held are freed this long after the run ended
  free_slots_after_run_end_seconds: {FREE_SLOTS_AFTER_RUN_END_SECONDS}
"""
    )


def dagster_yaml(
    poll_seconds: int,
    start_timeout: int = START_TIMEOUT_SECONDS,
    cancel_timeout: int = CANCEL_TIMEOUT_SECONDS,
    postgres: bool = False,
) -> str:
    """The dagster.yaml the project writes: its first line records the digest of the rest,
    which is how an unedited file is told from an edited one."""
    body = _body(poll_seconds, start_timeout, cancel_timeout, postgres)
    return _HEADER.format(digest=hashlib.sha256(body.encode()).hexdigest()) + "\n" + body


def is_unedited(text: str) -> bool:
    """True for a dagster.yaml exactly as some version of the project wrote it."""
    if hashlib.sha256(text.encode()).hexdigest() in _EARLIER_VERSIONS_SHA256:
        return True
    first, _, body = text.partition("\n")
    return first == _HEADER.format(digest=hashlib.sha256(body.encode()).hexdigest())


def has_run_monitoring(text: str) -> bool:
    """Whether the file enables Dagster's run monitoring."""
    import yaml

    try:
        config = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return False
    monitoring = config.get("run_monitoring") if isinstance(config, dict) else None
    return isinstance(monitoring, dict) and monitoring.get("enabled") is True


def write_dagster_yaml(path: Path, settings: Settings) -> str:
    """Write our dagster.yaml unless the user edited the existing one. Returns what was done:
    "created", "updated", "unchanged" or "kept" (edited; a loud warning when it lacks run
    monitoring, without which a run whose worker dies stays STARTED)."""
    wanted = dagster_yaml(
        settings.schedule.run_monitoring_poll_seconds,
        postgres=settings.schedule.dagster_postgres_url is not None,
    )
    if not path.exists():
        path.write_text(wanted)
        return "created"
    current = path.read_text()
    if current == wanted:
        return "unchanged"
    if is_unedited(current):
        path.write_text(wanted)
        return "updated"
    if not has_run_monitoring(current):
        print(
            f"WARNING: {path} was edited, so it is kept as it is, but it does not enable run "
            "monitoring: a run whose worker dies stays STARTED and blocks the run queue and "
            "the admin API. Add this block (or delete the file to have it regenerated):\n"
            + wanted[wanted.index("run_monitoring:") :],
            file=sys.stderr,
        )
    return "kept"


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
    """Create DAGSTER_HOME (default: <data dir>/dagster_home) with our dagster.yaml (see
    write_dagster_yaml), and export it (and DAGSTER_POSTGRES_URL, when set) for this process
    and its children."""
    home = dagster_home(settings).resolve()
    home.mkdir(parents=True, exist_ok=True)
    write_dagster_yaml(home / "dagster.yaml", settings)
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.schedule.dagster_postgres_url is not None:  # dagster.yaml names the variable
        os.environ[POSTGRES_URL_ENV] = settings.schedule.dagster_postgres_url
    return home
