"""Qdrant access for memory points, through calls the Qdrant server API also has.

The embedded default is qdrant-client's local mode on disk, which one process at a time may
open: whoever needs the store opens it for a block (``open_store``; the Qdrant resource for a
run, however many steps it has), openers in one process share its one client, and opening a
path that another process holds waits for it, up to a timeout, instead of failing at once.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .gc_pause import cyclic_gc_paused
from .local_stores import LocalStores

# qdrant-client is imported where a client is built or a request is made, not here: importing
# it takes longer than importing Dagster (its pydantic models), and the modules that import
# this one (the code location, the ops, the domain) are loaded before a run's first step,
# which does not need it. tests/unit/test_cli_imports.py keeps it so.
if TYPE_CHECKING:
    from qdrant_client import QdrantClient, models

    from ..settings import Settings

UPSERT_BATCH = 256
RETRIEVE_BATCH = 1000


class VectorStoreUnavailableError(RuntimeError):
    """Qdrant could not be reached, or its local store could not be opened."""


class DimensionMismatchError(RuntimeError):
    """The collection's vector size differs from what the embedding provider makes."""


@dataclass(frozen=True)
class VectorConfig:
    url: str | None  # None: local mode on disk under data_dir; ":memory:" local in memory
    api_key: str | None
    collection: str
    data_dir: Path
    timeout_seconds: int  # a server's request timeout
    lock_timeout_seconds: float  # how long to wait for another process to release a local store

    @classmethod
    def from_settings(cls, settings: Settings, timeout_seconds: int | None = None) -> VectorConfig:
        return cls(
            settings.qdrant.url,
            settings.qdrant.api_key,
            settings.qdrant.collection,
            settings.data_dir,
            timeout_seconds or settings.qdrant.timeout_seconds,
            settings.qdrant.lock_timeout_seconds,
        )

    @property
    def location(self) -> str:
        return self.url if self.url is not None else str(self.data_dir / "qdrant")

    @property
    def is_local(self) -> bool:
        return self.url is None or self.url == ":memory:"

    def describe(self) -> str:
        kind = "local mode" if self.is_local else "server"
        return f"Qdrant {kind} {self.location}, collection {self.collection!r}"


_LOCAL_STORES = LocalStores()


def _open_local(config: VectorConfig) -> QdrantClient:
    from qdrant_client import QdrantClient

    if config.url == ":memory:":
        return QdrantClient(location=":memory:")
    path = Path(config.location)
    path.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + config.lock_timeout_seconds
    while True:
        try:
            return QdrantClient(path=str(path))
        except RuntimeError as exc:
            if "already accessed" not in str(exc) or time.monotonic() >= deadline:
                raise VectorStoreUnavailableError(
                    f"{config.describe()} could not be opened: {exc} Local mode allows one "
                    "process at a time; runs are queued one at a time by the "
                    "automem/qdrant tag, or set QDRANT_URL to use a Qdrant server."
                ) from exc
            time.sleep(0.5)


@contextmanager
def open_store(config: VectorConfig) -> Iterator[VectorStore]:
    """The store, open for the block: a server gets its own client, closed after; a local
    store is shared with its other openers in this process (see local_stores.py), and released
    after. Opening a local store that another process holds waits for it, up to
    ``lock_timeout_seconds``."""
    if config.is_local:
        client = _LOCAL_STORES.acquire(config.location, lambda: _open_local(config))
        try:
            yield VectorStore(client, config)
        finally:
            _LOCAL_STORES.release(config.location)
        return
    from qdrant_client import QdrantClient

    client = QdrantClient(url=config.url, api_key=config.api_key, timeout=config.timeout_seconds)
    try:
        yield VectorStore(client, config)
    finally:
        client.close()


def local_holders(config: VectorConfig) -> int:
    """How many openers in this process hold this local store (0: closed here)."""
    return _LOCAL_STORES.holders(config.location)


def _unavailable() -> tuple[type[BaseException], ...]:
    """The errors that mean the store could not be reached (evaluated only when one is
    raised, by which time a client exists and qdrant-client is imported)."""
    from qdrant_client.http.exceptions import ResponseHandlingException

    return (ResponseHandlingException, ConnectionError, TimeoutError, OSError)


class VectorStore:
    def __init__(self, client: QdrantClient, config: VectorConfig):
        self.client = client
        self.config = config
        self.collection = config.collection
        self.server_writes = False  # write_vectors: the server's path even on a local store

    def bulk_phase(self) -> AbstractContextManager[None]:
        """A phase that builds and drops many short-lived objects (pages of rows, records,
        payloads): with a local store, which keeps the whole collection as Python objects in
        this process, the cyclic collector is paused for it (see gc_pause); a server needs
        nothing."""
        return cyclic_gc_paused() if self.config.is_local else nullcontext()

    def _call(self, what: str, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except _unavailable() as exc:
            raise VectorStoreUnavailableError(
                f"{self.config.describe()}: {what} failed: {exc}"
            ) from exc

    # -- collection ---------------------------------------------------------------------------
    def collection_dim(self) -> int | None:
        if not self._call("collection_exists", self.client.collection_exists, self.collection):
            return None
        info = self._call("get_collection", self.client.get_collection, self.collection)
        vectors = info.config.params.vectors
        if isinstance(vectors, dict):  # named vectors: AutoMem uses the unnamed one
            vectors = vectors.get("") or next(iter(vectors.values()))
        return int(vectors.size)

    def collection_metadata(self) -> dict[str, Any]:
        """The collection's metadata (a JSON object kept with its configuration); {} if none."""
        info = self._call("get_collection", self.client.get_collection, self.collection)
        return dict(getattr(info.config, "metadata", None) or {})

    def update_collection_metadata(self, metadata: dict[str, Any]) -> None:
        """Merge keys into the collection's metadata (Qdrant's update_collection)."""
        self._call(
            "update_collection", self.client.update_collection, self.collection, metadata=metadata
        )

    def sample(self, size: int, keys: Sequence[str]) -> list[models.Record]:
        """Up to ``size`` points with these payload keys and their vectors: the first page of a
        scroll in id order (ids are random UUIDs, so the points are spread over the store)."""
        records, _ = self._call(
            "scroll",
            self.client.scroll,
            self.collection,
            limit=size,
            with_payload=list(keys),
            with_vectors=True,
        )
        return list(records)

    def ensure_collection(self, dim: int) -> bool:
        """Create the collection if absent (cosine, ``dim``). Refuse a differently sized one.

        Returns True when it was created.
        """
        from qdrant_client import models

        existing = self.collection_dim()
        if existing is None:
            self._call(
                "create_collection",
                self.client.create_collection,
                self.collection,
                vectors_config=models.VectorParams(size=dim, distance=models.Distance.COSINE),
            )
            if not self.config.is_local:  # local mode ignores payload indexes (and warns)
                for field in ("tags", "tag_prefixes"):
                    self.client.create_payload_index(
                        self.collection, field, models.PayloadSchemaType.KEYWORD
                    )
            return True
        if existing != dim:
            raise DimensionMismatchError(dimension_message(self.collection, existing, dim))
        return False

    def for_collection(self, name: str) -> VectorStore:
        """The same store (one client) on another collection of it."""
        store = VectorStore(self.client, replace(self.config, collection=name))
        store.server_writes = self.server_writes
        return store

    def exists(self) -> bool:
        return bool(self._call("collection_exists", self.client.collection_exists, self.collection))

    def delete_collection(self) -> bool:
        """Delete this collection; False when there was none."""
        if not self.exists():
            return False
        self._call("delete_collection", self.client.delete_collection, self.collection)
        return True

    def aliases(self) -> dict[str, str]:
        """Every alias of the store → the collection it points at."""
        response = self._call("get_aliases", self.client.get_aliases)
        return {a.alias_name: a.collection_name for a in response.aliases}

    def point_alias(self, alias: str, collection: str) -> None:
        """Make ``alias`` point at ``collection`` in one request (Qdrant applies the alias
        operations of one request atomically: a reader resolving the alias sees the old
        collection or the new one, never none)."""
        from qdrant_client import models

        ops: list[Any] = []
        if alias in self.aliases():
            ops.append(
                models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
            )
        ops.append(
            models.CreateAliasOperation(
                create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
            )
        )
        self._call(
            "update_collection_aliases",
            self.client.update_collection_aliases,
            change_aliases_operations=ops,
        )

    def nearest(self, vector: Sequence[float], limit: int) -> list[tuple[str, float]]:
        """The ``limit`` points nearest to ``vector``, best first, with their scores."""
        response = self._call(
            "query_points",
            self.client.query_points,
            self.collection,
            query=np.asarray(vector, dtype=np.float32) if self.config.is_local else list(vector),
            limit=limit,
            with_payload=False,
            with_vectors=False,
        )
        return [(str(p.id), float(p.score)) for p in response.points]

    # -- reads ----------------------------------------------------------------------------------
    def count(self, excluded_types: Sequence[str] = ()) -> int:
        flt = exclude_types_filter(excluded_types)
        return self._call(
            "count", self.client.count, self.collection, count_filter=flt, exact=True
        ).count

    def retrieve(
        self,
        ids: Sequence[str],
        with_payload: bool | Sequence[str] = True,
        with_vectors: bool = False,
    ) -> dict[str, models.Record]:
        found: dict[str, models.Record] = {}
        payload_arg = list(with_payload) if not isinstance(with_payload, bool) else with_payload
        for start in range(0, len(ids), RETRIEVE_BATCH):
            part = list(ids[start : start + RETRIEVE_BATCH])
            records = self._call(
                "retrieve",
                self.client.retrieve,
                self.collection,
                ids=part,
                with_payload=payload_arg,
                with_vectors=with_vectors,
            )
            for rec in records:
                found[str(rec.id)] = rec
        return found

    def payloads(self, ids: Sequence[str], keys: Sequence[str] | None = None) -> dict[str, dict]:
        recs = self.retrieve(ids, with_payload=True if keys is None else keys)
        return {pid: dict(rec.payload or {}) for pid, rec in recs.items()}

    def scroll(
        self,
        page: int = 1000,
        with_payload: bool | Sequence[str] = False,
        with_vectors: bool = False,
        scroll_filter: models.Filter | None = None,
    ) -> Iterator[list[models.Record]]:
        """Every point, a page at a time, until Qdrant says there is no next page."""
        offset = None
        payload_arg = list(with_payload) if not isinstance(with_payload, bool) else with_payload
        while True:
            records, offset = self._call(
                "scroll",
                self.client.scroll,
                self.collection,
                scroll_filter=scroll_filter,
                limit=page,
                offset=offset,
                with_payload=payload_arg,
                with_vectors=with_vectors,
            )
            if records:
                yield records
            if offset is None:
                return

    # -- writes -----------------------------------------------------------------------------------
    def upsert(self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict]) -> None:
        from qdrant_client import models

        if not (len(ids) == len(vectors) == len(payloads)):
            raise ValueError("ids, vectors and payloads differ in length")
        for start in range(0, len(ids), UPSERT_BATCH):
            end = start + UPSERT_BATCH
            points = [
                models.PointStruct(id=pid, vector=vec.tolist(), payload=pl)
                for pid, vec, pl in zip(ids[start:end], vectors[start:end], payloads[start:end])
            ]
            self._call("upsert", self.client.upsert, self.collection, points=points, wait=True)

    def write_vectors(
        self, ids: Sequence[str], vectors: np.ndarray, payloads: Sequence[dict]
    ) -> int:
        """Give these points new vectors and merge these keys into their payloads, without
        reading any payload back: a point that exists keeps every payload key it has (Qdrant
        merges set_payload keys server-side), a point that does not is created with exactly
        this payload. One existence read (ids only) and one batch request per write batch.

        A local store lives in this process: reading its payloads is a dict copy, not a round
        trip, and its per-operation bookkeeping makes the batch of SetPayload operations cost
        ~1.2x a merge done here, so it gets the same result as one upsert of payloads merged in
        process (``server_writes`` forces the server's path, for the tests).

        Returns how many points were created."""
        if not (len(ids) == len(vectors) == len(payloads)):
            raise ValueError("ids, vectors and payloads differ in length")
        if self.config.is_local and not self.server_writes:
            existing = self.payloads(ids)
            merged = [{**existing.get(pid, {}), **pl} for pid, pl in zip(ids, payloads)]
            self.upsert(ids, vectors, merged)
            return sum(pid not in existing for pid in ids)
        created = 0
        for start in range(0, len(ids), UPSERT_BATCH):
            end = start + UPSERT_BATCH
            created += self._write_batch(
                list(zip(ids[start:end], vectors[start:end], payloads[start:end]))
            )
        return created

    def _write_batch(self, part: list[tuple[str, np.ndarray, dict]], attempts: int = 3) -> int:
        from qdrant_client import models

        for attempt in range(attempts):
            present = set(self.retrieve([pid for pid, _, _ in part], with_payload=False))
            kept = [(pid, vec, pl) for pid, vec, pl in part if pid in present]
            new = [
                models.PointStruct(id=pid, vector=vec.tolist(), payload=pl)
                for pid, vec, pl in part
                if pid not in present
            ]
            ops: list[Any] = [
                models.SetPayloadOperation(set_payload=models.SetPayload(payload=pl, points=[pid]))
                for pid, _, pl in kept
            ]
            if kept:
                vectors = [models.PointVectors(id=pid, vector=vec.tolist()) for pid, vec, _ in kept]
                ops.insert(
                    0,
                    models.UpdateVectorsOperation(
                        update_vectors=models.UpdateVectors(points=vectors)
                    ),
                )
            if new:
                ops.append(models.UpsertOperation(upsert=models.PointsList(points=new)))
            try:
                self._batch_update(ops)
                return len(new)
            except VectorStoreUnavailableError:
                raise
            except Exception:
                # A point deleted between the existence read and the write (AutoMem deletes
                # memories while we run) makes the update refuse the batch: read again.
                if attempt + 1 == attempts:
                    raise
        return 0

    def _batch_update(self, ops: Sequence[Any]) -> None:
        """One request of update operations, applied in order."""
        self._call(
            "batch_update_points",
            self.client.batch_update_points,
            self.collection,
            update_operations=list(ops),
            wait=True,
        )

    def delete_points(self, ids: Sequence[str], batch: int = RETRIEVE_BATCH) -> None:
        """Delete these points (absent ones are ignored)."""
        from qdrant_client import models

        for start in range(0, len(ids), batch):
            self._call(
                "delete",
                self.client.delete,
                self.collection,
                points_selector=models.PointIdsList(points=list(ids[start : start + batch])),
                wait=True,
            )

    def set_payload(self, point_id: str, payload: dict[str, Any]) -> None:
        """Merge keys into one point's payload (never replaces the point)."""
        self._call(
            "set_payload",
            self.client.set_payload,
            self.collection,
            payload=payload,
            points=[point_id],
            wait=True,
        )

    def set_payload_many(self, point_ids: Sequence[str], payload: dict[str, Any]) -> None:
        """Merge the same keys into many points' payloads, one request."""
        self._call(
            "set_payload",
            self.client.set_payload,
            self.collection,
            payload=payload,
            points=list(point_ids),
            wait=True,
        )

    def set_payloads(self, payloads: dict[str, dict[str, Any]], batch: int = UPSERT_BATCH) -> None:
        """Merge keys into many points' payloads (each its own keys), a batch of operations
        per request; never replaces a point. Every id must exist."""
        from qdrant_client import models

        items = list(payloads.items())
        for start in range(0, len(items), batch):
            self._batch_update(
                models.SetPayloadOperation(set_payload=models.SetPayload(payload=pl, points=[pid]))
                for pid, pl in items[start : start + batch]
            )

    def delete_payload_keys(
        self, keys_by_point: dict[str, list[str]], batch: int = UPSERT_BATCH
    ) -> None:
        """Remove these payload keys from these points (each its own keys)."""
        from qdrant_client import models

        items = [(pid, keys) for pid, keys in keys_by_point.items() if keys]
        for start in range(0, len(items), batch):
            self._batch_update(
                models.DeletePayloadOperation(
                    delete_payload=models.DeletePayload(keys=keys, points=[pid])
                )
                for pid, keys in items[start : start + batch]
            )

    def neighbours(
        self, queries: dict[str, Sequence[float]], limit: int, threshold: float, batch: int = 64
    ) -> dict[str, list[tuple[str, float]]]:
        """Nearest points to each query vector (the point itself excluded), scoring >=
        threshold, best first, at most ``limit`` each.

        A server gets ``batch`` queries per request. Local mode gets one call per query
        with a numpy vector: its batch path deep-copies every list vector, which costs more
        than the search itself (there is no network to save)."""
        from qdrant_client import models

        found: dict[str, list[tuple[str, float]]] = {}

        def keep(pid: str, points) -> None:
            hits = [(str(p.id), round(float(p.score), 6)) for p in points if str(p.id) != pid]
            found[pid] = [h for h in hits if h[1] >= threshold][:limit]

        if self.config.is_local:
            for pid, vec in queries.items():
                response = self._call(
                    "query_points",
                    self.client.query_points,
                    self.collection,
                    query=np.asarray(vec, dtype=np.float32),
                    limit=limit + 1,
                    score_threshold=threshold,
                    with_payload=False,
                    with_vectors=False,
                )
                keep(pid, response.points)
            return found
        items = list(queries.items())
        for start in range(0, len(items), batch):
            part = items[start : start + batch]
            requests = [
                models.QueryRequest(
                    query=list(vec),
                    limit=limit + 1,
                    score_threshold=threshold,
                    with_payload=False,
                    with_vector=False,
                )
                for _, vec in part
            ]
            responses = self._call(
                "query_batch_points",
                self.client.query_batch_points,
                self.collection,
                requests=requests,
            )
            for (pid, _), response in zip(part, responses):
                keep(pid, response.points)
        return found


def exclude_types_filter(excluded_types: Sequence[str]) -> models.Filter | None:
    from qdrant_client import models

    if not excluded_types:
        return None
    return models.Filter(
        must_not=[
            models.FieldCondition(key="type", match=models.MatchAny(any=list(excluded_types)))
        ]
    )


def dimension_message(collection: str, collection_dim: int, provider_dim: int) -> str:
    return (
        f"Qdrant collection {collection!r} holds {collection_dim}-dimensional vectors but the "
        f"embedding provider makes {provider_dim}-dimensional ones; nothing was written. "
        f"To migrate, re-embed into a collection of the new size: set QDRANT_COLLECTION to a "
        f"new name (or delete and recreate {collection!r}) and run the re-embed job with "
        f"force=true, or set VECTOR_SIZE/EMBEDDING_MODEL back to the collection's "
        f"{collection_dim} dimensions."
    )
