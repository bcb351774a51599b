"""The re-embed's write path on existing points, A/B in one process (issue 12): the previous
read-back-and-merge (payloads read, merged, upserted) against VectorStore.write_vectors, on an
in-memory local store (the store fast enough to show the write path's own cost). Interleaved,
medians of --repeat; prints a markdown table.

    .venv/bin/python bench/bench_writes.py [--n 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.domain.memory import make_stamps, merged_payload, node_props_for_write  # noqa: E402
from automem_pipelines.domain.sample import sample_memories  # noqa: E402
from automem_pipelines.stores import vectors  # noqa: E402
from automem_pipelines.stores.vectors import VectorConfig  # noqa: E402
from bench._common import median, table  # noqa: E402

WINDOW = 1024  # the re-embed's write window


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    rows = [node_props_for_write(m) for m in sample_memories(args.n, seed=3)]
    ids = [r["id"] for r in rows]
    rng = np.random.default_rng(0)

    def unit_vectors() -> np.ndarray:
        v = rng.standard_normal((args.n, 256)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    def stamps() -> dict:
        return make_stamps("h", "bench", "m", 256)

    times: dict[str, list[float]] = {"read back + upsert": [], "write_vectors": []}
    config = VectorConfig(":memory:", None, "bench", Path(tempfile.gettempdir()), 30, 5)
    with vectors.open_store(config) as store:
        store.ensure_collection(256)
        store.upsert(ids, unit_vectors(), [merged_payload(None, r, stamps()) for r in rows])
        for _ in range(args.repeat):
            for kind in times:
                vecs = unit_vectors()
                started = time.perf_counter()
                with store.bulk_phase():
                    for s in range(0, args.n, WINDOW):
                        part, props = ids[s : s + WINDOW], rows[s : s + WINDOW]
                        if kind == "write_vectors":
                            payloads = [merged_payload(None, r, stamps()) for r in props]
                            store.write_vectors(part, vecs[s : s + WINDOW], payloads)
                        else:
                            existing = store.payloads(part)
                            payloads = [
                                merged_payload(existing.get(i), r, stamps())
                                for i, r in zip(part, props)
                            ]
                            store.upsert(part, vecs[s : s + WINDOW], payloads)
                times[kind].append(time.perf_counter() - started)
    old, new = median(times["read back + upsert"]), median(times["write_vectors"])
    print(
        table(
            f"Write path, {args.n} existing points, in-memory local store, medians of {args.repeat}",
            ["read back + upsert (s)", "write_vectors (s)", "write_vectors ÷ read back"],
            [[old, new, new / old]],
        )
    )


if __name__ == "__main__":
    main()
