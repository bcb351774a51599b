"""GET /admin/runs/{run_id}: a run started through this API, with its summary once finished."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from automem_pipelines.constants import TAG_REQUEST_ID, TAG_TRIGGER

from ..auth import API
from ..errors import ApiError
from ..health import iso
from ..redaction import echo, short_id
from ..runs import TRIGGER, RunService
from ..schemas import RunBody, error_responses

RUN_ID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)

router = APIRouter()


@router.get(
    "/admin/runs/{run_id}",
    dependencies=API,
    tags=["runs"],
    summary="Status of a run started through this API; its summary once finished",
    response_model=RunBody,
    responses=error_responses(401, 404, 500, 503),
)
async def admin_run(request: Request, run_id: str) -> dict[str, Any]:
    if not RUN_ID_RE.match(run_id):  # malformed ids are never sent to Dagster
        raise ApiError(404, f"No run {echo(short_id(run_id))} was started through this API")
    runs: RunService = request.app.state.runs
    run = await run_in_threadpool(runs.gateway.run, run_id)
    if run is None or run.tags.get(TAG_TRIGGER) != TRIGGER:
        raise ApiError(404, f"No run {short_id(run_id)} was started through this API")
    body: dict[str, Any] = {
        "run_id": run.run_id,
        "job": run.job,
        "status": run.status.lower(),
        "request_id": run.tags.get(TAG_REQUEST_ID),
        "created_at": iso(run.created_at),
        "started_at": iso(run.started_at),
        "ended_at": iso(run.ended_at),
        "summary": None,
        "progress": await runs.progress(run),
    }
    if run.finished:
        outcome = await runs.outcome(run)
        body["summary"] = outcome.summary
        if run.status != "SUCCESS":
            body["errors"] = outcome.errors[-5:]
    return body
