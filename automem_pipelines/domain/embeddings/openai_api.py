"""Any OpenAI-compatible /v1/embeddings endpoint through the official client."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..embedding_defaults import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    MAX_CONCURRENCY,
    MAX_RETRIES,
    TIMEOUT_SECONDS,
)
from .base import EmbeddedBatch, EmbeddingError, RetryPolicy, check_batch, decode, stack


class OpenAIProvider:
    provider = "openai"

    def __init__(
        self,
        model: str,
        dim: int,
        api_key: str,
        base_url: str | None = None,
        max_concurrency: int = MAX_CONCURRENCY,
        max_retries: int = MAX_RETRIES,
        timeout: float = TIMEOUT_SECONDS,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        backoff_cap: float = BACKOFF_CAP_SECONDS,
        encoding_format: str = "base64",
        sleep: Callable[[float], None] = time.sleep,
    ):
        from openai import OpenAI

        self.model = model
        self.dim = dim
        self.max_concurrency = max_concurrency
        self._retry = RetryPolicy(max_retries, backoff_base, backoff_cap, sleep)
        self.encoding_format = encoding_format
        # Retries are ours (jitter, Retry-After as a floor, counted per batch).
        self._client = OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)
        self.send_dimensions = openai_takes_dimensions(model)

    def _request(self, texts: Sequence[str]) -> Any:
        kwargs: dict[str, Any] = {
            "model": self.model,
            "input": list(texts),
            "encoding_format": self.encoding_format,
        }
        if self.send_dimensions:
            kwargs["dimensions"] = self.dim
        return self._client.embeddings.create(**kwargs)

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        response = self._retry.run(lambda: self._request(texts), _openai_verdict)
        data = sorted(response.data, key=lambda d: d.index)
        rows = [decode(d.embedding) for d in data]
        if len(rows) != len(texts):
            raise EmbeddingError(f"provider returned {len(rows)} vectors for {len(texts)} texts")
        vectors = stack(rows, self.dim)
        usage = getattr(response, "usage", None)
        tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
        return EmbeddedBatch(check_batch(texts, vectors, self.dim), tokens)

    def close(self) -> None:
        self._client.close()


def openai_takes_dimensions(model: str) -> bool:
    """OpenAI's text-embedding-3 models accept ``dimensions``; older ones reject it."""
    return "text-embedding-3" in model


def _openai_verdict(exc: Exception) -> bool | None:
    import openai

    if isinstance(
        exc,
        (
            openai.RateLimitError,
            openai.InternalServerError,
            openai.APIConnectionError,
            openai.APITimeoutError,
        ),
    ):
        return True
    if isinstance(exc, openai.APIStatusError):  # 4xx other than 429: not retryable
        return False
    return None
