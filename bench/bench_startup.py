"""Benchmark 5: CLI start-up. `automem-pipelines reembed --force` on a 100-memory store, as a
subprocess, from process start to the run's first step and to the process's exit, printed as a
markdown table (median of R):

- in process: the CLI imports Dagster and runs the job itself (recorded in DAGSTER_HOME);
- handed to a running stack (`--stack URL`): the CLI launches the run over GraphQL on a stack
  started as the end-to-end tests start it, waits for it and prints the same summary.

"Run created" is the run record's creation time (the CLI has started and launched the run);
"first step" is the timestamp of the run's first STEP_START event in the instance's event log
(both variants share one DAGSTER_HOME); "process start" is taken just before the subprocess is
spawned. The in-process variant runs before the stack starts, so no daemon competes with it.

    .venv/bin/python bench/bench_startup.py [--runs 5] [--memories 100]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from automem_pipelines.constants import REEMBED_JOB  # noqa: E402
from automem_pipelines.instance import ensure_dagster_home  # noqa: E402
from automem_pipelines.stack import running_stack  # noqa: E402
from bench._common import bench_dir, load, make_settings, median, table  # noqa: E402
from tests.support.dagster_stack import free_port  # noqa: E402
from tests.support.drills import stack_env  # noqa: E402

CLI = str(Path(sys.executable).with_name("automem-pipelines"))


def latest_run_times(home: Path) -> tuple[str, float, float]:
    """The newest re-embed run in the instance: its id, when it was created (the CLI launched
    it) and its first STEP_START (epoch s)."""
    with dg.DagsterInstance.from_config(str(home)) as instance:
        record = instance.get_run_records(dg.RunsFilter(job_name=REEMBED_JOB), limit=1)[0]
        run_id = record.dagster_run.run_id
        starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
        return run_id, record.create_timestamp.timestamp(), min(e.timestamp for e in starts)


def time_cli(
    args: list[str], env: dict[str, str], home: Path, seen: set[str]
) -> tuple[float, float]:
    started = time.time()
    proc = subprocess.run([CLI, "reembed", "--force", *args], env=env, capture_output=True)
    ended = time.time()
    if proc.returncode != 0:
        raise SystemExit(
            f"reembed {' '.join(args)} exited {proc.returncode}:\n{proc.stderr.decode()}"
        )
    run_id, created, first_step = latest_run_times(home)
    if run_id in seen:
        raise SystemExit("the CLI's run is not in the instance")
    seen.add(run_id)
    return created - started, first_step - started, ended - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memories", type=int, default=100)
    args = parser.parse_args()

    with bench_dir() as root:
        env = stack_env(root)
        settings = make_settings(root, EMBEDDING_PROVIDER="local")
        load(settings, args.memories)
        home = ensure_dagster_home(settings)
        env["DAGSTER_HOME"] = str(home)  # what the CLI itself would choose, made explicit
        seen: set[str] = set()
        results = {"in process": [time_cli([], env, home, seen) for _ in range(args.runs)]}
        port = free_port()
        with running_stack(settings, port=port, env=env) as stack:
            results["--stack (running stack)"] = [
                time_cli(["--stack", stack.url], env, home, seen) for _ in range(args.runs)
            ]
    rows = [
        [name, *(median([t[i] for t in times]) for i in range(3))]
        for name, times in results.items()
    ]
    print(
        table(
            f"`automem-pipelines reembed --force`, {args.memories} memories, "
            f"median of {args.runs} (s from process start)",
            ["path", "to run created", "to first step", "to exit"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
