"""The test process's hold on a local-mode Qdrant store (one process at a time may open it):
open a settings' store for a moment and let go, so a run in another process can open it.

The one place the tests reach into how ``stores.vectors`` keeps its clients."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from automem_pipelines.definitions import build_resources
from automem_pipelines.settings import Settings
from automem_pipelines.stores import vectors
from automem_pipelines.stores.vectors import VectorStore


@contextmanager
def opened_vector_store(settings: Settings) -> Iterator[VectorStore]:
    """The settings' vector store, released when the block ends (opening it waits for a run's
    process to let go of a local store)."""
    qdrant = build_resources(settings, from_env=False)["qdrant"]
    try:
        yield qdrant.get_store()
    finally:
        vectors.forget(qdrant.vector_config())


def point_count(settings: Settings) -> int:
    with opened_vector_store(settings) as store:
        return store.count()


def release_all() -> None:
    """Let go of every store this process opened."""
    vectors.close_all()
