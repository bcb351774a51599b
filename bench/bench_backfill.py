"""A re-embed as a partitioned backfill against one unpartitioned run (benchmark 4, second
half): total wall of the partitions ÷ one run's, on the same graph. Prints markdown tables.

  python bench/bench_backfill.py                       # 100,000 memories, 10 partitions
  python bench/bench_backfill.py --n 20000 --partitions 10 --qdrant path
  python bench/bench_backfill.py --repeat 2      # two rounds, the second with the partitions first
  python bench/bench_backfill.py --storage postgres   # the Dagster instance on PostgreSQL

Both passes embed every memory (force) with the local provider into a fresh collection of
their own, in this process (execute_in_process, a persistent sqlite instance). Local-mode
Qdrant (the project's store without a Qdrant server) is one process at a time, so the
partitions run one after the other, as the run queue runs a backfill's partitions there
(automem/qdrant=local, limit 1); with a Qdrant server they may run side by side.
--qdrant memory (the default) keeps the store in this process's memory; path writes it to
disk (local mode's on-disk store writes ~500 points/s: expect minutes per 10,000).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.definitions import build_resources  # noqa: E402
from automem_pipelines.jobs import build_reembed_job, build_reembed_partitioned_job  # noqa: E402
from automem_pipelines.run_config import reembed_run_config  # noqa: E402
from bench._common import (  # noqa: E402
    STORAGES,
    bench_dir,
    instance_in,
    keep_open,
    load,
    make_settings,
    table,
)


def qdrant_env(kind: str, collection: str) -> dict[str, str]:
    env = {"QDRANT_COLLECTION": collection}
    return {**env, "QDRANT_URL": ":memory:"} if kind == "memory" else env


def run(job, settings, instance, partition_key: str | None = None) -> tuple[float, dict]:
    started = time.perf_counter()
    result = job.execute_in_process(
        run_config=reembed_run_config(force=True),
        resources=build_resources(settings, from_env=False),
        instance=instance,
        partition_key=partition_key,
    )
    return time.perf_counter() - started, result.output_for_node("summarize_reembed")


def whole_pass(root, instance, kind: str, n: int, rep: int) -> tuple[float, int]:
    settings = make_settings(root, **qdrant_env(kind, f"whole_{rep}"))
    store = keep_open(settings)  # an in-memory store lives while it is open
    seconds, summary = run(build_reembed_job(settings.qdrant.local), settings, instance)
    assert (summary["processed"], summary["total"]) == (n, n), summary
    store.client.delete_collection(store.collection)
    return seconds, summary["processed"]


def partitioned_pass(
    root, instance, kind: str, n: int, rep: int, partitions: int
) -> tuple[float, int, list[list]]:
    settings = make_settings(root, **qdrant_env(kind, f"partitioned_{rep}"))
    store = keep_open(settings)
    job = build_reembed_partitioned_job(settings.qdrant.local, partitions)
    rows, processed = [], 0
    for key in job.partitions_def.get_partition_keys():
        seconds, summary = run(job, settings, instance, key)
        assert summary["processed"] + summary["skipped"] + summary["failed"] == summary["total"]
        processed += summary["processed"]
        rows.append([rep, key, summary["total"], summary["processed"], seconds])
        print(f"partition {key}: {summary['processed']} in {seconds:.1f}s", flush=True)
    assert processed == n, processed
    store.client.delete_collection(store.collection)
    return sum(r[-1] for r in rows), processed, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--qdrant", choices=["memory", "path"], default="memory")
    parser.add_argument(
        "--storage",
        choices=STORAGES,
        default="sqlite",
        help="the Dagster instance's storage: sqlite under DAGSTER_HOME, or a PostgreSQL server "
        "the bench starts (as DAGSTER_POSTGRES_URL configures it)",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="rounds; every other one runs the partitions first"
    )
    args = parser.parse_args()

    rounds, partition_rows = [], []
    with bench_dir() as root, instance_in(root, args.storage) as instance:
        started = time.perf_counter()
        load(make_settings(root), args.n)
        print(f"loaded {args.n} memories in {time.perf_counter() - started:.1f}s", flush=True)
        for rep in range(args.repeat):
            order = ["whole", "partitioned"] if rep % 2 == 0 else ["partitioned", "whole"]
            walls = {}
            for kind in order:
                if kind == "whole":
                    walls[kind] = whole_pass(root, instance, args.qdrant, args.n, rep)[0]
                    print(f"round {rep}: unpartitioned {walls[kind]:.1f}s", flush=True)
                else:
                    wall, _, rows = partitioned_pass(
                        root, instance, args.qdrant, args.n, rep, args.partitions
                    )
                    walls[kind] = wall
                    partition_rows += rows
                    print(f"round {rep}: {args.partitions} partitions {wall:.1f}s", flush=True)
            rounds.append(
                [
                    rep,
                    " then ".join(order),
                    walls["whole"],
                    walls["partitioned"],
                    walls["partitioned"] / walls["whole"],
                ]
            )

    print(
        table(
            f"Partitions ({args.n} memories, local provider, Qdrant local mode {args.qdrant}, "
            f"Dagster storage {args.storage})",
            ["round", "partition", "memories", "re-embedded", "wall s"],
            partition_rows,
        )
    )
    print(
        table(
            f"{args.partitions} partitions one after the other against one unpartitioned run "
            f"({args.n} memories)",
            ["round", "order", "one run s", "partitions s (sum)", "ratio"],
            rounds,
        )
    )
    if len(rounds) > 1:
        total = sum(r[3] for r in rounds) / sum(r[2] for r in rounds)
        print(f"\nover all rounds: {total:.3f}")


if __name__ == "__main__":
    main()
