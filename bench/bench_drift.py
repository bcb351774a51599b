"""Drift detection benchmark: our detection vs AutoMem's id-set method, on the same stores.

Builds a store of N memories (default 100,000) in an embedded FalkorDB server of its own and
a Qdrant collection in local in-memory mode (path mode writes ~500 points/s, too slow to load
100k), injects 1% drift of each kind (missing, orphaned, stale_vector, payload_drift) at
random places, then times, in one process:

  ours              drift.detect: graph read in node-id ranges + scroll with payloads, compared
                    by id, content hash/stamps and payload digest
  automem-shipped   /admin/sync as AutoMem 0.16.1 does it: one unbounded graph query (cut at
                    FalkorDB's RESULTSET_SIZE 10,000) + scroll of ids, 1000/page, type filter
  automem-paged     the same id sets with the graph read paged (issue #207 fixed), same scroll
  ids-filter        id sets, graph paged, scroll with our page size and AutoMem's type filter
  ids-only          id sets, graph paged, scroll with our page size, no filter: reading both
                    stores' ids and nothing else

Memory: each method runs a second time under tracemalloc, whose peak is the most Python heap
the detection held at once (the stores' own memory excluded: Qdrant :memory: lives in this
process). Process RSS growth is also sampled every 5 ms during the timed run, but the
allocator reuses memory the store build freed, so it mostly stays near 0. The slow AutoMem
variants are not run twice. Vectors are random unit vectors (detection never reads vectors);
payloads and stamps are exactly what the re-embed path writes.

    .venv/bin/python bench/bench_drift.py                   # 100,000 memories, 1% of each kind
    .venv/bin/python bench/bench_drift.py --count 20000 --skip-shipped
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
import tracemalloc
from contextlib import ExitStack
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from automem_pipelines.domain import drift  # noqa: E402
from automem_pipelines.domain.memory import (  # noqa: E402
    DEFAULT_RECALL_EXCLUDED_TYPES,  # noqa: E402
    content_hash,
    make_stamps,
    merged_payload,
    node_props_for_write,
)
from automem_pipelines.domain.sample import sample_memories  # noqa: E402
from automem_pipelines.domain.vector_state import EmbeddingIdentity  # noqa: E402
from automem_pipelines.stores import falkordb_server  # noqa: E402
from automem_pipelines.stores.graph import GraphConfig  # noqa: E402
from automem_pipelines.stores.graph import connect as connect_graph
from automem_pipelines.stores.vectors import (  # noqa: E402
    VectorConfig,
    exclude_types_filter,
    open_store,
)
from bench._common import rss_mb  # noqa: E402

SPEC = EmbeddingIdentity("local", "minilm-l6-static", 256)
EXCLUDED = DEFAULT_RECALL_EXCLUDED_TYPES
# The kinds this bench injects (drift.KINDS also has duplicate_id: none here, and ours must find none).
INJECTED = ("missing", "orphaned", "stale_vector", "payload_drift")


class PeakRSS:
    """Samples RSS in a thread; .peak_delta is the high-water mark over the starting RSS."""

    def __enter__(self):
        self.start = rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_mb())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_mb())
        self.peak_delta = self.peak - self.start


def heap_peak_mb(fn) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def build(graph, vectors, count: int, fraction: float, seed: int) -> dict[str, set[str]]:
    rng = random.Random(seed)
    t0 = time.perf_counter()
    memories = [node_props_for_write(m) for m in sample_memories(count, seed=seed)]
    graph.ensure_indexes()
    graph.upsert_memories(memories, batch=5000)
    t1 = time.perf_counter()
    vectors.ensure_collection(SPEC.dim)
    vrng = np.random.default_rng(seed)
    for start in range(0, count, 5000):
        part = memories[start : start + 5000]
        vecs = vrng.standard_normal((len(part), SPEC.dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        payloads = [
            merged_payload(
                None,
                m,
                make_stamps(content_hash(m["content"]), SPEC.provider, SPEC.model, SPEC.dim),
            )
            for m in part
        ]
        vectors.upsert([m["id"] for m in part], vecs, payloads)
    t2 = time.perf_counter()
    per_kind = max(1, int(count * fraction))
    chosen = rng.sample([m["id"] for m in memories], 4 * per_kind)
    truth = {
        kind: set(chosen[i * per_kind : (i + 1) * per_kind]) for i, kind in enumerate(INJECTED)
    }
    vectors.client.delete(vectors.collection, points_selector=list(truth["missing"]), wait=True)
    # New values are computed here and passed as parameters: FalkorDB 4.16.3 string '+' on
    # long strings was seen to yield '' now and then, which would corrupt the injected truth.
    by_id = {m["id"]: m for m in memories}
    ids = list(truth["orphaned"])
    for start in range(0, len(ids), 1000):
        graph.query(
            "MATCH (m:Memory) WHERE m.id IN $ids DELETE m", {"ids": ids[start : start + 1000]}
        )
    edits = {
        "stale_vector": lambda m: {"id": m["id"], "content": m["content"] + " (edited)"},
        "payload_drift": lambda m: {
            "id": m["id"],
            "importance": 0.01,
            "tags": m["tags"] + ["moved"],
        },
    }
    for kind, edit in edits.items():
        graph.upsert_memories(edit(by_id[mid]) for mid in truth[kind])
    print(
        f"built: {count} memories in FalkorDB ({t1 - t0:.1f}s), Qdrant :memory: "
        f"({t2 - t1:.1f}s); {per_kind} of each drift kind injected",
        flush=True,
    )
    return truth


def id_sets(graph, vectors, page: int, use_filter: bool, unbounded_graph: bool = False) -> dict:
    t0 = time.perf_counter()
    if unbounded_graph:  # AutoMem 0.16.1: one query, silently cut at RESULTSET_SIZE
        rows = graph.query(
            "MATCH (m:Memory) WHERE NOT coalesce(m.type, '') IN $excluded RETURN m.id",
            {"excluded": list(EXCLUDED)},
        )
        falkor = {r[0] for r in rows}
    else:
        falkor = set(graph.memory_ids(EXCLUDED))
    t1 = time.perf_counter()
    flt = exclude_types_filter(EXCLUDED) if use_filter else None
    qdrant: set[str] = set()
    for records in vectors.scroll(page=page, scroll_filter=flt):
        qdrant.update(str(r.id) for r in records)
    t2 = time.perf_counter()
    missing, orphaned = falkor - qdrant, qdrant - falkor
    t3 = time.perf_counter()
    return {
        "falkordb_count": len(falkor),
        "qdrant_count": len(qdrant),
        "missing": missing,
        "orphaned": orphaned,
        "graph": t1 - t0,
        "vector": t2 - t1,
        "compare": t3 - t2,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--drift", type=float, default=0.01, help="fraction of each kind")
    parser.add_argument("--scroll-page", type=int, default=drift.SCROLL_PAGE)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--skip-shipped",
        action="store_true",
        help="skip AutoMem's 1000-per-page filtered scroll (about 2 min at 100k)",
    )
    args = parser.parse_args()

    data_dir = Path(tempfile.mkdtemp(prefix="amb-"))
    falkordb_server.ensure_running(data_dir)
    kept = ExitStack()
    try:
        graph = connect_graph(GraphConfig(None, 0, None, "bench_drift", data_dir))
        vectors = kept.enter_context(
            open_store(VectorConfig(":memory:", None, "bench_drift", data_dir, 30, 0))
        )
        truth = build(graph, vectors, args.count, args.drift, args.seed)
        rows = []

        with PeakRSS() as mem:
            t0 = time.perf_counter()
            report = drift.detect(graph, vectors, SPEC, EXCLUDED, scroll_page=args.scroll_page)
            wall = time.perf_counter() - t0
        found = {k: set(getattr(report, k)) for k in INJECTED}
        assert not report.duplicate_id, f"no duplicate ids were injected: {report.duplicate_id[:5]}"
        heap = heap_peak_mb(
            lambda: drift.detect(graph, vectors, SPEC, EXCLUDED, scroll_page=args.scroll_page)
        )
        rows.append(
            (
                "ours",
                f"{drift.GRAPH_PAGE}/{args.scroll_page}",
                wall,
                report.graph_seconds,
                report.vector_seconds,
                report.compare_seconds,
                mem.peak_delta,
                heap,
                report.falkordb_count,
                report.qdrant_count,
                found,
            )
        )

        variants = []
        if not args.skip_shipped:
            variants.append(("automem-shipped", "unbounded/1000", 1000, True, True))
            variants.append(("automem-paged", f"{drift.GRAPH_PAGE}/1000", 1000, True, False))
        variants.append(
            ("ids-filter", f"{drift.GRAPH_PAGE}/{args.scroll_page}", args.scroll_page, True, False)
        )
        variants.append(
            ("ids-only", f"{drift.GRAPH_PAGE}/{args.scroll_page}", args.scroll_page, False, False)
        )
        for name, pages, page, use_filter, unbounded in variants:
            with PeakRSS() as mem:
                t0 = time.perf_counter()
                res = id_sets(graph, vectors, page, use_filter, unbounded)
                wall = time.perf_counter() - t0
            heap = None
            if not name.startswith("automem"):
                heap = heap_peak_mb(lambda: id_sets(graph, vectors, page, use_filter, unbounded))
            idfound = {
                "missing": res["missing"],
                "orphaned": res["orphaned"],
                "stale_vector": None,
                "payload_drift": None,
            }
            rows.append(
                (
                    name,
                    pages,
                    wall,
                    res["graph"],
                    res["vector"],
                    res["compare"],
                    mem.peak_delta,
                    heap,
                    res["falkordb_count"],
                    res["qdrant_count"],
                    idfound,
                )
            )

        expected_falkor = args.count - len(truth["orphaned"])
        expected_qdrant = args.count - len(truth["missing"])
        print(
            f"\n{args.count} memories, {len(truth['missing'])} of each kind; truth: "
            f"falkordb_count={expected_falkor} qdrant_count={expected_qdrant}\n"
        )
        header = (
            "method",
            "pages g/q",
            "wall s",
            "graph s",
            "scroll s",
            "compare s",
            "RSS +MB",
            "peak heap MB",
            "falkordb",
            "qdrant",
            "missing",
            "orphaned",
            "stale",
            "payload",
            "exact?",
        )
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for name, pages, wall, g, v, c, peak, heap, fc, qc, fnd in rows:
            cells = []
            exact = fc == expected_falkor and qc == expected_qdrant
            for kind in INJECTED:
                got = fnd[kind]
                if got is None:
                    cells.append("n/a")
                    exact = False
                else:
                    ok = got == truth[kind]
                    exact = exact and ok
                    cells.append(f"{len(got)}" + ("" if ok else " ✗"))
            heap_cell = "-" if heap is None else f"{heap:.0f}"
            print(
                f"| {name} | {pages} | {wall:.2f} | {g:.2f} | {v:.2f} | {c:.2f} | {peak:.0f} | {heap_cell} | "
                f"{fc} | {qc} | " + " | ".join(cells) + f" | {'yes' if exact else 'no'} |"
            )
        ours = rows[0][2]
        print()
        extra = {k: found[k] - truth[k] for k in INJECTED}
        for kind, ids in extra.items():
            for mid in sorted(ids)[:5]:  # why ours disagrees with the injected truth
                node = graph.fetch_properties([mid]).get(mid)
                payload = vectors.payloads([mid]).get(mid)
                if node is None or payload is None:
                    print(
                        f"{kind} beyond the injected set: {mid} node={node is not None} "
                        f"point={payload is not None}"
                    )
                    continue
                expected = drift.expected_payload(node)
                diff = {
                    k: (str(expected[k])[:40], str(payload.get(k, "<absent>"))[:40])
                    for k in expected
                    if drift.canonical(expected[k]) != drift.canonical(payload.get(k, "<absent>"))
                }
                print(f"{kind} beyond the injected set: {mid}: graph vs point {diff}")
        print()
        for name, *_rest in rows[1:]:
            other = next(r for r in rows if r[0] == name)[2]
            print(f"ours / {name}: {ours / other:.2f}x")
    finally:
        kept.close()
        falkordb_server.stop(data_dir)
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
