"""Voyage AI's embeddings API (POST {base}/embeddings) as AutoMem calls it: the model,
``output_dimension`` = the vector size, float output, and no ``input_type`` (AutoMem sends
none, for documents and queries alike, so its stored vectors are the untyped ones)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..embedding_defaults import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    MAX_CONCURRENCY,
    MAX_RETRIES,
    TIMEOUT_SECONDS,
    VOYAGE_BASE_URL,
    VOYAGE_DIMENSIONS,
    VOYAGE_MAX_TEXTS,
)
from .base import EmbeddedBatch, EmbeddingError, RetryPolicy, check_batch, decode, stack
from .http_api import HTTPProvider


class VoyageProvider(HTTPProvider):
    provider = "voyage"

    def __init__(
        self,
        model: str,
        dim: int,
        api_key: str,
        base_url: str = VOYAGE_BASE_URL,
        max_concurrency: int = MAX_CONCURRENCY,
        max_retries: int = MAX_RETRIES,
        timeout: float = TIMEOUT_SECONDS,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        backoff_cap: float = BACKOFF_CAP_SECONDS,
        input_type: str | None = None,
        max_texts: int = VOYAGE_MAX_TEXTS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if dim not in VOYAGE_DIMENSIONS:
            raise ValueError(
                f"Voyage output_dimension must be one of {', '.join(map(str, VOYAGE_DIMENSIONS))}, "
                f"got {dim}"
            )
        super().__init__(
            base_url,
            {"Authorization": f"Bearer {api_key}"},
            timeout,
            RetryPolicy(max_retries, backoff_base, backoff_cap, sleep),
        )
        self.model = model
        self.dim = dim
        self.max_concurrency = max_concurrency
        self.input_type = input_type
        self.max_texts = max_texts

    def _request(self, texts: Sequence[str]) -> tuple[np.ndarray, int | None]:
        payload: dict[str, Any] = {
            "input": list(texts),
            "model": self.model,
            "output_dimension": self.dim,
            "output_dtype": "float",
        }
        if self.input_type is not None:
            payload["input_type"] = self.input_type
        body = self._post("/embeddings", payload)
        data = body.get("data")
        if not isinstance(data, list) or not all(
            isinstance(d, dict) and "embedding" in d for d in data
        ):
            raise EmbeddingError("Voyage answered without data[].embedding")
        data = sorted(data, key=lambda d: d.get("index", 0))
        if len(data) != len(texts):
            raise EmbeddingError(f"provider returned {len(data)} vectors for {len(texts)} texts")
        usage = body.get("usage") or {}
        tokens = usage.get("total_tokens") if isinstance(usage, dict) else None
        vectors = stack([decode(d["embedding"]) for d in data], self.dim)
        return check_batch(texts, vectors, self.dim), tokens

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        parts, tokens = [], 0
        counted = False
        for i in range(0, len(texts), self.max_texts):
            vectors, used = self._request(texts[i : i + self.max_texts])
            parts.append(vectors)
            if used is not None:
                tokens, counted = tokens + int(used), True
        vectors = np.vstack(parts) if parts else np.zeros((0, self.dim), np.float32)
        return EmbeddedBatch(check_batch(texts, vectors, self.dim), tokens if counted else None)
