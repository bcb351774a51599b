"""Audit log of admin calls: one JSON object per line, appended, never holding a token.

Every call to an admin endpoint is recorded, whatever its outcome (rejected, rate-limited,
conflict, queued, finished): time, client address, endpoint, token fingerprint (short
SHA-256, see `auth.fingerprint`), parameters, run id, HTTP status and outcome.

What a line holds is chosen, not filtered: query values only for `ids` (every other query
parameter is recorded by name as `[redacted]`, whatever its spelling or separator), body
values only for the endpoint's own fields (numbers and booleans as sent, anything else as a
clipped repr), unknown fields by name only. The finished line then goes through the
`Redactor`, so a configured secret that still got in (say, as the value of a known field) is
replaced.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .redaction import REDACTED, Redactor, clip, echo

ADMIN_PATHS = frozenset({"/admin/reembed", "/admin/sync", "/enrichment/reprocess"})
RECORDED_QUERY_PARAMS = frozenset({"ids"})
MAX_RECORDED = 20  # parameters per line
MAX_NAME = 40
MAX_VALUE = 200


def recorded_query(items: Iterable[tuple[str, str]]) -> dict[str, str] | None:
    """Decoded (name, value) pairs → what the audit line keeps of them."""
    out: dict[str, str] = {}
    for name, value in list(items)[:MAX_RECORDED]:
        out[clip(name, MAX_NAME)] = (
            clip(value, MAX_VALUE) if name in RECORDED_QUERY_PARAMS else REDACTED
        )
    return out or None


def recorded_body(body: dict[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """A JSON body → its known fields (scalars as sent, the rest clipped); unknown names only."""
    known = set(fields)
    out: dict[str, Any] = {}
    for key, value in list(body.items())[:MAX_RECORDED]:
        if key not in known:
            out[clip(str(key), MAX_NAME)] = "[unknown field, not recorded]"
        elif value is None or isinstance(value, (bool, int, float)):
            out[key] = value
        else:
            out[key] = echo(value, MAX_VALUE)
    return out


class AuditLog:
    def __init__(self, path: Path, redactor: Redactor | None = None):
        self.path = path
        self.redactor = redactor or Redactor(())
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        record = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **entry}
        line = self.redactor.scrub(json.dumps(record, default=str, ensure_ascii=False))
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
