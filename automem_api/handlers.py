"""Exception handlers: every failure leaves in AutoMem's error envelope, without a traceback.

Every message leaves through `Redactor.message`: configured secrets replaced, run ids (any
UUID) cut to 8 characters, length bounded; user values inside are clipped already. Other
string fields of an error (field names, run errors) have the secrets scrubbed.

A request the route's models refuse (`RequestValidationError`) is a 400 naming the field, in
the same words the run-config builders and the jobs use (`domain.params`).
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from automem_pipelines.domain.params import ParamError
from automem_pipelines.stores.graph import GraphUnavailableError

from .audit import recorded_body
from .auth import pending_checks
from .errors import ApiError, error_response
from .gateway import DagsterUnavailableError, LaunchError
from .middleware import audit_of
from .redaction import Redactor, clip
from .schemas import NOT_AN_OBJECT, NOT_JSON

MAX_UNKNOWN_SHOWN = 5
BODY_PARSE_FAILED = "There was an error parsing the body"  # FastAPI's words for it


def validation_error(exc: RequestValidationError, model: type | None) -> ApiError:
    """pydantic's errors → one ApiError(400) naming the field, unknown fields first."""
    errors = list(exc.errors())
    unknown = [e for e in errors if e.get("type") == "extra_forbidden"]
    if unknown:
        names = [clip(str(e["loc"][-1]), 40) for e in unknown]
        shown = ", ".join(names[:MAX_UNKNOWN_SHOWN]) + (
            ", …" if len(names) > MAX_UNKNOWN_SHOWN else ""
        )
        accepted = ", ".join(getattr(model, "model_fields", {}) or ())
        return ApiError(
            400, f"Unknown field(s): {shown}; accepted: {accepted}", extra={"field": names[0]}
        )
    first = errors[0] if errors else {}
    kind = first.get("type")
    cause = (first.get("ctx") or {}).get("error")
    if isinstance(cause, ParamError):
        return ApiError(400, str(cause), extra={"field": cause.field})
    if kind == "json_invalid":
        return ApiError(400, NOT_JSON)
    if kind in ("json_object", "model_attributes_type", "dict_type"):
        return ApiError(400, NOT_AN_OBJECT)
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
    message = first.get("msg", "invalid request")
    if not where:
        return ApiError(400, message)
    return ApiError(400, f"{clip(where, 40)}: {message}", extra={"field": clip(where, 40)})


def install_error_handlers(app: FastAPI, body_models: dict[str, type]) -> None:
    """`body_models`: the request model of each path that takes a body (for the messages
    and for the audit line of a refused body)."""
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

    def answer(request: Request, exc: ApiError) -> JSONResponse:
        message = safe(exc.message)
        audit_of(request).setdefault(
            "outcome", f"rejected: {message}" if exc.status_code < 500 else f"error: {message}"
        )
        return error_response(exc.status_code, message, exc.headers, safe_extra(exc.extra))

    def refused_by_auth(request: Request) -> JSONResponse | None:
        """The body failed before the route's auth checks ran: run them first."""
        try:
            pending_checks(request)
        except ApiError as exc:
            return answer(request, exc)
        return None

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSONResponse:
        return answer(request, exc)

    @app.exception_handler(ParamError)
    async def param_error(request: Request, exc: ParamError) -> JSONResponse:
        return answer(request, ApiError(400, str(exc), extra={"field": exc.field}))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code in (400, 413) and (refused := refused_by_auth(request)):
            return refused
        if exc.status_code == 400 and exc.detail == BODY_PARSE_FAILED:
            return answer(request, ApiError(400, NOT_JSON))  # e.g. JSON nested too deeply
        message = safe(exc.detail) if isinstance(exc.detail, str) else "HTTP error"
        if exc.status_code >= 400:
            audit_of(request).setdefault("outcome", f"rejected: {message}")
        return error_response(exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        if refused := refused_by_auth(request):
            return refused
        model = body_models.get(request.url.path)
        if model is not None and isinstance(exc.body, dict):
            audit_of(request)["parameters"] = recorded_body(exc.body, model.model_fields)
        return answer(request, validation_error(exc, model))

    @app.exception_handler(DagsterUnavailableError)
    async def dagster_down(request: Request, exc: DagsterUnavailableError) -> JSONResponse:
        audit_of(request).setdefault("outcome", "error: Dagster unavailable")
        return error_response(503, safe(f"{exc}; no run was started"), {"Retry-After": "10"})

    @app.exception_handler(LaunchError)
    async def launch_error(request: Request, exc: LaunchError) -> JSONResponse:
        message = safe(exc.message)
        audit_of(request).setdefault("outcome", f"error: {exc.kind or 'launch'}: {message}")
        return error_response(
            exc.status_code, message, extra={"dagster_error": exc.kind} if exc.kind else None
        )

    @app.exception_handler(GraphUnavailableError)
    async def graph_down(request: Request, exc: GraphUnavailableError) -> JSONResponse:
        return error_response(503, "FalkorDB is unavailable")

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        return error_response(500, "Internal server error")
