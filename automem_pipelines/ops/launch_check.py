"""Run configs refused before the run starts.

Dagster's config schema checks types only; the ranges of the run parameters live in the op
Configs (``CheckedConfig``), which Dagster builds as each op starts. The stack's run launcher
asks here first, so a run launched with an out-of-range value (the Launchpad's `batch_size: 0`)
is failed with one line naming the field and its range, before any step starts: no step, no
read or write, no stack trace. Runs launched another way still fail in their first op with
the same message.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg


def _configs_by_op() -> dict[str, type]:
    from .drift import DriftSyncConfig
    from .enrichment import EnrichmentConfig
    from .reembed import ReembedConfig

    return {
        "enumerate_memories": ReembedConfig,  # reembed_job and reembed_partitioned_job
        "detect_drift": DriftSyncConfig,
        "select_memories": EnrichmentConfig,
    }


def refused_run_config(run_config: Mapping[str, Any] | None) -> str | None:
    """The one-line reason an op Config refuses this run config, else None (also for what
    is not ours to judge: ops without a checked Config, a shape Dagster itself refuses)."""
    ops = (run_config or {}).get("ops")
    if not isinstance(ops, Mapping):
        return None
    configs = _configs_by_op()
    for op_name, entry in ops.items():
        config_class = configs.get(op_name)
        values = entry.get("config") if isinstance(entry, Mapping) else None
        if config_class is None or not isinstance(values, Mapping):
            continue
        try:
            config_class(**values)
        except dg.Failure as exc:
            return exc.description
        except Exception:  # noqa: BLE001 - not a range: Dagster's own checks answer for it
            continue
    return None
