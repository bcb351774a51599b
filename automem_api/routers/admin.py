"""The admin endpoints: each launches one Dagster run.

/admin/reembed and /admin/sync are one code path (`add_job_endpoint`): the body model
validates the parameters, the run-config builder makes the run config, the run service
submits it exclusively (409 while one runs) and, with `wait`, answers the run's summary.
/enrichment/reprocess takes AutoMem's id forms.

(No `from __future__ import annotations` here: the endpoint factory annotates its handler
with the spec's model at run time, and FastAPI reads those annotations.)
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from automem_pipelines.constants import DRIFT_SYNC_JOB, ENRICHMENT_JOB, MIGRATE_JOB, REEMBED_JOB
from automem_pipelines.run_config import (
    enrichment_run_config,
    migrate_run_config,
    reembed_run_config,
    sync_run_config,
)

from ..audit import recorded_body
from ..auth import ADMIN
from ..ids import checked_ids
from ..middleware import audit_of, request_id_of
from ..runs import RunService, queued
from ..schemas import (
    MigrateRequest,
    MigrateSummary,
    QueuedRun,
    ReembedRequest,
    ReembedSummary,
    ReprocessQueued,
    ReprocessRequest,
    SyncRequest,
    SyncSummary,
    error_responses,
)

router = APIRouter()


@dataclass(frozen=True)
class JobEndpoint:
    path: str
    job: str
    body: type[BaseModel]
    run_config: Callable[..., dict[str, Any]]  # the body's fields but `wait` → run config
    summary: str
    summary_model: type[BaseModel]
    summary_description: str


def _reembed_config(plan: bool = False, **params: Any) -> dict[str, Any]:
    return reembed_run_config(plan_only=plan, **params)


JOB_ENDPOINTS = (
    JobEndpoint(
        "/admin/reembed",
        REEMBED_JOB,
        ReembedRequest,
        _reembed_config,
        "Re-embed memories (Dagster run of the re-embed job)",
        ReembedSummary,
        "With `wait`: the run's summary",
    ),
    JobEndpoint(
        "/admin/sync",
        DRIFT_SYNC_JOB,
        SyncRequest,
        sync_run_config,
        "Repair drift between FalkorDB and Qdrant (Dagster run of the drift-sync job)",
        SyncSummary,
        "With `wait`: dry_run, already_synced or complete",
    ),
    JobEndpoint(
        "/admin/migrate",
        MIGRATE_JOB,
        MigrateRequest,
        migrate_run_config,
        "Migrate to another embedding model with no recall downtime (Dagster run of the "
        "migrate job: plan → build → backfill → catch up → verify → cut over), or roll it "
        "back, or finalize it",
        MigrateSummary,
        "With `wait` (or `plan`): the migration's state, or its plan",
    ),
)
REPROCESS_PATH = "/enrichment/reprocess"
# The request model of each path that takes a body (error messages, audit of refused bodies).
BODY_MODELS: dict[str, type[BaseModel]] = {
    **{spec.path: spec.body for spec in JOB_ENDPOINTS},
    REPROCESS_PATH: ReprocessRequest,
}


def add_job_endpoint(spec: JobEndpoint) -> None:
    Model = spec.body  # noqa: N806 - the handler's body type, read by FastAPI

    async def launch(request: Request, body: Annotated[Model, Body()] = Model()) -> JSONResponse:  # noqa: B008 - no body: the defaults
        sent = body.model_dump(exclude_unset=True)
        audit_of(request)["parameters"] = recorded_body(sent, spec.body.model_fields)
        params = body.model_dump(exclude={"wait"})
        runs: RunService = request.app.state.runs
        run_id = await runs.submit(request, spec.job, spec.run_config(**params))
        if body.wait or params.get("plan"):  # a plan is answered, never queued
            return await runs.wait_answer(request, spec.job, run_id)
        return queued(request, spec.job, run_id, params)

    launch.__name__ = "admin_" + spec.path.rsplit("/", 1)[-1]  # operationId as before
    router.add_api_route(
        spec.path,
        launch,
        methods=["POST"],
        dependencies=ADMIN,
        tags=["admin"],
        summary=spec.summary,
        status_code=202,
        responses={
            200: {"model": spec.summary_model, "description": spec.summary_description},
            202: {"model": QueuedRun, "description": "Run queued"},
            **error_responses(400, 401, 403, 409, 413, 422, 429, 500, 503),
        },
    )


for _spec in JOB_ENDPOINTS:
    add_job_endpoint(_spec)


@router.post(
    REPROCESS_PATH,
    dependencies=ADMIN,
    tags=["admin"],
    summary="Force re-enrichment of the given memories (one Dagster run)",
    status_code=202,
    responses={
        202: {"model": ReprocessQueued, "description": "Run queued"},
        **error_responses(400, 401, 403, 413, 422, 429, 500, 503),
    },
)
async def enrichment_reprocess(
    request: Request,
    body: Annotated[ReprocessRequest, Body()] = ReprocessRequest(),  # noqa: B008 - no body: the defaults
    ids: Annotated[
        str | None, Query(description="Comma-separated ids, if the body has none")
    ] = None,
) -> JSONResponse:
    listed = body.ids
    if listed is None and ids is not None:
        try:
            listed = ReprocessRequest.model_validate({"ids": ids}).ids
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False)) from None
    config = request.app.state.config
    unique = checked_ids(listed, config.max_reprocess_ids, request.app.state.redactor)
    audit_of(request)["parameters"] = {"count": len(unique), "ids": unique[:20]}
    runs: RunService = request.app.state.runs
    run_id = await runs.submit(request, ENRICHMENT_JOB, enrichment_run_config(unique, forced=True))
    audit_of(request)["outcome"] = "queued"
    return JSONResponse(
        {
            "status": "queued",
            "count": len(unique),
            "ids": unique,
            "run_id": run_id,
            "request_id": request_id_of(request),
        },
        status_code=202,
    )
