from __future__ import annotations

import dagster as dg
from pydantic import Field

from ..domain.embeddings import EmbeddingProvider, OpenAIProvider, local_provider


class EmbeddingsResource(dg.ConfigurableResource):
    """The embedding provider: ``local`` (shipped static model) or ``openai`` (any
    OpenAI-compatible endpoint)."""

    provider: str = Field("local", description="local | openai")
    model: str = Field("minilm-l6-static", description="EMBEDDING_MODEL")
    vector_size: int = Field(256, description="Dimensions requested and expected (VECTOR_SIZE)")
    openai_api_key: str | None = Field(None, description="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, description="OPENAI_BASE_URL")
    max_concurrency: int = Field(16, description="Requests in flight to a remote provider")
    max_retries: int = Field(6, description="Retries of a 429/5xx/timeout per request")
    timeout_seconds: float = Field(60.0, description="Per-request timeout")

    def get_provider(self) -> EmbeddingProvider:
        if self.provider == "local":
            return local_provider(self.model)
        if self.provider == "openai":
            return OpenAIProvider(
                model=self.model,
                dim=self.vector_size,
                api_key=self.openai_api_key or "",
                base_url=self.openai_base_url,
                max_concurrency=self.max_concurrency,
                max_retries=self.max_retries,
                timeout=self.timeout_seconds,
            )
        raise ValueError(f"EMBEDDING_PROVIDER={self.provider!r}: expected local or openai")
