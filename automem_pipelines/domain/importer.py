"""Import memories from JSON Lines into FalkorDB in AutoMem's shape.

Every line is validated before anything is written: if any line is bad the whole import is
refused, the error lists every bad line (its number and field), and the graph is left
untouched. A file that cannot be read is one message too (ImportFileError), never a traceback.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from ..stores.graph import GraphStore
from .memory import node_props_for_write, utc_now_iso


class ImportFileError(OSError):
    """The file is missing, unreadable or not a file: the message says which."""


class ImportValidationError(ValueError):
    """One or more bad lines; `problems` has one message per bad line, in file order."""

    def __init__(self, problems: list[str], source: str = "input"):
        self.problems = list(problems)
        self.source = source
        count = len(self.problems)
        head = f"{count} bad line{'s' if count != 1 else ''} in {source}"
        super().__init__(head + ":\n" + "\n".join(f"  {p}" for p in self.problems))


class _LineError(ValueError):
    """One line's problem (collected into an ImportValidationError)."""


def validate_record(raw: Any, where: str) -> dict[str, Any]:
    """One JSON object → graph properties; ValueError naming the field if it is bad."""
    if not isinstance(raw, dict):
        raise _LineError(f"{where}: expected a JSON object, got {type(raw).__name__}")
    record = dict(raw)
    content = record.get("content")
    if not isinstance(content, str) or not content.strip():
        raise _LineError(f"{where}: field 'content' must be a non-empty string")
    mid = record.get("id") or record.get("memory_id") or str(uuid.uuid4())
    record.pop("memory_id", None)
    try:
        record["id"] = str(uuid.UUID(str(mid)))
    except ValueError:
        raise _LineError(f"{where}: field 'id' must be a UUID, got {mid!r}") from None
    for key, lo, hi in (("importance", 0.0, 1.0), ("confidence", 0.0, 1.0)):
        if record.get(key) is None:
            continue
        value = record[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
            raise _LineError(f"{where}: field '{key}' must be a number from {lo} to {hi}")
    ts = record.get("timestamp") or utc_now_iso()
    try:
        datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        raise _LineError(f"{where}: field 'timestamp' must be an ISO-8601 string") from None
    record["timestamp"] = str(ts)
    if record.get("tags") is not None and not isinstance(record["tags"], (list, str)):
        raise _LineError(f"{where}: field 'tags' must be a list of strings")
    record.setdefault("importance", 0.5)
    record.setdefault("type", "Context")
    record.setdefault("confidence", 0.6)
    for key in ("t_valid", "updated_at", "last_accessed"):
        record.setdefault(key, record["timestamp"])
    record.setdefault("processed", False)
    return node_props_for_write(record)


def parse_jsonl(lines: Iterable[str | bytes], source: str = "input") -> list[dict[str, Any]]:
    """Every line validated: the records, or ImportValidationError listing every bad line
    (invalid UTF-8 or JSON, a bad field, an id already on an earlier line). Blank lines are
    skipped."""
    records: list[dict[str, Any]] = []
    problems: list[str] = []
    first_line_of: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        where = f"line {number}"
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                problems.append(f"{where}: not UTF-8 text (byte {exc.start + 1})")
                continue
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError as exc:
            problems.append(f"{where}: not valid JSON ({exc})")
            continue
        try:
            record = validate_record(raw, where)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        earlier = first_line_of.setdefault(record["id"], number)
        if earlier != number:
            problems.append(f"{where}: id {record['id']} already on line {earlier}")
            continue
        records.append(record)
    if problems:
        raise ImportValidationError(problems, source)
    return records


def read_import_file(path: Path | str) -> list[dict[str, Any]]:
    """The file's records (parse_jsonl); ImportFileError if it cannot be read."""
    path = Path(path)
    try:
        with path.open("rb") as fh:
            return parse_jsonl(fh, str(path))
    except FileNotFoundError:
        raise ImportFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise ImportFileError(f"{path}: is a directory, not a JSON Lines file") from None
    except PermissionError:
        raise ImportFileError(f"{path}: permission denied (cannot read it)") from None
    except OSError as exc:
        raise ImportFileError(f"{path}: cannot read it ({exc.strerror or exc})") from None


def write_records(graph: GraphStore, records: list[dict[str, Any]]) -> int:
    """MERGE validated records by id. Returns how many were written."""
    graph.ensure_indexes()
    return graph.upsert_memories(records)


def import_jsonl(graph: GraphStore, lines: Iterable[str | bytes], source: str = "input") -> int:
    """Validate every line, then MERGE them all by id. Returns how many were written."""
    return write_records(graph, parse_jsonl(lines, source))
