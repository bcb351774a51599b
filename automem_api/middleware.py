"""Per-request context: the request id (X-Request-ID, echoed), the body size limit, the
access log line, and the audit line of every admin call, whatever its outcome."""

from __future__ import annotations

import logging
import re
import uuid
from typing import Any
from urllib.parse import quote

from fastapi import HTTPException
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .audit import ADMIN_PATHS, AuditLog, recorded_query
from .auth import client_ip, extract_admin_token, extract_api_token, fingerprint
from .redaction import Redactor, clip

MAX_LOGGED_PATH = 120
REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
access_log = logging.getLogger("automem_api.access")


def audit_of(request: Request) -> dict[str, Any]:
    """What the audit line of this request records (parameters, run id, outcome)."""
    return request.scope.setdefault("state", {}).setdefault("audit", {})


def request_id_of(request: Request) -> str:
    return request.scope.setdefault("state", {}).setdefault("request_id", uuid.uuid4().hex)


def loggable_path(scope: Scope, redactor: Redactor) -> str:
    """The route template when a route matched (never its values); else the decoded path,
    secrets scrubbed, quoted (no control characters reach the log) and clipped. The query
    string is never logged: `?…` only says there was one."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        path = redactor.scrub(scope.get("path") or "")
    path = clip(quote(path, safe="/[]{}:@!$&'()*+,;=-._~"), MAX_LOGGED_PATH)
    return path + "?…" if scope.get("query_string") else path


class RequestContextMiddleware:
    """Request id (X-Request-ID, echoed) for every request; the audit line for admin calls."""

    def __init__(self, app: ASGIApp, audit: AuditLog, redactor: Redactor, max_body_bytes: int):
        self.app = app
        self.audit = audit
        self.redactor = redactor
        self.max_body_bytes = max_body_bytes

    def _limited(self, receive: Receive) -> Receive:
        """`receive`, refusing a body past the limit while the route reads it: the error
        handlers answer 413 after the route's auth checks (see auth.pending_checks)."""
        size = 0

        async def limited() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                size += len(message.get("body", b""))
                if size > self.max_body_bytes:
                    raise HTTPException(
                        413, f"Request body is larger than {self.max_body_bytes} bytes"
                    )
            return message

        return limited

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
        audited = scope.get("path") in ADMIN_PATHS

        async def send_wrapper(message: Message) -> None:
            nonlocal audited
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-request-id", request_id.encode()),
                ]
                if audited:  # on disk before the client can read the answer
                    audited = False
                    self._write_audit(scope, state, message["status"])
            await send(message)

        try:
            await self.app(scope, self._limited(receive), send_wrapper)
        finally:
            code = status.get("code", 500)
            if audited:  # no answer was sent (the app raised before starting one)
                self._write_audit(scope, state, code)
            if access_log.isEnabledFor(logging.INFO):
                client = scope.get("client")
                access_log.info(
                    '%s - "%s %s HTTP/%s" %d request_id=%s',
                    f"{client[0]}:{client[1]}" if client else "-",
                    scope.get("method"),
                    loggable_path(scope, self.redactor),
                    scope.get("http_version", "1.1"),
                    code,
                    request_id,
                )

    def _write_audit(self, scope: Scope, state: dict[str, Any], code: int) -> None:
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
