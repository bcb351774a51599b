"""Op jobs. Built by functions because the executor and tags depend on the settings."""

from __future__ import annotations

import dagster as dg

from .constants import (
    DRIFT_SYNC_JOB,
    ENRICHMENT_JOB,
    MIGRATE_JOB,
    OPERATOR_PRIORITY,
    QDRANT_LOCAL_TAG_VALUE,
    REEMBED_JOB,
    REEMBED_PARTITIONED_JOB,
    TAG_PIPELINE,
    TAG_PRIORITY,
    TAG_QDRANT_LOCK,
)
from .domain.partitions import DEFAULT_PARTITIONS, partition_keys
from .ops.drift import (
    check_dimension,
    detect_drift,
    recover_orphans,
    repair_payloads,
    repair_vectors,
    summarize_sync,
)
from .ops.enrichment import batch_enrichment, enrich_batch, select_memories, summarize_enrichment
from .ops.migrate import (
    backfill_target,
    build_target,
    catch_up_target,
    cut_over_readers,
    plan_migration,
    verify_target,
)
from .ops.reembed import (
    batch_memories,
    enumerate_memories,
    reembed_chunk,
    summarize_reembed,
)


def job_tags(pipeline: str, qdrant_local: bool) -> dict[str, str]:
    # runs started by hand come before the sensor's and the schedules' (constants.TAG_PRIORITY)
    tags = {TAG_PIPELINE: pipeline, TAG_PRIORITY: OPERATOR_PRIORITY}
    if qdrant_local:
        tags[TAG_QDRANT_LOCK] = QDRANT_LOCAL_TAG_VALUE
    return tags


def executor_for(qdrant_local: bool) -> dg.ExecutorDefinition:
    """Local-mode Qdrant can be open in one process only, so its jobs run their steps in the
    run's own process (one open of the store per run); with a Qdrant server, steps may run
    in parallel subprocesses (choose in_process in run config to avoid the spawn cost)."""
    return dg.in_process_executor if qdrant_local else dg.multi_or_in_process_executor


def _op_job(
    name: str,
    description: str,
    pipeline: str,
    qdrant_local: bool,
    partitions_def: dg.PartitionsDefinition | None = None,
):
    """The job decorator every pipeline uses: its name, tags, executor (and partitions)."""
    return dg.job(
        name=name,
        description=description,
        tags=job_tags(pipeline, qdrant_local),
        executor_def=executor_for(qdrant_local),
        partitions_def=partitions_def,
    )


REEMBED_DESCRIPTION = (
    "Re-embed memories: enumerate → batch → re-embed each chunk (read → embed → write, "
    "overlapped) → summarize."
)


def build_reembed_job(
    qdrant_local: bool,
    name: str = REEMBED_JOB,
    description: str = REEMBED_DESCRIPTION,
    partitions_def: dg.PartitionsDefinition | None = None,
) -> dg.JobDefinition:
    @_op_job(name, description, "reembed", qdrant_local, partitions_def)
    def reembed_job():
        plan = enumerate_memories()
        written = batch_memories(plan).map(reembed_chunk)
        summarize_reembed(plan, written.collect())

    return reembed_job


def build_reembed_partitioned_job(
    qdrant_local: bool, partitions: int = DEFAULT_PARTITIONS
) -> dg.JobDefinition:
    """The re-embed job's ops over one id range of the store per run (domain/partitions.py):
    each partition is a bounded run that retries and resumes on its own (a rerun skips the
    points already current), launched as a backfill over the job's partitions."""
    return build_reembed_job(
        qdrant_local,
        REEMBED_PARTITIONED_JOB,
        f"Re-embed one id range of the store per run ({partitions} partitions of the memory "
        "ids' hex prefixes): launch a backfill over the partitions to re-embed the whole store; "
        "a partition's rerun resumes it. " + REEMBED_DESCRIPTION,
        dg.StaticPartitionsDefinition(partition_keys(partitions)),
    )


def build_enrichment_job(qdrant_local: bool) -> dg.JobDefinition:
    @_op_job(
        ENRICHMENT_JOB,
        "Enrich memories: select → batch → enrich (entities, links, patterns, "
        "summary) → summarize (lifetime stats).",
        "enrichment",
        qdrant_local,
    )
    def enrichment_job():
        plan = select_memories()
        results = batch_enrichment(plan).map(enrich_batch)
        summarize_enrichment(plan, results.collect())

    return enrichment_job


def build_drift_sync_job(qdrant_local: bool) -> dg.JobDefinition:
    @_op_job(
        DRIFT_SYNC_JOB,
        "Drift sync: detect drift between FalkorDB and Qdrant, then repair it "
        "without deleting anything (dry_run: detect only).",
        "drift_sync",
        qdrant_local,
    )
    def drift_sync_job():
        plan = check_dimension(detect_drift())
        summarize_sync(plan, repair_vectors(plan), repair_payloads(plan), recover_orphans(plan))

    return drift_sync_job


def build_migrate_job(qdrant_local: bool) -> dg.JobDefinition:
    @_op_job(
        MIGRATE_JOB,
        "Embedding-model migration with no recall downtime: plan (priced, budget-gated) → "
        "build a new collection beside the live one → backfill it from the graph → catch up "
        "→ verify → cut over (alias switch, or AutoMem's QDRANT_COLLECTION and a restart). "
        "Run it again to continue one that stopped; action=rollback / finalize.",
        "migrate",
        qdrant_local,
    )
    def migrate_job():
        step = plan_migration()
        step = verify_target(catch_up_target(backfill_target(build_target(step))))
        cut_over_readers(step)

    return migrate_job
