"""Embedding providers: a local static model (no network), OpenAI(-compatible), Voyage AI
and Ollama, the remote ones with the same retries, backoff and batch checks (one module per
wire protocol); ``embed_batches`` runs API batches with several requests in flight."""

from ..embedding_defaults import (
    LOCAL_MODEL_NAME,
    OLLAMA_BASE_URL,
    VOYAGE_BASE_URL,
    VOYAGE_DIMENSIONS,
)
from .base import (
    EmbeddedBatch,
    EmbeddingError,
    EmbeddingProvider,
    EmbeddingRejectedError,
    RetryPolicy,
    backoff_delay,
    check_batch,
)
from .batches import BatchOutcome, embed_batches
from .http_api import HTTPStatusFailure
from .local import LOCAL_MODEL_DIR, LocalStaticProvider, local_provider
from .ollama import OllamaProvider
from .openai_api import OpenAIProvider, openai_takes_dimensions
from .pacing import PacedProvider, RateLimiter, TokenBucket, paced
from .voyage import VoyageProvider

__all__ = [
    "LOCAL_MODEL_DIR",
    "LOCAL_MODEL_NAME",
    "OLLAMA_BASE_URL",
    "VOYAGE_BASE_URL",
    "VOYAGE_DIMENSIONS",
    "BatchOutcome",
    "EmbeddedBatch",
    "EmbeddingError",
    "EmbeddingProvider",
    "EmbeddingRejectedError",
    "HTTPStatusFailure",
    "LocalStaticProvider",
    "OllamaProvider",
    "OpenAIProvider",
    "PacedProvider",
    "RateLimiter",
    "TokenBucket",
    "paced",
    "RetryPolicy",
    "VoyageProvider",
    "backoff_delay",
    "check_batch",
    "embed_batches",
    "local_provider",
    "openai_takes_dimensions",
]
