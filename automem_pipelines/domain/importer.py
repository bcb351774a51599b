"""Import memories from JSON Lines into FalkorDB in AutoMem's shape.

Every line is validated before anything is written: one bad line fails the whole import
with its line number and field, and the graph is left untouched.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, TextIO

from ..stores.graph import GraphStore
from .memory import node_props_for_write, utc_now_iso


class ImportValidationError(ValueError):
    pass


def validate_record(raw: Any, where: str) -> dict[str, Any]:
    """One JSON object → graph properties, or ImportValidationError naming the field."""
    if not isinstance(raw, dict):
        raise ImportValidationError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    record = dict(raw)
    content = record.get("content")
    if not isinstance(content, str) or not content.strip():
        raise ImportValidationError(f"{where}: field 'content' must be a non-empty string")
    mid = record.get("id") or record.get("memory_id") or str(uuid.uuid4())
    record.pop("memory_id", None)
    try:
        record["id"] = str(uuid.UUID(str(mid)))
    except ValueError:
        raise ImportValidationError(f"{where}: field 'id' must be a UUID, got {mid!r}") from None
    for key, lo, hi in (("importance", 0.0, 1.0), ("confidence", 0.0, 1.0)):
        if record.get(key) is None:
            continue
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise ImportValidationError(
                f"{where}: field '{key}' must be a number from {lo} to {hi}"
            )
    ts = record.get("timestamp") or utc_now_iso()
    try:
        datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        raise ImportValidationError(
            f"{where}: field 'timestamp' must be an ISO-8601 string"
        ) from None
    record["timestamp"] = str(ts)
    if record.get("tags") is not None and not isinstance(record["tags"], (list, str)):
        raise ImportValidationError(f"{where}: field 'tags' must be a list of strings")
    record.setdefault("importance", 0.5)
    record.setdefault("type", "Context")
    record.setdefault("confidence", 0.6)
    for key in ("t_valid", "updated_at", "last_accessed"):
        record.setdefault(key, record["timestamp"])
    record.setdefault("processed", False)
    return node_props_for_write(record)


def read_jsonl(lines: Iterable[str], source: str = "input") -> Iterator[dict[str, Any]]:
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{source} line {number}"
        try:
            raw = json.loads(line)
        except ValueError as exc:
            raise ImportValidationError(f"{where}: not valid JSON ({exc})") from None
        yield validate_record(raw, where)


def import_jsonl(graph: GraphStore, fh: TextIO, source: str = "input") -> int:
    """Validate every line, then MERGE them all by id. Returns how many were written."""
    records = list(read_jsonl(fh, source))
    seen: set[str] = set()
    for rec in records:
        if rec["id"] in seen:
            raise ImportValidationError(f"{source}: id {rec['id']} appears twice")
        seen.add(rec["id"])
    graph.ensure_indexes()
    return graph.upsert_memories(records)
