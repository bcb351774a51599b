"""Re-embed ops: thin wrappers around automem_pipelines.domain.reembed."""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
from pydantic import Field

from ..constants import (
    DEFAULT_BATCH_SIZE,
    MAX_BATCH_SIZE,
    POOL_PROVIDER,
    POOL_STORE_SCAN,
    SUMMARY_METADATA_KEY,
    VECTOR_ASSET_KEY,
)
from ..domain import enrichment, partitions, pricing, reembed
from ..domain.embedding_defaults import MAX_COST_USD_LIMIT
from ..domain.identity import finish_replacement
from ..domain.outcome import DEFAULT_FAILURE_THRESHOLD, apply_threshold
from ..domain.params import BatchSize, ChunkSize, FailureThreshold, Flag, Limit, ParamError
from ..domain.progress import DEFAULT_EVERY_SECONDS, Progress, format_plan
from ..domain.vector_state import EmbeddingIdentity
from ..resources import EmbeddingsResource, FalkorDBResource, QdrantResource
from ..resources.nlp import EnrichmentResource
from .common import (
    PROGRESS_FIELD_DESCRIPTION,
    CheckedConfig,
    configured_identity,
    fail_fast_unless_transient,
    interrupts_at_checkpoints,
    progress_reporter,
    rate,
    refuse_over_budget,
    refusing_bad_params,
    retry_store_outages,
    tag_ui_launch,
)


class ReembedConfig(CheckedConfig):
    batch_size: BatchSize = Field(
        DEFAULT_BATCH_SIZE,
        description=f"Texts per embedding API request, 1 to {MAX_BATCH_SIZE}.",
    )
    chunk_size: ChunkSize = Field(
        reembed.CHUNK_SIZE,
        description="Memories per re-embed step (rounded up to whole API batches): the ids one "
        "step works through in overlapped windows and at most what a retry of it repeats; the "
        "store's size only changes how many steps there are.",
    )
    limit: Limit | None = Field(
        None, description="At most this many memories (those with content), newest first."
    )
    force: Flag = Field(
        False,
        description="Re-embed every memory with content, even when its point already holds "
        "a vector of this provider/model/dimension for the same content.",
    )
    failure_threshold: FailureThreshold = Field(
        DEFAULT_FAILURE_THRESHOLD,
        description="The run fails when at least this share of the memories it attempted "
        "failed (above 0, at most 1; 1.0 = only when every attempt failed). Store outages fail "
        "the run whatever this says.",
    )
    replace_model_in_place: Flag = Field(
        False,
        description="The collection's vectors were made by another embedding model than the "
        "configured one: rewrite this collection in place with the configured model (recall is "
        "mixed until the run completes). Without it such a collection is refused before any "
        "write; force never implies it.",
    )
    partition: partitions.PartitionKey = Field(
        None,
        description="Only the memories of this id range, e.g. '10-1f' (ids from '10' up to, "
        "not including, '20'; a range from '00' starts at '' and one to 'ff' is open above). "
        "A run of the partitioned job takes it from its partition key: leave it unset there.",
    )
    progress_seconds: float = Field(
        DEFAULT_EVERY_SECONDS, ge=0.0, le=3600.0, description=PROGRESS_FIELD_DESCRIPTION
    )
    max_cost_usd: float | None = Field(
        None,
        ge=0.0,
        le=MAX_COST_USD_LIMIT,
        description="Refuse the run before any provider call when its estimated cost is above "
        "this many USD (default: REEMBED_MAX_COST_USD, 10).",
    )
    max_tokens: int | None = Field(
        None,
        ge=1,
        description="Refuse the run before any provider call when it would embed more tokens "
        "than this (default: REEMBED_MAX_TOKENS, unset = no token budget).",
    )
    plan_only: Flag = Field(
        False,
        description="Compute the plan (memories, tokens, cost, seconds) and stop: no provider "
        "call for embedding, nothing embedded.",
    )


@dataclass(frozen=True)
class ReembedPlan:
    selection: reembed.Selection
    batch_size: int
    started_at: float
    chunk_size: int = reembed.CHUNK_SIZE
    whole_store: bool = True  # no limit, no id range: a replacement in place can finish
    failure_threshold: float = DEFAULT_FAILURE_THRESHOLD
    partition: str | None = None  # the id range this run covers (None: the whole store)
    progress_seconds: float = DEFAULT_EVERY_SECONDS  # between progress events (0: none)
    priced: dict | None = None  # the plan (pricing.Plan.as_dict)
    plan_only: bool = False  # stop after planning: no chunk, the summary is the plan


@dataclass(frozen=True)
class ChunkSpec:
    index: int
    ids: Sequence[str]  # packed (reembed.PackedIds): 16 bytes per id between steps
    batch_size: int
    started_at: float = 0.0  # the run's start (epoch s): what a resumed unit skips is newer
    progress_seconds: float = DEFAULT_EVERY_SECONDS


def run_id_range(
    context: dg.OpExecutionContext, config: ReembedConfig
) -> partitions.IdRange | None:
    """The id range of this run: its partition key (the partitioned job), else the config's
    ``partition``, else None (the whole store). Both, and different: refused."""
    key = context.partition_key if context.has_partition_key else None
    if key is not None and config.partition is not None and config.partition != key:
        raise ParamError(
            "partition",
            f"partition is {config.partition!r} in the config but the run is for partition "
            f"{key!r}: leave partition unset in a partitioned run",
        )
    key = key if key is not None else config.partition
    return None if key is None else partitions.id_range(key)


@dg.op(pool=POOL_STORE_SCAN)
def enumerate_memories(
    context: dg.OpExecutionContext,
    config: ReembedConfig,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
) -> dg.Output[ReembedPlan]:
    """Check the collection's size against the provider, list the memories (of the run's id
    range), and keep those that need a vector (all of them with ``force``)."""
    started_at = time.time()  # the run's work starts here: the summary's seconds count from it
    started = time.perf_counter()
    tag_ui_launch(context)
    with refusing_bad_params():
        id_range = run_id_range(context, config)  # before anything is opened or written
    # memories judged (listed, compared with their points); the total is counted at the start
    progress = Progress("enumerate_memories", 0, context.log.info, every=config.progress_seconds)
    with retry_store_outages():
        provider = embeddings.get_provider()
        store = qdrant.get_store()
        with falkordb.get_store() as graph:
            graph.ensure_indexes()
            selection = reembed.plan_reembed(
                graph,
                store,
                provider,
                config.limit,
                config.force,
                config.replace_model_in_place,
                id_range,
                progress=progress.update if progress.enabled else None,
            )
    progress.update(selection.total, selection.total)  # what was listed is the total
    progress.finish()
    priced = _gate(context, config, selection, falkordb, embeddings, provider)
    seconds = time.perf_counter() - started
    context.log.info(
        f"{selection.total} memories: {len(selection.todo)} to embed, "
        f"{selection.skipped_unchanged} unchanged, {selection.adopted} adopted, "
        f"{selection.skipped_empty} without content (limit={config.limit}, force={config.force}, "
        f"ids={'all' if id_range is None else id_range.key}, "
        f"provider={provider.provider}:{provider.model} {provider.dim}-d); collection identity: "
        f"{selection.identity}, {selection.identity_texts} texts embedded to check it"
    )
    plan = ReembedPlan(
        selection,
        config.batch_size,
        started_at,
        config.chunk_size,
        config.limit is None and id_range is None,
        config.failure_threshold,
        None if id_range is None else id_range.key,
        config.progress_seconds,
        priced.as_dict(),
        config.plan_only,
    )
    return dg.Output(
        plan,
        metadata={
            "count": selection.total,
            "to_embed": len(selection.todo),
            "unchanged": selection.skipped_unchanged,
            "adopted": selection.adopted,
            "identity_check_texts": selection.identity_texts,
            "without_content": selection.skipped_empty,
            "seconds": round(seconds, 3),
            "partition": "all" if id_range is None else id_range.key,
            "plan": dg.MetadataValue.json(priced.as_dict()),
            **progress.metadata(),
        },
    )


def _gate(
    context: dg.OpExecutionContext,
    config: ReembedConfig,
    selection: reembed.Selection,
    falkordb: FalkorDBResource,
    embeddings: EmbeddingsResource,
    provider,
) -> pricing.Plan:
    """Price the selection; refuse the run (dg.Failure, no retry) when it is over budget, or
    stop it after planning (``plan_only``): in both cases no memory is embedded. The plan's
    JSON is in the failure's metadata."""
    with retry_store_outages(), falkordb.get_store() as graph:
        plan = pricing.price_selection(
            selection,
            graph,
            EmbeddingIdentity.of(provider),
            config.batch_size,
            embeddings.rate_limits(),
        )
    context.log.info(f"plan: {plan.describe()}")
    refuse_over_budget(plan, pricing.Budget(config.max_cost_usd, config.max_tokens), embeddings)
    return plan


@dg.op(out=dg.DynamicOut(ChunkSpec))
def batch_memories(context: dg.OpExecutionContext, plan: ReembedPlan):
    """Fan out per chunk of ``chunk_size`` memories (none when nothing needs a vector). API
    batches happen inside each step."""
    if plan.plan_only:
        context.log.info("plan only: nothing is embedded")
        return
    chunks = reembed.plan_chunks(plan.selection.todo, plan.batch_size, plan.chunk_size)
    context.log.info(f"{len(plan.selection.todo)} memories to embed in {len(chunks)} chunks")
    if plan.progress_seconds > 0 and chunks:  # the run-level total, before any chunk starts
        context.log.info(format_plan("reembed_chunk", len(plan.selection.todo), len(chunks)))
    for index, ids in enumerate(chunks):
        yield dg.DynamicOutput(
            ChunkSpec(index, ids, plan.batch_size, plan.started_at, plan.progress_seconds),
            mapping_key=f"chunk_{index:03d}",
        )


@dg.op(pool=POOL_PROVIDER)  # each step calls the provider: at most the pool's limit at once
def reembed_chunk(
    context: dg.OpExecutionContext,
    spec: ChunkSpec,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
    nlp: EnrichmentResource,
) -> dg.Output[reembed.ChunkResult]:
    """One work unit: read → embed → write over windows, overlapped; counts out, no vectors.
    A retry, or a re-execution of the run, skips what an earlier attempt already wrote."""
    resumed = context.retry_number > 0 or context.dagster_run.parent_run_id is not None
    progress = progress_reporter(context, "reembed_chunk", len(spec.ids), spec.progress_seconds)
    # An interrupt (Terminate, Ctrl-C of the stack) ends the step between two write windows.
    with (
        fail_fast_unless_transient(),
        interrupts_at_checkpoints() as checkpoint,
        falkordb.get_store() as graph,
    ):
        store = qdrant.get_store()
        provider = embeddings.get_provider()
        result = reembed.reembed_ids(
            spec.index,
            spec.ids,
            graph,
            store,
            provider,
            spec.batch_size,
            checkpoint=checkpoint,
            resume_since=spec.started_at if resumed else None,
            progress=progress.update,
        )
        progress.finish(result.total)
        linked = enrichment.link_pending(
            graph, store, result.pending_links, nlp.options(), EmbeddingIdentity.of(provider)
        )
    for _mid, error in list(result.failed.items())[:1]:
        context.log.warning(f"chunk {spec.index}: {len(result.failed)} memories failed ({error})")
    context.log.info(
        f"chunk {spec.index}: wrote {result.processed - result.resumed} points "
        f"({result.requests} provider requests, {result.embed_seconds:.2f}s embedding) in "
        f"{result.seconds:.2f}s; empty {result.skipped_empty}, gone {result.skipped_missing}, "
        f"failed {len(result.failed)}"
        + (f", {result.resumed} already written by an earlier attempt" if result.resumed else "")
        + (
            f"; SIMILAR_TO links made for {linked} memories enriched before their vector"
            if linked
            else ""
        )
    )
    return dg.Output(
        result,
        metadata={
            "written": result.processed - result.resumed,
            "resumed": result.resumed,
            "failed": len(result.failed),
            "skipped": result.skipped,
            "requests": result.requests,
            "tokens": result.tokens or 0,
            "embed_seconds": round(result.embed_seconds, 3),
            "seconds": round(result.seconds, 3),
            "points_per_second": rate(result.processed - result.resumed, result.seconds),
            **progress.metadata(),
        },
    )


@dg.op(out=dg.Out(dict))
def summarize_reembed(
    context: dg.OpExecutionContext,
    plan: ReembedPlan,
    results: list[reembed.ChunkResult],
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
):
    """Check processed + skipped + failed = total, then report and record the materialization."""
    if plan.plan_only:  # nothing was embedded: the summary is the plan, no materialization
        summary = {"status": "planned", **(plan.priced or {})}
        # the summary entry is what the API and `reembed --stack` read (automem_api.gateway)
        yield dg.Output(summary, metadata={SUMMARY_METADATA_KEY: dg.MetadataValue.json(summary)})
        return
    summary = reembed.summarize(
        results, plan.selection, plan.batch_size, seconds=time.time() - plan.started_at
    )
    failure = apply_threshold(
        summary,
        summary["processed"] + summary["failed"],
        summary["failed"],
        plan.failure_threshold,
        "embed",
    )
    if plan.selection.replacing and plan.whole_store and not summary["failed"]:
        identity = configured_identity(embeddings)
        with retry_store_outages():
            if finish_replacement(qdrant.get_store(), identity):
                summary["identity"] = f"verified {identity.label()} (replaced in place)"
                context.log.info(f"every point now holds {identity.label()}: replacement finished")
    context.log.info(
        "re-embed {status}: processed={processed} skipped={skipped} failed={failed} "
        "total={total}".format(**summary)
    )
    if summary["failed"]:
        context.log.warning(f"failed ids (first 10): {summary['failed_ids']}")
    metadata = {k: v for k, v in summary.items() if isinstance(v, (int, float, str, bool))}
    metadata["failed_ids"] = dg.MetadataValue.json(summary["failed_ids"])
    metadata[SUMMARY_METADATA_KEY] = dg.MetadataValue.json(summary)
    context.log_event(
        dg.AssetMaterialization(
            asset_key=VECTOR_ASSET_KEY,
            description="Vectors re-embedded by the re-embed job",
            metadata=metadata,
        )
    )
    yield dg.Output(summary, metadata=metadata)
    if failure:  # after the summary is recorded: the API and the UI still show it
        raise dg.Failure(description=f"re-embed failed: {failure}", allow_retries=False)
