"""Benchmark of the admin API on one machine (real servers on loopback), printed as tables.

1. Trigger-to-success: `POST /admin/reembed {"force": true, "wait": true}` for N memories
   (median of R), against a bare GraphQL submit-to-success of a no-op job (bench fixture
   location `automem_bench`, bench/noop_location.py) on the same webserver and daemon, with
   the in-process executor and with Dagster's default (multiprocess) executor.
   The re-embed job has no executor choice here: with the embedded (local-mode) Qdrant it
   always runs in-process (one process may open the store), so its figure is compared with
   the in-process no-op. A bare GraphQL submit of the re-embed job itself (same config) shows
   how much of the figure is the API and how much the job's own work. Every variant polls run
   status every 0.2 s. Before each submission the script waits a random 0–1 s (not measured):
   the daemon dequeues once a second, and without that wait each position in the interleaved
   order met the daemon's tick at a nearly fixed phase, which biased one variant against
   another by up to 0.5 s (the API's re-embed came out 0.82–1.15× the same job submitted bare).
2. Throughput: C concurrent clients for S seconds on `GET /enrichment/status` and on
   `GET /health` (p50/p95/p99 latency, requests/s), with the API's default 1 s status cache
   and with the cache off.

    .venv/bin/python bench/bench_api.py [--runs 5] [--memories 10] [--clients 20] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import dagster as dg
import requests
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automem_pipelines.constants import (  # noqa: E402
    CODE_LOCATION_NAME,
    REEMBED_JOB,
    REPOSITORY_NAME,
)
from automem_pipelines.domain.memory import node_props_for_write  # noqa: E402
from automem_pipelines.domain.sample import sample_memories  # noqa: E402
from automem_pipelines.instance import DEQUEUE_INTERVAL_SECONDS  # noqa: E402
from automem_pipelines.run_config import reembed_run_config  # noqa: E402
from automem_pipelines.settings import Settings  # noqa: E402
from automem_pipelines.stack import running_stack, start_api  # noqa: E402
from automem_pipelines.stores import falkordb_server  # noqa: E402
from automem_pipelines.stores.graph import GraphConfig, connect  # noqa: E402
from bench.noop_location import BENCH_LOCATION_NAME, NOOP_JOB  # noqa: E402
from tests.support.drills import stack_env  # noqa: E402

API_TOKEN = "bench-api-token"
ADMIN_TOKEN = "bench-admin-token"
POLL = 0.2
IN_PROCESS = {"execution": {"config": {"in_process": {}}}}
BENCH_LOCATION = f"""\
  - python_file:
      relative_path: {ROOT / "bench" / "noop_location.py"}
      working_directory: {ROOT}
      location_name: {BENCH_LOCATION_NAME}
"""


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api_reembed_seconds(api_url: str, run_ids: list[str] | None = None) -> float:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}
    started = time.perf_counter()
    response = requests.post(
        f"{api_url}/admin/reembed", json={"force": True, "wait": True}, headers=headers, timeout=600
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200 or response.json().get("status") != "complete":
        raise RuntimeError(f"re-embed through the API did not complete: {response.text}")
    if run_ids is not None:
        run_ids.append(response.json()["run_id"])
    return elapsed


def bare_seconds(
    client: DagsterGraphQLClient,
    run_config: dict,
    job: str = NOOP_JOB,
    location: str = BENCH_LOCATION_NAME,
    run_ids: list[str] | None = None,
) -> float:
    """Submit over GraphQL directly and poll until the run ends (no API in between)."""
    started = time.perf_counter()
    run_id = client.submit_job_execution(
        job,
        repository_location_name=location,
        repository_name=REPOSITORY_NAME,
        run_config=run_config,
    )
    while True:
        status = client.get_run_status(run_id).value
        if status in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        time.sleep(POLL)
    elapsed = time.perf_counter() - started
    if status != "SUCCESS":
        raise RuntimeError(f"{job} run {run_id} ended {status}")
    if run_ids is not None:
        run_ids.append(run_id)
    return elapsed


PHASES = ("queued", "worker start (spawn + dagster)", "code location load", "run (steps)")


def run_phases(instance, run_id: str) -> dict[str, float]:
    """Where a run's time went, from its own event log: queued → starting → the worker's first
    engine event → RUN_START → RUN_SUCCESS."""
    first: dict[str, float] = {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        kind = event.event_type_value
        if kind == "ENGINE_EVENT" and "PIPELINE_STARTING" not in first:
            continue  # engine events before the launch belong to the queue
        first.setdefault(kind, record.timestamp)
    return dict(
        zip(
            PHASES,
            (
                first["PIPELINE_STARTING"] - first["PIPELINE_ENQUEUED"],
                first["ENGINE_EVENT"] - first["PIPELINE_STARTING"],
                first["PIPELINE_START"] - first["ENGINE_EVENT"],
                first["PIPELINE_SUCCESS"] - first["PIPELINE_START"],
            ),
        )
    )


def load(url: str, clients: int, seconds: float) -> dict:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {API_TOKEN}"}

    def worker():
        session = requests.Session()
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < stop_at:
            t0 = time.perf_counter()
            try:
                ok = session.get(url, headers=headers, timeout=30).status_code == 200
            except requests.RequestException:
                ok = False
            mine.append(time.perf_counter() - t0)
            bad += not ok
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    began = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - began
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {
        "n": len(latencies),
        "rps": len(latencies) / wall,
        "p50": q[49],
        "p95": q[94],
        "p99": q[98],
        "errors": errors[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memories", type=int, default=10)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1, help="for the random pre-submit waits")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="amb-"))
    env = stack_env(
        root,
        AUTOMEM_API_TOKEN=API_TOKEN,
        ADMIN_API_TOKEN=ADMIN_TOKEN,
        AUTOMEM_API_ADMIN_RATE_LIMIT="0",
    )
    settings = Settings.from_env(env)
    os.environ.pop("DAGSTER_HOME", None)
    try:
        falkordb_server.ensure_running(root)
        graph = connect(GraphConfig.from_settings(settings))
        try:
            graph.ensure_indexes()
            graph.upsert_memories(node_props_for_write(m) for m in sample_memories(args.memories))
        finally:
            graph.close()
        with running_stack(
            settings, port=free_port(), env=env, extra_locations=BENCH_LOCATION
        ) as stack:
            cached_port, uncached_port = free_port(), free_port()
            start_api(stack, port=cached_port, env=env, name="api")
            start_api(
                stack,
                port=uncached_port,
                env={**env, "AUTOMEM_API_STATUS_CACHE_SECONDS": "0"},
                name="api-uncached",
            )
            api = f"http://127.0.0.1:{cached_port}"
            uncached = f"http://127.0.0.1:{uncached_port}"
            client = DagsterGraphQLClient("127.0.0.1", port_number=stack.port)

            # Warm-up: first runs load code and models; the bench location may still be loading.
            api_reembed_seconds(api)
            deadline = time.monotonic() + 120
            while True:
                try:
                    bare_seconds(client, IN_PROCESS)
                    break
                except DagsterGraphQLClientError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            bare_seconds(client, {})

            api_runs, bare_reembed, noop_inproc, noop_default = [], [], [], []
            reembed_ids: list[str] = []
            api_ids: list[str] = []
            noop_ids: list[str] = []
            reembed_config = reembed_run_config(force=True)
            rng = random.Random(args.seed)

            def dephase() -> None:  # see the module docstring
                time.sleep(rng.uniform(0.0, DEQUEUE_INTERVAL_SECONDS))

            for _ in range(args.runs):  # interleaved, so drift in machine load hits all of them
                dephase()
                api_runs.append(api_reembed_seconds(api, api_ids))
                dephase()
                bare_reembed.append(
                    bare_seconds(
                        client, reembed_config, REEMBED_JOB, CODE_LOCATION_NAME, reembed_ids
                    )
                )
                dephase()
                noop_inproc.append(bare_seconds(client, IN_PROCESS, run_ids=noop_ids))
                dephase()
                noop_default.append(bare_seconds(client, {}))

            with dg.DagsterInstance.from_config(str(stack.dagster_home)) as instance:
                phases = {
                    label: [run_phases(instance, run_id) for run_id in ids]
                    for label, ids in (
                        ("api", api_ids),
                        ("reembed", reembed_ids),
                        ("noop", noop_ids),
                    )
                }

            loads = {}
            for name, base in (("cache 1 s", api), ("cache off", uncached)):
                for path in ("/enrichment/status", "/health"):
                    loads[(name, path)] = load(base + path, args.clients, args.seconds)
    finally:
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)

    med = statistics.median
    print(f"\nTrigger-to-success, {args.memories} memories, median of {args.runs} (seconds)\n")
    print("| measurement | executor | median | min | max |")
    print("|---|---|---|---|---|")
    rows = [
        ("POST /admin/reembed (wait) → summary", "in-process (local Qdrant)", api_runs),
        ("bare GraphQL submit → SUCCESS, re-embed job", "in-process (local Qdrant)", bare_reembed),
        ("bare GraphQL submit → SUCCESS, no-op job", "in-process", noop_inproc),
        ("bare GraphQL submit → SUCCESS, no-op job", "default (multiprocess)", noop_default),
    ]
    for label, executor, values in rows:
        print(
            f"| {label} | {executor} | {med(values):.2f} | {min(values):.2f} | {max(values):.2f} |"
        )
    print(
        f"\nWhere the bare runs' time went (median of {args.runs}, seconds, from each run's event log)\n"
    )
    print("| phase | re-embed via the API | re-embed, bare | no-op, bare | bare re-embed − no-op |")
    print("|---|---|---|---|---|")
    for phase in PHASES:
        c, a, b = (med([p[phase] for p in phases[k]]) for k in ("api", "reembed", "noop"))
        print(f"| {phase} | {c:.2f} | {a:.2f} | {b:.2f} | {a - b:+.2f} |")
    print(
        f"\nAPI overhead, API re-embed / bare GraphQL re-embed: "
        f"{med(api_runs) / med(bare_reembed):.2f}"
    )
    print(
        f"ratio API re-embed / bare no-op in-process: {med(api_runs) / med(noop_inproc):.2f} "
        f"(target ≤ 1.5); / bare no-op default: {med(api_runs) / med(noop_default):.2f}"
    )

    print(f"\n{args.clients} concurrent clients × {args.seconds:g} s (milliseconds)\n")
    print("| API status cache | endpoint | requests | req/s | p50 | p95 | p99 | errors |")
    print("|---|---|---|---|---|---|---|---|")
    for (name, path), r in loads.items():
        print(
            f"| {name} | GET {path} | {r['n']} | {r['rps']:.0f} | {r['p50'] * 1000:.1f} | "
            f"{r['p95'] * 1000:.1f} | {r['p99'] * 1000:.1f} | {r['errors']} |"
        )
    for name in ("cache 1 s", "cache off"):
        ratio = loads[(name, "/enrichment/status")]["p95"] / loads[(name, "/health")]["p95"]
        print(f"p95 ratio status / health ({name}): {ratio:.2f} (target ≤ 3)")


if __name__ == "__main__":
    main()
