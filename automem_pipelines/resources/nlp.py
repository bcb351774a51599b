from __future__ import annotations

import dagster as dg
from pydantic import Field

from ..domain.enrichment import EnrichmentOptions
from ..domain.nlp import EntityModel, load_entity_model


class EnrichmentResource(dg.ConfigurableResource):
    """The spaCy pipeline for entity extraction (loaded once per process) and AutoMem's
    ENRICHMENT_* settings."""

    spacy_model: str = Field("en_core_web_sm", description="ENRICHMENT_SPACY_MODEL")
    similarity_limit: int = Field(5, description="ENRICHMENT_SIMILARITY_LIMIT")
    similarity_threshold: float = Field(0.8, description="ENRICHMENT_SIMILARITY_THRESHOLD")
    enable_summaries: bool = Field(True, description="ENRICHMENT_ENABLE_SUMMARIES")
    max_attempts: int = Field(3, description="ENRICHMENT_MAX_ATTEMPTS")
    failure_backoff_seconds: float = Field(5.0, description="ENRICHMENT_FAILURE_BACKOFF_SECONDS")

    def get_model(self) -> EntityModel:
        return load_entity_model(self.spacy_model)

    def options(self) -> EnrichmentOptions:
        return EnrichmentOptions(
            similarity_limit=self.similarity_limit,
            similarity_threshold=self.similarity_threshold,
            enable_summaries=self.enable_summaries,
            max_attempts=self.max_attempts,
            failure_backoff_seconds=self.failure_backoff_seconds,
        )
