from __future__ import annotations

import dagster as dg
from pydantic import Field


class SyncPolicyResource(dg.ConfigurableResource):
    """What the drift sync and the enrichment sensor leave out, as AutoMem leaves it out of
    recall (RECALL_EXCLUDED_TYPES): the one way that setting reaches Dagster code."""

    excluded_types: list[str] = Field(
        description="Memory types left out of drift detection and repair, and of enrichment "
        "(RECALL_EXCLUDED_TYPES)",
    )
