from __future__ import annotations

import dagster as dg
from pydantic import Field


class SyncPolicyResource(dg.ConfigurableResource):
    """What the drift sync leaves out of its accounting, as AutoMem does (RECALL_EXCLUDED_TYPES)."""

    excluded_types: list[str] = Field(
        default_factory=lambda: ["MetaPattern"],
        description="Memory types left out of drift detection and repair (RECALL_EXCLUDED_TYPES)",
    )
