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
The machine's load average (1 min) before and after is printed with the table: on a shared
machine the absolute figures move with it.

    .venv/bin/python bench/bench_startup.py [--runs 5] [--memories 100]
"""

from __future__ import annotations

import argparse
import json
import os
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


# The in-process path up to the run's creation, phase by phase as cli.run_job takes it (the
# cyclic collector paused as there), in a fresh interpreter: CPU seconds of each phase, which
# the machine's load changes far less than elapsed time. Its last line is a JSON object.
PHASES_PROBE = """
import gc, json, time
cpu = {"Python start-up": time.process_time()}
def phase(name, mark=[time.process_time()]):
    now = time.process_time(); cpu[name] = now - mark[0]; mark[0] = now
gc.disable()
from automem_pipelines.cli import _settings
settings = _settings()
phase("the CLI module and the settings (read)")
import dagster as dg
phase("import dagster")
from automem_pipelines.definitions import build_definitions
phase("import the code location")
from automem_pipelines.constants import REEMBED_JOB
from automem_pipelines.instance import ensure_dagster_home
ensure_dagster_home(settings)
build_definitions(settings).get_job_def(REEMBED_JOB)
phase("build the definitions, get the job")
with dg.DagsterInstance.get() as instance:
    instance.get_runs(limit=1)
    phase("open the instance (its storage modules)")
print(json.dumps(cpu))
"""


def time_phases(env: dict[str, str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", PHASES_PROBE], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout.splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--memories", type=int, default=100)
    args = parser.parse_args()

    load_before = os.getloadavg()[0]
    with bench_dir() as root:
        env = stack_env(root)
        settings = make_settings(root, EMBEDDING_PROVIDER="local")
        load(settings, args.memories)
        home = ensure_dagster_home(settings)
        env["DAGSTER_HOME"] = str(home)  # what the CLI itself would choose, made explicit
        phases = [time_phases(env) for _ in range(args.runs)]
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
    phase_rows = [[name, median([p[name] for p in phases])] for name in phases[0]]
    phase_rows.append(["total", sum(row[1] for row in phase_rows)])
    print()
    print(
        table(
            f"in process, before the run is created: CPU s per phase, median of {args.runs}",
            ["phase", "CPU s"],
            phase_rows,
        )
    )
    print(f"\nload average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
