"""FalkorDB access for :Memory nodes, always in bounded pages.

FalkorDB deployments cap result sets (RESULTSET_SIZE, 10,000 on hosted servers) and
truncate silently, so no query here returns an unbounded number of rows: scans walk the
internal node-id space in ranges (served by a label+id range scan, O(page) per page) and
lookups by memory id go in lists of at most ``MAX_IDS_PER_QUERY``.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import redis
from falkordb import FalkorDB

from . import falkordb_server

if TYPE_CHECKING:
    from ..domain.partitions import IdRange
    from ..settings import Settings

MAX_IDS_PER_QUERY = 1000
SCAN_PAGE = 5000  # node-id range per scan query; always below the 10k result cap
# An id range compares ids as strings (a node whose id is not a string still lands in exactly
# one range, by its text; one without an id in the first). The filter rides on the node-id
# range scan: toString keeps the planner off the m.id index, which would make each page
# re-read the whole id range.
_ID_TEXT = "coalesce(toString(m.id), '')"


def _range_filter(
    where: str, params: dict[str, Any], id_range: IdRange | None
) -> tuple[str, dict[str, Any]]:
    """``where`` (may be empty) narrowed to ``id_range``, with its parameters."""
    if id_range is None:
        return where, params
    parts = [f"({where})"] if where else []
    params = {**params, "id_lo": id_range.lo}
    parts.append(f"{_ID_TEXT} >= $id_lo")
    if id_range.hi is not None:
        params["id_hi"] = id_range.hi
        parts.append(f"{_ID_TEXT} < $id_hi")
    return " AND ".join(parts), params


class GraphUnavailableError(RuntimeError):
    """FalkorDB could not be reached or answered with an error."""


@dataclass(frozen=True)
class GraphConfig:
    host: str | None  # None: embedded server under data_dir
    port: int
    password: str | None
    graph: str
    data_dir: Path

    @classmethod
    def from_settings(cls, settings: Settings) -> GraphConfig:
        return cls(
            settings.falkordb.host,
            settings.falkordb.port,
            settings.falkordb.password,
            settings.falkordb.graph,
            settings.data_dir,
        )

    def describe(self) -> str:
        where = f"{self.host}:{self.port}" if self.host else f"embedded ({self.data_dir})"
        return f"FalkorDB {where}, graph {self.graph!r}"


def connect(config: GraphConfig) -> GraphStore:
    try:
        if config.host is None:
            socket = falkordb_server.ensure_running(config.data_dir)
            db = FalkorDB(unix_socket_path=str(socket))
        else:
            db = FalkorDB(host=config.host, port=config.port, password=config.password)
        store = GraphStore(db, config)
        store.ping()
    except (redis.RedisError, OSError, falkordb_server.EmbeddedFalkorDBError) as exc:
        raise GraphUnavailableError(f"{config.describe()} is unreachable: {exc}") from exc
    return store


class GraphStore:
    def __init__(self, db: FalkorDB, config: GraphConfig):
        self.db = db
        self.config = config
        self.graph = db.select_graph(config.graph)

    # -- plumbing -------------------------------------------------------------------------
    def query(self, cypher: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        try:
            return self.graph.query(cypher, params or {}).result_set
        except (redis.ConnectionError, redis.TimeoutError, OSError) as exc:
            raise GraphUnavailableError(f"{self.config.describe()} is unreachable: {exc}") from exc

    def ping(self) -> None:
        self.db.connection.ping()

    def close(self) -> None:
        try:
            self.db.connection.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    def ensure_indexes(self) -> None:
        """Range indexes AutoMem's queries rely on; idempotent."""
        for prop in ("id", "timestamp"):
            try:
                self.graph.query(f"CREATE INDEX FOR (m:Memory) ON (m.{prop})")
            except redis.ResponseError as exc:
                if "already indexed" not in str(exc):
                    raise

    # -- scans ----------------------------------------------------------------------------
    def max_node_id(self) -> int:
        rows = self.query("MATCH (m:Memory) RETURN max(ID(m))")
        return -1 if not rows or rows[0][0] is None else int(rows[0][0])

    def scan(
        self,
        returns: str,
        where: str = "",
        page: int = SCAN_PAGE,
        params: dict[str, Any] | None = None,
    ) -> Iterator[list[Any]]:
        """Every :Memory row, walking node ids in ranges of ``page``.

        ``returns`` is the RETURN clause over ``m``; ``where`` an extra condition, whose
        parameters come in ``params``.
        """
        top = self.max_node_id()
        extra = f" AND ({where})" if where else ""
        lo = 0
        while lo <= top:
            rows = self.query(
                f"MATCH (m:Memory) WHERE ID(m) >= $lo AND ID(m) < $hi{extra} RETURN {returns}",
                {**(params or {}), "lo": lo, "hi": lo + page},
            )
            yield from rows
            lo += page
            if lo > top:  # nodes created during the scan extend it
                top = self.max_node_id()

    def memory_ids(
        self, excluded_types: Sequence[str] = (), id_range: IdRange | None = None
    ) -> Iterator[str]:
        """Every memory id (node-id order), or those in ``id_range``."""
        where, params = "", {}
        if excluded_types:
            where, params = (
                "NOT coalesce(m.type, '') IN $excluded",
                {"excluded": list(excluded_types)},
            )
        where, params = _range_filter(where, params, id_range)
        for row in self.scan("m.id", where, params=params):
            yield row[0]

    def shared_ids(self) -> dict[str, int]:
        """Ids that several :Memory nodes carry → how many nodes carry each, counted by FalkorDB
        (its memory, not ours, holds the grouping). Valid or not: callers judge the ids."""
        rows = self.query(
            "MATCH (m:Memory) WITH m.id AS id, count(m) AS n WHERE id IS NOT NULL AND n > 1 "
            "RETURN id, n"
        )
        return {r[0]: int(r[1]) for r in rows if isinstance(r[0], str)}

    def newest_ids_with_content(self, limit: int, id_range: IdRange | None = None) -> list[str]:
        """The ``limit`` newest memories that have content (of ``id_range``), by timestamp
        (AutoMem's ORDER BY timestamp DESC), found by streaming pages through a bounded heap."""
        where, params = _range_filter(
            "m.content IS NOT NULL AND trim(toString(m.content)) <> ''", {}, id_range
        )
        rows = (
            (r[1] if isinstance(r[1], str) else "", r[0])
            for r in self.scan("m.id, m.timestamp", where, params=params)
        )
        return [mid for _, mid in heapq.nlargest(limit, rows)]

    def count_memories(
        self, excluded_types: Sequence[str] = (), id_range: IdRange | None = None
    ) -> int:
        where, params = _range_filter(
            "NOT coalesce(m.type, '') IN $excluded", {"excluded": list(excluded_types)}, id_range
        )
        rows = self.query(f"MATCH (m:Memory) WHERE {where} RETURN count(m)", params)
        return int(rows[0][0])

    # -- lookups by memory id ----------------------------------------------------------------
    def fetch(self, ids: Sequence[str], returns: str = "properties(m)") -> dict[str, Any]:
        """Memory id → the RETURN expression's value, for the ids that exist."""
        found: dict[str, Any] = {}
        for start in range(0, len(ids), MAX_IDS_PER_QUERY):
            part = list(ids[start : start + MAX_IDS_PER_QUERY])
            for mid, value in self.query(
                f"MATCH (m:Memory) WHERE m.id IN $ids RETURN m.id, {returns}", {"ids": part}
            ):
                found[mid] = value
        return found

    def fetch_properties(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.fetch(ids).items()}

    def fetch_contents(self, ids: Sequence[str]) -> dict[str, Any]:
        return self.fetch(ids, "m.content")

    # -- writes -----------------------------------------------------------------------------
    def upsert_memories(self, rows: Iterable[dict[str, Any]], batch: int = 1000) -> int:
        """MERGE :Memory nodes by id and set the given properties (idempotent)."""
        written = 0
        buffer: list[dict[str, Any]] = []
        for row in rows:
            buffer.append(row)
            if len(buffer) >= batch:
                written += self._merge(buffer)
                buffer = []
        if buffer:
            written += self._merge(buffer)
        return written

    def _merge(self, rows: list[dict[str, Any]]) -> int:
        self.query(
            "UNWIND $rows AS row MERGE (m:Memory {id: row.id}) SET m += row",
            {"rows": rows},
        )
        return len(rows)
