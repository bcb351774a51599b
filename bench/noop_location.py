"""Benchmark fixture only (not part of the product's Definitions): a one-op job that does
nothing, loaded as its own code location `automem_bench` by bench/bench_api.py, to measure
Dagster's own submit-to-success cost on the same webserver and daemon."""

import dagster as dg

BENCH_LOCATION_NAME = "automem_bench"
NOOP_JOB = "noop_job"


@dg.op
def noop() -> None:
    return None


@dg.job(name=NOOP_JOB, description="Does nothing; the benchmark's baseline.")
def noop_job():
    noop()


defs = dg.Definitions(jobs=[noop_job])
