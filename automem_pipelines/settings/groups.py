"""The settings groups, one per system: AutoMem's variable, default and allowed range of each
setting, written once here."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic_core import PydanticCustomError

from ..constants import CODE_LOCATION_NAME
from ..domain.partitions import DEFAULT_PARTITIONS, MAX_PARTITIONS
from ..stores.falkordb_server import DEFAULT_START_TIMEOUT, START_TIMEOUT_ENV, START_TIMEOUT_RANGE
from .environment import OWN_MESSAGE, Expect, Flag, Group, Secret

QDRANT_IN_MEMORY = ":memory:"


class FalkorDBSettings(Group):
    # host None means "start and use the embedded server under the data dir".
    host: str | None = Field(None, validation_alias="FALKORDB_HOST")
    port: int = Field(6379, ge=1, le=65535, validation_alias="FALKORDB_PORT")
    password: Annotated[str | None, Secret()] = Field(None, validation_alias="FALKORDB_PASSWORD")
    graph: str = Field("memories", validation_alias="FALKORDB_GRAPH")
    # How long a start waits for the embedded server to load its data.
    start_timeout_seconds: float = Field(
        DEFAULT_START_TIMEOUT,
        ge=START_TIMEOUT_RANGE[0],
        le=START_TIMEOUT_RANGE[1],
        validation_alias=START_TIMEOUT_ENV,
    )

    @property
    def embedded(self) -> bool:
        return self.host is None


def _qdrant_url(value: str | None) -> str | None:
    if (
        value is not None
        and value != QDRANT_IN_MEMORY
        and not value.startswith(("http://", "https://"))
    ):
        raise ValueError("not a Qdrant URL")
    return value


class QdrantSettings(Group):
    # url None means local mode on disk under the data dir; ":memory:" local in memory.
    url: Annotated[
        str | None,
        AfterValidator(_qdrant_url),
        Expect(f"an http(s):// URL, {QDRANT_IN_MEMORY!r}, or unset for the embedded store"),
    ] = Field(None, validation_alias="QDRANT_URL")
    # QDRANT_HOST (and QDRANT_PORT) stand for QDRANT_URL=http://host:port when it is unset.
    host: str | None = Field(None, validation_alias="QDRANT_HOST")
    port: int = Field(6333, ge=1, le=65535, validation_alias="QDRANT_PORT")
    api_key: Annotated[str | None, Secret()] = Field(None, validation_alias="QDRANT_API_KEY")
    collection: str = Field("memories", validation_alias="QDRANT_COLLECTION")
    timeout_seconds: int = Field(30, ge=1, le=3600, validation_alias="QDRANT_TIMEOUT_SECONDS")
    # How long to wait for another process to release the local store.
    lock_timeout_seconds: float = Field(
        600.0, ge=0, le=86400, validation_alias="QDRANT_LOCAL_LOCK_TIMEOUT_SECONDS"
    )

    @model_validator(mode="before")
    @classmethod
    def _url_from_host(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("QDRANT_URL", data.get("url")) is not None:
            return data
        host = data.get("QDRANT_HOST", data.get("host"))
        if not host:
            return data
        port = data.get("QDRANT_PORT", data.get("port", cls.model_fields["port"].default))
        return {**data, "QDRANT_URL": f"http://{host}:{port}"}

    @property
    def local(self) -> bool:
        return self.url is None or self.url == QDRANT_IN_MEMORY


class EnrichmentSettings(Group):
    max_attempts: int = Field(3, ge=1, le=100, validation_alias="ENRICHMENT_MAX_ATTEMPTS")
    similarity_limit: int = Field(5, ge=0, le=100, validation_alias="ENRICHMENT_SIMILARITY_LIMIT")
    similarity_threshold: float = Field(
        0.8, ge=-1, le=1, validation_alias="ENRICHMENT_SIMILARITY_THRESHOLD"
    )
    failure_backoff_seconds: float = Field(
        5.0, ge=0, le=86400, validation_alias="ENRICHMENT_FAILURE_BACKOFF_SECONDS"
    )
    enable_summaries: Flag = Field(True, validation_alias="ENRICHMENT_ENABLE_SUMMARIES")
    spacy_model: str = Field("en_core_web_sm", validation_alias="ENRICHMENT_SPACY_MODEL")
    sensor_interval_seconds: int = Field(
        30, ge=1, le=86400, validation_alias="ENRICHMENT_SENSOR_INTERVAL_SECONDS"
    )
    sensor_batch_size: int = Field(
        200, ge=1, le=5000, validation_alias="ENRICHMENT_SENSOR_BATCH_SIZE"
    )
    sensor_enabled: Flag = Field(True, validation_alias="ENRICHMENT_SENSOR_ENABLED")


class SyncSettings(Group):
    check_interval_seconds: int = Field(
        3600, ge=60, le=7 * 86400, validation_alias="SYNC_CHECK_INTERVAL_SECONDS"
    )
    auto_repair: Flag = Field(True, validation_alias="SYNC_AUTO_REPAIR")


def _postgres_url(value: str | None) -> str | None:
    if value is not None and not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("not a postgresql:// URL")
    return value


class ScheduleSettings(Group):
    """The re-embed schedule, and run monitoring (the daemon): how often it checks that every
    running run still has its worker; a run whose worker died ends FAILURE within about this
    many seconds."""

    reembed_cron: str = Field("0 3 * * *", validation_alias="REEMBED_SCHEDULE_CRON")
    reembed_enabled: Flag = Field(False, validation_alias="REEMBED_SCHEDULE_ENABLED")
    # Id-range partitions of reembed_partitioned_job (domain/partitions.py).
    reembed_partitions: int = Field(
        DEFAULT_PARTITIONS, ge=1, le=MAX_PARTITIONS, validation_alias="REEMBED_PARTITIONS"
    )
    run_monitoring_poll_seconds: int = Field(
        30, ge=1, le=600, validation_alias="RUN_MONITORING_POLL_SECONDS"
    )
    # The Dagster instance's run, event-log and schedule storage on PostgreSQL (unset: sqlite
    # under DAGSTER_HOME). A credential: dagster.yaml names the variable, never its value.
    dagster_postgres_url: Annotated[
        str | None,
        AfterValidator(_postgres_url),
        Secret(),
        Expect("a postgresql:// URL, or unset for sqlite under DAGSTER_HOME"),
    ] = Field(None, validation_alias="DAGSTER_POSTGRES_URL")


@dataclass(frozen=True)
class RateLimit:
    calls: int  # 0 disables
    window_seconds: float


def _rate_limit(value: Any) -> Any:
    """`CALLS/SECONDS` (e.g. `10/60`), or `0` to disable."""
    if not isinstance(value, str):
        return value
    if value == "0":
        return RateLimit(0, 60.0)
    calls, seconds = value.split("/")  # a ValueError is reported as the variable's
    limit = RateLimit(int(calls), float(seconds))
    if limit.calls < 0 or limit.window_seconds <= 0:
        raise ValueError("not a rate")
    return limit


def _dagster_url(value: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http(s) URL")
    if parts.username is not None or parts.password is not None:
        # The GraphQL client would drop them, and the URL appears in 503 messages; the
        # message must not repeat the value.
        raise PydanticCustomError(
            OWN_MESSAGE,
            "DAGSTER_WEBSERVER_URL must not carry credentials (user:password@): run the API "
            "next to the webserver and reach it over loopback",
        )
    return value


def _expand_user(path: Path | None) -> Path | None:
    return None if path is None else path.expanduser()


class ApiSettings(Group):
    """The admin API (tokens keep AutoMem's names)."""

    api_token: Annotated[str | None, Secret()] = Field(None, validation_alias="AUTOMEM_API_TOKEN")
    admin_token: Annotated[str | None, Secret()] = Field(None, validation_alias="ADMIN_API_TOKEN")
    host: str = Field("127.0.0.1", validation_alias="AUTOMEM_API_HOST")
    port: int = Field(8001, ge=1, le=65535, validation_alias="AUTOMEM_API_PORT")  # AutoMem's PORT
    allow_unauthenticated: Flag = Field(False, validation_alias="AUTOMEM_API_ALLOW_UNAUTHENTICATED")
    dagster_url: Annotated[str, AfterValidator(_dagster_url), Expect("an http(s):// URL")] = Field(
        "http://127.0.0.1:3000", validation_alias="DAGSTER_WEBSERVER_URL"
    )
    location_name: str = Field(CODE_LOCATION_NAME, validation_alias="DAGSTER_LOCATION_NAME")
    graphql_timeout_seconds: float = Field(
        30.0, ge=1, le=3600, validation_alias="AUTOMEM_API_GRAPHQL_TIMEOUT_SECONDS"
    )
    # `"wait": true` blocks at most this long, then answers 202 with the run id.
    wait_timeout_seconds: float = Field(
        600.0, ge=0, le=86400, validation_alias="AUTOMEM_API_WAIT_TIMEOUT_SECONDS"
    )
    admin_rate_limit: Annotated[
        RateLimit,
        BeforeValidator(_rate_limit),
        Expect("CALLS/SECONDS (e.g. 10/60) or 0 to disable"),
    ] = Field(RateLimit(10, 60.0), validation_alias="AUTOMEM_API_ADMIN_RATE_LIMIT")
    # None: <data dir>/api-audit.jsonl
    audit_log: Annotated[Path | None, AfterValidator(_expand_user)] = Field(
        None, validation_alias="AUTOMEM_API_AUDIT_LOG"
    )
    # /health and /enrichment/status reuse a computed answer for this long (0 = never).
    status_cache_seconds: float = Field(
        1.0, ge=0, le=3600, validation_alias="AUTOMEM_API_STATUS_CACHE_SECONDS"
    )
