"""AutoMem's two token layers, with constant-time comparisons.

* API token (`AUTOMEM_API_TOKEN`): `Authorization: Bearer <t>`, else `X-API-Key`, else
  `?api_key=`; first present form wins (a wrong Bearer value does not fall through).
  Query parameters are read as AutoMem's Flask reads them: names percent-decoded, `&` the only
  separator, the first of repeated values.
  Required on every endpoint except `/health` when configured.
* Admin token (`ADMIN_API_TOKEN`): `X-Admin-Token`, else `X-Admin-Api-Key`, else
  `?admin_token=`; checked after the API token on admin endpoints. Unconfigured → 403.
* Between the two, admin calls are rate-limited per client address (see ratelimit.py).

The checks run as route dependencies (`API`, `ADMIN`), in this order. A request whose body
cannot even be read (not JSON, too large) fails before FastAPI runs the dependencies: the
error handlers then run the checks the route still owes (`pending_checks`), so such a
request is answered 401/403/429 as any other, never 400 to an unauthenticated caller.
"""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, APIKeyQuery, HTTPBearer

from .errors import ApiError
from .ratelimit import retry_after_header

UNAUTHORIZED = "Unauthorized"
ADMIN_REQUIRED = "Admin authorization required"
ADMIN_NOT_CONFIGURED = "Admin token not configured"

# Declared for the OpenAPI document (each is an alternative way to present the token); the
# values are read from the request below with AutoMem's precedence rules.
_bearer = HTTPBearer(auto_error=False, scheme_name="BearerToken", description="AUTOMEM_API_TOKEN")
_api_header = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="ApiKeyHeader")
_api_query = APIKeyQuery(name="api_key", auto_error=False, scheme_name="ApiKeyQuery")
_admin_header = APIKeyHeader(name="X-Admin-Token", auto_error=False, scheme_name="AdminToken")
_admin_header2 = APIKeyHeader(name="X-Admin-Api-Key", auto_error=False, scheme_name="AdminApiKey")
_admin_query = APIKeyQuery(name="admin_token", auto_error=False, scheme_name="AdminTokenQuery")


def fingerprint(token: str | None) -> str | None:
    """A short, non-reversible name for a token, for logs (never the token itself)."""
    if not token:
        return None
    return hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


def tokens_equal(provided: str | None, expected: str) -> bool:
    if provided is None:
        return False
    return hmac.compare_digest(provided.encode("utf-8"), expected.encode("utf-8"))


def first_query_value(request: Request, name: str) -> str | None:
    """The first value of a repeated parameter, as AutoMem's `request.args.get` reads it."""
    values = request.query_params.getlist(name)
    return values[0] if values else None


def extract_api_token(request: Request) -> str | None:
    authorization = request.headers.get("authorization")
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    header = request.headers.get("x-api-key")
    if header:
        return header.strip()
    query = first_query_value(request, "api_key")
    if query:
        return query.strip()
    return None


def extract_admin_token(request: Request) -> str | None:
    return (
        request.headers.get("x-admin-token")
        or request.headers.get("x-admin-api-key")
        or first_query_value(request, "admin_token")
        or None
    )


def check_api_token(request: Request, expected: str | None) -> None:
    if expected is None:
        return  # AutoMem: no AUTOMEM_API_TOKEN means the API is open
    if not tokens_equal(extract_api_token(request), expected):
        raise ApiError(401, UNAUTHORIZED)


def check_admin_token(request: Request, expected: str | None) -> None:
    if expected is None:
        raise ApiError(403, ADMIN_NOT_CONFIGURED)
    if not tokens_equal(extract_admin_token(request), expected):
        raise ApiError(401, ADMIN_REQUIRED)


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def check_rate(request: Request) -> None:
    wait = request.app.state.limiter.hit(client_ip(request))
    if wait is not None:
        raise ApiError(
            429,
            "Too many admin requests; retry later",
            headers={"Retry-After": retry_after_header(wait)},
        )


CHECKS = {
    "api_token": lambda request: check_api_token(request, request.app.state.config.api_token),
    "rate": check_rate,
    "admin_token": lambda request: check_admin_token(request, request.app.state.config.admin_token),
}
API_CHECKS = ("api_token",)
ADMIN_CHECKS = ("api_token", "rate", "admin_token")


def _run_check(request: Request, name: str) -> None:
    done = request.scope.setdefault("state", {}).setdefault("auth_checks", [])
    if name not in done:
        done.append(name)
        CHECKS[name](request)


async def require_api_token(
    request: Request,
    _bearer_token=Security(_bearer),
    _header=Security(_api_header),
    _query=Security(_api_query),
) -> None:
    _run_check(request, "api_token")


async def admin_rate_limit(request: Request) -> None:
    """Between the API-token check and the admin-token check (see ratelimit.py)."""
    _run_check(request, "rate")


async def require_admin_token(
    request: Request,
    _header=Security(_admin_header),
    _header2=Security(_admin_header2),
    _query=Security(_admin_query),
) -> None:
    """Runs after `require_api_token` and the admin rate limit."""
    _run_check(request, "admin_token")


API = [Depends(require_api_token)]
ADMIN = [Depends(require_api_token), Depends(admin_rate_limit), Depends(require_admin_token)]


def _route_checks(request: Request) -> tuple[str, ...]:
    route = request.scope.get("route")
    dependencies = {d.dependency for d in getattr(route, "dependencies", None) or []}
    if require_admin_token in dependencies:
        return ADMIN_CHECKS
    if require_api_token in dependencies:
        return API_CHECKS
    return ()


def pending_checks(request: Request) -> None:
    """Run the auth checks the matched route owes and has not run yet (ApiError if one
    refuses the request)."""
    for name in _route_checks(request):
        _run_check(request, name)
