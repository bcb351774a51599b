"""How long a run whose worker died stays in progress: kill -9 of the run worker in the middle
of a re-embed's upsert step, then the time until the daemon's run monitoring has ended the run
FAILURE (the run record's end time minus the moment of the kill), printed as a markdown table.
Each repetition starts after a random wait of up to one poll interval (not measured), so the
deaths fall at random phases of the daemon's poll.

Real servers on loopback (embedded FalkorDB, dagster-webserver, dagster-daemon), one stack per
setting over its own throw-away data dir: Dagster's defaults as the project writes them
(RUN_MONITORING_POLL_SECONDS unset: 30 s) and the tests' setting (1 s).

    .venv/bin/python bench/bench_worker_death.py [--repeat 5] [--memories 4000]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg
from dagster_graphql import DagsterGraphQLClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automem_pipelines.constants import CODE_LOCATION_NAME, REEMBED_JOB, REPOSITORY_NAME  # noqa: E402
from automem_pipelines.domain.memory import node_props_for_write  # noqa: E402
from automem_pipelines.domain.sample import sample_memories  # noqa: E402
from automem_pipelines.run_config import reembed_run_config  # noqa: E402
from automem_pipelines.run_workers import check_tagged_worker  # noqa: E402
from automem_pipelines.settings import Settings  # noqa: E402
from automem_pipelines.stack import running_stack  # noqa: E402
from automem_pipelines.stores import falkordb_server  # noqa: E402
from automem_pipelines.stores.graph import GraphConfig, connect  # noqa: E402

TARGET_SECONDS = 120
WAIT_LIMIT = 600.0  # give up on a repetition after this long


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(what: str, predicate, every: float = 0.02):
    deadline = time.monotonic() + WAIT_LIMIT
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(every)
    return value


def one_death(client: DagsterGraphQLClient, instance: dg.DagsterInstance, poll: int) -> float:
    # Not measured: without a random wait every repetition would start right after the
    # monitoring tick that failed the previous run, so each death would meet the daemon's
    # poll at the same phase.
    time.sleep(random.uniform(0, poll))
    run_id = client.submit_job_execution(
        REEMBED_JOB,
        repository_location_name=CODE_LOCATION_NAME,
        repository_name=REPOSITORY_NAME,
        run_config=reembed_run_config(batch_size=256, force=True),
        tags={"automem/trigger": "bench"},
    )
    wait_until(
        "upsert step started",
        lambda: any(
            e.step_key == "reembed_chunk[chunk_000]"
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        ),
    )
    tags = instance.get_run_by_id(run_id).tags
    worker = check_tagged_worker(tags)
    assert worker.alive, worker.why
    os.kill(worker.pid, signal.SIGKILL)
    killed_at = time.time()
    status = wait_until(
        "run ended", lambda: (r := instance.get_run_by_id(run_id)).is_finished and r.status, 0.1
    )
    if status != dg.DagsterRunStatus.FAILURE:
        raise RuntimeError(f"run {run_id} ended {status}, not FAILURE")
    return instance.get_run_record_by_id(run_id).end_time - killed_at


def measure(label: str, poll: str | None, repeat: int, memories: int) -> dict:
    root = Path(tempfile.mkdtemp(prefix="amd-"))
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DAGSTER_HOME", "RUN_MONITORING_POLL_SECONDS") and not k.startswith("OPENAI")
    }
    env.update(
        {
            "AUTOMEM_DATA_DIR": str(root),
            "EMBEDDING_PROVIDER": "local",
            "ENRICHMENT_SENSOR_ENABLED": "false",
        }
    )
    if poll is not None:
        env["RUN_MONITORING_POLL_SECONDS"] = poll
    settings = Settings.from_env(env)
    os.environ.pop("DAGSTER_HOME", None)
    try:
        falkordb_server.ensure_running(root)
        graph = connect(GraphConfig.from_settings(settings))
        graph.ensure_indexes()
        graph.upsert_memories(
            [node_props_for_write(m) for m in sample_memories(memories, seed=3)], batch=5000
        )
        port = free_port()
        with running_stack(settings, port=port, env=env) as stack:
            client = DagsterGraphQLClient("127.0.0.1", port_number=port)
            with dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance:
                times = []
                for i in range(repeat):
                    times.append(
                        one_death(client, instance, settings.schedule.run_monitoring_poll_seconds)
                    )
                    print(f"  {label}: repetition {i + 1}: {times[-1]:.2f} s", file=sys.stderr)
        return {
            "label": label,
            "poll": settings.schedule.run_monitoring_poll_seconds,
            "times": times,
        }
    finally:
        os.environ.pop("DAGSTER_HOME", None)
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--memories", type=int, default=4000)
    args = parser.parse_args()
    rows = [
        measure("defaults", None, args.repeat, args.memories),
        measure("tests (RUN_MONITORING_POLL_SECONDS=1)", "1", args.repeat, args.memories),
    ]
    print(
        f"\nkill -9 of the run worker during reembed_chunk → run FAILURE, {args.repeat} repetitions each\n"
    )
    print("| settings | poll interval (s) | median (s) | min (s) | max (s) | each (s) | target |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        t = row["times"]
        each = ", ".join(f"{x:.1f}" for x in t)
        print(
            f"| {row['label']} | {row['poll']} | {statistics.median(t):.2f} | {min(t):.2f} | {max(t):.2f} "
            f"| {each} | ≤ {TARGET_SECONDS} s: {'yes' if max(t) <= TARGET_SECONDS else 'no'} |"
        )


if __name__ == "__main__":
    main()
