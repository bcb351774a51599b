"""The admin HTTP API: AutoMem's admin interface, with every job run as a Dagster run.

`create_app(config)` builds the FastAPI app from its parts: the routers (`routers/`), the
run service (`runs.py`), the status service (`health.py`), the one Dagster gateway
(`gateway.py`, GraphQL over HTTP), the request-context middleware and the error handlers.
Nothing here imports or executes a job.

The OpenAPI pages (`/docs`, `/redoc`) load Swagger UI and ReDoc from the installed
`fastapi-offline` package, served under `/static-offline-docs`, never from a CDN: they work on a
machine with no network.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from . import __version__
from .audit import AuditLog
from .config import ApiConfig
from .gateway import DagsterGateway
from .handlers import install_error_handlers
from .health import StatusService
from .middleware import RequestContextMiddleware
from .ratelimit import SlidingWindowLimiter
from .redaction import Redactor
from .routers import admin, runs, status
from .runs import RunService
from .stores import GraphAccess

DOCS_STATIC_URL = "/static-offline-docs"  # Swagger UI's and ReDoc's scripts, styles and icon
MAX_BODY_BYTES = 2 * 1024 * 1024
DESCRIPTION = (
    "AutoMem's admin endpoints, with every operation run as a Dagster run launched over "
    "GraphQL. API token (AUTOMEM_API_TOKEN): `Authorization: Bearer`, `X-API-Key` or "
    "`?api_key=`; admin token (ADMIN_API_TOKEN): `X-Admin-Token`, `X-Admin-Api-Key` or "
    "`?admin_token=`, required in addition on admin endpoints."
)


def create_app(config: ApiConfig, gateway: DagsterGateway | None = None) -> FastAPI:
    app: FastAPI = FastAPIOffline(
        title="AutoMem admin API",
        version=__version__,
        description=DESCRIPTION,
        strict_content_type=False,  # AutoMem reads a body as JSON whatever its content type
        static_url=DOCS_STATIC_URL,
    )
    state = app.state
    state.config = config
    state.redactor = Redactor(config.secrets)
    state.gateway = gateway or DagsterGateway(config)
    state.graph = GraphAccess(config.settings)
    state.audit = AuditLog(config.audit_log_path, state.redactor)
    state.limiter = SlidingWindowLimiter(config.admin_rate_limit)
    state.runs = RunService(config, state.gateway)
    state.status = StatusService(config, state.gateway, state.graph, state.runs)
    app.add_middleware(
        RequestContextMiddleware,
        audit=state.audit,
        redactor=state.redactor,
        max_body_bytes=MAX_BODY_BYTES,
    )
    install_error_handlers(app, admin.BODY_MODELS)
    for router in (status.router, admin.router, runs.router):
        app.include_router(router)
    return app
