"""The collection's embedding identity: which model made its vectors, known before we write.

A point without stamps (AutoMem writes none) cannot say which model made it, so before a job
trusts such points — or adds vectors of its own — it proves the collection's identity:

1. a record in the collection's metadata (``IDENTITY_KEY``), written by an earlier check or
   when we created the collection, answers at once, with no provider call;
2. otherwise a small sample of points is read with their vectors: points stamped by us name
   their model; unstamped ones are embedded again from their payload ``content`` (one
   provider request of at most ``SAMPLE_SIZE`` texts) and compared with the stored vectors.
   The same model gives near-identical vectors (cosine ~1); another model, or another
   projection of the same dimension, gives vectors far apart (cosine near 0).

The verdict is recorded in the collection metadata, where an operator (Qdrant's
``GET /collections/<name>``, our ``/health``) and every later job can see it. Another model
than the configured one is refused before anything is written, unless the operator asked to
rewrite the collection in place (``replace_model_in_place``): the record then says
``replacing`` until a complete re-embed has stamped every point with the new model, and no
unstamped point is trusted meanwhile.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..stores.vectors import VectorStore
from .embeddings import EmbeddingProvider
from .memory import utc_now_iso
from .vector_state import EmbeddingIdentity, is_stamped, stamp_identity

IDENTITY_KEY = "automem_pipelines_embedding"
SAMPLE_SIZE = 32  # texts embedded by one identity check, at most
SAMPLE_POINTS = 64  # points read for it (stamped ones cost nothing to check)
SAME_MODEL_MIN_COSINE = 0.99  # per sampled point; the same model reproduces ~0.99999
SAME_MODEL_MIN_SHARE = 0.9  # of the sampled points (a few placeholder vectors do not decide)

VERIFIED = "verified"
REPLACING = "replacing"


class EmbeddingIdentityError(RuntimeError):
    """The collection's vectors were made by another embedding than the configured one."""


@dataclass
class IdentityRecord:
    identity: EmbeddingIdentity
    status: str  # VERIFIED | REPLACING
    method: str  # created | empty | recorded | stamps | sampled | replace_in_place
    checked_at: str
    sampled: int = 0
    median_cosine: float | None = None
    replacing: EmbeddingIdentity | None = None  # the model being replaced

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.identity.as_dict(),
            "status": self.status,
            "method": self.method,
            "checked_at": self.checked_at,
            "sampled": self.sampled,
            "median_cosine": self.median_cosine,
            "replacing": self.replacing.as_dict() if self.replacing else None,
        }

    @classmethod
    def from_dict(cls, value: Any) -> IdentityRecord | None:
        identity = EmbeddingIdentity.from_dict(value)
        if identity is None or value.get("status") not in (VERIFIED, REPLACING):
            return None
        return cls(
            identity,
            value["status"],
            str(value.get("method", "")),
            str(value.get("checked_at", "")),
            int(value.get("sampled") or 0),
            value.get("median_cosine"),
            EmbeddingIdentity.from_dict(value.get("replacing")),
        )


@dataclass
class IdentityCheck:
    """What a job may do with the collection."""

    configured: EmbeddingIdentity
    record: IdentityRecord
    provider_texts: int = 0  # texts embedded to decide (0 when the record or stamps answered)
    created: bool = False
    notes: list[str] = field(default_factory=list)
    # Most sampled points had no stamps (a store AutoMem wrote): a hint for readers, which
    # then read the rule's keys with the contents at once (see reembed.select_memories).
    mostly_unstamped: bool = False

    @property
    def trust_unstamped(self) -> bool:
        """Unstamped points with the memory's content may be adopted as current."""
        return self.record.status == VERIFIED and self.record.identity == self.configured

    def describe(self) -> str:
        r = self.record
        how = {"sampled": f"sampled {r.sampled} points, median cosine {r.median_cosine}"}.get(
            r.method, r.method
        )
        return f"{r.status} {r.identity.label()} ({how})"


def read_record(vectors: VectorStore) -> IdentityRecord | None:
    return IdentityRecord.from_dict(vectors.collection_metadata().get(IDENTITY_KEY))


def write_record(vectors: VectorStore, record: IdentityRecord) -> None:
    vectors.update_collection_metadata({IDENTITY_KEY: record.as_dict()})


def trust_unstamped(record: IdentityRecord | None, configured: EmbeddingIdentity) -> bool:
    """For readers that cannot embed (drift dry run, enrichment): unstamped points are trusted
    unless the record says the collection is another model's or is being replaced."""
    if record is None:
        return True
    return record.status == VERIFIED and record.identity == configured


def mismatch_message(collection: str, configured: EmbeddingIdentity, found: str) -> str:
    return (
        f"Qdrant collection {collection!r} holds vectors of another embedding than the "
        f"configured {configured.label()}: {found}. Nothing was written. Mixing the two would "
        "break recall silently (queries are embedded with one model, points with another). "
        "To move to the configured model, re-embed into a new collection (set "
        "QDRANT_COLLECTION to a new name, run re-embed with force=true, then point AutoMem's "
        "QDRANT_COLLECTION at it); to rewrite this collection in place — recall is mixed until "
        "the run completes — run re-embed with replace_model_in_place=true; or set "
        "EMBEDDING_PROVIDER/EMBEDDING_MODEL/VECTOR_SIZE back to the collection's model."
    )


def _cosines(stored: list[Any], fresh: np.ndarray) -> list[float]:
    out = []
    for vec, new in zip(stored, fresh):
        old = np.asarray(vec, dtype=np.float32)
        denom = float(np.linalg.norm(old) * np.linalg.norm(new))
        out.append(float(old @ new) / denom if denom else 0.0)
    return out


def _sample_vector(record: Any) -> Any:
    vec = record.vector
    if isinstance(vec, dict):  # named vectors: AutoMem uses the unnamed one
        vec = vec.get("") or next(iter(vec.values()), None)
    return vec


def check_identity(
    vectors: VectorStore,
    provider: EmbeddingProvider,
    replace_in_place: bool = False,
    sample_size: int = SAMPLE_SIZE,
) -> IdentityCheck:
    """Create the collection if absent, refuse another size (DimensionMismatchError) or another
    model (EmbeddingIdentityError), and record what was found. See the module docstring."""
    configured = EmbeddingIdentity.of(provider)
    created = vectors.ensure_collection(provider.dim)
    if created:
        record = IdentityRecord(configured, VERIFIED, "created", utc_now_iso())
        write_record(vectors, record)
        return IdentityCheck(configured, record, created=True)
    record = read_record(vectors)
    if record is not None:
        if record.identity == configured:
            return IdentityCheck(configured, record)  # verified, or a replacement to continue
        found = f"its recorded identity is {record.identity.label()} ({record.status})"
        return _other_model(vectors, configured, found, replace_in_place, record.identity)

    sample = vectors.sample(
        SAMPLE_POINTS,
        keys=[
            "content",
            "embedding_stamp",
            "embedding_provider",
            "embedding_model",
            "embedding_dim",
        ],
    )
    same, foreign, unstamped = 0, Counter(), []
    named_by: dict[str, EmbeddingIdentity | None] = {}
    for rec in sample:
        payload = rec.payload or {}
        if is_stamped(payload):
            named = stamp_identity(payload)
            if named == configured:
                same += 1
            else:
                label = named.label() if named else "an unreadable stamp"
                foreign[label] += 1
                named_by.setdefault(label, named)
        elif isinstance(payload.get("content"), str) and _sample_vector(rec) is not None:
            unstamped.append(rec)
    mostly_unstamped = len(unstamped) > len(sample) // 2
    unstamped = unstamped[:sample_size]
    cosines: list[float] = []
    if unstamped:
        fresh = provider.embed([rec.payload["content"] for rec in unstamped]).vectors
        cosines = _cosines([_sample_vector(rec) for rec in unstamped], fresh)
    matching = sum(c >= SAME_MODEL_MIN_COSINE for c in cosines)
    other = sum(foreign.values()) + len(cosines) - matching
    median = round(statistics.median(cosines), 6) if cosines else None
    checked = same + matching + other
    if checked == 0 or (same + matching) / checked >= SAME_MODEL_MIN_SHARE:
        method = "sampled" if cosines else ("stamps" if checked else "empty")
        record = IdentityRecord(
            configured, VERIFIED, method, utc_now_iso(), sampled=checked, median_cosine=median
        )
        write_record(vectors, record)
        check = IdentityCheck(
            configured, record, provider_texts=len(cosines), mostly_unstamped=mostly_unstamped
        )
        if other:
            check.notes.append(
                f"{other} of {checked} sampled points are not the configured model's "
                f"({', '.join(sorted(foreign)) or 'unstamped, vectors far from it'}): they are "
                "stale and get re-embedded"
            )
        return check
    parts = []
    if foreign:
        parts.append(
            "sampled points are stamped with "
            + ", ".join(f"{label} ({n})" for label, n in sorted(foreign.items()))
        )
    if cosines:
        parts.append(
            f"re-embedding {len(cosines)} of its points' stored texts with the configured model "
            f"gives vectors far from the stored ones (median cosine {median}, {matching} of "
            f"{len(cosines)} at or above {SAME_MODEL_MIN_COSINE})"
        )
    previous = named_by[foreign.most_common(1)[0][0]] if foreign else None
    check = _other_model(vectors, configured, "; ".join(parts), replace_in_place, previous)
    check.provider_texts = len(cosines)
    return check


def verify_points(
    vectors: VectorStore,
    provider: EmbeddingProvider,
    ids: list[str],
    check: IdentityCheck,
    sample_size: int = SAMPLE_SIZE,
) -> tuple[int, set[str]]:
    """Before adopting unstamped points that the identity check did not itself sample (they
    arrived after the identity was recorded): embed a spread sample of them (all of them when
    they are few) and compare, so points another model wrote since are never adopted blindly.
    Returns (texts embedded, ids checked and found to be another model's: re-embed them).
    Raises EmbeddingIdentityError when the sample is mostly another model's."""
    if not ids:
        return 0, set()
    step = max(1, len(ids) // sample_size)
    picked = ids[::step][:sample_size]
    records = vectors.retrieve(picked, with_payload=["content"], with_vectors=True)
    usable = [
        r
        for r in records.values()
        if isinstance((r.payload or {}).get("content"), str) and _sample_vector(r) is not None
    ]
    if not usable:
        return 0, set()
    fresh = provider.embed([r.payload["content"] for r in usable]).vectors
    cosines = _cosines([_sample_vector(r) for r in usable], fresh)
    far = {str(r.id) for r, c in zip(usable, cosines) if c < SAME_MODEL_MIN_COSINE}
    # Every newcomer checked: the few of another model are simply embedded again, unless most
    # are (then AutoMem is configured with another model: refuse). Only a sample checked: the
    # unchecked ones are adopted, so the sample must agree as the first check's does.
    checked_all = len(usable) == len(ids)
    if len(far) / len(usable) > (0.5 if checked_all else 1 - SAME_MODEL_MIN_SHARE):
        found = (
            f"{len(ids)} points without stamps appeared after its identity was recorded, and "
            f"re-embedding {len(usable)} of their stored texts gives vectors far from the stored "
            f"ones for {len(far)} of them: were they written with another model?"
        )
        raise EmbeddingIdentityError(mismatch_message(vectors.collection, check.configured, found))
    return len(usable), far


def _other_model(
    vectors: VectorStore,
    configured: EmbeddingIdentity,
    found: str,
    replace_in_place: bool,
    previous: EmbeddingIdentity | None,
) -> IdentityCheck:
    if not replace_in_place:
        raise EmbeddingIdentityError(mismatch_message(vectors.collection, configured, found))
    record = IdentityRecord(
        configured, REPLACING, "replace_in_place", utc_now_iso(), replacing=previous
    )
    write_record(vectors, record)
    check = IdentityCheck(configured, record)
    check.notes.append(f"replacing in place: {found}")
    return check


def finish_replacement(vectors: VectorStore, configured: EmbeddingIdentity) -> bool:
    """After a complete re-embed with no failure: every point now carries the configured
    model's stamp, so the collection is that model's. Returns True when it changed the record."""
    record = read_record(vectors)
    if record is None or record.status != REPLACING or record.identity != configured:
        return False
    write_record(
        vectors,
        IdentityRecord(configured, VERIFIED, "replaced", utc_now_iso(), replacing=record.replacing),
    )
    return True
