"""The Dagster instance's own cost: a 20-step run on PostgreSQL storage ÷ on sqlite.

  python bench/bench_instance.py [--repeat 5] [--steps 20]

Each run is ``execute_in_process`` of a chain of ``--steps`` ops, each logging one line, so the
time is the instance's: run and step events written to its storage. sqlite is a persistent
instance under a throw-away DAGSTER_HOME; PostgreSQL is the storage DAGSTER_POSTGRES_URL
configures (automem_pipelines.dagster_storage), on a server the project starts
(automem_pipelines.postgres_server), and, for comparison, dagster-postgres's storages as they
come (a connection per statement). Runs of the three alternate; medians. Prints a markdown table.
"""

import argparse
import sys
import time
from pathlib import Path

import dagster as dg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from automem_pipelines.instance import POSTGRES_URL_ENV, postgres_storage_yaml  # noqa: E402
from bench._common import bench_dir, median, postgres_url, table  # noqa: E402


def chain_job(steps: int) -> dg.JobDefinition:
    @dg.op
    def first() -> int:
        return 0

    @dg.op
    def step(context: dg.OpExecutionContext, x: int) -> int:
        context.log.info(f"step {x}")
        return x + 1

    @dg.job(name=f"chain_{steps}")
    def chain():
        value = first()
        for _ in range(steps - 1):
            value = step(value)

    return chain


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    job = chain_job(args.steps)
    with bench_dir() as work, postgres_url():
        homes = {name: work / name for name in ("sqlite", "postgres", "postgres-as-shipped")}
        for home in homes.values():
            home.mkdir()
        (homes["postgres"] / "dagster.yaml").write_text(postgres_storage_yaml())
        (homes["postgres-as-shipped"] / "dagster.yaml").write_text(
            f"storage:\n  postgres:\n    postgres_url:\n      env: {POSTGRES_URL_ENV}\n"
        )
        times: dict[str, list[float]] = {name: [] for name in homes}
        instances = {"sqlite": dg.DagsterInstance.local_temp(str(homes["sqlite"]))}
        for name in ("postgres", "postgres-as-shipped"):
            instances[name] = dg.DagsterInstance.from_config(str(homes[name]))
        try:
            for instance in instances.values():
                assert job.execute_in_process(instance=instance).success  # warm-up
            for _ in range(args.repeat):
                for name, instance in instances.items():
                    started = time.perf_counter()
                    assert job.execute_in_process(instance=instance).success
                    times[name].append(time.perf_counter() - started)
        finally:
            for instance in instances.values():
                instance.dispose()
    base = median(times["sqlite"])
    rows = [[name, args.steps, median(t), median(t) / base] for name, t in times.items()]
    print(
        table(
            f"A {args.steps}-step run (execute_in_process), medians of {args.repeat}",
            ["instance storage", "steps", "run (s)", "÷ sqlite (target ≤ 0.7 for postgres)"],
            rows,
        )
    )


if __name__ == "__main__":
    main()
