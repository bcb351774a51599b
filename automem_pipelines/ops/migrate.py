"""Migration ops: thin wrappers around automem_pipelines.domain.migration.

plan_migration → build_target → backfill_target → catch_up_target → verify_target →
cut_over_readers. Every op reads the migration record from the collections first and does
only what is left, so a run killed anywhere is continued by the next run of the job.
``action=rollback`` and ``action=finalize`` are the same job's first op (rollback also embeds
into the source what changed after the cutover, in the backfill step); the other steps pass.
"""

import os
import time
from dataclasses import dataclass, replace
from typing import Literal

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
from ..domain import identity as identity_mod
from ..domain import migration as mig
from ..domain import pricing, reembed
from ..domain.embedding_defaults import MAX_COST_USD_LIMIT
from ..domain.params import BatchSize, ChunkSize, Flag, ParamError
from ..domain.progress import DEFAULT_EVERY_SECONDS
from ..domain.vector_state import EmbeddingIdentity
from ..resources import EmbeddingsResource, FalkorDBResource, QdrantResource
from ..settings.embedding import target_embedding
from ..stores.vectors import VectorStore
from ..worker_identity import (
    WORKER_PID_TAG,
    boot_id,
    check_spawned_worker,
    check_tagged_worker,
    process_identity,
)
from .common import (
    PROGRESS_FIELD_DESCRIPTION,
    CheckedConfig,
    configured_identity,
    fail_fast_unless_transient,
    interrupts_at_checkpoints,
    progress_reporter,
    refuse_over_budget,
    refusing_bad_params,
    tag_ui_launch,
)

RUNNING = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


class MigrateConfig(CheckedConfig):
    action: Literal["migrate", "rollback", "finalize", "status"] = Field(
        "migrate",
        description="migrate: start or continue the migration to to_provider/to_model/to_dim; "
        "rollback: readers back to the old collection (and what changed since the cutover "
        "embedded into it); finalize: delete the old collection after a confirmed cutover; "
        "status: report the migration's state (read-only, no provider call).",
    )
    to_provider: str | None = Field(
        None, description="The target provider: openai, voyage, ollama or local."
    )
    to_model: str | None = Field(
        None, description="The target model (e.g. text-embedding-3-large)."
    )
    to_dim: int | None = Field(
        None, ge=1, le=65536, description="The target vector size (1 to 65536)."
    )
    to_collection: str | None = Field(
        None,
        description="The new collection's name (default: <QDRANT_COLLECTION>__<model>_<dim>).",
    )
    alias: str | None = Field(
        None,
        description="An alias the readers resolve, switched to the new collection at cutover "
        "(default: QDRANT_COLLECTION itself when it is an alias; else the cutover is a change "
        "of AutoMem's QDRANT_COLLECTION and a restart).",
    )
    batch_size: BatchSize = Field(
        DEFAULT_BATCH_SIZE, description=f"Texts per embedding API request, 1 to {MAX_BATCH_SIZE}."
    )
    chunk_size: ChunkSize = Field(
        reembed.CHUNK_SIZE, description="Memories per backfill unit (whole API batches)."
    )
    max_cost_usd: float | None = Field(
        None,
        ge=0.0,
        le=MAX_COST_USD_LIMIT,
        description="Refuse before any provider call when the estimate is above this many USD "
        "(default: REEMBED_MAX_COST_USD, 10).",
    )
    max_tokens: int | None = Field(
        None, ge=1, description="Refuse before any provider call above this many tokens."
    )
    plan_only: Flag = Field(
        False, description="Report the plan (memories, tokens, cost, seconds) and stop."
    )
    progress_seconds: float = Field(
        DEFAULT_EVERY_SECONDS, ge=0.0, le=3600.0, description=PROGRESS_FIELD_DESCRIPTION
    )


@dataclass(frozen=True)
class MigrationStep:
    """What the first op decided; later ops read the record again from the collections."""

    action: str
    source_collection: str
    target_collection: str
    batch_size: int
    chunk_size: int
    progress_seconds: float
    started_at: float
    plan: dict | None = None
    plan_only: bool = False
    summary: dict | None = None  # rollback/finalize/plan-only: the answer, nothing else runs

    @property
    def migrating(self) -> bool:
        return self.action == "migrate" and not self.plan_only


def _stores(qdrant: QdrantResource, step: MigrationStep) -> tuple[VectorStore, VectorStore]:
    store = qdrant.get_store()
    return store.for_collection(step.source_collection), store.for_collection(
        step.target_collection
    )


def _record(source: VectorStore, target: VectorStore) -> mig.MigrationRecord:
    record = mig.read_record(target) or mig.read_record(source)
    if record is None:
        raise dg.Failure(
            description="the migration record is gone from both collections: start the "
            "migration again",
            allow_retries=False,
        )
    return record


def _target_resource(embeddings: EmbeddingsResource, identity: EmbeddingIdentity):
    return embeddings.for_target(identity.provider, identity.model, identity.dim)


def _hold(record: mig.MigrationRecord, context: dg.OpExecutionContext) -> None:
    """This run (and its worker process) is the one working on the migration now."""
    pid = os.getpid()
    record.run_id = context.run_id
    record.worker = {"pid": pid, "process": process_identity(pid)}


def _refuse_concurrent(context: dg.OpExecutionContext, record: mig.MigrationRecord) -> None:
    other = record.run_id
    if not other or other == context.run_id:
        return
    run = context.instance.get_run_by_id(other)
    if run is None:  # another Dagster instance's run (or one deleted): the record decides
        held = mig.held_elsewhere(record, os.getpid(), boot_id(), process_identity)
        if held is None:
            return
        raise dg.Failure(
            description=f"run {other}, which this Dagster instance does not know, may be "
            f"working on migration {record.id} now (stage {record.stage}): {held}; one "
            "migration at a time, nothing was written",
            allow_retries=False,
        )
    if run.status.value not in RUNNING:
        return
    # a worker killed outside a stack (no daemon to mark its run failed) leaves its run
    # STARTED: a run whose worker process is gone holds nothing
    worker = (
        check_tagged_worker(run.tags)
        if WORKER_PID_TAG in run.tags
        else check_spawned_worker(context.instance, run)
    )
    if not worker.alive:
        context.log.warning(
            f"migration {record.id} was left by run {other}, whose {worker.why}: continuing it"
        )
        return
    raise dg.Failure(
        description=f"run {other} is working on migration {record.id} now (stage "
        f"{record.stage}): one migration at a time; nothing was written",
        allow_retries=False,
    )


def _refusal(message: str) -> dg.Failure:
    return dg.Failure(description=f"migration refused: {message}", allow_retries=False)


@dg.op(pool=POOL_STORE_SCAN)
def plan_migration(
    context: dg.OpExecutionContext,
    config: MigrateConfig,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
) -> dg.Output[MigrationStep]:
    """Find the migration (or start one), price what the target still lacks, refuse it over
    budget before any provider call; rollback and finalize are done here."""
    started_at = time.time()
    tag_ui_launch(context)
    with fail_fast_unless_transient():
        store = qdrant.get_store()
        live = mig.resolve(store)
        source = store.for_collection(live.collection)
        record = mig.read_record(source)
        if config.action != "migrate":
            return _end_action(context, config, store, source, record, embeddings, falkordb)
        target_id = _checked_target(config, embeddings)
        try:
            found = mig.refuse_conflict(record, target_id, config.to_collection)
        except mig.MigrationError as exc:
            raise _refusal(str(exc)) from None
        if found is None and configured_identity(embeddings) == target_id:
            raise _refusal(
                f"the configured embedding is already {target_id.label()} (collection "
                f"{live.collection!r}): nothing to migrate"
            )
        if found is not None:
            _refuse_concurrent(context, found)
        target_collection = (
            found.target_collection
            if found is not None
            else config.to_collection or mig.target_name(live.collection, target_id)
        )
        target = store.for_collection(target_collection)
        source_collection = found.source_collection if found else live.collection
        source = store.for_collection(source_collection)
        if found is None and target.exists():
            dim = target.collection_dim()
            if dim != target_id.dim:
                raise _refusal(
                    f"to_collection {target_collection!r} exists with {dim}-dimensional "
                    f"vectors, not {target_id.dim}: choose another to_collection"
                )
        trust = target.exists() and identity_mod.trust_unstamped(
            identity_mod.read_record(target), target_id
        )
        with falkordb.get_store() as graph:
            selection = mig.select_target(graph, target, target_id, trust_unstamped=trust)
            plan = pricing.price_selection(
                selection,
                graph,
                target_id,
                config.batch_size,
                _target_resource(embeddings, target_id).rate_limits(),
            )
    context.log.info(f"plan: {plan.describe()}")
    refuse_over_budget(
        plan,
        pricing.Budget(config.max_cost_usd, config.max_tokens),
        embeddings,
        prefix="migration refused: ",
    )
    step = MigrationStep(
        "migrate",
        source_collection,
        target_collection,
        config.batch_size,
        config.chunk_size,
        config.progress_seconds,
        started_at,
        plan.as_dict(),
        config.plan_only,
    )
    if config.plan_only:
        summary = {
            "status": "planned",
            "action": "migrate",
            **plan.as_dict(),
            "source_collection": source_collection,
            "target_collection": target_collection,
            "migration": None if found is None else found.as_dict(),
        }
        return _out(context, replace(step, summary=summary), summary)
    with fail_fast_unless_transient():
        if found is None:
            alias = config.alias or live.alias
            record = mig.new_record(
                source_collection,
                configured_identity(embeddings),
                target_collection,
                target_id,
                alias,
            )
        else:
            record = found
        _hold(record, context)
        record.runs += 1
        if record.stage == mig.PLAN:
            record.enter(mig.BUILD)
        mig.save_record(record, source, target)
    context.log.info(
        f"migration {record.id}: {record.source.label()} in {source_collection!r} → "
        f"{record.target.label()} in {target_collection!r} (stage {record.stage}, cutover by "
        f"{record.mode})"
    )
    return dg.Output(
        step,
        metadata={
            "plan": dg.MetadataValue.json(plan.as_dict()),
            "migration": record.id,
            "stage": record.stage,
            "seconds": round(time.time() - started_at, 3),
        },
    )


def _checked_target(config: MigrateConfig, embeddings: EmbeddingsResource) -> EmbeddingIdentity:
    missing = [n for n in ("to_provider", "to_model", "to_dim") if getattr(config, n) is None]
    with refusing_bad_params():
        if missing:
            raise ParamError(missing[0], f"{', '.join(missing)} required to migrate")
        credentials = {n: getattr(embeddings, n) for n in type(embeddings).model_fields}
        settings, errors = target_embedding(
            credentials, config.to_provider, config.to_model, config.to_dim
        )
        if errors:
            field = next(
                (n for n in ("to_provider", "to_model", "to_dim") if n in errors[0]), "to_provider"
            )
            raise ParamError(field, "; ".join(errors))
    return EmbeddingIdentity(settings.provider, settings.model, settings.vector_size)


def _end_action(context, config, store, source, record, embeddings, falkordb):
    """rollback / finalize / status, decided and done in the first step."""
    if config.action == "status":
        with falkordb.get_store() as graph:
            summary = {"action": "status", **mig.status(graph, store)}
        step = MigrationStep(
            "status",
            source.collection,
            source.collection,
            config.batch_size,
            config.chunk_size,
            config.progress_seconds,
            time.time(),
            summary=summary,
        )
        return _out(context, step, summary)
    if record is None:
        raise _refusal(f"there is no migration record in {source.collection!r} to {config.action}")
    target = store.for_collection(record.target_collection)
    source = store.for_collection(record.source_collection)
    _refuse_concurrent(context, record)
    step_kind = config.action
    try:
        if step_kind == "finalize":
            mig.finalize(record, source)
            mig.save_record(record, target)
        else:
            was_cut_over = record.stage == mig.CUT_OVER
            mig.roll_back(record, store)
            _hold(record, context)
            mig.save_record(record, source, target)
            if was_cut_over:
                step_kind = "rollback_fill"
    except mig.MigrationError as exc:
        raise _refusal(str(exc)) from None
    _observe(context, record, config.action)
    context.log.info(
        f"migration {record.id}: {record.stage}; " + " ".join(mig.instructions(record))
    )
    summary = {
        "status": record.stage,
        "action": config.action,
        "migration": record.as_dict(),
        "instructions": mig.instructions(record),
    }
    step = MigrationStep(
        step_kind,
        record.source_collection,
        record.target_collection,
        config.batch_size,
        config.chunk_size,
        config.progress_seconds,
        time.time(),
        summary=summary,
    )
    return _out(context, step, summary)


def _out(context, step: MigrationStep, summary: dict) -> dg.Output[MigrationStep]:
    return dg.Output(step, metadata={"summary": dg.MetadataValue.json(summary)})


def _observe(context: dg.OpExecutionContext, record: mig.MigrationRecord, what: str) -> None:
    """The migration's state on the vector collection's asset (its Events tab in the UI), as
    each stage leaves it: stage, done/total, both collections and identities, where readers
    are, what it has cost; the whole record as JSON."""
    context.log_event(
        dg.AssetObservation(
            asset_key=VECTOR_ASSET_KEY,
            description=f"Embedding-model migration: {what}",
            metadata={
                "stage": record.stage,
                "done / total": f"{record.done}/{record.total}",
                "source": f"{record.source_collection}: {record.source.label()}",
                "target": f"{record.target_collection}: {record.target.label()}",
                "readers on": record.live,
                "cutover": record.mode,
                "embedded (all runs)": record.embedded,
                "provider requests (all runs)": record.requests,
                "failed": record.failed or "",
                "migration": dg.MetadataValue.json(record.as_dict()),
            },
        )
    )


@dg.op
def build_target(
    context: dg.OpExecutionContext,
    step: MigrationStep,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
) -> MigrationStep:
    """Create the new collection beside the live one (the target's size, AutoMem's layout)
    and record its identity: no provider call, nothing written to the live collection."""
    if not step.migrating:
        return step
    with fail_fast_unless_transient():
        source, target = _stores(qdrant, step)
        record = _record(source, target)
        _hold(record, context)
        created = target.ensure_collection(record.target.dim)
        if identity_mod.read_record(target) is None:
            identity_mod.write_record(
                target,
                identity_mod.IdentityRecord(
                    record.target, identity_mod.VERIFIED, "created", record.updated_at
                ),
            )
        if record.stage == mig.BUILD:
            record.enter(mig.BACKFILL)
        mig.save_record(record, source, target)
    _observe(context, record, f"built {step.target_collection!r}")
    context.log.info(
        f"{'created' if created else 'kept'} {step.target_collection!r} "
        f"({record.target.dim}-d) beside {step.source_collection!r}"
    )
    return step


def _fill_stage(context, step, falkordb, qdrant, embeddings, stage: str) -> dict:
    """Backfill and catch-up are one pass: embed into the target what it lacks (the graph
    says what exists), a chunk at a time, the record's counts saved after each chunk."""
    with fail_fast_unless_transient(), interrupts_at_checkpoints() as checkpoint:
        source, target = _stores(qdrant, step)
        record = _record(source, target)
        _hold(record, context)
        rollback = step.action == "rollback_fill"
        into, carry, identity = (
            (source, target, record.source) if rollback else (target, source, record.target)
        )
        resource = _target_resource(embeddings, identity)
        provider = resource.get_provider()
        try:
            with falkordb.get_store() as graph:
                selection = reembed.plan_reembed(graph, into, provider, None, False)
                if not rollback and record.stage in mig.STAGES:
                    if record.stage != stage:
                        record.enter(stage)
                    record.done, record.total = 0, len(selection.todo)
                    mig.save_record(record, source, target)
                progress = progress_reporter(
                    context, stage, len(selection.todo), step.progress_seconds
                )
                seen = [0, 0]
                saved = [time.monotonic()]

                def after_chunk(out: mig.FillResult) -> None:
                    record.done = out.embedded + len(out.failed)
                    record.embedded += out.embedded - seen[0]
                    record.requests += out.requests - seen[1]
                    seen[:] = [out.embedded, out.requests]
                    mig.save_record(record, source, target)
                    saved[0] = time.monotonic()

                def heartbeat() -> None:  # after each window: the record says we are alive
                    checkpoint()
                    if time.monotonic() - saved[0] >= mig.HEARTBEAT_SECONDS:
                        mig.save_record(record, source, target)
                        saved[0] = time.monotonic()

                result = mig.fill(
                    graph,
                    into,
                    carry,
                    provider,
                    selection.todo,
                    step.batch_size,
                    step.chunk_size,
                    heartbeat,
                    progress.update,
                    after_chunk,
                )
                progress.finish(len(selection.todo))
                removed = 0
                if stage == mig.CATCH_UP and record.stage not in (mig.CUT_OVER,):
                    removed = mig.remove_gone(graph, target)
        finally:
            provider.close()
        if selection.identity_texts:  # the identity check's one request of sampled texts
            record.requests += 1
        mig.save_record(record, source, target)
    _observe(context, record, f"{stage} into {into.collection!r}")
    context.log.info(
        f"{stage}: embedded {result.embedded} memories into {into.collection!r} with "
        f"{identity.label()} ({result.requests} provider requests), failed "
        f"{len(result.failed)}, {selection.skipped} already current or without content"
        + (f"; removed {removed} points of memories deleted meanwhile" if removed else "")
    )
    if result.failed:
        first = next(iter(result.failed.items()))
        raise dg.Failure(
            description=f"{stage}: {len(result.failed)} memories failed to embed (e.g. "
            f"{first[0]}: {first[1]}); run the migration again to retry them",
            allow_retries=False,
        )
    return {
        "embedded": result.embedded,
        "requests": result.requests,
        "removed": removed,
        "to_embed": len(selection.todo),
    }


def _fill_output(context, step, falkordb, qdrant, embeddings, stage: str):
    """The step's output: the fill's counts as metadata; nothing done when this run does not
    fill (plan only, finalize, status; rollback fills the old collection in the backfill
    step only)."""
    if not (step.migrating or (stage == mig.BACKFILL and step.action == "rollback_fill")):
        return dg.Output(step)
    return dg.Output(step, metadata=_fill_stage(context, step, falkordb, qdrant, embeddings, stage))


@dg.op(pool=POOL_PROVIDER)
def backfill_target(
    context: dg.OpExecutionContext,
    step: MigrationStep,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
) -> dg.Output[MigrationStep]:
    """Embed every memory with content into the new collection with the target model: the
    payload is the node's properties over the old point's payload, plus the stamps; a memory
    whose target point is already current (an earlier run or attempt) is not embedded."""
    return _fill_output(context, step, falkordb, qdrant, embeddings, mig.BACKFILL)


@dg.op(pool=POOL_PROVIDER)
def catch_up_target(
    context: dg.OpExecutionContext,
    step: MigrationStep,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
    embeddings: EmbeddingsResource,
) -> dg.Output[MigrationStep]:
    """What AutoMem wrote or changed while the backfill ran: embedded now; points of memories
    it deleted meanwhile are removed from the new collection (before the cutover only)."""
    return _fill_output(context, step, falkordb, qdrant, embeddings, mig.CATCH_UP)


@dg.op(pool=POOL_STORE_SCAN)
def verify_target(
    context: dg.OpExecutionContext,
    step: MigrationStep,
    falkordb: FalkorDBResource,
    qdrant: QdrantResource,
) -> dg.Output[MigrationStep]:
    """Every memory with content has a current point of the target model; no orphans; payload
    keys complete; a self-match sample. A failed check fails the run before the cutover."""
    if not step.migrating:
        return dg.Output(step)
    with fail_fast_unless_transient():
        source, target = _stores(qdrant, step)
        record = _record(source, target)
        _hold(record, context)
        if record.stage in mig.STAGES:
            record.enter(mig.VERIFY)
            mig.save_record(record, source, target)
        with falkordb.get_store() as graph:
            report = mig.verify(graph, target, source if source.exists() else None, record.target)
        record.verified = report
        if not report["ok"]:
            record.failed = "verify: " + mig.verify_problems(report)
        elif record.stage == mig.CUT_OVER:
            record.confirmed_at = report["checked_at"]
        mig.save_record(record, source, target)
    _observe(context, record, "verified" if report["ok"] else "verification failed")
    context.log.info(f"verify: {report}")
    if not report["ok"]:
        raise dg.Failure(
            description=f"verification failed, readers stay on {step.source_collection!r}: "
            f"{mig.verify_problems(report)}; run the migration again (its catch-up embeds "
            "what is missing)",
            metadata={"verify": dg.MetadataValue.json(report)},
            allow_retries=False,
        )
    return dg.Output(step, metadata={"verify": dg.MetadataValue.json(report)})


@dg.op(out=dg.Out(dict))
def cut_over_readers(context: dg.OpExecutionContext, step: MigrationStep, qdrant: QdrantResource):
    """Alias readers: the alias switched to the new collection (one atomic request).
    AutoMem: the record says what to set and that it must be restarted. The old collection is
    kept until finalize. The summary is the migration's state."""
    if step.summary is not None:
        summary = step.summary
    else:
        with fail_fast_unless_transient():
            source, target = _stores(qdrant, step)
            record = _record(source, target)
            _hold(record, context)
            first = record.stage != mig.CUT_OVER
            mig.cut_over(record, qdrant.get_store())
            mig.save_record(record, source, target)
        lines = mig.instructions(record)
        for line in lines:
            context.log.info(line)
        summary = {
            "status": "cut_over" if first else ("confirmed" if record.confirmed_at else "cut_over"),
            "action": "migrate",
            "migration": record.as_dict(),
            "instructions": lines,
            "plan": step.plan,
            "seconds": round(time.time() - step.started_at, 3),
        }
        _observe(context, record, summary["status"].replace("_", " "))
    yield dg.Output(summary, metadata={SUMMARY_METADATA_KEY: dg.MetadataValue.json(summary)})
