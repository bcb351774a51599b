"""Embedding providers: a local static model (the default, no network) and OpenAI.

A provider turns a list of texts into a float32 matrix with one row per text, or raises.
It never returns placeholder vectors: a wrong count or dimension is an error for the
whole batch. ``embed_batches`` runs API batches with several requests in flight.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

LOCAL_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "minilm-l6-static"


class EmbeddingError(RuntimeError):
    """A batch could not be embedded (after retries)."""


@dataclass
class EmbeddedBatch:
    vectors: np.ndarray  # float32, shape (len(texts), dim)
    tokens: int | None = None


class EmbeddingProvider(Protocol):
    provider: str  # "local" | "openai"
    model: str
    dim: int
    max_concurrency: int

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch: ...


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


class LocalStaticProvider:
    """The shipped static model distilled from all-MiniLM-L6-v2 (256-d, CPU, no torch)."""

    provider = "local"
    max_concurrency = 1  # CPU-bound; numpy already uses the cores it can

    def __init__(self, model: str = "minilm-l6-static", model_dir: Path = LOCAL_MODEL_DIR):
        from .static_model import StaticModel

        self.model = model
        self._model = StaticModel(model_dir)
        self.dim = self._model.dim

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        return EmbeddedBatch(check_batch(texts, self._model.encode(list(texts)), self.dim))


_local_lock = threading.Lock()
_local_cache: dict[str, LocalStaticProvider] = {}


def local_provider(model: str = "minilm-l6-static") -> LocalStaticProvider:
    """The local model is loaded once per process."""
    with _local_lock:
        if model not in _local_cache:
            _local_cache[model] = LocalStaticProvider(model)
        return _local_cache[model]


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


class OpenAIProvider:
    """Any OpenAI-compatible /v1/embeddings endpoint through the official client."""

    provider = "openai"

    def __init__(
        self,
        model: str,
        dim: int,
        api_key: str,
        base_url: str | None = None,
        max_concurrency: int = 8,
        max_retries: int = 6,
        timeout: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        encoding_format: str = "base64",
        sleep: Callable[[float], None] = time.sleep,
    ):
        from openai import OpenAI

        self.model = model
        self.dim = dim
        self.max_concurrency = max_concurrency
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.encoding_format = encoding_format
        self._sleep = sleep
        # Retries are ours (jitter, Retry-After as a floor, counted per batch).
        self._client = OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)
        self.send_dimensions = model.startswith("text-embedding-3")
        self.retries_made = 0

    def _request(self, texts: Sequence[str]):
        kwargs = {"model": self.model, "input": list(texts), "encoding_format": self.encoding_format}
        if self.send_dimensions:
            kwargs["dimensions"] = self.dim
        return self._client.embeddings.create(**kwargs)

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        import openai

        retryable = (
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APIConnectionError,
            openai.APITimeoutError,
        )
        attempt = 0
        while True:
            try:
                response = self._request(texts)
                break
            except retryable as exc:
                if attempt >= self.max_retries:
                    raise EmbeddingError(
                        f"embedding request failed after {attempt + 1} attempts: {exc}"
                    ) from exc
                self._sleep(
                    backoff_delay(attempt, self.backoff_base, self.backoff_cap, _retry_after_seconds(exc))
                )
                attempt += 1
                self.retries_made += 1
            except openai.APIStatusError as exc:  # 4xx other than 429: not retryable
                raise EmbeddingError(f"embedding request rejected: {exc}") from exc
        data = sorted(response.data, key=lambda d: d.index)
        rows = [_decode(d.embedding) for d in data]
        if len(rows) != len(texts):
            raise EmbeddingError(f"provider returned {len(rows)} vectors for {len(texts)} texts")
        vectors = np.vstack(rows) if rows else np.zeros((0, self.dim), np.float32)
        usage = getattr(response, "usage", None)
        tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
        return EmbeddedBatch(check_batch(texts, vectors, self.dim), tokens)


def _decode(embedding) -> np.ndarray:
    if isinstance(embedding, str):  # base64 the client did not decode
        import base64

        return np.frombuffer(base64.b64decode(embedding), dtype="<f4").astype(np.float32)
    return np.asarray(embedding, dtype=np.float32)


@dataclass
class BatchOutcome:
    index: int
    ids: list[str]
    result: EmbeddedBatch | None
    error: str | None


def embed_batches(
    provider: EmbeddingProvider, batches: Sequence[tuple[list[str], list[str]]]
) -> list[BatchOutcome]:
    """Embed (ids, texts) batches, up to ``provider.max_concurrency`` in flight.

    A batch that fails is returned with its error; the other batches go on.
    """

    def run(i: int) -> BatchOutcome:
        ids, texts = batches[i]
        try:
            return BatchOutcome(i, ids, provider.embed(texts), None)
        except Exception as exc:  # noqa: BLE001 - a failed batch is counted, not fatal
            return BatchOutcome(i, ids, None, f"{type(exc).__name__}: {exc}")

    workers = max(1, min(provider.max_concurrency, len(batches)))
    if workers == 1:
        return [run(i) for i in range(len(batches))]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as pool:
        return list(pool.map(run, range(len(batches))))
