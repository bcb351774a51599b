"""The local-mode Qdrant stores open in this process, each with its one client.

qdrant-client's local mode locks the store's directory for one client: a second client of
the same path in the same process fails (and a second ``:memory:`` client is another, empty
store). So every opener of a local store in this process (a run's resource, a test or the CLI
beside it) shares its one client, counted, and the last to close it closes the client, which
frees the store for other processes. This is the only state kept per process, and it holds
only stores someone has open.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the client is built by the caller (vectors.py imports qdrant-client late)
    from qdrant_client import QdrantClient


class LocalStores:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, tuple[QdrantClient, int]] = {}

    def acquire(self, location: str, open_client: Callable[[], QdrantClient]) -> QdrantClient:
        """The store's client, opened by ``open_client`` if no one here holds it yet."""
        with self._lock:
            client, holders = self._open.get(location) or (None, 0)
            if client is None:
                client = open_client()
            self._open[location] = (client, holders + 1)
            return client

    def release(self, location: str) -> None:
        with self._lock:
            client, holders = self._open[location]
            if holders > 1:
                self._open[location] = (client, holders - 1)
                return
            del self._open[location]
        client.close()

    def holders(self, location: str) -> int:
        with self._lock:
            return self._open.get(location, (None, 0))[1]
