"""The API's configuration: the `api` group of the shared settings
(`automem_pipelines.settings.ApiSettings`, AutoMem's variable names; an empty string counts
as unset), beside the store settings (graph, collection, data dir, ENRICHMENT_MAX_ATTEMPTS) the
jobs read, so the API and the jobs agree on where things are.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from automem_pipelines.settings import ApiSettings, RateLimit, Settings, SettingsError
from automem_pipelines.stack import is_loopback

__all__ = ["ApiConfig", "ApiConfigError", "RateLimit", "check_safe_bind"]

# The API group's defaults, as the settings define them (read nothing from the environment).
_DEFAULTS = ApiSettings.model_construct()
DEFAULT_HOST = _DEFAULTS.host
DEFAULT_PORT = _DEFAULTS.port
DEFAULT_DAGSTER_URL = _DEFAULTS.dagster_url


class ApiConfigError(ValueError):
    """An API environment variable holds a value we cannot use."""


@dataclass(frozen=True)
class ApiConfig:
    settings: Settings
    api_token: str | None
    admin_token: str | None
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    allow_unauthenticated: bool = _DEFAULTS.allow_unauthenticated
    dagster_url: str = DEFAULT_DAGSTER_URL
    location_name: str = _DEFAULTS.location_name
    graphql_timeout_seconds: float = _DEFAULTS.graphql_timeout_seconds
    # `"wait": true` blocks at most this long, then answers 202 with the run id.
    wait_timeout_seconds: float = _DEFAULTS.wait_timeout_seconds
    wait_poll_seconds: float = 0.2
    admin_rate_limit: RateLimit = _DEFAULTS.admin_rate_limit
    audit_log: Path | None = None  # None: <data dir>/api-audit.jsonl
    # /health and /enrichment/status reuse a computed answer for this long (0 = never).
    status_cache_seconds: float = _DEFAULTS.status_cache_seconds
    max_reprocess_ids: int = 10_000

    @property
    def secrets(self) -> tuple[str, ...]:
        """Every configured credential: none of them may reach a log (see redaction.py)."""
        values = (self.api_token, self.admin_token, *self.settings.secret_values())
        return tuple(dict.fromkeys(v for v in values if v))

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
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> ApiConfig:
        """The API group of the shared settings (AutoMem's variable names; an empty string
        counts as unset), with the rest of the settings beside it."""
        try:
            settings = Settings.from_env(os.environ if env is None else env)
        except SettingsError as exc:
            raise ApiConfigError(str(exc)) from None
        return cls.from_settings(settings, **overrides)

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ApiConfig:
        """The API group of settings already read, with the rest of the settings beside it."""
        api = settings.api
        values: dict[str, Any] = {
            "settings": settings,
            **{f: getattr(api, f) for f in type(api).model_fields},
        }
        values.update(overrides)
        return cls(**values)


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
