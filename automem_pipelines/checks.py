"""Drift as asset checks on the Qdrant collection asset (``domain/drift/checks.py`` says what
each one counts).

The drift-sync job reports them on every run (``ops/drift.py``); declaring them here is what
shows them on the asset's page and in the asset-health views, with their history. Executed on
their own (the asset page's "Execute" button), they run a read-only detection: both stores are
read completely, nothing is written and no embedding provider is called (as a dry-run sync).
"""

from collections.abc import Iterator
from typing import Any

import dagster as dg

from .constants import VECTOR_ASSET_KEY
from .domain import drift
from .domain.drift.checks import CHECKS, ERROR, CheckOutcome, outcomes
from .ops.common import configured_identity, fail_fast_unless_transient, tag_ui_launch
from .resources import EmbeddingsResource, FalkorDBResource, QdrantResource
from .resources.sync import SyncPolicyResource

DRIFT_CHECKS_NAME = "drift_checks"


def severity_of(outcome: CheckOutcome) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.ERROR if outcome.severity == ERROR else dg.AssetCheckSeverity.WARN


def check_metadata(outcome: CheckOutcome) -> dict[str, Any]:
    return {
        k: dg.MetadataValue.json(v) if isinstance(v, dict) else v
        for k, v in outcome.metadata.items()
    }


def check_description(outcome: CheckOutcome) -> str:
    state = "after the sync's repairs" if outcome.metadata["state"] == "after_repair" else "found"
    return f"{outcome.count} {outcome.name.replace('_', ' ')} ({state})"


def check_evaluations(outcomes: list[CheckOutcome]) -> list[dg.AssetCheckEvaluation]:
    """The outcomes as events an op of an op job logs (``context.log_event``)."""
    return [
        dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey(VECTOR_ASSET_KEY),
            check_name=o.name,
            passed=o.passed,
            severity=severity_of(o),
            metadata=check_metadata(o),
            description=check_description(o),
        )
        for o in outcomes
    ]


def check_specs() -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(name=c.name, asset=VECTOR_ASSET_KEY, description=c.description)
        for c in CHECKS
    ]


def build_drift_checks() -> dg.AssetChecksDefinition:
    @dg.multi_asset_check(
        specs=check_specs(),
        name=DRIFT_CHECKS_NAME,
        description="Read-only drift detection between the graph and the collection.",
        can_subset=False,
    )
    def drift_checks(
        context: dg.AssetCheckExecutionContext,
        falkordb: FalkorDBResource,
        qdrant: QdrantResource,
        embeddings: EmbeddingsResource,
        sync: SyncPolicyResource,
    ) -> Iterator[dg.AssetCheckResult]:
        tag_ui_launch(context.op_execution_context)
        with fail_fast_unless_transient(), falkordb.get_store() as graph:
            report = drift.detect(
                graph, qdrant.get_store(), configured_identity(embeddings), sync.excluded_types
            )
        for o in outcomes(report):
            yield dg.AssetCheckResult(
                asset_key=VECTOR_ASSET_KEY,
                check_name=o.name,
                passed=o.passed,
                severity=severity_of(o),
                metadata=check_metadata(o),
                description=check_description(o),
            )

    return drift_checks
