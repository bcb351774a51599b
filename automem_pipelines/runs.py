"""Reading results of in-process runs (CLI, tests, benchmarks)."""

from __future__ import annotations

import dagster as dg


def failure_messages(result: dg.ExecuteInProcessResult) -> list[str]:
    """Each failed step's error with its chain of causes, innermost last."""
    messages = []
    for event in result.all_events:
        if not (event.is_step_failure and event.event_specific_data):
            continue
        error = event.event_specific_data.error
        parts = []
        while error is not None:
            parts.append(error.message.strip())
            error = error.cause
        messages.append(f"{event.step_key}: " + " <- ".join(parts))
    return messages
