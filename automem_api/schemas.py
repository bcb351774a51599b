"""Request and response shapes, for the OpenAPI document.

Bodies are parsed by hand in app.py (AutoMem accepts an empty body, a comma string of ids,
`?ids=`; every bad value must give a 400 naming the field, not FastAPI's 422), and validated
by the pipelines' run-config builders, so the limits below and the ones Dagster enforces
are the same ones.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from automem_pipelines.constants import DEFAULT_BATCH_SIZE, MAX_BATCH_SIZE


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReembedRequest(_Strict):
    batch_size: int = Field(
        DEFAULT_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE, description="Texts per embedding API request."
    )
    limit: int | None = Field(
        None, ge=1, le=2**31 - 1, description="At most this many memories, newest first."
    )
    force: bool = Field(False, description="Re-embed even memories whose vector is up to date.")
    wait: bool = Field(
        False,
        description="Wait (bounded by AUTOMEM_API_WAIT_TIMEOUT_SECONDS) and answer 200 with the "
        "run's summary instead of 202 with its id.",
    )


class SyncRequest(_Strict):
    batch_size: int = Field(DEFAULT_BATCH_SIZE, ge=1, le=MAX_BATCH_SIZE)
    dry_run: bool = Field(False, description="Report drift without changing anything.")
    recover_orphans: bool = Field(False, description="Also recover orphaned vectors.")
    wait: bool = Field(False, description="As for /admin/reembed.")


MemoryId = Annotated[str, Field(min_length=1, max_length=256)]


class ReprocessRequest(_Strict):
    ids: list[MemoryId] | str = Field(
        description="Memory ids: a non-empty list of strings (or a comma-separated string); "
        "each at most 256 characters without control or format characters, at most 10,000 "
        "distinct ids.",
        min_length=1,
    )


def body_schema(model: type[BaseModel], required: bool = False) -> dict[str, Any]:
    """openapi_extra for a handler that reads its JSON body itself."""
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": model.model_json_schema()}},
        }
    }


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


class RunBody(BaseModel):
    model_config = ConfigDict(extra="allow")
    run_id: str
    job: str
    status: str = Field(examples=["queued", "started", "success", "failure"])
    request_id: str | None
    summary: dict[str, Any] | None = None
    errors: list[str] | None = None


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
