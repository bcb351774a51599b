"""Drift-sync ops: thin wrappers around automem_pipelines.domain.drift.

detect_drift → repair_vectors / repair_payloads / recover_orphans → summarize_sync.
Detection reads both stores completely before anything is written; a dry run stops there
(no writes, no embedding provider).
"""

import time
from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from ..checks import check_evaluations
from ..constants import (
    DEFAULT_BATCH_SIZE,
    GRAPH_ASSET_KEY,
    MAX_BATCH_SIZE,
    SUMMARY_METADATA_KEY,
    VECTOR_ASSET_KEY,
)
from ..domain import drift, enrichment, pricing
from ..domain.drift.checks import drift_plot_metadata, outcomes
from ..domain.embedding_defaults import MAX_COST_USD_LIMIT
from ..domain.identity import check_identity
from ..domain.identity import mismatch_message as identity_mismatch_message
from ..domain.outcome import DEFAULT_FAILURE_THRESHOLD, apply_threshold
from ..domain.params import BatchSize, FailureThreshold, Flag
from ..domain.progress import DEFAULT_EVERY_SECONDS, Progress
from ..domain.vector_state import EmbeddingIdentity
from ..resources import EmbeddingsResource, FalkorDBResource, QdrantResource
from ..resources.nlp import EnrichmentResource
from ..resources.sync import SyncPolicyResource
from .common import (
    PROGRESS_FIELD_DESCRIPTION,
    CheckedConfig,
    configured_identity,
    fail_fast_unless_transient,
    progress_reporter,
    refuse_over_budget,
    retry_store_outages,
    tag_ui_launch,
)


class DriftSyncConfig(CheckedConfig):
    batch_size: BatchSize = Field(
        DEFAULT_BATCH_SIZE, description=f"Texts per embedding API request, 1 to {MAX_BATCH_SIZE}."
    )
    dry_run: Flag = Field(
        False,
        description="Detect and report only: nothing is written to either store and no "
        "embedding provider is used.",
    )
    failure_threshold: FailureThreshold = Field(
        DEFAULT_FAILURE_THRESHOLD,
        description="The run fails when at least this share of the memories it attempted "
        "failed (above 0, at most 1; 1.0 = only when every attempt failed). Store outages fail "
        "the run whatever this says.",
    )
    recover_orphans: Flag = Field(
        False,
        description="Restore points that have no memory in the graph as :Memory nodes built "
        "from their payloads. Orphans are never deleted; without this they are only reported.",
    )
    progress_seconds: float = Field(
        DEFAULT_EVERY_SECONDS, ge=0.0, le=3600.0, description=PROGRESS_FIELD_DESCRIPTION
    )
    max_cost_usd: float | None = Field(
        None,
        ge=0.0,
        le=MAX_COST_USD_LIMIT,
        description="Refuse the vector repair before any provider call when its estimated "
        "cost is above this many USD (default: REEMBED_MAX_COST_USD, 10).",
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="Refuse the vector repair before any provider call when it would embed "
        "more tokens than this (default: REEMBED_MAX_TOKENS, unset = no token budget).",
    )


@dataclass(frozen=True)
class SyncPlan:
    report: drift.DriftReport
    batch_size: int
    dry_run: bool
    recover_orphans: bool
    started_at: float
    failure_threshold: float = DEFAULT_FAILURE_THRESHOLD
    progress_seconds: float = DEFAULT_EVERY_SECONDS  # between progress events (0: none)
    budget: pricing.Budget | None = None  # the run's budget for the vector repair


def _count_metadata(report: drift.DriftReport) -> dict:
    meta: dict = {
        "falkordb_count": report.falkordb_count,
        "qdrant_count": report.qdrant_count,
        **report.counts(),
        "dimension_mismatch": report.dimension_mismatch,
        "identity_mismatch": report.identity_mismatch,
        "no_content_count": len(report.no_content),
    }
    if report.collection_dim is not None:
        meta["collection_dim"] = report.collection_dim
    return meta


@dg.op
def detect_drift(
    context: dg.OpExecutionContext,
    config: DriftSyncConfig,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
    sync: SyncPolicyResource,
) -> dg.Output[SyncPlan]:
    """Compare both stores completely; record an observation of the collection's drift."""
    tag_ui_launch(context)
    started = time.time()
    # rows = graph nodes read + points compared; the total is counted when detection starts
    progress = Progress(
        "detect_drift", 0, context.log.info, unit="rows", every=config.progress_seconds
    )
    with fail_fast_unless_transient(), falkordb.get_store() as graph:
        report = drift.detect(
            graph,
            qdrant.get_store(),
            configured_identity(embeddings),
            sync.excluded_types,
            progress=progress.update if progress.enabled else None,
        )
    progress.finish()
    findings = report.findings()
    meta = _count_metadata(report)
    context.log_event(
        dg.AssetObservation(
            asset_key=VECTOR_ASSET_KEY,
            description="Drift between the graph and the collection (drift-sync detection)",
            metadata=drift_plot_metadata(report),  # the drift plots: one point per sync
        )
    )
    for evaluation in check_evaluations(outcomes(report)):  # the state found
        context.log_event(evaluation)
    context.log.info(
        "drift: falkordb={falkordb_count} qdrant={qdrant_count} missing={missing_count} "
        "orphaned={orphaned_count} stale_vector={stale_vector_count} "
        "payload_drift={payload_drift_count} duplicate_id={duplicate_id_count} "
        "invalid_id={invalid_id_count} dimension_mismatch={dimension_mismatch} "
        "({detect_seconds})".format(**findings)
    )
    plan = SyncPlan(
        report,
        config.batch_size,
        config.dry_run,
        config.recover_orphans,
        started,
        config.failure_threshold,
        config.progress_seconds,
        pricing.Budget(config.max_cost_usd, config.max_tokens),
    )
    seconds = {f"seconds_{k}": v for k, v in findings["detect_seconds"].items()}
    return dg.Output(plan, metadata={**meta, **seconds, **progress.metadata()})


@dg.op
def check_dimension(
    context: dg.OpExecutionContext,
    plan: SyncPlan,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
) -> SyncPlan:
    """The collection must be the configured embedding's before a sync writes (a dry run only
    reports): dimension_mismatch or a recorded identity_mismatch refuse every repair, and a
    collection whose identity was never checked is checked now (identity.py: a few texts
    embedded once, then recorded). A separate step, so that the detection step and its
    observation succeed and stay visible. The vector repair's budget gate runs here, before
    the identity check's provider call."""
    report = plan.report
    if report.dimension_mismatch and not plan.dry_run:
        raise dg.Failure(
            description="refusing to repair: " + report.dimension_message(qdrant.collection),
            metadata={
                "collection_dim": report.collection_dim or 0,
                "vector_size": report.vector_size,
            },
            allow_retries=False,
        )
    if report.dimension_mismatch:
        context.log.warning(report.dimension_message(qdrant.collection))
    if (
        not plan.dry_run
        and not report.identity_mismatch
        and (report.missing or report.stale_vector)
    ):
        with retry_store_outages(), falkordb.get_store() as graph:
            _repair_gate(context, plan, graph, embeddings)
    if report.identity_mismatch:
        recorded = report.identity_recorded or {}
        message = identity_mismatch_message(
            qdrant.collection,
            EmbeddingIdentity(**report.identity_configured),
            f"its recorded identity is {recorded.get('provider')}:{recorded.get('model')} "
            f"({recorded.get('dim')}-d, {recorded.get('status')})",
        )
        if not plan.dry_run:
            raise dg.Failure(description="refusing to repair: " + message, allow_retries=False)
        context.log.warning(message)
    elif not plan.dry_run and report.collection_exists and report.identity_recorded is None:
        with retry_store_outages():
            check = check_identity(qdrant.get_store(), embeddings.get_provider())
        context.log.info(f"collection identity: {check.describe()}")
    return plan


def _result_metadata(results: list[drift.RepairResult]) -> dict:
    meta: dict = {}
    for r in results:
        meta[f"{r.kind}_repaired"] = r.repaired
        meta[f"{r.kind}_failed"] = len(r.failed)
        meta[f"{r.kind}_skipped"] = r.skipped
        meta[f"{r.kind}_seconds"] = round(r.seconds, 3)
    return meta


def _repair_gate(
    context: dg.OpExecutionContext, plan: SyncPlan, graph, embeddings: EmbeddingsResource
) -> None:
    """The re-embed budget gate (domain.pricing) over the missing and stale vectors: a repair
    over budget is refused before any provider call, its estimate in the message."""
    ids = list(plan.report.missing) + list(plan.report.stale_vector)
    priced = pricing.price_ids(
        ids, graph, configured_identity(embeddings), plan.batch_size, embeddings.rate_limits()
    )
    context.log.info(f"repair plan: {priced.describe()}")
    refuse_over_budget(priced, plan.budget, embeddings, prefix="refusing to repair vectors: ")


@dg.op
def repair_vectors(
    context: dg.OpExecutionContext,
    plan: SyncPlan,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
    nlp: EnrichmentResource,
) -> dg.Output[list[drift.RepairResult]]:
    """missing and stale_vector → embed and upsert through the re-embed path."""
    report = plan.report
    results: list[drift.RepairResult] = []
    if not plan.dry_run and (report.missing or report.stale_vector):
        total = len(report.missing) + len(report.stale_vector)
        progress = progress_reporter(context, "repair_vectors", total, plan.progress_seconds)
        with fail_fast_unless_transient(), falkordb.get_store() as graph:
            provider = embeddings.get_provider()
            vectors = qdrant.get_store()
            for kind in ("missing", "stale_vector"):
                ids = getattr(report, kind)
                if not ids:
                    continue
                before = progress.done
                result = drift.repair_vectors(
                    kind,
                    ids,
                    graph,
                    vectors,
                    provider,
                    plan.batch_size,
                    progress=lambda done, before=before: progress.update(before + done),
                )
                progress.update(before + result.total)
                results.append(result)
                linked = enrichment.link_pending(
                    graph,
                    vectors,
                    result.pending_links,
                    nlp.options(),
                    EmbeddingIdentity.of(provider),
                )
                if linked:
                    context.log.info(
                        f"{kind}: SIMILAR_TO links made for {linked} memories "
                        "enriched before their vector"
                    )
                context.log.info(
                    f"{kind}: repaired {result.repaired}, skipped {result.skipped}, failed "
                    f"{len(result.failed)} of {result.total} in {result.requests} provider "
                    f"requests, {result.seconds:.2f}s"
                )
                for mid, error in list(result.failed.items())[:1]:
                    context.log.warning(f"{kind}: {len(result.failed)} failed, e.g. {mid}: {error}")
        progress.finish()
        return dg.Output(results, metadata={**_result_metadata(results), **progress.metadata()})
    return dg.Output(results, metadata=_result_metadata(results))


@dg.op
def repair_payloads(
    context: dg.OpExecutionContext,
    plan: SyncPlan,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
) -> dg.Output[list[drift.RepairResult]]:
    """payload_drift → rewrite the drifted fields from the graph; no embedding."""
    results: list[drift.RepairResult] = []
    if not plan.dry_run and plan.report.payload_drift:
        ids = plan.report.payload_drift
        progress = progress_reporter(context, "repair_payloads", len(ids), plan.progress_seconds)
        with fail_fast_unless_transient(), falkordb.get_store() as graph:
            result = drift.repair_payloads(ids, graph, qdrant.get_store(), progress=progress.update)
        progress.finish(result.total)
        results.append(result)
        context.log.info(
            f"payload_drift: rewrote {result.repaired}, skipped {result.skipped} of "
            f"{result.total} in {result.seconds:.2f}s"
        )
    return dg.Output(results, metadata=_result_metadata(results))


@dg.op
def recover_orphans(
    context: dg.OpExecutionContext,
    plan: SyncPlan,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
) -> dg.Output[list[drift.RepairResult]]:
    """orphaned → never deleted; restored into the graph only with recover_orphans."""
    results: list[drift.RepairResult] = []
    orphans = plan.report.orphaned
    if orphans and (plan.dry_run or not plan.recover_orphans):
        context.log.info(f"{len(orphans)} orphaned points left as they are (recover_orphans=false)")
    elif orphans:
        progress = progress_reporter(
            context, "recover_orphans", len(orphans), plan.progress_seconds
        )
        with fail_fast_unless_transient(), falkordb.get_store() as graph:
            result = drift.recover_orphans(
                orphans, graph, qdrant.get_store(), progress=progress.update
            )
        progress.finish(result.total)
        results.append(result)
        context.log.info(
            f"orphaned: restored {result.repaired} memories, skipped {result.skipped}, failed "
            f"{len(result.failed)} of {result.total} in {result.seconds:.2f}s"
        )
    return dg.Output(results, metadata=_result_metadata(results))


@dg.op(out=dg.Out(dict))
def summarize_sync(
    context: dg.OpExecutionContext,
    plan: SyncPlan,
    vector_results: list[drift.RepairResult],
    payload_results: list[drift.RepairResult],
    orphan_results: list[drift.RepairResult],
):
    """Check repaired + skipped + failed per kind, report, and record what was written."""
    results = [*vector_results, *payload_results, *orphan_results]
    summary = drift.summarize(
        plan.report,
        results,
        plan.dry_run,
        plan.recover_orphans,
        plan.batch_size,
        seconds=time.time() - plan.started_at,
    )
    failure = None
    if summary["status"] == "complete":
        failure = apply_threshold(
            summary,
            summary["synced"] + summary["failed"],
            summary["failed"],
            plan.failure_threshold,
            "repair",
        )
    line = (
        "sync {status}: missing={missing_count} orphaned={orphaned_count} "
        "stale_vector={stale_vector_count} payload_drift={payload_drift_count}"
    ).format(**summary)
    if summary["status"] == "complete":
        line += " synced={synced} skipped={skipped} failed={failed}".format(**summary)
    context.log.info(line)
    if summary.get("failed"):
        context.log.warning(f"failed ids (first 10): {summary['failed_ids']}")
    metadata = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}
    metadata[SUMMARY_METADATA_KEY] = dg.MetadataValue.json(summary)
    if results:
        # the state the store is in as the sync ends: replaces, in this run's check
        # executions, the state detect_drift found
        for evaluation in check_evaluations(outcomes(plan.report, results)):
            context.log_event(evaluation)
    if summary["status"] == "complete":
        written = {
            "drift_repaired": summary["synced"],
            "drift_repair_failed": summary["failed"],
        }
        vector_written = sum(r.repaired for r in (*vector_results, *payload_results))
        if vector_written:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=VECTOR_ASSET_KEY,
                    description="Points repaired by the drift sync",
                    metadata=written,
                )
            )
        recovered = sum(r.repaired for r in orphan_results)
        if recovered:
            context.log_event(
                dg.AssetMaterialization(
                    asset_key=GRAPH_ASSET_KEY,
                    description="Memories restored from orphaned points by the drift sync",
                    metadata={"orphans_recovered": recovered},
                )
            )
    yield dg.Output(summary, metadata=metadata)
    if failure:  # after the summary is recorded: the API and the UI still show it
        raise dg.Failure(description=f"drift sync failed: {failure}", allow_retries=False)
