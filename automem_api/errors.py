"""One error shape for every failure: AutoMem's envelope plus the documented `error` key.

`{"status": "error", "code": 401, "message": "Unauthorized", "error": "Unauthorized"}`
satisfies clients of the documentation page (`error`) and of AutoMem's code (`status`,
`code`, `message`). Nothing here ever carries a traceback.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse


class ApiError(Exception):
    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.headers = headers or {}
        self.extra = extra or {}


def error_body(status_code: int, message: str, extra: dict[str, Any] | None = None) -> dict:
    body: dict[str, Any] = {
        "status": "error",
        "code": status_code,
        "message": message,
        "error": message,
    }
    if extra:
        body.update(extra)
    return body


def error_response(
    status_code: int,
    message: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    return JSONResponse(
        error_body(status_code, message, extra), status_code=status_code, headers=headers
    )
