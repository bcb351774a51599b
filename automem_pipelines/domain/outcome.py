"""When a run that finished its steps has still failed: too many of its memories failed.

A store-level fault already fails a run (the step's retries, then the run). Per-memory
failures (a provider refusing or timing out on every batch, a wrong dimension) are counted and
reported; once they reach ``failure_threshold`` of the memories the run attempted, the run
fails too, so that schedules, sensors, alerting and the CLI's exit status see it. The default,
1.0, fails a run only when every memory it attempted failed.
"""

from __future__ import annotations

from typing import Any

DEFAULT_FAILURE_THRESHOLD = 1.0


def apply_threshold(
    summary: dict[str, Any], attempted: int, failed: int, threshold: float, what: str
) -> str | None:
    """Mark the summary (``run_failed``; ``status`` "failed" and ``error`` when it failed) and
    return the run's failure message, or None. AutoMem's fields are kept as they are."""
    failed_run = failed > 0 and attempted > 0 and failed / attempted >= threshold
    summary["run_failed"] = failed_run
    summary["failure_threshold"] = threshold
    if not failed_run:
        return None
    message = (
        f"{failed} of the {attempted} memories this run tried to {what} failed "
        f"({failed / attempted:.0%}, failure_threshold {threshold:g})"
    )
    if summary.get("last_error"):
        message += f"; last error: {str(summary['last_error'])[:300]}"
    summary["status"] = "failed"
    summary["error"] = message
    return message
