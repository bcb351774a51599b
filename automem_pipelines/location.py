"""The code location: one Definitions, with resources chosen from Settings in one place.

Dagster loads it through automem_pipelines.definitions (see there why)."""

from __future__ import annotations

from typing import Any

import warnings

import dagster as dg

from .constants import GRAPH_ASSET_KEY, VECTOR_ASSET_KEY
from .jobs import build_drift_sync_job, build_enrichment_job, build_reembed_job
from .resources import EmbeddingsResource, FalkorDBResource, QdrantResource
from .resources.nlp import EnrichmentResource
from .resources.sync import SyncPolicyResource
from .schedules import build_drift_sync_schedule, build_reembed_schedule
from .sensors import build_enrichment_sensor
from .settings import Settings


# Dagster copies sensors with owners=None internally and warns that the parameter is beta on
# every load of the code location; we set no owners.
warnings.filterwarnings("ignore", message="Parameter `owners`", category=dg.BetaWarning)


def _secret(env_name: str, value: str | None) -> Any:
    """Secrets reach resources as EnvVar, so they never show up in the UI's config."""
    return dg.EnvVar(env_name) if value else None


def build_resources(settings: Settings, from_env: bool = True) -> dict[str, Any]:
    data_dir = str(settings.data_dir)
    secret = _secret if from_env else (lambda _name, value: value)
    return {
        "falkordb": FalkorDBResource(
            host=settings.falkordb_host,
            port=settings.falkordb_port,
            password=secret("FALKORDB_PASSWORD", settings.falkordb_password),
            graph=settings.falkordb_graph,
            data_dir=data_dir,
        ),
        "qdrant": QdrantResource(
            url=settings.qdrant_url,
            api_key=secret("QDRANT_API_KEY", settings.qdrant_api_key),
            collection=settings.qdrant_collection,
            data_dir=data_dir,
            timeout_seconds=settings.qdrant_timeout_seconds,
            lock_timeout_seconds=settings.qdrant_lock_timeout_seconds,
        ),
        "embeddings": EmbeddingsResource(
            provider=settings.embedding_provider,
            model=settings.embedding_model,
            vector_size=settings.vector_size,
            selection=settings.embedding_selection,
            openai_api_key=secret("OPENAI_API_KEY", settings.openai_api_key),
            openai_base_url=settings.openai_base_url,
            voyage_api_key=secret("VOYAGE_API_KEY", settings.voyage_api_key),
            voyage_base_url=settings.voyage_base_url,
            ollama_base_url=settings.ollama_base_url,
            max_concurrency=settings.embedding_max_concurrency,
            max_retries=settings.embedding_max_retries,
            timeout_seconds=settings.embedding_timeout_seconds,
        ),
        "nlp": EnrichmentResource(
            spacy_model=settings.enrichment_spacy_model,
            similarity_limit=settings.enrichment_similarity_limit,
            similarity_threshold=settings.enrichment_similarity_threshold,
            enable_summaries=settings.enrichment_enable_summaries,
            max_attempts=settings.enrichment_max_attempts,
            failure_backoff_seconds=settings.enrichment_failure_backoff_seconds,
        ),
        "sync": SyncPolicyResource(excluded_types=list(settings.recall_excluded_types)),
    }


def store_assets(settings: Settings) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=GRAPH_ASSET_KEY,
            description=f"FalkorDB graph {settings.falkordb_graph!r}: :Memory nodes (source of truth)",
            group_name="automem",
            kinds={"falkordb"},
        ),
        dg.AssetSpec(
            key=VECTOR_ASSET_KEY,
            description=f"Qdrant collection {settings.qdrant_collection!r}: one point per memory",
            group_name="automem",
            kinds={"qdrant"},
            deps=[GRAPH_ASSET_KEY],
        ),
    ]


def build_definitions(settings: Settings) -> dg.Definitions:
    reembed_job = build_reembed_job(settings.qdrant_local)
    enrichment_job = build_enrichment_job(settings.qdrant_local)
    drift_sync_job = build_drift_sync_job(settings.qdrant_local)
    return dg.Definitions(
        assets=store_assets(settings),
        jobs=[reembed_job, drift_sync_job, enrichment_job],
        schedules=[
            build_reembed_schedule(reembed_job, settings),
            build_drift_sync_schedule(drift_sync_job, settings),
        ],
        sensors=[build_enrichment_sensor(enrichment_job, settings)],
        resources=build_resources(settings),
    )


defs = build_definitions(Settings.from_env())
