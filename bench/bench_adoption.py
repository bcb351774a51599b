"""A store AutoMem wrote (no stamps of ours): the first incremental re-embed and the drift dry
run on it. Prints markdown tables.

  python bench/bench_adoption.py [--n 10000] [--repeat 3] [--qdrant memory,path]

The store: N memories in the shape of tests/fixtures/automem-0.16.1-store (each a fixture
memory with its own id and content), points with AutoMem's payload keys and no stamps, their
vectors from the local OpenAI-wire test server playing AutoMem's model (text-embedding-3-small,
1024-d, as the fixture's were made). Per repetition, on fresh stores each time:

* the first incremental re-embed (force=false): provider requests and texts (target: only the
  identity check, at most 32 texts), wall time ÷ a forced re-embed of the same store (≤ 0.1);
* the drift dry run on the unstamped store (target: zero drift) and on the same store after the
  forced re-embed has stamped every point: unstamped ÷ stamped (≤ 1.2).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.definitions import build_definitions, build_resources  # noqa: E402
from automem_pipelines.run_config import reembed_run_config, sync_run_config  # noqa: E402
from bench._common import STORAGES, bench_dir, instance_in, keep_open, make_settings, median, table  # noqa: E402
from tests.support.automem_fixture import DIM, MODEL, read_fixture  # noqa: E402
from tests.support.embedding_models import model_vectors  # noqa: E402
from tests.support.openai_server import OpenAIEmbeddingsServer  # noqa: E402

KINDS = ("memory", "path")
ZERO = ("missing_count", "orphaned_count", "stale_vector_count", "payload_drift_count")


def automem_store(n: int) -> tuple[list[dict], list[str], list[dict], np.ndarray]:
    fixture = read_fixture()
    payload_of = {p["id"]: p["payload"] for p in fixture.points}
    nodes, payloads = [], []
    for i in range(n):
        template = fixture.nodes[i % len(fixture.nodes)]
        content = f"{template['content']} [copy {i}]"
        nodes.append({**template, "id": str(uuid.uuid4()), "content": content})
        payloads.append({**payload_of[template["id"]], "content": content})
    vecs = np.vstack(
        [
            model_vectors([m["content"] for m in nodes[s : s + 2000]], MODEL, DIM)
            for s in range(0, n, 2000)
        ]
    )
    return nodes, [m["id"] for m in nodes], payloads, vecs


def load_points(resources: dict, ids: list[str], payloads: list[dict], vecs: np.ndarray) -> None:
    from qdrant_client import models

    store = keep_open(resources)
    if store.client.collection_exists(store.collection):
        store.client.delete_collection(store.collection)
    store.client.create_collection(
        store.collection,
        vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE),
    )
    store.upsert(ids, vecs, payloads)


def run(settings, instance, job: str, config: dict, resources: dict) -> tuple[float, dict]:
    definition = build_definitions(settings).get_job_def(job)
    started = time.perf_counter()
    result = definition.execute_in_process(
        run_config=config, instance=instance, resources=resources
    )
    seconds = time.perf_counter() - started
    op = "summarize_reembed" if job == "reembed_job" else "summarize_sync"
    return seconds, result.output_for_node(op)


def one(kind: str, storage: str, n: int, server: OpenAIEmbeddingsServer, store) -> dict:
    nodes, ids, payloads, vecs = store
    with bench_dir() as root, instance_in(root, storage) as instance:
        env = {
            "EMBEDDING_PROVIDER": "openai",
            "OPENAI_API_KEY": "bench",
            "OPENAI_BASE_URL": server.base_url,
            "EMBEDDING_MODEL": MODEL,
            "VECTOR_SIZE": str(DIM),
        }
        if kind == "memory":
            env["QDRANT_URL"] = ":memory:"
        settings = make_settings(root, **env)
        resources = build_resources(settings, from_env=False)
        with resources["falkordb"].get_store() as graph:
            graph.ensure_indexes()
            graph.upsert_memories(nodes, batch=5000)
        load_points(resources, ids, payloads, vecs)

        t_dry_unstamped, dry = run(
            settings, instance, "drift_sync_job", sync_run_config(dry_run=True), resources
        )
        server.reset()
        t_incr, incr = run(
            settings, instance, "reembed_job", reembed_run_config(batch_size=100), resources
        )
        incr_requests = len(server.state.requests)
        incr_texts = sum(len(r.texts) for r in server.state.requests)
        assert incr["adopted"] == n and incr["processed"] == 0, incr

        load_points(resources, ids, payloads, vecs)  # the same unstamped store again
        server.reset()
        t_forced, forced = run(
            settings,
            instance,
            "reembed_job",
            reembed_run_config(batch_size=100, force=True),
            resources,
        )
        assert forced["processed"] == n, forced
        forced_requests = len(server.state.requests)
        t_dry_stamped, dry_stamped = run(
            settings, instance, "drift_sync_job", sync_run_config(dry_run=True), resources
        )
    return {
        "incr": t_incr,
        "forced": t_forced,
        "incr_requests": incr_requests,
        "incr_texts": incr_texts,
        "forced_requests": forced_requests,
        "adopted": incr["adopted"],
        "dry_unstamped": t_dry_unstamped,
        "dry_stamped": t_dry_stamped,
        "drift_unstamped": sum(dry[k] for k in ZERO),
        "drift_stamped": sum(dry_stamped[k] for k in ZERO),
        "detect_unstamped": sum(dry["detect_seconds"].values()),
        "detect_stamped": sum(dry_stamped["detect_seconds"].values()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--qdrant", default="memory,path", help="memory, path or both (comma-separated)"
    )
    parser.add_argument(
        "--instance",
        default="sqlite",
        help="the Dagster instance's storage: sqlite, postgres or both (comma-separated)",
    )
    args = parser.parse_args()
    kinds = [
        (k, s)
        for k in args.qdrant.split(",")
        if k in KINDS
        for s in args.instance.split(",")
        if s in STORAGES
    ]
    store = automem_store(args.n)
    server = OpenAIEmbeddingsServer().start()
    results: dict[tuple[str, str], list[dict]] = {k: [] for k in kinds}
    try:
        for rep in range(args.repeat):
            for kind in kinds:  # interleaved, so drift of the machine's load hits both alike
                r = one(*kind, args.n, server, store)
                results[kind].append(r)
                print(
                    f"rep {rep} {kind}: incremental {r['incr']:.2f}s forced {r['forced']:.2f}s "
                    f"dry run {r['dry_unstamped']:.2f}/{r['dry_stamped']:.2f}s",
                    file=sys.stderr,
                )
    finally:
        server.stop()

    def m(kind: tuple[str, str], key: str) -> float:
        return median([r[key] for r in results[kind]])

    def label(kind: tuple[str, str]) -> str:
        qdrant, storage = kind
        return (
            f"local mode {'in memory' if qdrant == 'memory' else 'on disk'}, instance on {storage}"
        )

    rows = []
    for kind in kinds:
        rows.append(
            [
                label(kind),
                args.n,
                f"{max(r['incr_requests'] for r in results[kind])} / {max(r['incr_texts'] for r in results[kind])}",
                m(kind, "adopted"),
                m(kind, "incr"),
                m(kind, "forced"),
                m(kind, "forced_requests"),
                m(kind, "incr") / m(kind, "forced"),
            ]
        )
    print(
        table(
            f"First incremental re-embed of an AutoMem-written store (no stamps), batch 100, "
            f"0 ms provider; medians of {args.repeat}",
            [
                "Qdrant, Dagster instance",
                "memories",
                "provider requests / texts",
                "adopted",
                "incremental (s)",
                "forced (s)",
                "forced requests",
                "incremental ÷ forced (target ≤ 0.1)",
            ],
            rows,
        )
    )
    rows = []
    for kind in kinds:
        rows.append(
            [
                label(kind),
                max(r["drift_unstamped"] for r in results[kind]),
                max(r["drift_stamped"] for r in results[kind]),
                m(kind, "dry_unstamped"),
                m(kind, "dry_stamped"),
                m(kind, "dry_unstamped") / m(kind, "dry_stamped"),
                m(kind, "detect_unstamped"),
                m(kind, "detect_stamped"),
                m(kind, "detect_unstamped") / m(kind, "detect_stamped"),
            ]
        )
    print(
        table(
            f"Drift dry run, the same stores: unstamped (AutoMem's points) and after a forced re-embed "
            f"(every point stamped); medians of {args.repeat}",
            [
                "Qdrant, Dagster instance",
                "drift found, unstamped",
                "drift found, stamped",
                "run unstamped (s)",
                "run stamped (s)",
                "run ratio (target ≤ 1.2)",
                "detection unstamped (s)",
                "detection stamped (s)",
                "detection ratio",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
