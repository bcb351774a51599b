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
OPENAI_SMALL_MAX_DIM = 1536  # text-embedding-3-small cannot produce more (AutoMem upgrades)
OPENAI_LARGE_MAX_DIM = 3072
REMOTE_DEFAULT_DIM = 1024  # AutoMem's VECTOR_SIZE default
VOYAGE_DEFAULT_MODEL = "voyage-4"
VOYAGE_DEFAULT_BASE_URL = "https://api.voyageai.com/v1"
VOYAGE_DIMENSIONS = (256, 512, 1024, 2048)
OLLAMA_DEFAULT_BASE_URL = "http://localhost:11434"
OLLAMA_DEFAULT_MODEL = "nomic-embed-text"
# AutoMem's values, minus placeholder (refused); AutoMem's "local" is fastembed, ours the
# shipped static model (see _resolve_embedding).
PROVIDERS = ("auto", "voyage", "openai", "ollama", "local")
AUTOMEM_PROVIDERS = ("auto", "voyage", "openai", "local", "ollama", "placeholder")
# The models AutoMem's fastembed provider picks by dimension (384 / 768 / 1024).
FASTEMBED_MODELS = {
    384: "BAAI/bge-small-en-v1.5",
    768: "BAAI/bge-base-en-v1.5",
    1024: "BAAI/bge-large-en-v1.5",
}
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
    embedding_provider: str  # resolved: "voyage", "openai", "ollama" or "local"
    embedding_model: str
    vector_size: int
    embedding_selection: str  # why this provider, model and size (for logs and the UI)
    openai_api_key: str | None
    openai_base_url: str | None
    voyage_api_key: str | None
    voyage_base_url: str
    ollama_base_url: str
    embedding_max_concurrency: int
    # For ollama these are OLLAMA_MAX_RETRIES / OLLAMA_TIMEOUT, else EMBEDDING_MAX_RETRIES /
    # EMBEDDING_TIMEOUT_SECONDS.
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
    # Run monitoring (the daemon): how often it checks that every running run still has its
    # worker; a run whose worker died ends FAILURE within about this many seconds.
    run_monitoring_poll_seconds: int
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


@dataclass(frozen=True)
class _Embedding:
    provider: str
    model: str
    dim: int
    selection: str
    openai_base_url: str | None
    voyage_base_url: str
    ollama_base_url: str
    max_concurrency: int
    max_retries: int
    timeout_seconds: float


def _url(r: _Reader, name: str, default: str | None) -> str | None:
    value = r.raw(name)
    if value is None:
        return default
    if not value.startswith(("http://", "https://")):
        r.errors.append(f"{name}={value!r} is not valid: expected an http(s):// URL")
        return default
    return value


def _voyage_dim_problem(model: str, size_var: str, dim: int) -> str | None:
    if dim in VOYAGE_DIMENSIONS:
        return None
    allowed = ", ".join(map(str, VOYAGE_DIMENSIONS))
    return (
        f"{size_var}={dim} is not a size VOYAGE_MODEL={model!r} can produce: Voyage's "
        f"output_dimension is one of {allowed}; set {size_var} to one of them (the size of "
        f"the collection Voyage wrote)"
    )


def _fastembed_note(model: str | None = None, dim: int | None = None) -> str:
    name = model or FASTEMBED_MODELS.get(dim or 0, FASTEMBED_MODELS[768])
    return (
        f"AutoMem runs {name} with fastembed (its 'local' provider), which downloads the model "
        f"at run time and cannot run on these machines, and no other model is put in its place: "
        f"configure the provider that wrote the collection (VOYAGE_API_KEY, OPENAI_API_KEY or "
        f"OLLAMA_BASE_URL), or use the shipped local model ({LOCAL_MODEL_NAME!r}, "
        f"{LOCAL_MODEL_DIM}-d) for a new store"
    )


def _is_fastembed_model(model: str) -> bool:
    name = model.lower().removeprefix("baai/")
    return name.startswith("bge-") or model in FASTEMBED_MODELS.values()


def _resolve_embedding(r: _Reader) -> _Embedding:
    """AutoMem's provider choice (``automem/embedding/provider_init.py``), with our one
    deviation: where AutoMem's ``auto`` (or its ``local``) would run fastembed, we run the
    shipped static model, and we refuse settings that name a fastembed model or size."""
    requested = r.text("EMBEDDING_PROVIDER", "auto").lower()
    voyage_key = r.raw("VOYAGE_API_KEY")
    openai_key = r.raw("OPENAI_API_KEY")
    ollama_set = bool(r.raw("OLLAMA_BASE_URL") or r.raw("OLLAMA_MODEL"))
    size_var = "VECTOR_SIZE" if r.raw("VECTOR_SIZE") is not None else "QDRANT_VECTOR_SIZE"
    given_dim = r.integer(size_var, 0, 1, 65536) or None  # None: unset (or invalid, reported)
    remote_dim = given_dim or REMOTE_DEFAULT_DIM
    voyage_model = r.text("VOYAGE_MODEL", VOYAGE_DEFAULT_MODEL)

    if requested == "placeholder":
        r.errors.append(
            f"EMBEDDING_PROVIDER={requested!r} is not supported: placeholder vectors are never "
            f"written (expected one of {', '.join(PROVIDERS)})"
        )
        requested = "auto"
    elif requested == "fastembed":
        r.errors.append(
            f"EMBEDDING_PROVIDER='fastembed' is not one of AutoMem's values "
            f"({', '.join(AUTOMEM_PROVIDERS)}); fastembed is what AutoMem's 'local' runs. "
            + _fastembed_note(dim=remote_dim)
        )
        requested = "auto"
    elif requested not in PROVIDERS:
        r.errors.append(
            f"EMBEDDING_PROVIDER={requested!r} is not supported: expected one of "
            f"{', '.join(PROVIDERS)} (placeholder vectors are never written)"
        )
        requested = "auto"

    order = "AutoMem's order: Voyage, OpenAI, Ollama, fastembed"
    if requested == "auto":
        provider, why = "local", ""
        voyage_problem = _voyage_dim_problem(voyage_model, size_var, remote_dim)
        if voyage_key and voyage_problem is None:
            provider, why = "voyage", f"auto: VOYAGE_API_KEY is set → voyage ({order})"
        elif openai_key:
            provider, why = "openai", f"auto: OPENAI_API_KEY is set → openai ({order})"
        elif ollama_set:
            provider, why = "ollama", f"auto: OLLAMA_BASE_URL/OLLAMA_MODEL is set → ollama ({order})"
        elif voyage_key:  # only Voyage is configured, at a size it cannot produce
            r.errors.append(voyage_problem)
            provider, why = "voyage", "auto: VOYAGE_API_KEY is set → voyage"
        else:
            why = (
                "auto: none of VOYAGE_API_KEY, OPENAI_API_KEY, OLLAMA_BASE_URL, OLLAMA_MODEL is "
                "set → local, the shipped static model. Deviation from AutoMem, whose auto picks "
                "fastembed here (it downloads its model at run time and cannot run on these "
                "machines)"
            )
        if voyage_key and voyage_problem is not None and provider != "voyage":
            why += f"; VOYAGE_API_KEY is set but skipped, as AutoMem skips it: {voyage_problem}"
    else:
        provider, why = requested, f"EMBEDDING_PROVIDER={requested}"

    max_retries = r.integer("EMBEDDING_MAX_RETRIES", 6, 0, 20)
    timeout = r.number("EMBEDDING_TIMEOUT_SECONDS", 60.0, 1, 3600)
    concurrency_default = 16
    openai_base_url = None
    voyage_base_url = VOYAGE_DEFAULT_BASE_URL
    ollama_base_url = OLLAMA_DEFAULT_BASE_URL
    dim = remote_dim

    if provider == "voyage":
        if not voyage_key:
            r.errors.append("VOYAGE_API_KEY is required when EMBEDDING_PROVIDER=voyage")
        model = voyage_model
        problem = _voyage_dim_problem(model, size_var, dim)
        if problem and problem not in r.errors:
            r.errors.append(problem)
        voyage_base_url = _url(r, "VOYAGE_BASE_URL", VOYAGE_DEFAULT_BASE_URL)
    elif provider == "openai":
        if not openai_key:
            r.errors.append("OPENAI_API_KEY is required when EMBEDDING_PROVIDER=openai")
        model = r.text("EMBEDDING_MODEL", OPENAI_DEFAULT_MODEL)
        small = "text-embedding-3-small"
        if dim > OPENAI_SMALL_MAX_DIM and model.endswith(small):
            upgraded = model[: -len(small)] + "text-embedding-3-large"
            why += (
                f"; {size_var}={dim} is more than {small} produces ({OPENAI_SMALL_MAX_DIM}) → "
                f"{upgraded}, as AutoMem upgrades"
            )
            model = upgraded
        if model.endswith("text-embedding-3-large") and dim > OPENAI_LARGE_MAX_DIM:
            r.errors.append(
                f"{size_var}={dim} is more than text-embedding-3-large produces: expected at "
                f"most {OPENAI_LARGE_MAX_DIM}"
            )
        openai_base_url = _url(r, "OPENAI_BASE_URL", None)
    elif provider == "ollama":
        model = r.text("OLLAMA_MODEL", OLLAMA_DEFAULT_MODEL)
        ollama_base_url = _url(r, "OLLAMA_BASE_URL", OLLAMA_DEFAULT_BASE_URL)
        max_retries = r.integer("OLLAMA_MAX_RETRIES", 2, 0, 20)
        timeout = r.number("OLLAMA_TIMEOUT", 30.0, 1, 3600)
        concurrency_default = 2  # one local server: a deep queue would only hit the timeout
    else:  # local
        if requested == "local":
            why += (
                " → the shipped static model; AutoMem's local is fastembed, which cannot run "
                "on these machines"
            )
        model = r.text("EMBEDDING_MODEL", LOCAL_MODEL_NAME)
        if model != LOCAL_MODEL_NAME:
            if _is_fastembed_model(model):
                r.errors.append(
                    f"EMBEDDING_MODEL={model!r} is not a local model: it is a fastembed model. "
                    + _fastembed_note(model=model)
                )
            else:
                r.errors.append(
                    f"EMBEDDING_MODEL={model!r} is not a local model: the local provider ships "
                    f"only {LOCAL_MODEL_NAME!r}"
                )
            model = LOCAL_MODEL_NAME
        dim = given_dim or LOCAL_MODEL_DIM
        if dim != LOCAL_MODEL_DIM:
            message = (
                f"{size_var}={dim} does not match the local model, whose vectors have "
                f"{LOCAL_MODEL_DIM} dimensions: unset {size_var} or set it to {LOCAL_MODEL_DIM}"
            )
            if dim in FASTEMBED_MODELS:
                message += ". " + _fastembed_note(dim=dim)
            r.errors.append(message)
            dim = LOCAL_MODEL_DIM

    why += f" (model {model}, {dim}-d)"
    return _Embedding(
        provider=provider,
        model=model,
        dim=dim,
        selection=why,
        openai_base_url=openai_base_url,
        voyage_base_url=voyage_base_url or VOYAGE_DEFAULT_BASE_URL,
        ollama_base_url=ollama_base_url or OLLAMA_DEFAULT_BASE_URL,
        max_concurrency=r.integer("EMBEDDING_MAX_CONCURRENCY", concurrency_default, 1, 64),
        max_retries=max_retries,
        timeout_seconds=timeout,
    )


def _parse(env: Mapping[str, str]) -> Settings:
    r = _Reader(env)
    data_dir = Path(r.text("AUTOMEM_DATA_DIR", str(Path.home() / ".automem-pipelines")))
    data_dir = data_dir.expanduser().resolve()

    emb = _resolve_embedding(r)

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
        embedding_provider=emb.provider,
        embedding_model=emb.model,
        vector_size=emb.dim,
        embedding_selection=emb.selection,
        openai_api_key=r.raw("OPENAI_API_KEY"),
        openai_base_url=emb.openai_base_url,
        voyage_api_key=r.raw("VOYAGE_API_KEY"),
        voyage_base_url=emb.voyage_base_url,
        ollama_base_url=emb.ollama_base_url,
        embedding_max_concurrency=emb.max_concurrency,
        embedding_max_retries=emb.max_retries,
        embedding_timeout_seconds=emb.timeout_seconds,
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
        run_monitoring_poll_seconds=r.integer("RUN_MONITORING_POLL_SECONDS", 30, 1, 600),
        falkordb_start_timeout_seconds=r.number(
            START_TIMEOUT_ENV, DEFAULT_START_TIMEOUT, *START_TIMEOUT_RANGE
        ),
    )
    if r.errors:
        raise SettingsError("invalid configuration:\n  " + "\n  ".join(r.errors))
    return settings
