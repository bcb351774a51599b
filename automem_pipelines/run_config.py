"""Run config builders: the only place that knows op names and config field names.

The schedules, the sensor, the CLI and the API all build run config here, so a renamed
field fails in a test, not in production. Values are checked with the parameter types of
`domain.params` (the same ones the op Config classes and the API's request models use).
"""

from __future__ import annotations

import re
from typing import Any

from .constants import DEFAULT_BATCH_SIZE
from .domain.outcome import DEFAULT_FAILURE_THRESHOLD
from .domain.params import (
    BatchSize,
    ChunkSize,
    FailureThreshold,
    Flag,
    Limit,
    ParamError,
    check_value,
)

REEMBED_CONFIG_OP = "enumerate_memories"
SYNC_CONFIG_OP = "detect_drift"  # the drift-sync job's first op takes its Config
ENRICHMENT_CONFIG_OP = "select_memories"  # the enrichment job's first op takes its Config
MIGRATE_CONFIG_OP = "plan_migration"
MIGRATE_ACTIONS = ("migrate", "rollback", "finalize", "status")
_COLLECTION_NAME = re.compile(r"[A-Za-z0-9_.-]{1,255}")


def reembed_run_config(
    batch_size: int = DEFAULT_BATCH_SIZE,
    limit: int | None = None,
    force: bool = False,
    replace_model_in_place: bool = False,
    failure_threshold: float = DEFAULT_FAILURE_THRESHOLD,
    chunk_size: int | None = None,
    progress_seconds: float | None = None,
    max_cost_usd: float | None = None,
    max_tokens: int | None = None,
    plan_only: bool = False,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "batch_size": check_value(BatchSize, batch_size, "batch_size"),
        "force": check_value(Flag, force, "force"),
    }
    config.update(budget_config(max_cost_usd, max_tokens))
    if check_value(Flag, plan_only, "plan_only"):
        config["plan_only"] = True
    threshold = check_value(FailureThreshold, failure_threshold, "failure_threshold")
    if threshold != DEFAULT_FAILURE_THRESHOLD:
        config["failure_threshold"] = failure_threshold
    if check_value(Flag, replace_model_in_place, "replace_model_in_place"):
        config["replace_model_in_place"] = True
    if limit is not None:
        config["limit"] = check_value(Limit, limit, "limit")
    if chunk_size is not None:
        config["chunk_size"] = check_value(ChunkSize, chunk_size, "chunk_size")
    if progress_seconds is not None:  # seconds between progress events; 0 turns them off
        if not 0 <= progress_seconds <= 3600:
            raise ParamError("progress_seconds", "progress_seconds must be 0 to 3600")
        config["progress_seconds"] = float(progress_seconds)
    return {"ops": {REEMBED_CONFIG_OP: {"config": config}}}


def budget_config(max_cost_usd: float | None, max_tokens: int | None) -> dict[str, Any]:
    """The budget fields of a re-embed's or a sync's config (None: the settings' default)."""
    from .domain.embedding_defaults import MAX_COST_USD_LIMIT

    config: dict[str, Any] = {}
    if max_cost_usd is not None:
        if isinstance(max_cost_usd, bool) or not 0 <= max_cost_usd <= MAX_COST_USD_LIMIT:
            raise ParamError(
                "max_cost_usd", f"max_cost_usd must be 0 to {MAX_COST_USD_LIMIT:,.0f} (USD)"
            )
        config["max_cost_usd"] = float(max_cost_usd)
    if max_tokens is not None:
        config["max_tokens"] = check_value(Limit, max_tokens, "max_tokens")
    return config


def sync_run_config(
    batch_size: int = DEFAULT_BATCH_SIZE,
    dry_run: bool = False,
    recover_orphans: bool = False,
    failure_threshold: float = DEFAULT_FAILURE_THRESHOLD,
    max_cost_usd: float | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "batch_size": check_value(BatchSize, batch_size, "batch_size"),
        "dry_run": check_value(Flag, dry_run, "dry_run"),
        "recover_orphans": check_value(Flag, recover_orphans, "recover_orphans"),
        **budget_config(max_cost_usd, max_tokens),
    }
    threshold = check_value(FailureThreshold, failure_threshold, "failure_threshold")
    if threshold != DEFAULT_FAILURE_THRESHOLD:
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
                "config": {"ids": unique, "forced": check_value(Flag, forced, "forced")}
            }
        }
    }


def migrate_run_config(
    to_provider: str | None = None,
    to_model: str | None = None,
    to_dim: int | None = None,
    action: str = "migrate",
    plan: bool = False,
    max_cost_usd: float | None = None,
    max_tokens: int | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    to_collection: str | None = None,
    alias: str | None = None,
    progress_seconds: float | None = None,
    chunk_size: int | None = None,
) -> dict[str, Any]:
    """The migrate job's run config; a migration names its whole target (the rest of the
    target's validation needs the credentials: the job's first step does it)."""
    if action not in MIGRATE_ACTIONS:
        raise ParamError("action", f"action must be one of {', '.join(MIGRATE_ACTIONS)}")
    config: dict[str, Any] = {
        "action": action,
        "batch_size": check_value(BatchSize, batch_size, "batch_size"),
        **budget_config(max_cost_usd, max_tokens),
    }
    if action == "migrate":
        for name, value in (("to_provider", to_provider), ("to_model", to_model)):
            if not isinstance(value, str) or not value.strip():
                raise ParamError(name, f"{name} is required to migrate (a non-empty string)")
            config[name] = value.strip()
        if isinstance(to_dim, bool) or not isinstance(to_dim, int) or not 1 <= to_dim <= 65536:
            raise ParamError("to_dim", "to_dim is required to migrate: an integer from 1 to 65536")
        config["to_dim"] = to_dim
    for name, value in (("to_collection", to_collection), ("alias", alias)):
        if value is not None:
            if not isinstance(value, str) or not _COLLECTION_NAME.fullmatch(value):
                raise ParamError(name, f"{name} must be 1 to 255 letters, digits, '-', '_' or '.'")
            config[name] = value
    if check_value(Flag, plan, "plan"):
        config["plan_only"] = True
    if chunk_size is not None:
        config["chunk_size"] = check_value(ChunkSize, chunk_size, "chunk_size")
    if progress_seconds is not None:
        if not 0 <= progress_seconds <= 3600:
            raise ParamError("progress_seconds", "progress_seconds must be 0 to 3600")
        config["progress_seconds"] = float(progress_seconds)
    return {"ops": {MIGRATE_CONFIG_OP: {"config": config}}}
