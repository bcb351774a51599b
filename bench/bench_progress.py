"""Progress reporting benchmark (issue 13): what the progress events cost, and how often they come.

  python bench/bench_progress.py                # N=10,000, 5 rounds on and 5 off, interleaved
Options: --n, --repeat, --batch, --every (seconds between progress events when on)

A re-embed (force=true: every memory embedded and written) with the local provider and Qdrant
in memory, with progress events on (progress_seconds=--every) and off (progress_seconds=0),
rounds interleaved on/off so drift of the machine hits both alike; medians, and the median of
the per-repetition ratios (the two rounds of a repetition run back to back). The gaps are read
from the event log timestamps of the runs with progress on: between two progress events of
the run (any step), and from the run's start to its first one.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.definitions import build_definitions, build_resources  # noqa: E402
from automem_pipelines.domain.progress import parse_progress  # noqa: E402
from automem_pipelines.run_config import reembed_run_config  # noqa: E402
from bench._common import bench_dir, instance_in, keep_open, load, make_settings, median, table  # noqa: E402


def run(settings, instance, resources, config: dict) -> tuple[float, dict, str]:
    job = build_definitions(settings).get_job_def("reembed_job")
    started = time.perf_counter()
    result = job.execute_in_process(run_config=config, instance=instance, resources=resources)
    return (
        time.perf_counter() - started,
        result.output_for_node("summarize_reembed"),
        result.run_id,
    )


def gaps(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float, float]:
    """(progress events, longest gap between two of them, start of run → first one), seconds."""
    entries = instance.all_logs(run_id)
    start = min(e.timestamp for e in entries)
    stamps = [e.timestamp for e in entries if parse_progress(e.user_message)]
    longest = max((b - a for a, b in zip(stamps, stamps[1:])), default=float("nan"))
    return len(stamps), longest, (stamps[0] - start) if stamps else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--every", type=float, default=2.0)
    args = parser.parse_args()

    on_times, off_times, found, pairs = [], [], [], []
    with bench_dir() as root, instance_in(root) as instance:
        settings = make_settings(root, QDRANT_URL=":memory:")
        resources = build_resources(settings, from_env=False)
        keep_open(resources)  # the in-memory collection lives across the rounds
        load(settings, args.n)
        configs = {
            "on": reembed_run_config(args.batch, force=True, progress_seconds=args.every),
            "off": reembed_run_config(args.batch, force=True, progress_seconds=0),
        }
        run(settings, instance, resources, configs["off"])  # warm-up: imports, first collection
        for rep in range(args.repeat):
            for kind in ("on", "off") if rep % 2 == 0 else ("off", "on"):
                seconds, summary, run_id = run(settings, instance, resources, configs[kind])
                assert summary["processed"] == args.n, summary
                (on_times if kind == "on" else off_times).append(seconds)
                if kind == "on":
                    found.append(gaps(instance, run_id))
                else:
                    assert gaps(instance, run_id)[0] == 0
                print(f"rep {rep} {kind}: {seconds:.2f}s", file=sys.stderr, flush=True)
            pairs.append(on_times[-1] / off_times[-1])  # the two rounds of this repetition
    on, off = median(on_times), median(off_times)
    print(
        table(
            f"Progress reporting, re-embed of N={args.n} (force=true), local provider, batch "
            f"{args.batch}, Qdrant in memory; progress every {args.every:g} s; medians of "
            f"{args.repeat} interleaved rounds each",
            [
                "progress on (s)",
                "progress off (s)",
                "on ÷ off (medians)",
                "on ÷ off (median of pairs)",
                "progress events per run",
                "longest gap between two (s)",
                "run start → first event (s)",
            ],
            [
                [
                    on,
                    off,
                    on / off,
                    median(pairs),
                    max(f[0] for f in found),
                    max(f[1] for f in found),
                    max(f[2] for f in found),
                ]
            ],
        )
    )


if __name__ == "__main__":
    main()
