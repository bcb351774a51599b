"""Run parameters, defined once: their types, ranges and the message a bad value gets.

The Annotated types below serve every entry point: the Dagster op `Config` classes, the
run-config builders (`run_config.py`, used by the schedules, the sensor, the CLI and the API)
and the API's request models (`automem_api.schemas`), whose OpenAPI schema then shows the
same ranges. Each check names the field and the allowed range, so the same message reaches a
user whether the bad value came from the Dagster UI, a schedule, the CLI or an HTTP body.

A type refuses values of another type (`35.0` for an integer, `"true"` for a boolean): the
check runs before pydantic would coerce them.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, TypeAdapter, ValidationError, ValidationInfo

from ..constants import MAX_BATCH_SIZE

# Dagster's GraphQL Int (32-bit): a larger limit would fail inside the run.
MAX_LIMIT = 2**31 - 1


class ParamError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_range_text(lo: int, hi: int | None) -> str:
    if hi is None:
        return f"an integer of at least {lo}"
    if hi == MAX_LIMIT:
        return f"an integer of at least {lo} (at most {hi})"
    return f"an integer from {lo} to {hi}"


def check_int(field: str, value: Any, lo: int, hi: int | None = None) -> int:
    if not _is_int(value) or value < lo or (hi is not None and value > hi):
        raise ParamError(field, f"{field} must be {int_range_text(lo, hi)}, got {value!r}")
    return value


def check_bool(field: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ParamError(field, f"{field} must be true or false, got {value!r}")
    return value


def check_share(field: str, value: Any) -> float:
    """A share: a number above 0 and at most 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise ParamError(field, f"{field} must be a number above 0 and at most 1, got {value!r}")
    return float(value)


def _name(info: ValidationInfo, default: str) -> str:
    """The field's name: the model's field, else the name `check_value` was given."""
    return info.field_name or (info.context or {}).get("field") or default


def _int_check(lo: int, hi: int | None, default_name: str):
    def check(value: Any, info: ValidationInfo) -> Any:
        return check_int(_name(info, default_name), value, lo, hi)

    return BeforeValidator(check)


def _bool_check(value: Any, info: ValidationInfo) -> bool:
    return check_bool(_name(info, "value"), value)


def _share_check(value: Any, info: ValidationInfo) -> float:
    return check_share(_name(info, "failure_threshold"), value)


# -- the parameter types (each range written once) ---------------------------------------------
BatchSize = Annotated[
    int, Field(ge=1, le=MAX_BATCH_SIZE, strict=True), _int_check(1, MAX_BATCH_SIZE, "batch_size")
]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT, strict=True), _int_check(1, MAX_LIMIT, "limit")]
# Memories per re-embed step: the ids a step works through and what a retry repeats.
MIN_CHUNK_SIZE, MAX_CHUNK_SIZE = 100, 200_000
ChunkSize = Annotated[
    int,
    Field(ge=MIN_CHUNK_SIZE, le=MAX_CHUNK_SIZE, strict=True),
    _int_check(MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, "chunk_size"),
]
Flag = Annotated[bool, Field(strict=True), BeforeValidator(_bool_check)]
FailureThreshold = Annotated[float, Field(gt=0, le=1), BeforeValidator(_share_check)]


def param_error_of(exc: ValidationError) -> ParamError:
    """The first error of a validation as a ParamError (field and message)."""
    first = exc.errors(include_url=False)[0]
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, ParamError):
        return cause
    field = ".".join(str(p) for p in first.get("loc", ())) or "value"
    return ParamError(field, f"{field}: {first.get('msg', 'invalid value')}")


# -- the checks as plain functions (for code that holds one value) -----------------------------
_ADAPTERS: dict[Any, TypeAdapter] = {}


def check_value(kind: Any, value: Any, field: str | None = None) -> Any:
    """`value` validated as one of the types above (named `field` in a message); ParamError
    if it is refused."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    try:
        return adapter.validate_python(value, context={"field": field} if field else None)
    except ValidationError as exc:
        raise param_error_of(exc) from None


def check_batch_size(value: Any) -> int:
    return check_value(BatchSize, value)


def check_limit(value: Any) -> int | None:
    return None if value is None else check_value(Limit, value)


def check_failure_threshold(value: Any) -> float:
    """The share of attempted memories whose failure fails the run: above 0, at most 1."""
    return check_value(FailureThreshold, value)
