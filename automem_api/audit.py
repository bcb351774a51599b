"""Audit log of admin calls: one JSON object per line, appended, never holding a token.

Every call to an admin endpoint is recorded, whatever its outcome (rejected, rate-limited,
conflict, queued, finished): time, client address, endpoint, token fingerprint (short
SHA-256, see `auth.fingerprint`), parameters, run id, HTTP status and outcome.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ADMIN_PATHS = frozenset({"/admin/reembed", "/admin/sync", "/enrichment/reprocess"})
REDACTED_QUERY_KEYS = frozenset({"api_key", "admin_token"})


class AuditLog:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()

    def write(self, entry: dict[str, Any]) -> None:
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), **entry}
        line = json.dumps(record, default=str, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line + "\n")

    def read(self) -> list[dict[str, Any]]:
        if not self.path.exists():
            return []
        with open(self.path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
