"""Validation of run parameters, shared by the Dagster Config models and the API.

Each check names the field and the allowed range, so the same message reaches a user
whether the bad value came from the Dagster UI, a schedule or an HTTP body.
"""

from __future__ import annotations

from typing import Any

from ..constants import MAX_BATCH_SIZE


class ParamError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(field: str, value: Any, lo: int, hi: int | None = None) -> int:
    allowed = f"an integer from {lo} to {hi}" if hi is not None else f"an integer of at least {lo}"
    if not _is_int(value) or value < lo or (hi is not None and value > hi):
        raise ParamError(field, f"{field} must be {allowed}, got {value!r}")
    return value


def check_batch_size(value: Any) -> int:
    return check_int("batch_size", value, 1, MAX_BATCH_SIZE)


def check_limit(value: Any) -> int | None:
    if value is None:
        return None
    return check_int("limit", value, 1)


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParamError(field, f"{field} must be true or false, got {value!r}")
    return value


def check_failure_threshold(value: Any) -> float:
    """The share of attempted memories whose failure fails the run: above 0, at most 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ParamError(
            "failure_threshold",
            f"failure_threshold must be a number above 0 and at most 1, got {value!r}",
        )
    return float(value)
