from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from ..domain import embedding_defaults as d
from ..domain.embeddings import (
    EmbeddingProvider,
    OllamaProvider,
    OpenAIProvider,
    VoyageProvider,
    local_provider,
    paced,
)
from ..domain.pricing import RateLimits


class EmbeddingsResource(dg.ConfigurableResource):
    """The embedding provider, chosen by Settings as AutoMem chooses it: ``voyage``,
    ``openai`` (any OpenAI-compatible endpoint), ``ollama``, or ``local`` (the shipped static
    model, where AutoMem would run fastembed).

    In a run the resource owns the provider: built at the first ``get_provider()`` (its
    choice logged once), kept for the run's steps, closed when the run's resources are torn
    down. Outside a run each ``get_provider()`` builds a provider its caller owns."""

    provider: str = Field(
        "local", description="voyage | openai | ollama | local (resolved EMBEDDING_PROVIDER)"
    )
    model: str = Field(
        d.LOCAL_MODEL_NAME, description="VOYAGE_MODEL / EMBEDDING_MODEL / OLLAMA_MODEL"
    )
    vector_size: int = Field(
        d.LOCAL_MODEL_DIM, description="Dimensions requested and expected (VECTOR_SIZE)"
    )
    selection: str = Field("", description="Why this provider, model and size were chosen")
    openai_api_key: str | None = Field(None, description="OPENAI_API_KEY")
    openai_base_url: str | None = Field(None, description="OPENAI_BASE_URL")
    voyage_api_key: str | None = Field(None, description="VOYAGE_API_KEY")
    voyage_base_url: str = Field(d.VOYAGE_BASE_URL, description="VOYAGE_BASE_URL")
    ollama_base_url: str = Field(d.OLLAMA_BASE_URL, description="OLLAMA_BASE_URL")
    max_concurrency: int = Field(
        d.MAX_CONCURRENCY,
        description="Requests in flight to a remote provider (EMBEDDING_MAX_CONCURRENCY)",
    )
    max_retries: int = Field(d.MAX_RETRIES, description="Retries of a 429/5xx/timeout per request")
    timeout_seconds: float = Field(d.TIMEOUT_SECONDS, description="Per-request timeout")
    requests_per_minute: int | None = Field(
        None, description="Requests per minute paced under (EMBEDDING_REQUESTS_PER_MINUTE)"
    )
    tokens_per_minute: int | None = Field(
        None, description="Tokens per minute paced under (EMBEDDING_TOKENS_PER_MINUTE)"
    )
    openai_requests_per_minute: int | None = Field(
        None, description="OpenAI's own requests per minute, over EMBEDDING_*"
    )
    openai_tokens_per_minute: int | None = Field(
        None, description="OpenAI's own tokens per minute, over EMBEDDING_*"
    )
    voyage_requests_per_minute: int | None = Field(
        None, description="Voyage's own requests per minute, over EMBEDDING_*"
    )
    voyage_tokens_per_minute: int | None = Field(
        None, description="Voyage's own tokens per minute, over EMBEDDING_*"
    )
    ollama_requests_per_minute: int | None = Field(
        None, description="Ollama's own requests per minute, over EMBEDDING_*"
    )
    ollama_tokens_per_minute: int | None = Field(
        None, description="Ollama's own tokens per minute, over EMBEDDING_*"
    )
    max_cost_usd: float = Field(
        d.MAX_COST_USD, description="A re-embed's default budget in USD (REEMBED_MAX_COST_USD)"
    )
    max_tokens: int | None = Field(
        None, description="A re-embed's default token budget (REEMBED_MAX_TOKENS)"
    )

    _in_run: bool = PrivateAttr(False)
    _provider: EmbeddingProvider | None = PrivateAttr(None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._in_run = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._provider is not None:
            self._provider.close()
        self._provider, self._in_run = None, False

    def get_provider(self) -> EmbeddingProvider:
        if not self._in_run:
            return self.build_provider()
        if self._provider is None:
            self._provider = self.build_provider()
            if self.selection:
                dg.get_dagster_logger().info(f"embedding provider: {self.selection}")
        return self._provider

    def build_provider(self) -> EmbeddingProvider:
        """The provider, paced under its rate limits (embeddings.pacing)."""
        limits = self.rate_limits()
        return paced(self._build(), limits.requests_per_minute, limits.tokens_per_minute)

    def for_target(self, provider: str, model: str, vector_size: int) -> EmbeddingsResource:
        """The same resource (credentials, retries, rate limits, budgets) for another provider,
        model and size: a migration's target, or its source again on rollback. Its
        ``get_provider()`` builds a provider its caller owns (close it)."""
        values = {name: getattr(self, name) for name in type(self).model_fields}
        values.update(
            provider=provider,
            model=model,
            vector_size=vector_size,
            selection=f"migration: {provider}:{model} ({vector_size}-d)",
        )
        return type(self)(**values)

    def rate_limits(self) -> RateLimits:
        """This provider's limits: <PROVIDER>_REQUESTS/TOKENS_PER_MINUTE where set, else
        EMBEDDING_REQUESTS/TOKENS_PER_MINUTE (the local model is never paced by its own)."""

        def own(unit: str) -> int | None:
            return getattr(self, f"{self.provider}_{unit}_per_minute", None)

        return RateLimits(
            own("requests") or self.requests_per_minute, own("tokens") or self.tokens_per_minute
        )

    def _build(self) -> EmbeddingProvider:
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
