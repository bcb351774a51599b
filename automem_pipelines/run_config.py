"""Run config builders: the only place that knows op names and config field names.

The schedules, the sensor, the CLI and the API all build run config here, so a renamed
field fails in a test, not in production.
"""

from __future__ import annotations

from typing import Any

from .constants import DEFAULT_BATCH_SIZE
from .domain.outcome import DEFAULT_FAILURE_THRESHOLD
from .domain.params import ParamError, check_batch_size, check_bool, check_failure_threshold, check_limit

REEMBED_CONFIG_OP = "enumerate_memories"
SYNC_CONFIG_OP = "detect_drift"  # the drift-sync job's first op takes its Config
ENRICHMENT_CONFIG_OP = "select_memories"  # the enrichment job's first op takes its Config


def reembed_run_config(
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    force: bool = False,
    replace_model_in_place: bool = False,
    failure_threshold: float = DEFAULT_FAILURE_THRESHOLD,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "batch_size": check_batch_size(batch_size),
        "force": check_bool("force", force),
    }
    if check_failure_threshold(failure_threshold) != DEFAULT_FAILURE_THRESHOLD:
        config["failure_threshold"] = failure_threshold
    if check_bool("replace_model_in_place", replace_model_in_place):
        config["replace_model_in_place"] = True
    if check_limit(limit) is not None:
        config["limit"] = limit
    return {"ops": {REEMBED_CONFIG_OP: {"config": config}}}


def sync_run_config(
    batch_size: int = DEFAULT_BATCH_SIZE, dry_run: bool = False, recover_orphans: bool = False,
    failure_threshold: float = DEFAULT_FAILURE_THRESHOLD,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "batch_size": check_batch_size(batch_size),
        "dry_run": check_bool("dry_run", dry_run),
        "recover_orphans": check_bool("recover_orphans", recover_orphans),
    }
    if check_failure_threshold(failure_threshold) != DEFAULT_FAILURE_THRESHOLD:
        config["failure_threshold"] = failure_threshold
    return {"ops": {SYNC_CONFIG_OP: {"config": config}}}


def enrichment_run_config(ids: list[str], forced: bool = False) -> dict[str, Any]:
    """ids: memory ids (deduplicated here, order kept)."""
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ParamError("ids", "ids must be a list of strings")
    unique = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
    return {
        "ops": {
            ENRICHMENT_CONFIG_OP: {
                "config": {"ids": unique, "forced": check_bool("forced", forced)}
            }
        }
    }
