"""Benchmark 1 of issue 12: our re-embed against AutoMem's method, on the same stores.

For each provider latency (0 ms and 150 ms, set on the OpenAI-wire test server, which runs in a
process of its own so its JSON work does not take this interpreter's lock):

  (a) AutoMem's `POST /admin/reembed` loop, reproduced: one Cypher query (id, content, tags,
      importance, timestamp, type, confidence, metadata, updated_at, last_accessed ORDER BY
      m.timestamp DESC), then per batch, one at a time: embed the texts with the official openai
      client (one request), upsert PointStruct(id, vector, 9-key payload) with the same
      QdrantClient the job uses;
  (b) our re-embed job in this process (execute_in_process): its summary's `seconds` and the
      call's wall time;
  (c) end to end: `POST /admin/reembed {"force": true, "wait": true, "batch_size": 100}` on a
      running stack (webserver, daemon, API; the run worker opens the same on-disk store).

Same FalkorDB server, same Qdrant collection, same provider server for all three; the rounds are
interleaved (a, b, c at 0 ms, then at 150 ms, repeated), and the table shows medians.

    .venv/bin/python bench/bench_reference.py [--n 5000] [--batch 100] [--repeat 3]
        [--latency 0.150] [--qdrant path|memory]

--qdrant memory runs (a) and (b) on an in-memory store and leaves out (c) (a stack's run
worker cannot see this process's memory).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import requests
from openai import OpenAI
from qdrant_client import models

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automem_pipelines.definitions import build_resources  # noqa: E402
from automem_pipelines.run_config import reembed_run_config  # noqa: E402
from automem_pipelines.settings import Settings  # noqa: E402
from automem_pipelines.stack import running_stack, start_api  # noqa: E402
from automem_pipelines.stores import falkordb_server  # noqa: E402
from automem_pipelines.stores.graph import GraphConfig, connect  # noqa: E402
from bench._common import ProviderProcess, instance_in, load, median, run_job, table  # noqa: E402
from tests.support.dagster_stack import free_port  # noqa: E402
from tests.support.drills import stack_env  # noqa: E402

API_TOKEN = "bench-api-token"
ADMIN_TOKEN = "bench-admin-token"
MODEL = "text-embedding-3-small"
DIM = 256

# AutoMem 0.16.1 automem/api/admin.py, POST /admin/reembed (force: no content filter).
REFERENCE_QUERY = """
MATCH (m:Memory)
RETURN m.id AS id, m.content AS content, m.tags AS tags, m.importance AS importance,
       m.timestamp AS timestamp, m.type AS type, m.confidence AS confidence,
       m.metadata AS metadata, m.updated_at AS updated_at, m.last_accessed AS last_accessed
ORDER BY m.timestamp DESC
"""


def _parsed(value, kind: type):
    """AutoMem's row normalisation: a ``kind`` as is, or a JSON string of one; else empty."""
    if isinstance(value, kind):
        return value
    if isinstance(value, str) and value:
        try:
            parsed = json.loads(value)
        except ValueError:
            return kind()
        return parsed if isinstance(parsed, kind) else kind()
    return kind()


def reference_reembed(graph, qdrant, collection: str, client: OpenAI, batch_size: int) -> dict:
    """AutoMem's loop, step for step: enumerate, then embed → upsert one batch at a time."""
    rows = graph.query(REFERENCE_QUERY)
    memories = []
    for mid, content, tags, importance, ts, mtype, confidence, meta, updated, accessed in rows:
        if not content:
            continue
        memories.append(
            {
                "id": mid,
                "content": content,
                "tags": _parsed(tags, list),
                "importance": 0.5 if importance is None else importance,
                "timestamp": ts,
                "type": mtype or "Context",
                "confidence": 0.6 if confidence is None else confidence,
                "metadata": _parsed(meta, dict),
                "updated_at": updated,
                "last_accessed": accessed,
            }
        )
    processed = failed = 0
    for i in range(0, len(memories), batch_size):
        batch = memories[i : i + batch_size]
        try:
            response = client.embeddings.create(
                input=[m["content"] for m in batch], model=MODEL, dimensions=DIM
            )
            vectors = [d.embedding for d in sorted(response.data, key=lambda d: d.index)]
            if len(vectors) != len(batch):
                raise ValueError("embedding count mismatch")
            points = [
                models.PointStruct(id=m["id"], vector=v, payload={k: m[k] for k in m if k != "id"})
                for m, v in zip(batch, vectors)
            ]
            qdrant.upsert(collection_name=collection, points=points)
            processed += len(batch)
        except Exception:  # the reference counts the whole batch failed and goes on
            failed += len(batch)
    return {"processed": processed, "failed": failed, "total": len(memories)}


def api_reembed(api_url: str, batch: int) -> tuple[float, dict]:
    headers = {"Authorization": f"Bearer {API_TOKEN}", "X-Admin-Token": ADMIN_TOKEN}
    started = time.perf_counter()
    response = requests.post(
        f"{api_url}/admin/reembed",
        json={"force": True, "wait": True, "batch_size": batch},
        headers=headers,
        timeout=900,
    )
    elapsed = time.perf_counter() - started
    body = response.json() if response.headers.get("content-type", "").startswith("app") else {}
    if response.status_code != 200 or body.get("status") != "complete":
        raise RuntimeError(f"re-embed through the API did not complete: {response.text[:2000]}")
    return elapsed, body


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=5_000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.150, help="seconds per request")
    parser.add_argument("--qdrant", choices=["path", "memory"], default="path")
    args = parser.parse_args()
    latencies = (0.0, args.latency)
    with_api = args.qdrant == "path"

    root = Path(tempfile.mkdtemp(prefix="amb-ref-"))
    server = ProviderProcess(default_dim=DIM)  # its own process: no shared interpreter lock
    env = stack_env(
        root,
        EMBEDDING_PROVIDER="openai",
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=server.base_url,
        VECTOR_SIZE=str(DIM),
        AUTOMEM_API_TOKEN=API_TOKEN,
        ADMIN_API_TOKEN=ADMIN_TOKEN,
        AUTOMEM_API_ADMIN_RATE_LIMIT="0",
        AUTOMEM_API_WAIT_TIMEOUT_SECONDS="900",
        **({"QDRANT_URL": ":memory:"} if args.qdrant == "memory" else {}),
    )
    settings = Settings.from_env(env)
    os.environ.pop("DAGSTER_HOME", None)
    client = OpenAI(api_key="sk-bench", base_url=server.base_url)
    times: dict[tuple[str, float], list[float]] = {}

    def record(key: str, latency: float, value: float) -> None:
        times.setdefault((key, latency), []).append(value)

    try:
        falkordb_server.ensure_running(root)
        load(settings, args.n)
        graph = connect(GraphConfig.from_settings(settings))
        resources = build_resources(settings, from_env=False)
        config = reembed_run_config(args.batch, force=True)
        with ExitStack() as outer:
            if with_api:
                stack = outer.enter_context(running_stack(settings, port=free_port(), env=env))
                port = free_port()
                start_api(stack, port=port, env=env, name="api")
                api_url = f"http://127.0.0.1:{port}"
            if not with_api:  # an in-memory store lives while open: keep it for the whole run
                outer.enter_context(resources["qdrant"].open_store())
            instance = outer.enter_context(instance_in(root / "in-process"))

            def round_(latency: float, timed: bool) -> None:
                server.set_latency(latency)
                with resources["qdrant"].open_store() as store:
                    store.ensure_collection(DIM)
                    t0 = time.perf_counter()
                    ref = reference_reembed(
                        graph, store.client, store.collection, client, args.batch
                    )
                    t_ref = time.perf_counter() - t0
                    if ref["processed"] != args.n or store.count() != args.n:
                        raise RuntimeError(f"reference loop: {ref}, {store.count()} points")
                    t_job, summary = run_job(settings, instance, config, resources)
                    if summary["processed"] != args.n:
                        raise RuntimeError(f"job: {summary}")
                t_api = api_summary = None
                if with_api:  # the store is closed here: the stack's run worker opens it
                    t_api, api_summary = api_reembed(api_url, args.batch)
                    if api_summary.get("processed") != args.n:
                        raise RuntimeError(f"API: {api_summary}")
                line = (
                    f"{latency * 1000:.0f} ms: reference {t_ref:.2f}s job {summary['seconds']:.2f}s "
                    f"(wall {t_job:.2f}s)"
                    + (f" API {t_api:.2f}s (job {api_summary.get('seconds')}s)" if with_api else "")
                )
                print(("" if timed else "warm-up ") + line, file=sys.stderr)
                if not timed:
                    return
                record("reference", latency, t_ref)
                record("job", latency, summary["seconds"])
                record("job wall", latency, t_job)
                if with_api:
                    record("api", latency, t_api)
                    record("api job", latency, float(api_summary.get("seconds") or "nan"))

            round_(0.0, timed=False)  # imports, client connections, the stack's first run
            for _ in range(args.repeat):
                for latency in latencies:
                    round_(latency, timed=True)
        graph.close()
    finally:
        server.stop()
        falkordb_server.stop(root)
        shutil.rmtree(root, ignore_errors=True)

    header = [
        "provider latency",
        "AutoMem's loop (s)",
        "job: summary seconds (s)",
        "job: execute_in_process wall (s)",
        "reference ÷ job seconds",
        "reference ÷ job wall",
    ]
    if with_api:
        header += ["POST /admin/reembed wait (s)", "reference ÷ API"]
    rows = []
    for latency in latencies:
        ref, job, wall = (median(times[(k, latency)]) for k in ("reference", "job", "job wall"))
        row = [f"{latency * 1000:.0f} ms", ref, job, wall, ref / job, ref / wall]
        if with_api:
            api = median(times[("api", latency)])
            row += [api, ref / api]
        rows.append(row)
    print(
        table(
            f"Re-embed against AutoMem's method, N={args.n}, batch {args.batch}, OpenAI-wire "
            f"server, Qdrant local mode ({args.qdrant}); medians of {args.repeat}, interleaved",
            header,
            rows,
        )
    )
    print(f"\ntargets: reference ÷ ours >= 1.5 at 0 ms, >= 2.5 at {args.latency * 1000:.0f} ms")


if __name__ == "__main__":
    main()
