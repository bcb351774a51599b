from __future__ import annotations

import dagster as dg
from pydantic import Field, PrivateAttr

from ..domain.enrichment import EnrichmentOptions
from ..domain.nlp import EntityModel, load_entity_model


class EnrichmentResource(dg.ConfigurableResource):
    """The spaCy pipeline for entity extraction and AutoMem's ENRICHMENT_* settings.

    In a run the resource owns the pipeline: loaded at the first ``get_model()``, kept for
    the run's steps. Outside a run each ``get_model()`` loads it."""

    spacy_model: str = Field(description="ENRICHMENT_SPACY_MODEL")
    similarity_limit: int = Field(description="ENRICHMENT_SIMILARITY_LIMIT")
    similarity_threshold: float = Field(description="ENRICHMENT_SIMILARITY_THRESHOLD")
    enable_summaries: bool = Field(description="ENRICHMENT_ENABLE_SUMMARIES")
    max_attempts: int = Field(description="ENRICHMENT_MAX_ATTEMPTS")
    failure_backoff_seconds: float = Field(description="ENRICHMENT_FAILURE_BACKOFF_SECONDS")

    _in_run: bool = PrivateAttr(False)
    _model: EntityModel | None = PrivateAttr(None)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._in_run = True

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._model, self._in_run = None, False

    def get_model(self) -> EntityModel:
        if not self._in_run:
            return load_entity_model(self.spacy_model)
        if self._model is None:
            self._model = load_entity_model(self.spacy_model)
        return self._model

    def options(self) -> EnrichmentOptions:
        fields = (
            "similarity_limit",
            "similarity_threshold",
            "enable_summaries",
            "max_attempts",
            "failure_backoff_seconds",
        )
        return EnrichmentOptions(**{name: getattr(self, name) for name in fields})
