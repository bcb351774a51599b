from __future__ import annotations

import threading

import dagster as dg
from pydantic import Field

from ..domain.embeddings import (
    OLLAMA_BASE_URL,
    VOYAGE_BASE_URL,
    EmbeddingProvider,
    OllamaProvider,
    OpenAIProvider,
    VoyageProvider,
    local_provider,
)

_logged: set[str] = set()
_logged_lock = threading.Lock()


def _log_selection_once(selection: str) -> None:
    """One log line per process for the choice (a job builds providers per chunk)."""
    with _logged_lock:
        if selection in _logged:
            return
        _logged.add(selection)
    dg.get_dagster_logger().info(f"embedding provider: {selection}")


class EmbeddingsResource(dg.ConfigurableResource):
    """The embedding provider, chosen by Settings as AutoMem chooses it: ``voyage``,
    ``openai`` (any OpenAI-compatible endpoint), ``ollama``, or ``local`` (the shipped static
    model, where AutoMem would run fastembed)."""

    provider: str = Field("local", description="voyage | openai | ollama | local (resolved EMBEDDING_PROVIDER)")
    model: str = Field("minilm-l6-static", description="VOYAGE_MODEL / EMBEDDING_MODEL / OLLAMA_MODEL")
    vector_size: int = Field(256, description="Dimensions requested and expected (VECTOR_SIZE)")
    selection: str = Field("", description="Why this provider, model and size were chosen")
    openai_api_key: str | None = Field(None, description="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, description="OPENAI_BASE_URL")
    voyage_api_key: str | None = Field(None, description="VOYAGE_API_KEY")
    voyage_base_url: str = Field(VOYAGE_BASE_URL, description="VOYAGE_BASE_URL")
    ollama_base_url: str = Field(OLLAMA_BASE_URL, description="OLLAMA_BASE_URL")
    max_concurrency: int = Field(16, description="Requests in flight to a remote provider")
    max_retries: int = Field(6, description="Retries of a 429/5xx/timeout per request")
    timeout_seconds: float = Field(60.0, description="Per-request timeout")

    def get_provider(self) -> EmbeddingProvider:
        if self.selection:
            _log_selection_once(self.selection)
        remote = {
            "max_concurrency": self.max_concurrency,
            "max_retries": self.max_retries,
            "timeout": self.timeout_seconds,
        }
        if self.provider == "local":
            return local_provider(self.model)
        if self.provider == "openai":
            return OpenAIProvider(
                model=self.model,
                dim=self.vector_size,
                api_key=self.openai_api_key or "",
                base_url=self.openai_base_url,
                **remote,
            )
        if self.provider == "voyage":
            return VoyageProvider(
                model=self.model,
                dim=self.vector_size,
                api_key=self.voyage_api_key or "",
                base_url=self.voyage_base_url,
                **remote,
            )
        if self.provider == "ollama":
            return OllamaProvider(
                model=self.model, dim=self.vector_size, base_url=self.ollama_base_url, **remote
            )
        raise ValueError(
            f"EMBEDDING_PROVIDER={self.provider!r}: expected voyage, openai, ollama or local"
        )
