"""A re-embed as a partitioned backfill against one unpartitioned run (benchmark 4, second
half): total wall of the partitions ÷ one run's, on the same graph. Prints markdown tables.

  python bench/bench_backfill.py                       # 100,000 memories, 10 partitions
  python bench/bench_backfill.py --n 20000 --partitions 10 --qdrant path

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
from bench._common import bench_dir, instance_in, keep_open, load, make_settings, table  # noqa: E402


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=10)
    parser.add_argument("--qdrant", choices=["memory", "path"], default="memory")
    args = parser.parse_args()

    with bench_dir() as root, instance_in(root) as instance:
        whole = make_settings(root, **qdrant_env(args.qdrant, "whole"))
        parts = make_settings(root, **qdrant_env(args.qdrant, "partitioned"))
        started = time.perf_counter()
        load(whole, args.n)
        print(f"loaded {args.n} memories in {time.perf_counter() - started:.1f}s", flush=True)
        keep_open(whole), keep_open(parts)  # an in-memory store lives while it is open

        t_whole, s_whole = run(build_reembed_job(whole.qdrant.local), whole, instance)
        assert (s_whole["processed"], s_whole["total"]) == (args.n, args.n), s_whole
        print(f"unpartitioned: {t_whole:.1f}s", flush=True)

        job = build_reembed_partitioned_job(parts.qdrant.local, args.partitions)
        rows, processed = [], 0
        for key in job.partitions_def.get_partition_keys():
            seconds, summary = run(job, parts, instance, key)
            assert (
                summary["processed"] + summary["skipped"] + summary["failed"] == (summary["total"])
            )
            processed += summary["processed"]
            rows.append([key, summary["total"], summary["processed"], seconds])
            print(f"partition {key}: {summary['processed']} in {seconds:.1f}s", flush=True)
        assert processed == args.n, processed
        t_parts = sum(r[3] for r in rows)

    print(
        table(
            f"Partitions ({args.n} memories, local provider, Qdrant local mode {args.qdrant})",
            ["partition", "memories", "re-embedded", "wall s"],
            rows,
        )
    )
    print(
        table(
            "Partitioned backfill against one run (partitions one after the other)",
            ["run", "runs", "re-embedded", "wall s", "ratio"],
            [
                ["one unpartitioned run", 1, s_whole["processed"], t_whole, 1.0],
                [f"{args.partitions} partitions", len(rows), processed, t_parts, t_parts / t_whole],
            ],
        )
    )


if __name__ == "__main__":
    main()
