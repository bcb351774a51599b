"""What every provider shares: the batch type, its checks, errors, and the retry policy.

A provider turns a list of texts into a float32 matrix with one row per text, or raises.
It never returns placeholder vectors: a wrong count or dimension is an error for the
whole batch.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

T = TypeVar("T")


class EmbeddingError(RuntimeError):
    """A batch could not be embedded (after retries)."""


class EmbeddingRejectedError(EmbeddingError):
    """The provider refused the request itself (a 4xx other than 408/429): something in the
    batch is unacceptable, and retrying the same batch cannot help."""


@dataclass
class EmbeddedBatch:
    vectors: np.ndarray  # float32, shape (len(texts), dim)
    tokens: int | None = None


class EmbeddingProvider(Protocol):
    provider: str  # "local" | "openai" | "voyage" | "ollama"
    model: str
    dim: int
    max_concurrency: int

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch: ...

    def close(self) -> None: ...


def check_batch(texts: Sequence[str], vectors: np.ndarray, dim: int) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(texts):
        raise EmbeddingError(
            f"provider returned {vectors.shape[0] if vectors.ndim else 0} vectors for "
            f"{len(texts)} texts"
        )
    if vectors.shape[1] != dim:
        raise EmbeddingError(f"provider returned {vectors.shape[1]}-d vectors, expected {dim}-d")
    if not np.all(np.isfinite(vectors)) or np.any(np.linalg.norm(vectors, axis=1) == 0):
        raise EmbeddingError("provider returned a zero or non-finite vector")
    return vectors


def stack(rows: list[np.ndarray], dim: int) -> np.ndarray:
    """Rows of possibly different lengths → a matrix, or a clear error for the batch."""
    if not rows:
        return np.zeros((0, dim), np.float32)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise EmbeddingError(
            f"provider returned vectors of {sorted(lengths)} dimensions, expected {dim}-d"
        )
    return np.vstack(rows)


def decode(embedding: Any) -> np.ndarray:
    if isinstance(embedding, str):  # base64 the client did not decode
        import base64

        return np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float32)
    return np.asarray(embedding, dtype=np.float32)


def _retry_after_seconds(exc: Exception) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is not None:
        try:
            return float(value)
        except ValueError:
            return None
    return None


def backoff_delay(attempt: int, base: float, cap: float, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; a server's Retry-After is a floor."""
    delay = random.uniform(0, min(cap, base * (2**attempt)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


@dataclass
class RetryPolicy:
    """Retries of one request: 429, 5xx, timeouts and connection errors are retried with
    exponential backoff and full jitter (a server's Retry-After is a floor); other answers
    fail at once. Either way the failure is an EmbeddingError naming the cause."""

    max_retries: int
    backoff_base: float
    backoff_cap: float
    sleep: Callable[[float], None]

    def run(self, call: Callable[[], T], verdict: Callable[[Exception], bool | None]) -> T:
        attempt = 0
        while True:
            try:
                return call()
            except Exception as exc:  # noqa: BLE001 - classified just below
                retry = verdict(exc)
                if retry is None:
                    raise
                if not retry:
                    raise EmbeddingRejectedError(f"embedding request rejected: {exc}") from exc
                if attempt >= self.max_retries:
                    raise EmbeddingError(
                        f"embedding request failed after {attempt + 1} attempts: {exc}"
                    ) from exc
                self.sleep(
                    backoff_delay(
                        attempt, self.backoff_base, self.backoff_cap, _retry_after_seconds(exc)
                    )
                )
                attempt += 1
