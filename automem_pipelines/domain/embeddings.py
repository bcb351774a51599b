"""Embedding providers: a local static model (no network), OpenAI(-compatible), Voyage AI
and Ollama, the remote ones with the same retries, backoff and batch checks.

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
from typing import Protocol, TypeVar

import numpy as np

T = TypeVar("T")

LOCAL_MODEL_DIR = Path(__file__).resolve().parent.parent / "models" / "minilm-l6-static"


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
        self._retry = _RetryPolicy(max_retries, backoff_base, backoff_cap, sleep)
        self.encoding_format = encoding_format
        # Retries are ours (jitter, Retry-After as a floor, counted per batch).
        self._client = OpenAI(api_key=api_key, base_url=base_url, max_retries=0, timeout=timeout)
        self.send_dimensions = openai_takes_dimensions(model)

    def _request(self, texts: Sequence[str]):
        kwargs = {"model": self.model, "input": list(texts), "encoding_format": self.encoding_format}
        if self.send_dimensions:
            kwargs["dimensions"] = self.dim
        return self._client.embeddings.create(**kwargs)

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        response = self._retry.run(lambda: self._request(texts), _openai_verdict)
        data = sorted(response.data, key=lambda d: d.index)
        rows = [_decode(d.embedding) for d in data]
        if len(rows) != len(texts):
            raise EmbeddingError(f"provider returned {len(rows)} vectors for {len(texts)} texts")
        vectors = _stack(rows, self.dim)
        usage = getattr(response, "usage", None)
        tokens = getattr(usage, "prompt_tokens", None) if usage is not None else None
        return EmbeddedBatch(check_batch(texts, vectors, self.dim), tokens)


def openai_takes_dimensions(model: str) -> bool:
    """OpenAI's text-embedding-3 models accept ``dimensions``; older ones reject it."""
    return "text-embedding-3" in model


def _openai_verdict(exc: Exception) -> bool | None:
    import openai

    if isinstance(
        exc,
        (openai.RateLimitError, openai.InternalServerError, openai.APIConnectionError,
         openai.APITimeoutError),
    ):
        return True
    if isinstance(exc, openai.APIStatusError):  # 4xx other than 429: not retryable
        return False
    return None


@dataclass
class _RetryPolicy:
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
                    backoff_delay(attempt, self.backoff_base, self.backoff_cap,
                                  _retry_after_seconds(exc))
                )
                attempt += 1


class HTTPStatusFailure(Exception):
    """A non-2xx answer from a provider's HTTP API (``response`` kept for Retry-After)."""

    def __init__(self, response):
        self.response = response
        self.status = response.status_code
        super().__init__(f"HTTP {self.status} from {response.request.url}: {_error_text(response)}")


def _error_text(response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or response.reason_phrase
    if isinstance(body, dict):
        err = body.get("error", body.get("detail", body))
        if isinstance(err, dict):
            err = err.get("message", err)
        return str(err)[:300]
    return str(body)[:300]


def _http_verdict(exc: Exception) -> bool | None:
    import httpx

    if isinstance(exc, HTTPStatusFailure):
        return exc.status in (408, 429) or exc.status >= 500
    if isinstance(exc, httpx.TransportError):  # timeouts, refused or dropped connections
        return True
    return None


class _HTTPProvider:
    """Shared by the providers spoken to over plain HTTP (httpx): one client, JSON in/out."""

    def __init__(self, base_url: str, headers: dict[str, str], timeout: float, retry: _RetryPolicy):
        import httpx

        self.base_url = base_url.rstrip("/")
        self._retry = retry
        self._client = httpx.Client(
            timeout=timeout, headers={"User-Agent": "automem-pipelines", **headers}
        )

    def _post_once(self, path: str, payload: dict) -> dict:
        response = self._client.post(f"{self.base_url}{path}", json=payload)
        if response.status_code >= 400:
            raise HTTPStatusFailure(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise EmbeddingError(f"{path} answered something that is not JSON") from exc
        if not isinstance(body, dict):
            raise EmbeddingError(f"{path} answered JSON that is not an object")
        return body

    def _post(self, path: str, payload: dict) -> dict:
        return self._retry.run(lambda: self._post_once(path, payload), _http_verdict)


VOYAGE_BASE_URL = "https://api.voyageai.com/v1"
VOYAGE_DIMENSIONS = (256, 512, 1024, 2048)
VOYAGE_MAX_TEXTS = 128  # texts per request, Voyage's limit (AutoMem's batch size too)


class VoyageProvider(_HTTPProvider):
    """Voyage AI's embeddings API (POST {base}/embeddings) as AutoMem calls it: the model,
    ``output_dimension`` = the vector size, float output, and no ``input_type`` (AutoMem sends
    none, for documents and queries alike, so its stored vectors are the untyped ones)."""

    provider = "voyage"

    def __init__(
        self,
        model: str,
        dim: int,
        api_key: str,
        base_url: str = VOYAGE_BASE_URL,
        max_concurrency: int = 8,
        max_retries: int = 6,
        timeout: float = 60.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
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
            _RetryPolicy(max_retries, backoff_base, backoff_cap, sleep),
        )
        self.model = model
        self.dim = dim
        self.max_concurrency = max_concurrency
        self.input_type = input_type
        self.max_texts = max_texts

    def _request(self, texts: Sequence[str]) -> tuple[np.ndarray, int | None]:
        payload: dict = {
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
        vectors = _stack([_decode(d["embedding"]) for d in data], self.dim)
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


OLLAMA_BASE_URL = "http://localhost:11434"


class _EndpointMissing(Exception):
    """/api/embed is not there (an Ollama older than 0.3, or a proxy with the old API only)."""


class OllamaProvider(_HTTPProvider):
    """An Ollama server: ``/api/embed`` with the whole batch in one request; if the server
    has no ``/api/embed`` (404/405 that is not Ollama's own JSON error, such as "model not
    found"), ``/api/embeddings`` one text per request, as AutoMem calls it. Both give the same
    model's vectors (``/api/embed`` normalises them; cosine is unchanged). No ``dimensions`` is
    sent, as AutoMem sends none: the model's own size must equal the vector size."""

    provider = "ollama"

    def __init__(
        self,
        model: str,
        dim: int,
        base_url: str = OLLAMA_BASE_URL,
        max_concurrency: int = 2,
        max_retries: int = 2,
        timeout: float = 30.0,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
    ):
        super().__init__(base_url, {}, timeout, _RetryPolicy(max_retries, backoff_base, backoff_cap, sleep))
        self.model = model
        self.dim = dim
        self.max_concurrency = max_concurrency
        self.legacy: bool | None = None  # None until the first answer tells

    def _embed_once(self, payload: dict) -> dict:
        try:
            return self._post_once("/api/embed", payload)
        except HTTPStatusFailure as exc:
            if exc.status in (404, 405) and not _is_json_error(exc.response):
                raise _EndpointMissing(str(exc)) from exc
            raise

    def _batched(self, texts: Sequence[str]) -> EmbeddedBatch:
        payload = {"model": self.model, "input": list(texts)}
        body = self._retry.run(lambda: self._embed_once(payload), _http_verdict)
        rows = body.get("embeddings")
        if not isinstance(rows, list):
            raise EmbeddingError("Ollama /api/embed answered without embeddings")
        if len(rows) != len(texts):
            raise EmbeddingError(f"provider returned {len(rows)} vectors for {len(texts)} texts")
        tokens = body.get("prompt_eval_count")
        vectors = _stack([_decode(r) for r in rows], self.dim)
        return EmbeddedBatch(check_batch(texts, vectors, self.dim),
                             int(tokens) if isinstance(tokens, int) else None)

    def _per_text(self, texts: Sequence[str]) -> EmbeddedBatch:
        rows = []
        for text in texts:
            body = self._post("/api/embeddings", {"model": self.model, "prompt": text})
            row = body.get("embedding")
            if not isinstance(row, list):
                raise EmbeddingError("Ollama /api/embeddings answered without embedding")
            rows.append(_decode(row))
        return EmbeddedBatch(check_batch(texts, _stack(rows, self.dim), self.dim))

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        if not self.legacy:
            try:
                result = self._batched(texts)
                self.legacy = False
                return result
            except _EndpointMissing:
                self.legacy = True
        return self._per_text(texts)


def _is_json_error(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "error" in body


def _stack(rows: list[np.ndarray], dim: int) -> np.ndarray:
    """Rows of possibly different lengths → a matrix, or a clear error for the batch."""
    if not rows:
        return np.zeros((0, dim), np.float32)
    lengths = {len(r) for r in rows}
    if len(lengths) != 1:
        raise EmbeddingError(
            f"provider returned vectors of {sorted(lengths)} dimensions, expected {dim}-d"
        )
    return np.vstack(rows)


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
    rejected: bool = False  # the provider refused this batch itself (EmbeddingRejectedError)
    requests: int = 1  # requests it took, the refused halves it was split from included


def embed_batches(
    provider: EmbeddingProvider, batches: Sequence[tuple[list[str], list[str]]]
) -> list[BatchOutcome]:
    """Embed (ids, texts) batches, up to ``provider.max_concurrency`` in flight.

    A batch that fails is returned with its error; the other batches go on. A batch the
    provider refuses (a poisoned text) is split in halves, again and again, until only the
    memories it refuses on their own fail: one bad text costs about 2·log2(batch) requests,
    never its neighbours. Failures after retries (429s, 5xx, timeouts) are not split.
    """

    def run(job: tuple[list[str], list[str]]) -> BatchOutcome:
        ids, texts = job
        try:
            return BatchOutcome(0, ids, provider.embed(texts), None)
        except Exception as exc:  # noqa: BLE001 - a failed batch is counted, not fatal
            return BatchOutcome(0, ids, None, f"{type(exc).__name__}: {exc}",
                                rejected=isinstance(exc, EmbeddingRejectedError))  # fmt: skip

    def run_all(jobs: list[tuple[list[str], list[str]]]) -> list[BatchOutcome]:
        workers = max(1, min(provider.max_concurrency, len(jobs)))
        if workers == 1:
            return [run(j) for j in jobs]
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="embed") as pool:
            return list(pool.map(run, jobs))

    outcomes = run_all([(list(ids), list(texts)) for ids, texts in batches])
    for i, outcome in enumerate(outcomes):
        outcome.index = i
    final: dict[int, list[BatchOutcome]] = {i: [o] for i, o in enumerate(outcomes)}
    while True:
        splits = [(i, o) for i, parts in final.items() for o in parts
                  if o.rejected and len(o.ids) > 1]  # fmt: skip
        if not splits:
            break
        jobs, owners = [], []
        for i, o in splits:
            texts = dict(zip(batches[i][0], batches[i][1]))
            half = len(o.ids) // 2
            for part in (o.ids[:half], o.ids[half:]):
                jobs.append((part, [texts[m] for m in part]))
                owners.append((i, o))
        results = run_all(jobs)
        for (i, parent), child in zip(owners, results):
            child.index = i
            place = next((k for k, o in enumerate(final[i]) if o is parent), None)
            if place is not None:  # the first half takes the parent's place and requests
                child.requests += parent.requests
                final[i][place] = child
            else:
                final[i].append(child)
    return [o for i in sorted(final) for o in final[i]]
