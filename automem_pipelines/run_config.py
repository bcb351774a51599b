"""Run config builders: the only place that knows op names and config field names.

The schedules, the sensor, the CLI and the API all build run config here, so a renamed
field fails in a test, not in production.
"""

from __future__ import annotations

from typing import Any

from .constants import DEFAULT_BATCH_SIZE
from .domain.params import check_batch_size, check_bool, check_limit

REEMBED_CONFIG_OP = "enumerate_memories"


def reembed_run_config(
    batch_size: int = DEFAULT_BATCH_SIZE, limit: int | None = None, force: bool = False
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "batch_size": check_batch_size(batch_size),
        "force": check_bool("force", force),
    }
    if check_limit(limit) is not None:
        config["limit"] = limit
    return {"ops": {REEMBED_CONFIG_OP: {"config": config}}}
