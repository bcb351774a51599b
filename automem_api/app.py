"""The admin HTTP API: AutoMem's admin interface, with every job run as a Dagster run.

`create_app(config)` builds the FastAPI app. Handlers validate parameters with the
pipelines' run-config builders, then talk to the Dagster webserver through `launcher`
(GraphQL over HTTP); nothing here imports or executes a job.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import time
import unicodedata
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from automem_pipelines.constants import (
    DEFAULT_BATCH_SIZE,
    DRIFT_SYNC_JOB,
    ENRICHMENT_JOB,
    REEMBED_JOB,
    SUMMARY_OPS,
    TAG_REQUEST_ID,
    TAG_TRIGGER,
)
from automem_pipelines.domain.params import ParamError, check_bool
from automem_pipelines.run_config import enrichment_run_config, reembed_run_config, sync_run_config
from automem_pipelines.stores.graph import GraphUnavailableError

from . import __version__
from .audit import ADMIN_PATHS, AuditLog, recorded_body, recorded_query
from .auth import (
    extract_admin_token,
    extract_api_token,
    fingerprint,
    require_admin_token,
    require_api_token,
)
from .config import ApiConfig
from .errors import ApiError, error_response
from .launcher import DagsterLauncher, DagsterUnavailableError, LaunchError, RunInfo, RunOutcome
from .ratelimit import SlidingWindowLimiter, retry_after_header
from .redaction import Redactor, clip, echo, short_id
from .schemas import (
    EnrichmentStatusBody,
    HealthBody,
    QueuedRun,
    ReembedRequest,
    ReembedSummary,
    ReprocessQueued,
    ReprocessRequest,
    RunBody,
    SyncRequest,
    SyncSummary,
    body_schema,
    error_responses,
)
from .stores import GraphAccess, embedding_identity, qdrant_server_view

TRIGGER = "api"
MAX_BODY_BYTES = 2 * 1024 * 1024
MAX_ID_LENGTH = 256  # characters per memory id (AutoMem's are 36-character UUIDs)
MAX_LOGGED_PATH = 120
MAX_LIMIT = 2**31 - 1  # Dagster's GraphQL Int; larger values would fail inside the run
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
RUN_ID_RE = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
JOB_LABELS = {REEMBED_JOB: "re-embed", DRIFT_SYNC_JOB: "drift-sync", ENRICHMENT_JOB: "enrichment"}
REEMBED_FIELDS = ("batch_size", "limit", "force", "wait")
SYNC_FIELDS = ("batch_size", "dry_run", "recover_orphans", "wait")
# Control (Cc), format (Cf: zero-width, bidi overrides) and lone surrogate (Cs) characters, and
# the Unicode line/paragraph separators: nothing a memory id holds, all trouble in a run.
FORBIDDEN_ID_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
access_log = logging.getLogger("automem_api.access")


# -- small helpers ---------------------------------------------------------------------------
class TtlCache:
    """Reuse a computed answer for `ttl` seconds; concurrent callers share one computation."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._value: Any = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def get(self, compute: Callable[[], Awaitable[Any]]) -> Any:
        if self.ttl <= 0:
            return await compute()
        if time.monotonic() < self._expires:
            return self._value
        async with self._lock:
            if time.monotonic() < self._expires:
                return self._value
            value = await compute()
            self._value, self._expires = value, time.monotonic() + self.ttl
            return value


class OutcomeCache:
    """Finished runs never change: keep their outcomes (bounded)."""

    def __init__(self, size: int = 256):
        self.size = size
        self._items: OrderedDict[str, RunOutcome] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, run_id: str) -> RunOutcome | None:
        with self._lock:
            return self._items.get(run_id)

    def put(self, run_id: str, outcome: RunOutcome) -> None:
        with self._lock:
            self._items[run_id] = outcome
            while len(self._items) > self.size:
                self._items.popitem(last=False)


def iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat() if ts else None


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def audit_of(request: Request) -> dict[str, Any]:
    return request.scope.setdefault("state", {}).setdefault("audit", {})


def request_id_of(request: Request) -> str:
    return request.scope.setdefault("state", {}).setdefault("request_id", uuid.uuid4().hex)


async def read_json_object(request: Request) -> dict[str, Any]:
    """AutoMem accepts a missing body as {}; anything present must be a JSON object."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"Request body is larger than {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw.strip():
        return {}
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "Request body must be a JSON object (it is not valid JSON)") from None
    if not isinstance(data, dict):
        raise ApiError(400, "Request body must be a JSON object")
    return data


def reject_unknown(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(k for k in body if k not in allowed)
    if unknown:
        shown = ", ".join(clip(k, 40) for k in unknown[:5]) + (", …" if len(unknown) > 5 else "")
        raise ApiError(
            400,
            f"Unknown field(s): {shown}; accepted: {', '.join(allowed)}",
            extra={"field": clip(unknown[0], 40)},
        )


def param_error(exc: ParamError) -> ApiError:
    return ApiError(400, str(exc), extra={"field": exc.field})


def ids_error(message: str) -> ApiError:
    return ApiError(400, message, extra={"field": "ids"})


def check_id(index: int, value: str, redactor: Redactor) -> None:
    """One stripped, non-empty id: bounded length, printable, not a configured secret."""
    if len(value) > MAX_ID_LENGTH:
        raise ids_error(
            f"ids[{index}] is {len(value)} characters long; ids must be at most {MAX_ID_LENGTH} "
            "characters each"
        )
    for position, char in enumerate(value):
        if unicodedata.category(char) in FORBIDDEN_ID_CATEGORIES:
            raise ids_error(
                f"ids[{index}] contains a control character (U+{ord(char):04X} at position "
                f"{position}); ids must be printable text without control, format or "
                "line-separator characters"
            )
    if redactor.contains_secret(value):
        raise ids_error(
            f"ids[{index}] contains a configured credential (an API, admin or service token); "
            "credentials are never stored in a run"
        )


def parse_ids(
    body: dict[str, Any], query_ids: str | None, max_ids: int, redactor: Redactor | None = None
) -> list[str]:
    """ids from the body (list of strings, or a comma string), else `?ids=a,b`; stripped,
    deduplicated and sorted as AutoMem answers them, every one checked (`check_id`)."""
    redactor = redactor or Redactor(())
    value: Any = body.get("ids") if "ids" in body else query_ids
    if value is None:
        raise ids_error("No memory ids provided for reprocessing")
    if isinstance(value, str):
        items = [part.strip() for part in value.split(",")]
        ids = [i for i in items if i]
    elif isinstance(value, list):
        ids = []
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                raise ids_error(f"ids[{index}] must be a non-empty string, got {echo(item)}")
            ids.append(item.strip())
    else:
        raise ids_error("ids must be a list of strings or a comma-separated string")
    if not ids:
        raise ids_error("No memory ids provided for reprocessing")
    for index, item in enumerate(ids):
        check_id(index, item, redactor)
    unique = sorted(set(ids))
    if len(unique) > max_ids:
        raise ids_error(f"at most {max_ids} distinct ids per request, got {len(unique)}")
    return unique


def loggable_path(scope, redactor: Redactor) -> str:
    """The route template when a route matched (never its values); else the decoded path,
    secrets scrubbed, quoted (no control characters reach the log) and clipped. The query
    string is never logged: `?…` only says there was one."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        path = redactor.scrub(scope.get("path") or "")
    path = clip(quote(path, safe="/[]{}:@!$&'()*+,;=-._~"), MAX_LOGGED_PATH)
    return path + "?…" if scope.get("query_string") else path


# -- middleware -------------------------------------------------------------------------------
class RequestContextMiddleware:
    """Request id (X-Request-ID, echoed) for every request; the audit line for admin calls."""

    def __init__(self, app, audit: AuditLog, redactor: Redactor):
        self.app = app
        self.audit = audit
        self.redactor = redactor

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        safe = REQUEST_ID_RE.match(given) and not self.redactor.contains_secret(given)
        request_id = given if safe else uuid.uuid4().hex
        state["request_id"] = request_id
        state["audit"] = {}
        status: dict[str, int] = {}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [
                    (b"x-request-id", request_id.encode())
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            code = status.get("code", 500)
            if scope.get("path") in ADMIN_PATHS:
                self._write_audit(scope, state, code)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    '%s - "%s %s HTTP/%s" %d request_id=%s',
                    f"{client[0]}:{client[1]}" if client else "-", scope.get("method"),
                    loggable_path(scope, self.redactor), scope.get("http_version", "1.1"), code,
                    request_id,
                )  # fmt: skip

    def _write_audit(self, scope, state: dict[str, Any], code: int) -> None:
        request = Request(scope)
        audit = state.get("audit") or {}
        entry = {
            "client_ip": client_ip(request),
            "method": scope.get("method"),
            "endpoint": scope.get("path"),
            "request_id": state.get("request_id"),
            "token_fingerprint": fingerprint(extract_admin_token(request)),
            "api_token_fingerprint": fingerprint(extract_api_token(request)),
            "query": recorded_query(request.query_params.multi_items()),
            "parameters": audit.get("parameters"),
            "run_id": audit.get("run_id"),
            "status_code": code,
            "outcome": clip(audit.get("outcome") or ("ok" if code < 400 else "error"), 400),
        }
        try:
            self.audit.write(entry)
        except OSError:  # an unwritable audit log must not turn answers into 500s
            pass


# -- the app ----------------------------------------------------------------------------------
def create_app(config: ApiConfig, launcher: DagsterLauncher | None = None) -> FastAPI:
    app = FastAPI(
        title="AutoMem admin API",
        version=__version__,
        description=(
            "AutoMem's admin endpoints, with every operation run as a Dagster run launched "
            "over GraphQL. API token (AUTOMEM_API_TOKEN): `Authorization: Bearer`, `X-API-Key` "
            "or `?api_key=`; admin token (ADMIN_API_TOKEN): `X-Admin-Token`, `X-Admin-Api-Key` "
            "or `?admin_token=`, required in addition on admin endpoints."
        ),
    )
    app.state.config = config
    app.state.redactor = redactor = Redactor(config.secrets)
    app.state.launcher = launcher or DagsterLauncher(config)
    app.state.graph = GraphAccess(config.settings)
    app.state.audit = AuditLog(config.audit_log_path, redactor)
    app.state.limiter = SlidingWindowLimiter(config.admin_rate_limit)
    app.state.started = time.monotonic()
    app.state.job_locks = {job: asyncio.Lock() for job in (REEMBED_JOB, DRIFT_SYNC_JOB)}
    app.state.outcomes = OutcomeCache()
    app.state.health_cache = TtlCache(config.status_cache_seconds)
    app.state.status_cache = TtlCache(config.status_cache_seconds)
    app.add_middleware(RequestContextMiddleware, audit=app.state.audit, redactor=redactor)
    _install_error_handlers(app)
    _add_routes(app)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    # Every message leaves through redactor.message: configured secrets replaced, run ids
    # (any UUID) cut to 8 characters, length bounded; user values inside are clipped already.
    # Other string fields of an error (field names, run errors) have the secrets scrubbed.
    redactor: Redactor = app.state.redactor
    safe = redactor.message

    def safe_extra(value: Any) -> Any:
        if isinstance(value, str):
            return redactor.scrub(value)
        if isinstance(value, list):
            return [safe_extra(v) for v in value]
        if isinstance(value, dict):
            return {k: safe_extra(v) for k, v in value.items()}
        return value

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError):
        message = safe(exc.message)
        audit = audit_of(request)
        audit.setdefault(
            "outcome", f"rejected: {message}" if exc.status_code < 500 else f"error: {message}"
        )
        return error_response(exc.status_code, message, exc.headers, safe_extra(exc.extra))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        message = safe(exc.detail) if isinstance(exc.detail, str) else "HTTP error"
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = exc.errors()
        first = errors[0] if errors else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        message = (
            f"{clip(where, 40)}: {first.get('msg', 'invalid value')}"
            if where
            else first.get("msg", "invalid request")
        )
        return error_response(400, safe(message))

    @app.exception_handler(DagsterUnavailableError)
    async def dagster_down(request: Request, exc: DagsterUnavailableError):
        audit_of(request).setdefault("outcome", "error: Dagster unavailable")
        return error_response(503, safe(f"{exc}; no run was started"), {"Retry-After": "10"})

    @app.exception_handler(LaunchError)
    async def launch_error(request: Request, exc: LaunchError):
        message = safe(exc.message)
        audit_of(request).setdefault("outcome", f"error: {exc.kind or 'launch'}: {message}")
        return error_response(
            exc.status_code, message, extra={"dagster_error": exc.kind} if exc.kind else None
        )

    @app.exception_handler(GraphUnavailableError)
    async def graph_down(request: Request, exc: GraphUnavailableError):
        return error_response(503, "FalkorDB is unavailable")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception):
        return error_response(500, "Internal server error")


async def admin_rate_limit(request: Request) -> None:
    """Between the API-token check and the admin-token check (see ratelimit.py)."""
    wait = request.app.state.limiter.hit(client_ip(request))
    if wait is not None:
        raise ApiError(
            429, "Too many admin requests; retry later",
            headers={"Retry-After": retry_after_header(wait)},
        )  # fmt: skip


API = [Depends(require_api_token)]
ADMIN = [Depends(require_api_token), Depends(admin_rate_limit), Depends(require_admin_token)]


def _add_routes(app: FastAPI) -> None:
    config: ApiConfig = app.state.config
    launcher: DagsterLauncher = app.state.launcher
    graph: GraphAccess = app.state.graph
    settings = config.settings

    # -- launching ----------------------------------------------------------------------------
    def tags_for(request: Request) -> dict[str, str]:
        return {TAG_TRIGGER: TRIGGER, TAG_REQUEST_ID: request_id_of(request)}

    async def submit(request: Request, job: str, run_config: dict[str, Any]) -> str:
        run_id = await run_in_threadpool(launcher.submit, job, run_config, tags_for(request))
        audit_of(request)["run_id"] = run_id
        return run_id

    async def submit_exclusive(request: Request, job: str, run_config: dict[str, Any]) -> str:
        """409 with the active run's id if the job is queued or running (whoever started it)."""
        async with app.state.job_locks[job]:
            active = await run_in_threadpool(launcher.active_runs, job)
            if active:
                running = next(
                    (r for r in active if r.status in ("STARTING", "STARTED")), active[-1]
                )
                audit_of(request).update(run_id=running.run_id, outcome="conflict")
                label = JOB_LABELS[job]
                raise ApiError(
                    409,
                    f"A {label} run is already {running.status.lower()}: "
                    f"{short_id(running.run_id)}",
                    extra={"run_id": running.run_id, "run_status": running.status.lower()},
                )
            return await submit(request, job, run_config)

    async def outcome_of(run: RunInfo) -> RunOutcome:
        cached = app.state.outcomes.get(run.run_id)
        if cached is None:
            cached = await run_in_threadpool(launcher.outcome, run.run_id, run.job)
            if run.finished:
                app.state.outcomes.put(run.run_id, cached)
        return cached

    async def wait_for(request: Request, job: str, run_id: str) -> JSONResponse:
        deadline = time.monotonic() + config.wait_timeout_seconds
        status = "QUEUED"
        while True:
            status = await run_in_threadpool(launcher.run_status, run_id) or status
            if status in ("SUCCESS", "FAILURE", "CANCELED") or time.monotonic() >= deadline:
                break
            await asyncio.sleep(config.wait_poll_seconds)
        request_id = request_id_of(request)
        label = JOB_LABELS[job]
        if status not in ("SUCCESS", "FAILURE", "CANCELED"):
            audit_of(request)["outcome"] = f"still {status.lower()} after wait"
            return JSONResponse(
                {
                    "status": status.lower(), "run_id": run_id, "request_id": request_id, "job": job,
                    "message": f"the {label} run is still {status.lower()} after "
                    f"{config.wait_timeout_seconds:g}s; poll /admin/runs/{run_id}",
                },
                status_code=202,
            )  # fmt: skip
        run = RunInfo(run_id, job, status)
        outcome = await outcome_of(run)
        if status == "SUCCESS" and outcome.summary is not None:
            audit_of(request)["outcome"] = f"success: {outcome.summary.get('status')}"
            return JSONResponse({**outcome.summary, "run_id": run_id, "request_id": request_id})
        if status == "FAILURE" and (outcome.summary or {}).get("run_failed"):
            # Failed by its failure threshold after finishing its work: AutoMem's fields as
            # AutoMem answers provider failures (200, with failed counts and ids), plus the
            # run's status and why it failed.
            audit_of(request)["outcome"] = "run failure: failure threshold reached"
            return JSONResponse({**outcome.summary, "run_id": run_id, "request_id": request_id,
                                 "run_status": "failure"})  # fmt: skip
        if status == "SUCCESS":
            message = (
                f"the {label} run {short_id(run_id)} succeeded but its summary could not be read"
            )
        else:
            reason = outcome.errors[-1] if outcome.errors else "no error message recorded"
            message = f"the {label} run {short_id(run_id)} ended {status.lower()}: {reason}"
        audit_of(request)["outcome"] = f"run {status.lower()}"
        raise ApiError(
            500, message,
            extra={"run_id": run_id, "run_status": status.lower(), "errors": outcome.errors[-5:]},
        )  # fmt: skip

    def queued(request: Request, job: str, run_id: str, extra: dict[str, Any]) -> JSONResponse:
        audit_of(request).setdefault("outcome", "queued")
        body = {
            "status": "queued",
            "run_id": run_id,
            "request_id": request_id_of(request),
            "job": job,
        }
        return JSONResponse({**body, **extra}, status_code=202)

    # -- admin endpoints -------------------------------------------------------------------------
    @app.post(
        "/admin/reembed",
        dependencies=ADMIN,
        tags=["admin"],
        summary="Re-embed memories (Dagster run of the re-embed job)",
        status_code=202,
        openapi_extra=body_schema(ReembedRequest),
        responses={
            200: {"model": ReembedSummary, "description": "With `wait`: the run's summary"},
            202: {"model": QueuedRun, "description": "Run queued"},
            **error_responses(400, 401, 403, 409, 413, 422, 429, 500, 503),
        },
    )
    async def admin_reembed(request: Request):
        body = await read_json_object(request)
        audit_of(request)["parameters"] = recorded_body(body, REEMBED_FIELDS)
        reject_unknown(body, REEMBED_FIELDS)
        try:
            wait = check_bool("wait", body.get("wait", False))
            params = {
                "batch_size": body.get("batch_size", DEFAULT_BATCH_SIZE),
                "limit": body.get("limit"),
                "force": body.get("force", False),
            }
            run_config = reembed_run_config(**params)
            if params["limit"] is not None and params["limit"] > MAX_LIMIT:
                raise ParamError(
                    "limit",
                    f"limit must be an integer from 1 to {MAX_LIMIT}, got {params['limit']!r}",
                )
        except ParamError as exc:
            raise param_error(exc) from None
        run_id = await submit_exclusive(request, REEMBED_JOB, run_config)
        if wait:
            return await wait_for(request, REEMBED_JOB, run_id)
        return queued(request, REEMBED_JOB, run_id, params)

    @app.post(
        "/admin/sync",
        dependencies=ADMIN,
        tags=["admin"],
        summary="Repair drift between FalkorDB and Qdrant (Dagster run of the drift-sync job)",
        status_code=202,
        openapi_extra=body_schema(SyncRequest),
        responses={
            200: {
                "model": SyncSummary,
                "description": "With `wait`: dry_run, already_synced or complete",
            },
            202: {"model": QueuedRun, "description": "Run queued"},
            **error_responses(400, 401, 403, 409, 413, 422, 429, 500, 503),
        },
    )
    async def admin_sync(request: Request):
        body = await read_json_object(request)
        audit_of(request)["parameters"] = recorded_body(body, SYNC_FIELDS)
        reject_unknown(body, SYNC_FIELDS)
        try:
            wait = check_bool("wait", body.get("wait", False))
            params = {
                "batch_size": body.get("batch_size", DEFAULT_BATCH_SIZE),
                "dry_run": body.get("dry_run", False),
                "recover_orphans": body.get("recover_orphans", False),
            }
            run_config = sync_run_config(**params)
        except ParamError as exc:
            raise param_error(exc) from None
        run_id = await submit_exclusive(request, DRIFT_SYNC_JOB, run_config)
        if wait:
            return await wait_for(request, DRIFT_SYNC_JOB, run_id)
        return queued(request, DRIFT_SYNC_JOB, run_id, params)

    @app.post(
        "/enrichment/reprocess",
        dependencies=ADMIN,
        tags=["admin"],
        summary="Force re-enrichment of the given memories (one Dagster run)",
        status_code=202,
        openapi_extra=body_schema(ReprocessRequest),
        responses={
            202: {"model": ReprocessQueued, "description": "Run queued"},
            **error_responses(400, 401, 403, 413, 422, 429, 500, 503),
        },
    )
    async def enrichment_reprocess(
        request: Request,
        ids: str | None = Query(None, description="Comma-separated ids, if the body has none"),
    ):
        body = await read_json_object(request)
        reject_unknown(body, ("ids",))
        unique = parse_ids(body, ids, config.max_reprocess_ids, app.state.redactor)
        audit_of(request)["parameters"] = {"count": len(unique), "ids": unique[:20]}
        try:
            run_config = enrichment_run_config(unique, forced=True)
        except ParamError as exc:
            raise param_error(exc) from None
        run_id = await submit(request, ENRICHMENT_JOB, run_config)
        audit_of(request)["outcome"] = "queued"
        return JSONResponse(
            {"status": "queued", "count": len(unique), "ids": unique, "run_id": run_id,
             "request_id": request_id_of(request)},
            status_code=202,
        )  # fmt: skip

    # -- reads -------------------------------------------------------------------------------------
    @app.get(
        "/admin/runs/{run_id}",
        dependencies=API,
        tags=["runs"],
        summary="Status of a run started through this API; its summary once finished",
        response_model=RunBody,
        responses=error_responses(401, 404, 500, 503),
    )
    async def admin_run(run_id: str):
        if not RUN_ID_RE.match(run_id):
            raise ApiError(404, f"No run {echo(short_id(run_id))} was started through this API")
        run = await run_in_threadpool(launcher.run, run_id)
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
        }
        if run.finished:
            outcome = await outcome_of(run)
            body["summary"] = outcome.summary
            if run.status != "SUCCESS":
                body["errors"] = outcome.errors[-5:]
        return body

    @app.get(
        "/enrichment/status",
        dependencies=API,
        tags=["enrichment"],
        summary="Enrichment queue and scheduler state",
        response_model=EnrichmentStatusBody,
        responses=error_responses(401, 500, 503),
    )
    async def enrichment_status_endpoint():
        return await app.state.status_cache.get(
            lambda: run_in_threadpool(compute_enrichment_status)
        )

    def compute_enrichment_status() -> dict[str, Any]:
        from automem_pipelines.domain.enrichment_status import SchedulerState, enrichment_status

        try:
            scheduler = SchedulerState(**launcher.scheduler_state())
            dagster = "reachable"
        except DagsterUnavailableError:
            # Without the webserver nobody can tell the sensor is running: report it stopped.
            scheduler = SchedulerState(
                sensor_running=False, daemon_alive=False, queued_runs=0, inflight_ids=0,
                queued_ids=0,
            )  # fmt: skip
            dagster = "unreachable"
        with graph.store() as store:
            status = enrichment_status(
                store, scheduler, settings.enrichment.max_attempts, settings.recall_excluded_types
            )
        return {**status, "dagster": dagster}

    @app.get(
        "/health",
        tags=["health"],
        summary="The API, Dagster and the stores (public)",
        response_model=HealthBody,
    )
    async def health():
        return await app.state.health_cache.get(lambda: run_in_threadpool(compute_health))

    def compute_health() -> dict[str, Any]:
        dagster_ok = launcher.ping()
        try:
            memory_count: int | None = graph.count_memories()
            falkordb = "connected"
        except GraphUnavailableError:
            memory_count, falkordb = None, "disconnected"

        last_sync = last_drift_sync() if dagster_ok else None
        sync_summary = (last_sync or {}).get("summary") or {}
        if settings.qdrant.local:
            # The API never opens the embedded store: the last drift-sync run's count stands in.
            qdrant = "embedded"
            vector_count = sync_summary.get("qdrant_count")
            vector_source = "last_drift_sync" if vector_count is not None else None
            basis = (sync_summary.get("falkordb_count"), vector_count)
            recorded = (sync_summary.get("embedding_identity") or {}).get("recorded")
            identity = embedding_identity(settings, recorded, "last_drift_sync" if sync_summary else None)
        else:
            try:
                vector_count, recorded = qdrant_server_view(settings)
                qdrant, vector_source = "connected", "qdrant"
            except Exception:  # noqa: BLE001 - any failure means "not reachable" here
                vector_count, qdrant, vector_source, recorded = None, "disconnected", None, None
            basis = (memory_count, vector_count)
            identity = embedding_identity(settings, recorded, "qdrant" if qdrant == "connected" else None)
        sync_status = _sync_status(*basis)
        degraded = (
            falkordb != "connected" or qdrant == "disconnected" or not dagster_ok
            or sync_status == "drift_detected" or identity["match"] is False
        )  # fmt: skip
        return {
            "status": "degraded" if degraded else "healthy",
            "falkordb": falkordb,
            "qdrant": qdrant,
            "memory_count": memory_count,
            "vector_count": vector_count,
            "sync_status": sync_status,
            "counts_source": {
                "memory_count": "falkordb" if memory_count is not None else None,
                "vector_count": vector_source,
            },  # fmt: skip
            "embedding_identity": identity,
            "dagster": "reachable" if dagster_ok else "unreachable",
            "last_drift_sync": last_sync,
            "api": {
                "version": __version__,
                "uptime_seconds": round(time.monotonic() - app.state.started, 1),
            },
            "timestamp": now_iso(),
            "graph": settings.falkordb.graph,
            "collection": settings.qdrant.collection,
        }

    def last_drift_sync() -> dict[str, Any] | None:
        try:
            run = launcher.latest_successful_run(DRIFT_SYNC_JOB)
            if run is None:
                return None
            outcome = app.state.outcomes.get(run.run_id)
            if outcome is None and DRIFT_SYNC_JOB in SUMMARY_OPS:
                outcome = launcher.outcome(run.run_id, run.job)
                app.state.outcomes.put(run.run_id, outcome)
        except (DagsterUnavailableError, LaunchError):
            return None
        return {"run_id": run.run_id, "finished_at": iso(run.ended_at),
                "summary": outcome.summary if outcome else None}  # fmt: skip


def _sync_status(memories: int | None, vectors: int | None) -> str:
    if memories is None or vectors is None:
        return "unknown"
    if memories == vectors:
        return "synced"
    return "drift_detected" if vectors < memories else "orphaned_vectors"
