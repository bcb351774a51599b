"""An Ollama server: ``/api/embed`` with the whole batch in one request; if the server has no
``/api/embed`` (404/405 that is not Ollama's own JSON error, such as "model not found"),
``/api/embeddings`` one text per request, as AutoMem calls it. Both give the same model's
vectors (``/api/embed`` normalises them; cosine is unchanged). No ``dimensions`` is sent, as
AutoMem sends none: the model's own size must equal the vector size."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..embedding_defaults import (
    BACKOFF_BASE_SECONDS,
    BACKOFF_CAP_SECONDS,
    OLLAMA_BASE_URL,
    OLLAMA_MAX_CONCURRENCY,
    OLLAMA_MAX_RETRIES,
    OLLAMA_TIMEOUT_SECONDS,
)
from .base import EmbeddedBatch, EmbeddingError, RetryPolicy, check_batch, decode, stack
from .http_api import HTTPProvider, HTTPStatusFailure, http_verdict, is_json_error


class _EndpointMissing(Exception):
    """/api/embed is not there (an Ollama older than 0.3, or a proxy with the old API only)."""


class OllamaProvider(HTTPProvider):
    provider = "ollama"

    def __init__(
        self,
        model: str,
        dim: int,
        base_url: str = OLLAMA_BASE_URL,
        max_concurrency: int = OLLAMA_MAX_CONCURRENCY,
        max_retries: int = OLLAMA_MAX_RETRIES,
        timeout: float = OLLAMA_TIMEOUT_SECONDS,
        backoff_base: float = BACKOFF_BASE_SECONDS,
        backoff_cap: float = BACKOFF_CAP_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(
            base_url, {}, timeout, RetryPolicy(max_retries, backoff_base, backoff_cap, sleep)
        )
        self.model = model
        self.dim = dim
        self.max_concurrency = max_concurrency
        self.legacy: bool | None = None  # None until the first answer tells

    def _embed_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._post_once("/api/embed", payload)
        except HTTPStatusFailure as exc:
            if exc.status in (404, 405) and not is_json_error(exc.response):
                raise _EndpointMissing(str(exc)) from exc
            raise

    def _batched(self, texts: Sequence[str]) -> EmbeddedBatch:
        payload = {"model": self.model, "input": list(texts)}
        body = self._retry.run(lambda: self._embed_once(payload), http_verdict)
        rows = body.get("embeddings")
        if not isinstance(rows, list):
            raise EmbeddingError("Ollama /api/embed answered without embeddings")
        if len(rows) != len(texts):
            raise EmbeddingError(f"provider returned {len(rows)} vectors for {len(texts)} texts")
        tokens = body.get("prompt_eval_count")
        vectors = stack([decode(r) for r in rows], self.dim)
        return EmbeddedBatch(
            check_batch(texts, vectors, self.dim), int(tokens) if isinstance(tokens, int) else None
        )

    def _per_text(self, texts: Sequence[str]) -> EmbeddedBatch:
        rows = []
        for text in texts:
            body = self._post("/api/embeddings", {"model": self.model, "prompt": text})
            row = body.get("embedding")
            if not isinstance(row, list):
                raise EmbeddingError("Ollama /api/embeddings answered without embedding")
            rows.append(decode(row))
        return EmbeddedBatch(check_batch(texts, stack(rows, self.dim), self.dim))

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        if not self.legacy:
            try:
                result = self._batched(texts)
                self.legacy = False
                return result
            except _EndpointMissing:
                self.legacy = True
        return self._per_text(texts)
