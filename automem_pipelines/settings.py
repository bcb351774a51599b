"""Environment → typed settings, with AutoMem's variable names and defaults.

Read once per process (the code location, a run worker, the CLI). Every invalid value is
reported together, each message naming the variable and what it accepts, before anything
touches a store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .stores.falkordb_server import DEFAULT_START_TIMEOUT, START_TIMEOUT_ENV, START_TIMEOUT_RANGE

T = TypeVar("T")

LOCAL_MODEL_NAME = "minilm-l6-static"
LOCAL_MODEL_DIM = 256
OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
OPENAI_DEFAULT_DIM = 1024  # AutoMem's VECTOR_SIZE default
PROVIDERS = ("auto", "local", "openai")
QDRANT_IN_MEMORY = ":memory:"


class SettingsError(ValueError):
    """One or more environment variables hold values we cannot use."""


_FALSE = {"0", "false", "no", "off"}
_TRUE = {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    # FalkorDB: host None means "start and use the embedded server under data_dir".
    falkordb_host: str | None
    falkordb_port: int
    falkordb_password: str | None
    falkordb_graph: str
    # Qdrant: url None means local mode on disk under data_dir; ":memory:" local in-memory.
    qdrant_url: str | None
    qdrant_api_key: str | None
    qdrant_collection: str
    qdrant_timeout_seconds: int
    qdrant_lock_timeout_seconds: float
    # Embeddings.
    embedding_provider: str  # resolved: "local" or "openai"
    embedding_model: str
    vector_size: int
    openai_api_key: str | None
    openai_base_url: str | None
    embedding_max_concurrency: int
    embedding_max_retries: int
    embedding_timeout_seconds: float
    recall_excluded_types: tuple[str, ...]
    # Enrichment.
    enrichment_max_attempts: int
    enrichment_similarity_limit: int
    enrichment_similarity_threshold: float
    enrichment_failure_backoff_seconds: float
    enrichment_enable_summaries: bool
    enrichment_spacy_model: str
    enrichment_sensor_interval_seconds: int
    enrichment_sensor_batch_size: int
    enrichment_sensor_enabled: bool
    # Drift sync.
    sync_check_interval_seconds: int
    sync_auto_repair: bool
    # Re-embed schedule.
    reembed_schedule_cron: str
    reembed_schedule_enabled: bool
    # How long a start waits for the embedded FalkorDB server to load its data.
    falkordb_start_timeout_seconds: float = DEFAULT_START_TIMEOUT

    @property
    def falkordb_embedded(self) -> bool:
        return self.falkordb_host is None

    @property
    def qdrant_local(self) -> bool:
        return self.qdrant_url is None or self.qdrant_url == QDRANT_IN_MEMORY

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        return _parse(os.environ if env is None else env)


class _Reader:
    """Collects every problem instead of stopping at the first one."""

    def __init__(self, env: Mapping[str, str]):
        self.env = env
        self.errors: list[str] = []

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None or value.strip() == "":
            return None  # AutoMem treats an empty string as unset
        return value.strip()

    def text(self, name: str, default: str) -> str:
        return self.raw(name) or default

    def _convert(self, name: str, default: T, conv: Callable[[str], T], what: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return conv(value)
        except ValueError:
            self.errors.append(f"{name}={value!r} is not valid: expected {what}")
            return default

    def integer(self, name: str, default: int, lo: int, hi: int) -> int:
        what = f"an integer from {lo} to {hi}"

        def conv(v: str) -> int:
            n = int(v)
            if not lo <= n <= hi:
                raise ValueError
            return n

        return self._convert(name, default, conv, what)

    def number(self, name: str, default: float, lo: float, hi: float) -> float:
        what = f"a number from {lo} to {hi}"

        def conv(v: str) -> float:
            n = float(v)
            if not lo <= n <= hi:
                raise ValueError
            return n

        return self._convert(name, default, conv, what)

    def boolean(self, name: str, default: bool) -> bool:
        def conv(v: str) -> bool:
            low = v.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError

        return self._convert(name, default, conv, "one of 1/true/yes/on or 0/false/no/off")


def _parse(env: Mapping[str, str]) -> Settings:
    r = _Reader(env)
    data_dir = Path(r.text("AUTOMEM_DATA_DIR", str(Path.home() / ".automem-pipelines")))
    data_dir = data_dir.expanduser().resolve()

    provider = r.text("EMBEDDING_PROVIDER", "auto").lower()
    openai_key = r.raw("OPENAI_API_KEY")
    if provider not in PROVIDERS:
        r.errors.append(
            f"EMBEDDING_PROVIDER={provider!r} is not supported: expected one of "
            f"{', '.join(PROVIDERS)} (placeholder vectors are never written)"
        )
        provider = "auto"
    if provider == "auto":
        provider = "openai" if openai_key else "local"
    if provider == "openai" and not openai_key:
        r.errors.append("OPENAI_API_KEY is required when EMBEDDING_PROVIDER=openai")

    default_model = LOCAL_MODEL_NAME if provider == "local" else OPENAI_DEFAULT_MODEL
    model = r.text("EMBEDDING_MODEL", default_model)
    if provider == "local" and model != LOCAL_MODEL_NAME:
        r.errors.append(
            f"EMBEDDING_MODEL={model!r} is not a local model: the local provider ships "
            f"only {LOCAL_MODEL_NAME!r}"
        )
        model = LOCAL_MODEL_NAME

    size_var = "VECTOR_SIZE" if r.raw("VECTOR_SIZE") is not None else "QDRANT_VECTOR_SIZE"
    default_dim = LOCAL_MODEL_DIM if provider == "local" else OPENAI_DEFAULT_DIM
    vector_size = r.integer(size_var, default_dim, 1, 65536)
    if provider == "local" and vector_size != LOCAL_MODEL_DIM:
        r.errors.append(
            f"{size_var}={vector_size} does not match the local model, whose vectors have "
            f"{LOCAL_MODEL_DIM} dimensions: unset {size_var} or set it to {LOCAL_MODEL_DIM}"
        )
        vector_size = LOCAL_MODEL_DIM

    qdrant_url = r.raw("QDRANT_URL")
    if qdrant_url is None and r.raw("QDRANT_HOST"):
        qdrant_url = f"http://{r.raw('QDRANT_HOST')}:{r.integer('QDRANT_PORT', 6333, 1, 65535)}"
    if qdrant_url is not None and qdrant_url != QDRANT_IN_MEMORY:
        if not qdrant_url.startswith(("http://", "https://")):
            r.errors.append(
                f"QDRANT_URL={qdrant_url!r} is not valid: expected an http(s):// URL, "
                f"{QDRANT_IN_MEMORY!r}, or unset for the embedded store"
            )

    excluded = tuple(
        t.strip() for t in r.text("RECALL_EXCLUDED_TYPES", "MetaPattern").split(",") if t.strip()
    )

    settings = Settings(
        data_dir=data_dir,
        falkordb_host=r.raw("FALKORDB_HOST"),
        falkordb_port=r.integer("FALKORDB_PORT", 6379, 1, 65535),
        falkordb_password=r.raw("FALKORDB_PASSWORD"),
        falkordb_graph=r.text("FALKORDB_GRAPH", "memories"),
        qdrant_url=qdrant_url,
        qdrant_api_key=r.raw("QDRANT_API_KEY"),
        qdrant_collection=r.text("QDRANT_COLLECTION", "memories"),
        qdrant_timeout_seconds=r.integer("QDRANT_TIMEOUT_SECONDS", 30, 1, 3600),
        qdrant_lock_timeout_seconds=r.number("QDRANT_LOCAL_LOCK_TIMEOUT_SECONDS", 600.0, 0, 86400),
        embedding_provider=provider,
        embedding_model=model,
        vector_size=vector_size,
        openai_api_key=openai_key,
        openai_base_url=r.raw("OPENAI_BASE_URL"),
        embedding_max_concurrency=r.integer("EMBEDDING_MAX_CONCURRENCY", 16, 1, 64),
        embedding_max_retries=r.integer("EMBEDDING_MAX_RETRIES", 6, 0, 20),
        embedding_timeout_seconds=r.number("EMBEDDING_TIMEOUT_SECONDS", 60.0, 1, 3600),
        recall_excluded_types=excluded,
        enrichment_max_attempts=r.integer("ENRICHMENT_MAX_ATTEMPTS", 3, 1, 100),
        enrichment_similarity_limit=r.integer("ENRICHMENT_SIMILARITY_LIMIT", 5, 0, 100),
        enrichment_similarity_threshold=r.number("ENRICHMENT_SIMILARITY_THRESHOLD", 0.8, -1, 1),
        enrichment_failure_backoff_seconds=r.number(
            "ENRICHMENT_FAILURE_BACKOFF_SECONDS", 5.0, 0, 86400
        ),
        enrichment_enable_summaries=r.boolean("ENRICHMENT_ENABLE_SUMMARIES", True),
        enrichment_spacy_model=r.text("ENRICHMENT_SPACY_MODEL", "en_core_web_sm"),
        enrichment_sensor_interval_seconds=r.integer(
            "ENRICHMENT_SENSOR_INTERVAL_SECONDS", 30, 1, 86400
        ),
        enrichment_sensor_batch_size=r.integer("ENRICHMENT_SENSOR_BATCH_SIZE", 200, 1, 5000),
        enrichment_sensor_enabled=r.boolean("ENRICHMENT_SENSOR_ENABLED", True),
        sync_check_interval_seconds=r.integer("SYNC_CHECK_INTERVAL_SECONDS", 3600, 60, 7 * 86400),
        sync_auto_repair=r.boolean("SYNC_AUTO_REPAIR", True),
        reembed_schedule_cron=r.text("REEMBED_SCHEDULE_CRON", "0 3 * * *"),
        reembed_schedule_enabled=r.boolean("REEMBED_SCHEDULE_ENABLED", False),
        falkordb_start_timeout_seconds=r.number(
            START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT, *START_TIMEOUT_RANGE
        ),
    )
    if r.errors:
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(r.errors))
    return settings
