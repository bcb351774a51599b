"""Request and response shapes: the request models are what FastAPI parses and validates.

The request models use the parameter types of `automem_pipelines.domain.params` (the same
ones the op Config classes and the run-config builders use), so the OpenAPI schema, the API
and the jobs accept the same values. Unknown fields are refused (`extra="forbid"`); a type
check runs before any coercion (`35.0` is no integer, `"true"` no boolean). A bad body gets
a 400 naming the field (`handlers.py` renders pydantic's errors in AutoMem's envelope).
AutoMem's forms are kept: an empty body means defaults, a body is read as JSON whatever its
declared content type, ids may be a list or a comma string.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

from automem_pipelines.constants import DEFAULT_BATCH_SIZE
from automem_pipelines.domain.embedding_defaults import MAX_COST_USD, MAX_COST_USD_LIMIT
from automem_pipelines.domain.params import BatchSize, Flag, Limit

from .ids import MAX_ID_LENGTH, normalize_ids

NOT_JSON = "Request body must be a JSON object (it is not valid JSON)"
NOT_AN_OBJECT = "Request body must be a JSON object"


def _max_cost_usd(value: Any) -> Any:
    """A number of USD in range, checked before any coercion ("5" and true are refused)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise PydanticCustomError(
            "max_cost_usd", f"max_cost_usd must be a number of USD, 0 to {MAX_COST_USD_LIMIT:,.0f}"
        )
    if not 0 <= value <= MAX_COST_USD_LIMIT:
        raise PydanticCustomError(
            "max_cost_usd",
            f"max_cost_usd must be 0 to {MAX_COST_USD_LIMIT:,.0f} (USD), got {value:g}",
        )
    return float(value)


class RequestBody(BaseModel):
    """A JSON object with only the declared fields."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _json_object(cls, data: Any) -> Any:
        if isinstance(data, (bytes, str)):  # sent with another content type: read as JSON
            try:
                data = json.loads(data) if data.strip() else {}
            except (ValueError, RecursionError):
                raise PydanticCustomError("json_invalid", NOT_JSON) from None
        if not isinstance(data, dict):
            raise PydanticCustomError("json_object", NOT_AN_OBJECT)
        return data


WAIT_DESCRIPTION = (
    "Wait (bounded by AUTOMEM_API_WAIT_TIMEOUT_SECONDS) and answer 200 with the run's summary "
    "instead of 202 with its id."
)


class ReembedRequest(RequestBody):
    batch_size: BatchSize = Field(
        DEFAULT_BATCH_SIZE, description="Texts per embedding API request."
    )
    limit: Limit | None = Field(None, description="At most this many memories, newest first.")
    force: Flag = Field(False, description="Re-embed even memories whose vector is up to date.")
    plan: Flag = Field(
        False,
        description="Answer the plan (memories to embed, tokens, cost_usd, seconds) without "
        "embedding anything: a plan-only run, waited for whatever `wait` says.",
    )
    max_cost_usd: float | None = Field(
        None,
        ge=0,
        le=MAX_COST_USD_LIMIT,
        description=f"Refuse the run before any provider call (422, with the estimate) when "
        f"its estimated cost is above this, 0 to {MAX_COST_USD_LIMIT:,.0f} USD (default "
        f"REEMBED_MAX_COST_USD, {MAX_COST_USD:g}).",
    )
    max_tokens: Limit | None = Field(
        None,
        description="Refuse the run before any provider call when it would embed more tokens "
        "(default REEMBED_MAX_TOKENS, unset: no token budget).",
    )
    wait: Flag = Field(False, description=WAIT_DESCRIPTION)

    _max_cost = field_validator("max_cost_usd", mode="before")(lambda v: _max_cost_usd(v))


class MigrateRequest(RequestBody):
    action: Literal["migrate", "rollback", "finalize", "status"] = Field(
        "migrate",
        description="migrate: start or continue the migration to to_provider/to_model/to_dim; "
        "rollback: readers back to the old collection; finalize: delete the old collection "
        "after a confirmed cutover; status: the migration's state (stage, done/total, "
        "collections, target identity, what the new collection still lacks), read-only.",
    )
    to_provider: str | None = Field(
        None, max_length=32, description="Target provider: openai, voyage, ollama or local."
    )
    to_model: str | None = Field(None, max_length=200, description="Target model.")
    to_dim: int | None = Field(None, ge=1, le=65536, description="Target vector size, 1 to 65536.")
    to_collection: str | None = Field(
        None,
        max_length=255,
        description="The new collection (default <collection>__<model>_<dim>).",
    )
    alias: str | None = Field(
        None, max_length=255, description="An alias the readers resolve, switched at cutover."
    )
    batch_size: BatchSize = Field(
        DEFAULT_BATCH_SIZE, description="Texts per embedding API request."
    )
    plan: Flag = Field(
        False,
        description="Answer the plan (memories to embed, tokens, cost_usd, seconds) without "
        "any provider call or write.",
    )
    max_cost_usd: float | None = Field(
        None,
        ge=0,
        le=MAX_COST_USD_LIMIT,
        description=f"Refuse before any provider call (422, with the estimate) above this, 0 to "
        f"{MAX_COST_USD_LIMIT:,.0f} USD (default REEMBED_MAX_COST_USD, {MAX_COST_USD:g}).",
    )
    max_tokens: Limit | None = Field(
        None, description="Refuse before any provider call above this many tokens."
    )
    wait: Flag = Field(False, description=WAIT_DESCRIPTION)

    _max_cost = field_validator("max_cost_usd", mode="before")(lambda v: _max_cost_usd(v))


class SyncRequest(RequestBody):
    batch_size: BatchSize = Field(
        DEFAULT_BATCH_SIZE, description="Texts per embedding API request."
    )
    dry_run: Flag = Field(False, description="Report drift without changing anything.")
    recover_orphans: Flag = Field(False, description="Also recover orphaned vectors.")
    max_cost_usd: float | None = Field(
        None,
        ge=0,
        le=MAX_COST_USD_LIMIT,
        description=f"Refuse the vector repair before any provider call when its estimated "
        f"cost is above this, 0 to {MAX_COST_USD_LIMIT:,.0f} USD (default REEMBED_MAX_COST_USD, "
        f"{MAX_COST_USD:g}).",
    )
    max_tokens: Limit | None = Field(
        None, description="Refuse the vector repair when it would embed more tokens than this."
    )
    wait: Flag = Field(False, description=WAIT_DESCRIPTION)

    _max_cost = field_validator("max_cost_usd", mode="before")(lambda v: _max_cost_usd(v))


MemoryId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]


class ReprocessRequest(RequestBody):
    ids: list[MemoryId] | str | None = Field(
        None,
        description="Memory ids: a non-empty list of strings (or a comma-separated string; "
        "without ids in the body, `?ids=`); each at most 256 characters without control or "
        "format characters, at most 10,000 distinct ids.",
    )

    @field_validator("ids", mode="before")
    @classmethod
    def _ids(cls, value: Any) -> list[str] | None:
        return normalize_ids(value)


class ErrorBody(BaseModel):
    status: str = Field("error", examples=["error"])
    code: int = Field(examples=[401])
    message: str = Field(examples=["Unauthorized"])
    error: str = Field(examples=["Unauthorized"])


class QueuedRun(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(examples=["queued"])
    run_id: str
    request_id: str
    job: str


class ReembedSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(examples=["complete"])
    processed: int
    failed: int
    total: int
    batch_size: int
    metadata_preserved: bool
    run_id: str
    request_id: str


class MigrateSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(examples=["planned", "cut_over", "confirmed", "rolled_back", "finalized"])
    action: str
    run_id: str
    request_id: str


class SyncSummary(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(examples=["dry_run", "already_synced", "complete"])
    falkordb_count: int
    qdrant_count: int
    run_id: str
    request_id: str


class ReprocessQueued(BaseModel):
    status: str = Field(examples=["queued"])
    count: int
    ids: list[str]
    run_id: str
    request_id: str


class EnrichmentStatusBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(examples=["running", "stopped"])
    queue_size: int
    pending: int
    inflight: int
    max_attempts: int
    stats: dict[str, Any]


class RunProgressBody(BaseModel):
    phase: str = Field(examples=["reembed_chunk", "detect_drift", "repair_vectors"])
    done: int
    total: int
    rate_per_second: float
    eta_seconds: float | None


class RunBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    run_id: str
    job: str
    status: str = Field(examples=["queued", "started", "success", "failure"])
    request_id: str | None
    summary: dict[str, Any] | None = None
    errors: list[str] | None = None
    progress: RunProgressBody | None = Field(
        None,
        description="While the run is going: the step doing the work (phase) and the run's "
        "done/total over it, from its progress events; null before the first one and once "
        "the run has finished.",
    )


class HealthBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    status: str = Field(examples=["healthy", "degraded"])
    falkordb: str
    qdrant: str
    memory_count: int | None
    vector_count: int | None
    sync_status: str
    dagster: str
    timestamp: str


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorBody} for code in codes}
