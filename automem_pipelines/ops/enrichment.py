"""Enrichment ops: thin wrappers around automem_pipelines.domain.enrichment."""

import time
from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from ..constants import GRAPH_ASSET_KEY, SUMMARY_METADATA_KEY
from ..domain import enrichment
from ..domain.enrichment_status import record_run
from ..domain.progress import format_plan
from ..resources import EmbeddingsResource, FalkorDBResource, QdrantResource
from ..resources.nlp import EnrichmentResource
from .common import (
    CheckedConfig,
    configured_identity,
    fail_fast_unless_transient,
    progress_reporter,
    rate,
    tag_ui_launch,
)

BATCH_SIZE = 500  # memories per step; NLP and writes are batched inside the step


class EnrichmentConfig(CheckedConfig):
    ids: list[str] = Field(description="Memory ids to enrich (duplicates are ignored).")
    forced: bool = Field(
        False,
        description="Re-enrich memories already processed, and memories marked failed "
        "(their attempts start over). Non-forced runs skip both.",
    )


@dataclass(frozen=True)
class EnrichmentPlan:
    ids: list[str]
    forced: bool
    started_at: float


@dataclass(frozen=True)
class BatchSpec:
    index: int
    ids: list[str]
    forced: bool


@dg.op
def select_memories(context: dg.OpExecutionContext, config: EnrichmentConfig) -> EnrichmentPlan:
    tag_ui_launch(context)
    ids = list(dict.fromkeys(i.strip() for i in config.ids if i.strip()))
    context.log.info(f"{len(ids)} memories to enrich (forced={config.forced})")
    return EnrichmentPlan(ids, config.forced, time.time())


@dg.op(out=dg.DynamicOut(BatchSpec))
def batch_enrichment(context: dg.OpExecutionContext, plan: EnrichmentPlan):
    chunks = [plan.ids[i : i + BATCH_SIZE] for i in range(0, len(plan.ids), BATCH_SIZE)] or [[]]
    context.log.info(f"{len(plan.ids)} memories in {len(chunks)} batches")
    context.log.info(format_plan("enrich_batch", len(plan.ids), len(chunks)))
    for index, ids in enumerate(chunks):
        yield dg.DynamicOutput(BatchSpec(index, ids, plan.forced), mapping_key=f"batch_{index:03d}")


@dg.op
def enrich_batch(
    context: dg.OpExecutionContext,
    spec: BatchSpec,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    nlp: EnrichmentResource,
    embeddings: EmbeddingsResource,
) -> dg.Output[enrichment.BatchResult]:
    # a batch is done as a whole (NLP over all of it, then the writes): its start and its end
    progress = progress_reporter(context, "enrich_batch", len(spec.ids))
    with fail_fast_unless_transient(), falkordb.get_store() as graph:
        model = nlp.get_model()
        if model.rule_only:
            context.log.error(
                f"no spaCy model could be loaded ({'; '.join(model.problems)}): RULE-ONLY "
                "entity extraction"
            )
        result = enrichment.enrich_batch(
            graph,
            qdrant.get_store(),
            model,
            spec.ids,
            spec.forced,
            nlp.options(),
            index=spec.index,
            identity=configured_identity(embeddings),
        )
    progress.finish(len(spec.ids))
    if result.failed:
        first = next(iter(result.failed.items()))
        context.log.warning(
            f"batch {spec.index}: {len(result.failed)} memories failed "
            f"({len(result.exhausted)} now marked failed), e.g. {first[0]}: {first[1]}"
        )
    context.log.info(
        f"batch {spec.index}: enriched {len(result.enriched)}, skipped {result.skipped}, "
        f"failed {len(result.failed)}; links temporal={result.temporal_links} "
        f"semantic={result.semantic_links} patterns={result.pattern_links}; "
        f"model {result.model}; {result.seconds:.2f}s"
    )
    return dg.Output(
        result,
        metadata={
            "enriched": len(result.enriched),
            "skipped": result.skipped,
            "failed": len(result.failed),
            "no_vector": len(result.no_vector),
            "nlp_model": result.model,
            "nlp_seconds": round(result.nlp_seconds, 3),
            "graph_seconds": round(result.graph_read_seconds + result.graph_write_seconds, 3),
            "neighbour_seconds": round(result.neighbour_seconds, 3),
            "seconds": round(result.seconds, 3),
            "memories_per_second": rate(len(result.enriched), result.seconds),
            **progress.metadata(),
        },
    )


@dg.op
def summarize_enrichment(
    context: dg.OpExecutionContext,
    plan: EnrichmentPlan,
    results: list[enrichment.BatchResult],
    falkordb: FalkorDBResource,
) -> dg.Output[dict]:
    """Check enriched + skipped + failed = requested, add the run to the lifetime stats
    (once per run id), report."""
    with fail_fast_unless_transient():
        summary = enrichment.summarize_batches(
            results, len(plan.ids), plan.forced, seconds=time.time() - plan.started_at
        )
        with falkordb.get_store() as graph:
            record_run(graph, context.run_id, summary)
    context.log.info(
        "enrichment {status}: enriched={enriched} skipped={skipped} failed={failed} "
        "total={total} forced={forced} model={nlp_model}".format(**summary)
    )
    if summary["missing_ids"]:
        context.log.warning(
            f"{len(summary['missing_ids'])} ids do not exist: {summary['missing_ids'][:10]}"
        )
    if summary["nlp_rule_only"]:
        context.log.error("entities were extracted RULE-ONLY: no spaCy model could be loaded")
    metadata = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}
    metadata[SUMMARY_METADATA_KEY] = dg.MetadataValue.json(summary)
    if summary["enriched"]:
        context.log_event(
            dg.AssetMaterialization(
                asset_key=GRAPH_ASSET_KEY,
                description="Memories enriched (entities, links, patterns, summaries)",
                metadata={k: v for k, v in metadata.items() if k != SUMMARY_METADATA_KEY},
            )
        )
    return dg.Output(summary, metadata=metadata)
