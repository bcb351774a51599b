"""Open a settings' local-mode Qdrant store for a moment and let go (one process at a time may
open a local store), so a run in another process can open it."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from automem_pipelines.definitions import build_resources
from automem_pipelines.settings import Settings
from automem_pipelines.stores.vectors import VectorStore


@contextmanager
def opened_vector_store(settings: Settings) -> Iterator[VectorStore]:
    """The settings' vector store, released when the block ends (opening it waits for a run's
    process to let go of a local store)."""
    with build_resources(settings, from_env=False)["qdrant"].open_store() as store:
        yield store


def point_count(settings: Settings) -> int:
    with opened_vector_store(settings) as store:
        return store.count()
