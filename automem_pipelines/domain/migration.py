"""Embedding-model migration, as plain functions: plan → build a new collection beside the
live one → backfill it from the graph → catch up → verify → cut over → (rollback | finalize).

Readers keep the live (source) collection until the cutover; nothing here writes a point of
it. The target collection is filled by the re-embed path (``reembed.reembed_ids``: node
properties over the source point's payload, plus the target model's stamps), so a memory
whose point in the target already holds the target model's vector for its content is never
embedded again, whichever run, stage or attempt wrote it. That is what makes every stage
safe to repeat: a migration killed anywhere is continued by running it again.

The migration's state is a record in the collection metadata of both collections
(``MIGRATION_KEY``): the stage, the collections, both identities, counts. Whoever reads either
collection (Qdrant's ``GET /collections/<name>``, ``migrate --status``, the next run) finds it;
an active record is also the lock that keeps a second migration out.

Cutover has two forms, because AutoMem cannot read through an alias (at start it looks for
``QDRANT_COLLECTION`` among ``get_collections()`` names, where an alias is not listed):

* **alias** — readers use an alias (``QDRANT_COLLECTION`` names one, or the run names one):
  the alias is switched from the source to the target in one request;
* **collection** — AutoMem as it is: the record says which variables to change and that
  AutoMem must be restarted; running the migration again afterwards embeds what AutoMem wrote
  into the old collection before its restart (the graph says what exists) and confirms that
  nothing is missing or stale.

Rollback returns readers to the source in one step (alias switched back, or the variables to
set back) and embeds into the source what changed after the cutover; finalize deletes the
source, and only after a confirmed cutover.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..stores.graph import GraphStore
from ..stores.vectors import VectorStore
from .embeddings import EmbeddingProvider
from .memory import utc_now_iso
from .reembed import ChunkResult, reembed_ids
from .selection import (
    SEGMENT,
    PackedIds,
    Selection,
    _usable,
    enumerate_ids,
    plan_chunks,
    select_memories,
)
from .vector_state import EmbeddingIdentity

MIGRATION_KEY = "automem_pipelines_migration"

PLAN, BUILD, BACKFILL, CATCH_UP, VERIFY, CUTOVER = (
    "plan",
    "build",
    "backfill",
    "catch_up",
    "verify",
    "cutover",
)
STAGES = (PLAN, BUILD, BACKFILL, CATCH_UP, VERIFY, CUTOVER)
CUT_OVER = "cut_over"  # readers are (to be) on the target; the source is kept for rollback
FINALIZED = "finalized"  # the source is deleted
ROLLED_BACK = "rolled_back"  # readers are back on the source
ACTIVE = (*STAGES, CUT_OVER)
FILL_DEPTH = 1  # windows waiting between two stages of a fill (see fill)
HEARTBEAT_SECONDS = 30.0  # a working run saves the record at least this often
LEASE_SECONDS = 120.0  # a record saved this recently by a worker on another machine is held
STEP_GAP_SECONDS = 15.0  # ... and by a gone worker on this one (its run's next step starting)
SELF_MATCH_SAMPLE = 16  # points whose own vector must find them first (verify)
TIE_LIMIT = 16  # hits read per self-match query
PAYLOAD_SAMPLE = 2_000  # points whose payload keys verify compares with the old point's
MODEL_VARIABLE = {  # the variable that names the model, per provider (AutoMem's)
    "openai": "EMBEDDING_MODEL",
    "local": "EMBEDDING_MODEL",
    "voyage": "VOYAGE_MODEL",
    "ollama": "OLLAMA_MODEL",
}


class MigrationError(RuntimeError):
    """A migration action refused (another one in progress, a wrong stage): nothing written."""


@dataclass
class MigrationRecord:
    id: str
    source_collection: str
    source: EmbeddingIdentity
    target_collection: str
    target: EmbeddingIdentity
    alias: str | None  # readers resolve this alias: cutover switches it
    stage: str
    started_at: str
    updated_at: str
    run_id: str | None = None  # the run working on it now (or last)
    # that run's worker process: {"pid", "process"} (worker_identity: boot id + start tick),
    # so an instance that does not know the run can still tell whether it is alive
    worker: dict[str, Any] | None = None
    done: int = 0  # of the stage's total
    total: int = 0
    embedded: int = 0  # memories embedded with the target model, all runs together
    requests: int = 0  # provider requests, all runs together
    runs: int = 0
    verified: dict[str, Any] | None = None  # the last verification's report
    cut_over_at: str | None = None
    confirmed_at: str | None = None  # a verification after the cutover passed
    ended_at: str | None = None  # finalized or rolled back
    failed: str | None = None  # why the last run stopped, when it failed
    history: list[str] = field(default_factory=list)  # "stage at time", newest last

    @property
    def active(self) -> bool:
        return self.stage in ACTIVE

    @property
    def mode(self) -> str:
        return "alias" if self.alias else "collection"

    @property
    def live(self) -> str:
        """The collection readers should use now."""
        return (
            self.target_collection
            if self.stage in (CUT_OVER, FINALIZED)
            else (self.source_collection)
        )

    def enter(self, stage: str, total: int = 0) -> None:
        self.stage, self.done, self.total, self.failed = stage, 0, total, None
        self.updated_at = utc_now_iso()
        self.history.append(f"{stage} at {self.updated_at}")
        del self.history[:-20]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["source"] = self.source.as_dict()
        out["target"] = self.target.as_dict()
        out["mode"] = self.mode
        out["live"] = self.live
        return out

    @classmethod
    def from_dict(cls, value: Any) -> MigrationRecord | None:
        if not isinstance(value, dict):
            return None
        source = EmbeddingIdentity.from_dict(value.get("source"))
        target = EmbeddingIdentity.from_dict(value.get("target"))
        if (
            source is None
            or target is None
            or value.get("stage")
            not in (
                *ACTIVE,
                FINALIZED,
                ROLLED_BACK,
            )
        ):
            return None
        names = {f for f in cls.__dataclass_fields__} - {"source", "target"}
        kept = {k: v for k, v in value.items() if k in names}
        return cls(source=source, target=target, **kept)


def new_record(
    source_collection: str,
    source: EmbeddingIdentity,
    target_collection: str,
    target: EmbeddingIdentity,
    alias: str | None,
) -> MigrationRecord:
    now = utc_now_iso()
    record = MigrationRecord(
        uuid.uuid4().hex[:12],
        source_collection,
        source,
        target_collection,
        target,
        alias,
        PLAN,
        now,
        now,
    )
    record.history.append(f"{PLAN} at {now}")
    return record


def target_name(source_collection: str, target: EmbeddingIdentity) -> str:
    """The new collection's default name: the source's, the model's and the size."""
    slug = re.sub(r"[^a-z0-9]+", "-", target.model.lower().rsplit("/", 1)[-1]).strip("-")
    return f"{source_collection}__{slug}_{target.dim}"


# -- the record -------------------------------------------------------------------------------
def read_record(store: VectorStore) -> MigrationRecord | None:
    if not store.exists():
        return None
    return MigrationRecord.from_dict(store.collection_metadata().get(MIGRATION_KEY))


def save_record(record: MigrationRecord, *stores: VectorStore) -> None:
    """Write the record into the metadata of each of these collections that exists."""
    record.updated_at = utc_now_iso()
    value = record.as_dict()
    for store in stores:
        if store.exists():
            store.update_collection_metadata({MIGRATION_KEY: value})


@dataclass(frozen=True)
class Live:
    """What the configured QDRANT_COLLECTION stands for."""

    collection: str  # the collection itself (an alias resolved)
    alias: str | None  # the configured name, when it is an alias


def resolve(store: VectorStore) -> Live:
    aliases = store.aliases()
    if store.collection in aliases:
        return Live(aliases[store.collection], store.collection)
    return Live(store.collection, None)


def find_record(store: VectorStore) -> MigrationRecord | None:
    """The migration record of the configured collection (an alias resolved)."""
    live = resolve(store)
    return read_record(store.for_collection(live.collection))


def refuse_conflict(
    record: MigrationRecord | None, target: EmbeddingIdentity, target_collection: str | None
) -> MigrationRecord | None:
    """The active migration this request continues (same target), None when there is none;
    another target while one is active is refused."""
    if record is None or not record.active:
        return None
    same = record.target == target and target_collection in (None, record.target_collection)
    if not same:
        raise MigrationError(
            f"a migration to {record.target.label()} in {record.target_collection!r} is in "
            f"progress (stage {record.stage}, id {record.id}): run it again to finish it, or "
            "roll it back (migrate --rollback) before starting another; nothing was written"
        )
    return record


def held_elsewhere(
    record: MigrationRecord,
    my_pid: int,
    boot_id: str,
    identity_of: Callable[[int], str | None],
    now: datetime | None = None,
) -> str | None:
    """Why the record's run (one this Dagster instance does not know) may be working on it
    now; None when it cannot be. Every step of a migration run records its worker process.
    On this machine that process decides: alive (the same process, by boot id and start tick)
    holds it; gone holds it only for STEP_GAP_SECONDS after the last save (the next step's
    process of a multiprocess run has not started yet); this very process is running no other
    step. A worker on another machine holds it while it saved the record within LEASE_SECONDS
    (a working run saves it at least every HEARTBEAT_SECONDS)."""
    worker = record.worker or {}
    pid, process = worker.get("pid"), str(worker.get("process") or "")
    age = ((now or datetime.now(UTC)) - datetime.fromisoformat(record.updated_at)).total_seconds()
    if pid is not None and process.partition(":")[0] == boot_id:
        if int(pid) == my_pid:
            return None
        if identity_of(int(pid)) == process:
            return f"its worker (pid {pid}, this machine) is running"
        if age < STEP_GAP_SECONDS:
            return (
                f"its last worker (pid {pid}, this machine) is gone, but saved it {age:.0f} s "
                "ago: its run's next step may be starting"
            )
        return None
    if age < LEASE_SECONDS:
        where = "another machine" if pid is not None else "a worker of unknown process"
        return (
            f"it was saved {age:.0f} s ago by {where} (a migration whose record has not been "
            f"saved for {LEASE_SECONDS:.0f} s is taken over)"
        )
    return None


# -- planning (read-only) -----------------------------------------------------------------------
def select_target(
    graph: GraphStore,
    target: VectorStore | None,
    identity: EmbeddingIdentity,
    trust_unstamped: bool = False,
    segment: int = SEGMENT,
) -> Selection:
    """What the target still lacks, read-only: every memory with content whose point in the
    target is missing or not the target model's for its present content (all of them while
    the target does not exist). Nothing is embedded, adopted or written."""
    selection = Selection(0, PackedIds())
    shared = graph.shared_ids()
    exists = target is not None and target.exists()
    for found in enumerate_ids(graph, None, segment):
        usable = _usable(found, shared, selection)
        if exists:
            select_memories(usable, graph, target, identity, False, trust_unstamped, into=selection)
            selection.skipped_unchanged += len(selection._adoptable)  # their vectors are kept
            selection._adoptable = {}
        else:
            selection.total += len(usable)
            selection.todo.extend(usable)  # priced by content: the empty ones are not counted
        selection.total += len(found) - len(usable)
    return selection


# -- filling the target -------------------------------------------------------------------------
@dataclass
class FillResult:
    memories: int = 0  # listed for this pass
    embedded: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    requests: int = 0
    tokens: int = 0
    seconds: float = 0.0
    skipped: int = 0

    def add(self, result: ChunkResult) -> None:
        self.embedded += result.processed - result.resumed
        self.failed.update(result.failed)
        self.requests += result.requests
        self.tokens += result.tokens or 0
        self.seconds += result.seconds
        self.skipped += result.skipped


def fill(
    graph: GraphStore,
    into: VectorStore,
    carry_from: VectorStore | None,
    provider: EmbeddingProvider,
    todo: Sequence[str],
    batch_size: int,
    chunk_size: int,
    checkpoint: Callable[[], None] | None = None,
    progress: Callable[[int], None] | None = None,
    after_chunk: Callable[[FillResult], None] | None = None,
) -> FillResult:
    """Embed ``todo`` into ``into`` a chunk at a time (the re-embed work unit), each point's
    payload built over ``carry_from``'s point; ``after_chunk`` sees the running totals.

    Windows are one round of the provider's concurrent requests and one window waits between
    two stages: what a killed run paid for but never wrote — paid again by the next run — is
    at most two such rounds (run_stages: the one being written and the one behind it), not
    the re-embed's 1,024-memory windows."""
    out = FillResult(len(todo))
    window = batch_size * max(1, provider.max_concurrency)
    done = 0
    for index, ids in enumerate(plan_chunks(todo, batch_size, chunk_size)):
        base = done
        result = reembed_ids(
            index,
            ids,
            graph,
            into,
            provider,
            batch_size,
            window=window,
            depth=FILL_DEPTH,
            checkpoint=checkpoint,
            progress=None if progress is None else (lambda n, b=base: progress(b + n)),
            carry_from=carry_from,
        )
        done += len(ids)
        out.add(result)
        if after_chunk is not None:
            after_chunk(out)
    return out


def remove_gone(graph: GraphStore, target: VectorStore, page: int = 1000) -> int:
    """Delete the target's points whose memory is no longer in the graph (AutoMem deleted it
    while the target was built: the live collection lost its point too). Only for a target
    no reader uses yet."""
    gone: list[str] = []
    for records in target.scroll(page):
        ids = [str(r.id) for r in records]
        present = graph.fetch_contents(ids)
        gone.extend(m for m in ids if m not in present)
    target.delete_points(gone)
    return len(gone)


# -- verification -------------------------------------------------------------------------------
def verify(
    graph: GraphStore,
    target: VectorStore,
    source: VectorStore | None,
    identity: EmbeddingIdentity,
    sample: int = SELF_MATCH_SAMPLE,
    page: int = 1000,
    payload_sample: int = PAYLOAD_SAMPLE,
) -> dict[str, Any]:
    """Is the target ready for readers? Every memory with content has a point stamped with
    the target model for its present content; the target holds no point of a memory the graph
    lacks; every payload key of a source point is in its target point (a spread sample of
    ``payload_sample`` points); and a sample of points finds itself first when the target is
    queried with its own vector."""
    selection = select_target(graph, target, identity, trust_unstamped=False)
    with_content = selection.total - selection.skipped_empty - selection.skipped_missing
    with_content -= selection.invalid_count + selection.duplicate_nodes
    points = target.count()
    orphans = 0
    listed: list[str] = []
    for records in target.scroll(page):  # ids only
        ids = [str(r.id) for r in records]
        present = graph.fetch_contents(ids)
        orphans += sum(m not in present for m in ids)
        listed.extend(ids)
    incomplete, examples, compared = 0, [], 0
    if source is not None and listed:  # a spread sample: the backfill builds every payload
        step = max(1, len(listed) // payload_sample)  # over the old one, this checks it did
        picked = listed[::step][:payload_sample]
        before, after = source.payloads(picked), target.payloads(picked)
        for pid in picked:
            if pid not in before:
                continue
            compared += 1
            lost = set(before[pid]) - set(after.get(pid, {}))
            if lost:
                incomplete += 1
                if len(examples) < 10:
                    examples.append(f"{pid}: {', '.join(sorted(lost))}")
    matched = checked = 0
    for record in target.sample(sample, keys=[]):
        vector = record.vector
        if isinstance(vector, dict):
            vector = vector.get("") or next(iter(vector.values()), None)
        if vector is None:
            continue
        checked += 1
        hits = target.nearest(vector, TIE_LIMIT)
        best = hits[0][1] if hits else 0.0
        ties = [pid for pid, score in hits if score >= best - 1e-6]
        # memories with the same content tie with it: any order among them is fine, and when
        # the ties fill the answer, its own vector found only exact copies of itself first
        matched += str(record.id) in ties or (len(ties) == TIE_LIMIT and best >= 0.9999)
    report = {
        "memories_with_content": with_content,
        "points": points,
        "missing_or_stale": len(selection.todo),
        "missing_or_stale_ids": list(selection.todo[:10]),
        "orphaned_points": orphans,
        "payload_checked": compared,
        "payload_incomplete": incomplete,
        "payload_incomplete_examples": examples,
        "self_match": f"{matched}/{checked}",
        "checked_at": utc_now_iso(),
    }
    report["ok"] = not selection.todo and orphans == 0 and not incomplete and matched == checked
    return report


def verify_problems(report: dict[str, Any]) -> str:
    parts = []
    if report["missing_or_stale"]:
        parts.append(
            f"{report['missing_or_stale']} memories without a current target point "
            f"(e.g. {', '.join(report['missing_or_stale_ids'][:3])})"
        )
    if report["orphaned_points"]:
        parts.append(f"{report['orphaned_points']} target points of memories the graph lacks")
    if report["payload_incomplete"]:
        parts.append(
            f"{report['payload_incomplete']} target points lack payload keys of their source "
            f"point (e.g. {'; '.join(report['payload_incomplete_examples'][:3])})"
        )
    if report["self_match"].split("/")[0] != report["self_match"].split("/")[1]:
        parts.append(f"self-match {report['self_match']}")
    return "; ".join(parts)


# -- cutover, rollback, finalize -------------------------------------------------------------
def instructions(record: MigrationRecord) -> list[str]:
    """What the operator does next, for the record's stage."""
    t = record.target
    variables = (
        f"QDRANT_COLLECTION={record.target_collection} EMBEDDING_PROVIDER={t.provider} "
        f"{MODEL_VARIABLE.get(t.provider, 'EMBEDDING_MODEL')}={t.model} VECTOR_SIZE={t.dim}"
    )
    s = record.source
    back = (
        f"QDRANT_COLLECTION={record.source_collection} EMBEDDING_PROVIDER={s.provider} "
        f"{MODEL_VARIABLE.get(s.provider, 'EMBEDDING_MODEL')}={s.model} VECTOR_SIZE={s.dim}"
    )
    if record.stage == CUT_OVER:
        if record.alias:
            lines = [
                f"Readers of the alias {record.alias!r} now use {record.target_collection!r} "
                f"({t.label()}); embed their queries with that model.",
                f"Set in automem-pipelines' environment: EMBEDDING_PROVIDER={t.provider} "
                f"{MODEL_VARIABLE.get(t.provider, 'EMBEDDING_MODEL')}={t.model} "
                f"VECTOR_SIZE={t.dim} (QDRANT_COLLECTION stays {record.alias}).",
            ]
        else:
            lines = [
                f"Set in AutoMem's environment: {variables}; then restart AutoMem (it reads "
                "them at start only).",
                f"Set the same in automem-pipelines' environment: {variables}.",
            ]
        if record.confirmed_at is None:
            lines.append(
                "Then run the same migration again (migrate with the same --to-* options, or "
                "POST /admin/migrate): it embeds what was written before the switch and "
                "confirms that nothing is missing or stale."
            )
        lines.append(
            f"Roll back with `automem-pipelines migrate --rollback`; once satisfied, "
            f"`automem-pipelines migrate --finalize` deletes {record.source_collection!r}."
        )
        return lines
    if record.stage == ROLLED_BACK:
        if record.alias:
            return [
                f"Readers of the alias {record.alias!r} use {record.source_collection!r} again.",
                f"Set automem-pipelines' embedding variables back: {back}.",
            ]
        return [
            f"Set in AutoMem's and automem-pipelines' environment: {back}; then restart AutoMem.",
            f"{record.target_collection!r} is kept: a new migration to the same model reuses "
            "its points; delete it in Qdrant when you no longer want it.",
        ]
    if record.stage == FINALIZED:
        return [f"{record.source_collection!r} is deleted; {record.target_collection!r} is live."]
    return [
        f"Readers keep using {record.source_collection!r} until the cutover; run the migration "
        "again to continue it from this stage."
    ]


def cut_over(record: MigrationRecord, store: VectorStore) -> None:
    """Alias readers: the alias is switched to the target, one atomic request. Collection
    readers (AutoMem): nothing to switch here; the record says what to change."""
    if record.alias:
        store.point_alias(record.alias, record.target_collection)
    if record.stage != CUT_OVER:
        record.enter(CUT_OVER)
        record.cut_over_at = record.updated_at


def roll_back(record: MigrationRecord, store: VectorStore) -> None:
    if not record.active:
        raise MigrationError(
            f"the migration {record.id} is {record.stage}: there is nothing to roll back"
        )
    if record.alias:
        store.point_alias(record.alias, record.source_collection)
    record.enter(ROLLED_BACK)
    record.ended_at = record.updated_at


def finalize(record: MigrationRecord, source: VectorStore) -> bool:
    """Delete the source collection after a confirmed cutover. Returns whether it existed."""
    if record.stage != CUT_OVER:
        raise MigrationError(
            f"the migration {record.id} is at stage {record.stage}: only a migration that was "
            "cut over can be finalized; nothing was deleted"
        )
    if record.confirmed_at is None:
        raise MigrationError(
            f"the cutover of migration {record.id} is not confirmed yet: run the migration "
            "again after the switch (it embeds what was written meanwhile and verifies the "
            f"target); {record.source_collection!r} was not deleted"
        )
    deleted = source.delete_collection()
    record.enter(FINALIZED)
    record.ended_at = record.updated_at
    return deleted


def status(graph: GraphStore, store: VectorStore) -> dict[str, Any]:
    """The migration of the configured collection, read-only and with no provider call: the
    record, what the operator does next, and — while it is active — how many memories the
    new collection still lacks (missing or stale for the target model), counted now."""
    live = resolve(store)
    record = read_record(store.for_collection(live.collection))
    if record is None:
        return {"status": "none", "collection": live.collection, "alias": live.alias}
    out: dict[str, Any] = {
        "status": record.stage,
        "migration": record.as_dict(),
        "instructions": instructions(record),
    }
    target = store.for_collection(record.target_collection)
    if record.active and target.exists():
        from . import identity as identity_mod

        trust = identity_mod.trust_unstamped(identity_mod.read_record(target), record.target)
        lacking = select_target(graph, target, record.target, trust_unstamped=trust)
        out["target_lacks"] = len(lacking.todo)
        out["target_points"] = target.count()
    return out
