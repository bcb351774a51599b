"""What every op job shares: retry policy, transient-error handling, metadata helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg

from ..domain.vector_state import EmbeddingIdentity
from ..stores.graph import GraphUnavailableError
from ..stores.vectors import VectorStoreUnavailableError

# Store outages are retried by Dagster; anything else fails the step at once.
STORE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=1.0, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)
TRANSIENT = (GraphUnavailableError, VectorStoreUnavailableError)


@contextmanager
def fail_fast_unless_transient() -> Iterator[None]:
    """Let store outages through to the RetryPolicy; turn other errors into a Failure that
    is not retried (retrying a bad config or a dimension mismatch helps nobody).

    Termination too: Dagster turns an interrupt of a step that has a RetryPolicy into a retry
    (meant for preempted pods), so "Terminate" on a re-embed would re-run the step and finish
    the run. Here an interrupt fails the step without retry and the run ends canceled; a later
    run (force=false) picks up where it stopped."""
    try:
        yield
    except TRANSIENT:
        raise
    except dg.Failure:
        raise
    except (dg.DagsterExecutionInterruptedError, KeyboardInterrupt) as exc:
        raise dg.Failure(
            description="interrupted: the run is being terminated", allow_retries=False
        ) from exc
    except Exception as exc:  # noqa: BLE001
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc


@contextmanager
def retry_store_outages(max_retries: int = 3, seconds_to_wait: float = 2.0) -> Iterator[None]:
    """For ops that take Config: a RetryPolicy would also retry an invalid config (Dagster
    validates it before the body runs), so these ops ask for retries of outages themselves."""
    try:
        with fail_fast_unless_transient():
            yield
    except TRANSIENT as exc:
        raise dg.RetryRequested(max_retries=max_retries, seconds_to_wait=seconds_to_wait) from exc


def rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def configured_identity(embeddings) -> EmbeddingIdentity:
    """The configured embedding (EMBEDDING_PROVIDER/EMBEDDING_MODEL/VECTOR_SIZE), read from
    configuration: readers that only compare stamps never load a provider."""
    return EmbeddingIdentity(embeddings.provider, embeddings.model, embeddings.vector_size)
