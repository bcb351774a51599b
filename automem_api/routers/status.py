"""GET /health (public) and GET /enrichment/status (API token)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from ..auth import API
from ..health import StatusService
from ..schemas import EnrichmentStatusBody, HealthBody, error_responses

router = APIRouter()


def _service(request: Request) -> StatusService:
    return request.app.state.status


@router.get(
    "/health",
    tags=["health"],
    summary="The API, Dagster and the stores (public)",
    response_model=HealthBody,
)
async def health(request: Request) -> dict[str, Any]:
    service = _service(request)
    return await service.health_cache.get(lambda: run_in_threadpool(service.health))


@router.get(
    "/enrichment/status",
    dependencies=API,
    tags=["enrichment"],
    summary="Enrichment queue and scheduler state",
    response_model=EnrichmentStatusBody,
    responses=error_responses(401, 500, 503),
)
async def enrichment_status(request: Request) -> dict[str, Any]:
    service = _service(request)
    return await service.status_cache.get(lambda: run_in_threadpool(service.enrichment_status))
