"""Environment → typed settings, with AutoMem's variable names and defaults.

One model, grouped by system (``falkordb``, ``qdrant``, ``embedding``, ``enrichment``,
``sync``, ``schedule``, ``api``), read once per process (the code location, a run worker, the
CLI, the API) and shared by the pipelines and the API. Every invalid value is reported
together, each message naming the variable and what it accepts, before anything touches a
store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from ..domain.memory import DEFAULT_RECALL_EXCLUDED_TYPES
from .embedding import EmbeddingEnvironment, EmbeddingSettings, resolve_embedding
from .environment import CommaList, Group, SettingsError, clean, read_group
from .groups import (
    QDRANT_IN_MEMORY,
    ApiSettings,
    EnrichmentSettings,
    FalkorDBSettings,
    QdrantSettings,
    RateLimit,
    ScheduleSettings,
    SyncSettings,
)

__all__ = [
    "QDRANT_IN_MEMORY",
    "ApiSettings",
    "EmbeddingSettings",
    "EnrichmentSettings",
    "FalkorDBSettings",
    "QdrantSettings",
    "RateLimit",
    "ScheduleSettings",
    "Settings",
    "SettingsError",
    "SyncSettings",
]


def _absolute(path: Path) -> Path:
    return path.expanduser().resolve()


class Settings(Group):
    data_dir: Annotated[Path, AfterValidator(_absolute)] = Field(
        Path.home() / ".automem-pipelines", validation_alias="AUTOMEM_DATA_DIR"
    )
    # Memory types left out of drift detection and repair, of enrichment and of the counts,
    # as AutoMem leaves them out of recall.
    recall_excluded_types: CommaList = Field(
        DEFAULT_RECALL_EXCLUDED_TYPES, validation_alias="RECALL_EXCLUDED_TYPES"
    )
    falkordb: FalkorDBSettings
    qdrant: QdrantSettings
    embedding: EmbeddingSettings
    enrichment: EnrichmentSettings
    sync: SyncSettings
    schedule: ScheduleSettings
    api: ApiSettings

    def secret_variables(self, group: str) -> dict[str, str]:
        """field → variable of each credential in the group (``dg.EnvVar`` of it reaches the
        resources; the API redacts their values)."""
        return _SECRET_SOURCES[group].secret_fields() if group in _SECRET_SOURCES else {}

    def secret_values(self) -> tuple[str, ...]:
        """Every credential that is set."""
        return tuple(
            value
            for group in _SECRET_SOURCES
            for field in self.secret_variables(group)
            if (value := getattr(getattr(self, group), field))
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = dict(os.environ if env is None else env)
        errors: list[str] = []
        groups: dict[str, Any] = {
            name: read_group(group, env, errors)
            for name, group in (
                ("falkordb", FalkorDBSettings),
                ("qdrant", QdrantSettings),
                ("enrichment", EnrichmentSettings),
                ("sync", SyncSettings),
                ("schedule", ScheduleSettings),
                ("api", ApiSettings),
            )
        }
        raw = read_group(EmbeddingEnvironment, env, errors)
        size_var = "VECTOR_SIZE" if clean(env.get("VECTOR_SIZE")) else "QDRANT_VECTOR_SIZE"
        groups["embedding"] = resolve_embedding(raw, size_var, errors)
        settings = read_group(cls, env, errors, **groups)
        if errors:
            raise SettingsError("invalid configuration:\n  " + "\n  ".join(errors))
        return settings


# Where each group's credentials are declared (the embedding group's: its variables as set).
_SECRET_SOURCES: dict[str, type[Group]] = {
    "falkordb": FalkorDBSettings,
    "qdrant": QdrantSettings,
    "embedding": EmbeddingEnvironment,
    "api": ApiSettings,
    "schedule": ScheduleSettings,
}
