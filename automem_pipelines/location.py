"""The code location: one Definitions, with resources built from the settings groups in one
place. Building it reads nothing and opens nothing; Dagster loads it through
``automem_pipelines.definitions``."""

from __future__ import annotations

import warnings
from typing import Any

import dagster as dg
from pydantic import BaseModel

from .checks import build_drift_checks
from .constants import GRAPH_ASSET_KEY, VECTOR_ASSET_KEY
from .jobs import (
    build_drift_sync_job,
    build_enrichment_job,
    build_migrate_job,
    build_reembed_job,
    build_reembed_partitioned_job,
)
from .resources import EmbeddingsResource, FalkorDBResource, QdrantResource
from .resources.nlp import EnrichmentResource
from .resources.sync import SyncPolicyResource
from .schedules import build_drift_sync_schedule, build_reembed_schedule
from .sensors import build_enrichment_sensor
from .settings import Settings

# Dagster copies sensors with owners=None internally and warns that the parameter is beta on
# every load of the code location; we set no owners.
warnings.filterwarnings("ignore", message="Parameter `owners`", category=dg.BetaWarning)


def _from_group(
    resource: type[dg.ConfigurableResource],
    group: BaseModel,
    secrets: dict[str, str],
    from_env: bool,
    **extra: Any,
) -> Any:
    """The resource with every field it shares with the group taken from the group; each
    credential that is set as ``dg.EnvVar`` of its variable (so it never shows in the UI)."""
    values = group.model_dump(include=set(resource.model_fields) - set(extra))
    if from_env:
        values.update({f: dg.EnvVar(var) for f, var in secrets.items() if values.get(f)})
    return resource(**values, **extra)


def build_resources(settings: Settings, from_env: bool = True) -> dict[str, Any]:
    """``from_env=False``: credentials as values (tests, the CLI's in-process runs)."""
    data_dir = str(settings.data_dir)

    def make(resource: type[dg.ConfigurableResource], group: str, **extra: Any) -> Any:
        return _from_group(
            resource, getattr(settings, group), settings.secret_variables(group), from_env, **extra
        )

    return {
        "falkordb": make(FalkorDBResource, "falkordb", data_dir=data_dir),
        "qdrant": make(QdrantResource, "qdrant", data_dir=data_dir),
        "embeddings": make(EmbeddingsResource, "embedding"),
        "nlp": make(EnrichmentResource, "enrichment"),
        "sync": SyncPolicyResource(excluded_types=list(settings.recall_excluded_types)),
    }


def store_assets(settings: Settings) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=GRAPH_ASSET_KEY,
            description=f"FalkorDB graph {settings.falkordb.graph!r}: :Memory nodes (source of truth)",
            group_name="automem",
            kinds={"falkordb"},
        ),
        dg.AssetSpec(
            key=VECTOR_ASSET_KEY,
            description=f"Qdrant collection {settings.qdrant.collection!r}: one point per memory",
            group_name="automem",
            kinds={"qdrant"},
            deps=[GRAPH_ASSET_KEY],
        ),
    ]


def build_definitions(settings: Settings) -> dg.Definitions:
    reembed_job = build_reembed_job(settings.qdrant.local)
    enrichment_job = build_enrichment_job(settings.qdrant.local)
    drift_sync_job = build_drift_sync_job(settings.qdrant.local)
    return dg.Definitions(
        assets=store_assets(settings),
        asset_checks=[build_drift_checks()],
        jobs=[
            reembed_job,
            build_reembed_partitioned_job(
                settings.qdrant.local, settings.schedule.reembed_partitions
            ),
            drift_sync_job,
            enrichment_job,
            build_migrate_job(settings.qdrant.local),
        ],
        schedules=[
            build_reembed_schedule(reembed_job, settings),
            build_drift_sync_schedule(drift_sync_job, settings),
        ],
        sensors=[build_enrichment_sensor(enrichment_job, settings)],
        resources=build_resources(settings),
    )
