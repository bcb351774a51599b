"""Environment → the API's typed configuration.

Tokens keep AutoMem's variable names (`AUTOMEM_API_TOKEN`, `ADMIN_API_TOKEN`; an empty
string counts as unset). Store settings (graph, collection, data dir, ENRICHMENT_MAX_ATTEMPTS)
come from the pipelines' own `Settings`, so the API and the jobs agree on where things are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from automem_pipelines.constants import CODE_LOCATION_NAME
from automem_pipelines.settings import Settings, SettingsError
from automem_pipelines.stack import is_loopback

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8001  # AutoMem's PORT default
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3000"


class ApiConfigError(ValueError):
    """An API environment variable holds a value we cannot use."""


@dataclass(frozen=True)
class RateLimit:
    calls: int  # 0 disables
    window_seconds: float


@dataclass(frozen=True)
class ApiConfig:
    settings: Settings
    api_token: str | None
    admin_token: str | None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allow_unauthenticated: bool = False
    dagster_url: str = DEFAULT_DAGSTER_URL
    location_name: str = CODE_LOCATION_NAME
    graphql_timeout_seconds: float = 30.0
    # `"wait": true` blocks at most this long, then answers 202 with the run id.
    wait_timeout_seconds: float = 600.0
    wait_poll_seconds: float = 0.2
    admin_rate_limit: RateLimit = RateLimit(10, 60.0)
    audit_log: Path | None = None  # None: <data dir>/api-audit.jsonl
    # /health and /enrichment/status reuse a computed answer for this long (0 = never).
    status_cache_seconds: float = 1.0
    max_reprocess_ids: int = 10_000

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured credential: none of them may reach a log (see redaction.py)."""
        s = self.settings
        values = (self.api_token, self.admin_token, s.openai_api_key, s.falkordb_password,
                  s.qdrant_api_key)  # fmt: skip
        return tuple(v for v in values if v)

    @property
    def audit_log_path(self) -> Path:
        return self.audit_log or self.settings.data_dir / "api-audit.jsonl"

    @property
    def dagster_hostname(self) -> str:
        return urlsplit(self.dagster_url).hostname or "127.0.0.1"

    @property
    def dagster_port(self) -> int | None:
        return urlsplit(self.dagster_url).port

    @property
    def dagster_https(self) -> bool:
        return urlsplit(self.dagster_url).scheme == "https"

    @property
    def graphql_url(self) -> str:
        return self.dagster_url.rstrip("/") + "/graphql"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides) -> ApiConfig:
        env = os.environ if env is None else env
        errors: list[str] = []

        def raw(name: str) -> str | None:
            value = env.get(name)
            return value.strip() if value and value.strip() else None

        def number(name: str, default: float, lo: float, hi: float) -> float:
            value = raw(name)
            if value is None:
                return default
            try:
                n = float(value)
                if not lo <= n <= hi:
                    raise ValueError
                return n
            except ValueError:
                errors.append(f"{name}={value!r} is not valid: expected a number from {lo} to {hi}")
                return default

        try:
            settings = Settings.from_env(env)
        except SettingsError as exc:
            raise ApiConfigError(str(exc)) from None

        rate = RateLimit(10, 60.0)
        spec = raw("AUTOMEM_API_ADMIN_RATE_LIMIT")
        if spec is not None:
            rate = _parse_rate(spec, errors)

        dagster_url = raw("DAGSTER_WEBSERVER_URL") or DEFAULT_DAGSTER_URL
        parts = urlsplit(dagster_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            errors.append(f"DAGSTER_WEBSERVER_URL={dagster_url!r} is not an http(s):// URL")
            dagster_url = DEFAULT_DAGSTER_URL
        elif parts.username is not None or parts.password is not None:
            # The GraphQL client would drop them, and the URL appears in 503 messages.
            errors.append(
                "DAGSTER_WEBSERVER_URL must not carry credentials (user:password@): run the API "
                "next to the webserver and reach it over loopback"
            )
            dagster_url = DEFAULT_DAGSTER_URL

        port = int(number("AUTOMEM_API_PORT", DEFAULT_PORT, 1, 65535))
        allow = (raw("AUTOMEM_API_ALLOW_UNAUTHENTICATED") or "").lower() in {
            "1",
            "true",
            "yes",
            "on",
        }
        audit = raw("AUTOMEM_API_AUDIT_LOG")
        values = dict(
            settings=settings,
            api_token=raw("AUTOMEM_API_TOKEN"),
            admin_token=raw("ADMIN_API_TOKEN"),
            host=raw("AUTOMEM_API_HOST") or DEFAULT_HOST,
            port=port,
            allow_unauthenticated=allow,
            dagster_url=dagster_url,
            location_name=raw("DAGSTER_LOCATION_NAME") or CODE_LOCATION_NAME,
            graphql_timeout_seconds=number("AUTOMEM_API_GRAPHQL_TIMEOUT_SECONDS", 30.0, 1, 3600),
            wait_timeout_seconds=number("AUTOMEM_API_WAIT_TIMEOUT_SECONDS", 600.0, 0, 86400),
            admin_rate_limit=rate,
            audit_log=Path(audit).expanduser() if audit else None,
            status_cache_seconds=number("AUTOMEM_API_STATUS_CACHE_SECONDS", 1.0, 0, 3600),
        )
        if errors:
            raise ApiConfigError("invalid configuration:\n  " + "\n  ".join(errors))
        values.update(overrides)
        return cls(**values)


def _parse_rate(spec: str, errors: list[str]) -> RateLimit:
    """`CALLS/SECONDS` (e.g. `10/60`), or `0` to disable."""
    if spec == "0":
        return RateLimit(0, 60.0)
    try:
        calls, seconds = spec.split("/")
        limit = RateLimit(int(calls), float(seconds))
        if limit.calls < 0 or limit.window_seconds <= 0:
            raise ValueError
        return limit
    except ValueError:
        errors.append(
            f"AUTOMEM_API_ADMIN_RATE_LIMIT={spec!r} is not valid: expected CALLS/SECONDS "
            "(e.g. 10/60) or 0 to disable"
        )
        return RateLimit(10, 60.0)


def check_safe_bind(config: ApiConfig) -> None:
    """Refuse to serve an open API beyond loopback unless told that this is intended."""
    if (
        config.api_token is None
        and not is_loopback(config.host)
        and not config.allow_unauthenticated
    ):
        raise ApiConfigError(
            f"refusing to listen on {config.host} without AUTOMEM_API_TOKEN: anyone who can "
            "reach it could start runs. Set AUTOMEM_API_TOKEN, bind to 127.0.0.1, or pass "
            "--allow-unauthenticated (AUTOMEM_API_ALLOW_UNAUTHENTICATED=true) if this is intended."
        )
