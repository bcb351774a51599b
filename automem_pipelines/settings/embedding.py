"""The embedding provider: AutoMem's variables as set, and the choice made from them
(``automem/embedding/provider_init.py``), with our one deviation: where AutoMem's ``auto``
(or its ``local``) would run fastembed, we run the shipped static model, and we refuse
settings that name a fastembed model or size."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from ..domain import embedding_defaults as d
from .environment import Group, HttpUrl, Secret

# AutoMem's values, minus placeholder (refused); AutoMem's "local" is fastembed, ours the
# shipped static model.
PROVIDERS = ("auto", "voyage", "openai", "ollama", "local")
AUTOMEM_PROVIDERS = ("auto", "voyage", "openai", "local", "ollama", "placeholder")
PACED_PROVIDERS = ("openai", "voyage", "ollama")  # remote: rate limits of their own
# The models AutoMem's fastembed provider picks by dimension (384 / 768 / 1024).
FASTEMBED_MODELS = {
    384: "BAAI/bge-small-en-v1.5",
    768: "BAAI/bge-base-en-v1.5",
    1024: "BAAI/bge-large-en-v1.5",
}


class EmbeddingEnvironment(Group):
    """The embedding variables as the environment sets them (before the choice)."""

    provider: str = Field("auto", validation_alias="EMBEDDING_PROVIDER")
    voyage_api_key: Annotated[str | None, Secret()] = Field(None, validation_alias="VOYAGE_API_KEY")
    openai_api_key: Annotated[str | None, Secret()] = Field(None, validation_alias="OPENAI_API_KEY")
    # Either name: AutoMem reads VECTOR_SIZE first. None: unset.
    vector_size: int | None = Field(
        None, ge=1, le=65536, validation_alias=AliasChoices("VECTOR_SIZE", "QDRANT_VECTOR_SIZE")
    )
    voyage_model: str = Field(d.VOYAGE_DEFAULT_MODEL, validation_alias="VOYAGE_MODEL")
    embedding_model: str | None = Field(
        None, validation_alias="EMBEDDING_MODEL"
    )  # OpenAI's / local
    ollama_model: str | None = Field(None, validation_alias="OLLAMA_MODEL")
    voyage_base_url: HttpUrl = Field(d.VOYAGE_BASE_URL, validation_alias="VOYAGE_BASE_URL")
    openai_base_url: HttpUrl | None = Field(None, validation_alias="OPENAI_BASE_URL")
    ollama_base_url: HttpUrl | None = Field(None, validation_alias="OLLAMA_BASE_URL")
    max_concurrency: int | None = Field(
        None, ge=1, le=64, validation_alias="EMBEDDING_MAX_CONCURRENCY"
    )
    max_retries: int = Field(d.MAX_RETRIES, ge=0, le=20, validation_alias="EMBEDDING_MAX_RETRIES")
    timeout_seconds: float = Field(
        d.TIMEOUT_SECONDS, ge=1, le=3600, validation_alias="EMBEDDING_TIMEOUT_SECONDS"
    )
    ollama_max_retries: int = Field(
        d.OLLAMA_MAX_RETRIES, ge=0, le=20, validation_alias="OLLAMA_MAX_RETRIES"
    )
    ollama_timeout_seconds: float = Field(
        d.OLLAMA_TIMEOUT_SECONDS, ge=1, le=3600, validation_alias="OLLAMA_TIMEOUT"
    )
    # The configured provider's rate limits (unset: no pacing), and the re-embed budget.
    requests_per_minute: int | None = Field(
        None, ge=1, le=10_000_000, validation_alias="EMBEDDING_REQUESTS_PER_MINUTE"
    )
    tokens_per_minute: int | None = Field(
        None, ge=1, le=10_000_000_000, validation_alias="EMBEDDING_TOKENS_PER_MINUTE"
    )
    # One provider's own limits, over EMBEDDING_*: a migration's target is paced under its own.
    openai_requests_per_minute: int | None = Field(
        None, ge=1, le=10_000_000, validation_alias="OPENAI_REQUESTS_PER_MINUTE"
    )
    openai_tokens_per_minute: int | None = Field(
        None, ge=1, le=10_000_000_000, validation_alias="OPENAI_TOKENS_PER_MINUTE"
    )
    voyage_requests_per_minute: int | None = Field(
        None, ge=1, le=10_000_000, validation_alias="VOYAGE_REQUESTS_PER_MINUTE"
    )
    voyage_tokens_per_minute: int | None = Field(
        None, ge=1, le=10_000_000_000, validation_alias="VOYAGE_TOKENS_PER_MINUTE"
    )
    ollama_requests_per_minute: int | None = Field(
        None, ge=1, le=10_000_000, validation_alias="OLLAMA_REQUESTS_PER_MINUTE"
    )
    ollama_tokens_per_minute: int | None = Field(
        None, ge=1, le=10_000_000_000, validation_alias="OLLAMA_TOKENS_PER_MINUTE"
    )
    max_cost_usd: float = Field(
        d.MAX_COST_USD, ge=0, le=1_000_000, validation_alias="REEMBED_MAX_COST_USD"
    )
    max_tokens: int | None = Field(None, ge=1, le=10**12, validation_alias="REEMBED_MAX_TOKENS")


class EmbeddingSettings(BaseModel):
    """The provider chosen, and everything it is built from (the embeddings resource's fields)."""

    model_config = ConfigDict(frozen=True)

    provider: str  # resolved: "voyage", "openai", "ollama" or "local"
    model: str
    vector_size: int
    selection: str  # why this provider, model and size (for logs and the UI)
    openai_api_key: str | None = None  # credentials: see EmbeddingEnvironment
    openai_base_url: str | None = None
    voyage_api_key: str | None = None
    voyage_base_url: str = d.VOYAGE_BASE_URL
    ollama_base_url: str = d.OLLAMA_BASE_URL
    max_concurrency: int = d.MAX_CONCURRENCY
    # For ollama these are OLLAMA_MAX_RETRIES / OLLAMA_TIMEOUT, else EMBEDDING_MAX_RETRIES /
    # EMBEDDING_TIMEOUT_SECONDS.
    max_retries: int = d.MAX_RETRIES
    timeout_seconds: float = d.TIMEOUT_SECONDS
    requests_per_minute: int | None = None  # EMBEDDING_REQUESTS_PER_MINUTE (None: no pacing)
    tokens_per_minute: int | None = None  # EMBEDDING_TOKENS_PER_MINUTE (None: no pacing)
    # <PROVIDER>_REQUESTS_PER_MINUTE / _TOKENS_PER_MINUTE: over EMBEDDING_* for that provider
    openai_requests_per_minute: int | None = None
    openai_tokens_per_minute: int | None = None
    voyage_requests_per_minute: int | None = None
    voyage_tokens_per_minute: int | None = None
    ollama_requests_per_minute: int | None = None
    ollama_tokens_per_minute: int | None = None
    max_cost_usd: float = d.MAX_COST_USD  # REEMBED_MAX_COST_USD: a run's default budget
    max_tokens: int | None = None  # REEMBED_MAX_TOKENS (None: no token budget)


def _voyage_dim_problem(model: str, size_var: str, dim: int) -> str | None:
    if dim in d.VOYAGE_DIMENSIONS:
        return None
    allowed = ", ".join(map(str, d.VOYAGE_DIMENSIONS))
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
        f"OLLAMA_BASE_URL), or use the shipped local model ({d.LOCAL_MODEL_NAME!r}, "
        f"{d.LOCAL_MODEL_DIM}-d) for a new store"
    )


def _is_fastembed_model(model: str) -> bool:
    name = model.lower().removeprefix("baai/")
    return name.startswith("bge-") or model in FASTEMBED_MODELS.values()


def _requested(env: EmbeddingEnvironment, remote_dim: int, errors: list[str]) -> str:
    requested = env.provider.lower()
    if requested == "placeholder":
        errors.append(
            f"EMBEDDING_PROVIDER={requested!r} is not supported: placeholder vectors are never "
            f"written (expected one of {', '.join(PROVIDERS)})"
        )
        return "auto"
    if requested == "fastembed":
        errors.append(
            f"EMBEDDING_PROVIDER='fastembed' is not one of AutoMem's values "
            f"({', '.join(AUTOMEM_PROVIDERS)}); fastembed is what AutoMem's 'local' runs. "
            + _fastembed_note(dim=remote_dim)
        )
        return "auto"
    if requested not in PROVIDERS:
        errors.append(
            f"EMBEDDING_PROVIDER={requested!r} is not supported: expected one of "
            f"{', '.join(PROVIDERS)} (placeholder vectors are never written)"
        )
        return "auto"
    return requested


def _auto(
    env: EmbeddingEnvironment, size_var: str, remote_dim: int, errors: list[str]
) -> tuple[str, str]:
    order = "AutoMem's order: Voyage, OpenAI, Ollama, fastembed"
    provider, why = "local", ""
    voyage_problem = _voyage_dim_problem(env.voyage_model, size_var, remote_dim)
    if env.voyage_api_key and voyage_problem is None:
        provider, why = "voyage", f"auto: VOYAGE_API_KEY is set → voyage ({order})"
    elif env.openai_api_key:
        provider, why = "openai", f"auto: OPENAI_API_KEY is set → openai ({order})"
    elif env.ollama_base_url or env.ollama_model:
        provider, why = "ollama", f"auto: OLLAMA_BASE_URL/OLLAMA_MODEL is set → ollama ({order})"
    elif env.voyage_api_key:  # only Voyage is configured, at a size it cannot produce
        errors.append(voyage_problem)
        provider, why = "voyage", "auto: VOYAGE_API_KEY is set → voyage"
    else:
        why = (
            "auto: none of VOYAGE_API_KEY, OPENAI_API_KEY, OLLAMA_BASE_URL, OLLAMA_MODEL is "
            "set → local, the shipped static model. Deviation from AutoMem, whose auto picks "
            "fastembed here (it downloads its model at run time and cannot run on these "
            "machines)"
        )
    if env.voyage_api_key and voyage_problem is not None and provider != "voyage":
        why += f"; VOYAGE_API_KEY is set but skipped, as AutoMem skips it: {voyage_problem}"
    return provider, why


def resolve_embedding(
    env: EmbeddingEnvironment, size_var: str, errors: list[str]
) -> EmbeddingSettings:
    """The provider, model and size AutoMem would run for these variables; problems are
    added to ``errors``."""
    remote_dim = env.vector_size or d.REMOTE_DEFAULT_DIM
    requested = _requested(env, remote_dim, errors)
    if requested == "auto":
        provider, why = _auto(env, size_var, remote_dim, errors)
    else:
        provider, why = requested, f"EMBEDDING_PROVIDER={requested}"

    dim = remote_dim
    extra: dict[str, object] = {}
    if provider == "voyage":
        if not env.voyage_api_key:
            errors.append("VOYAGE_API_KEY is required when EMBEDDING_PROVIDER=voyage")
        model = env.voyage_model
        problem = _voyage_dim_problem(model, size_var, dim)
        if problem and problem not in errors:
            errors.append(problem)
    elif provider == "openai":
        if not env.openai_api_key:
            errors.append("OPENAI_API_KEY is required when EMBEDDING_PROVIDER=openai")
        model = env.embedding_model or d.OPENAI_DEFAULT_MODEL
        small = "text-embedding-3-small"
        if dim > d.OPENAI_SMALL_MAX_DIM and model.endswith(small):
            upgraded = model[: -len(small)] + "text-embedding-3-large"
            why += (
                f"; {size_var}={dim} is more than {small} produces ({d.OPENAI_SMALL_MAX_DIM}) → "
                f"{upgraded}, as AutoMem upgrades"
            )
            model = upgraded
        if model.endswith("text-embedding-3-large") and dim > d.OPENAI_LARGE_MAX_DIM:
            errors.append(
                f"{size_var}={dim} is more than text-embedding-3-large produces: expected at "
                f"most {d.OPENAI_LARGE_MAX_DIM}"
            )
    elif provider == "ollama":
        model = env.ollama_model or d.OLLAMA_DEFAULT_MODEL
        extra = {
            "max_retries": env.ollama_max_retries,
            "timeout_seconds": env.ollama_timeout_seconds,
            "max_concurrency": env.max_concurrency or d.OLLAMA_MAX_CONCURRENCY,
        }
    else:  # local
        if requested == "local":
            why += (
                " → the shipped static model; AutoMem's local is fastembed, which cannot run "
                "on these machines"
            )
        model = _local_model(env.embedding_model, errors)
        dim = _local_dim(env.vector_size, size_var, errors)

    why += f" (model {model}, {dim}-d)"
    values: dict[str, object] = {
        "provider": provider,
        "model": model,
        "vector_size": dim,
        "selection": why,
        "openai_api_key": env.openai_api_key,
        "voyage_api_key": env.voyage_api_key,
        "voyage_base_url": env.voyage_base_url,
        "max_retries": env.max_retries,
        "timeout_seconds": env.timeout_seconds,
        "max_concurrency": env.max_concurrency or d.MAX_CONCURRENCY,
        "requests_per_minute": env.requests_per_minute,
        "tokens_per_minute": env.tokens_per_minute,
        **{
            f"{p}_{unit}_per_minute": getattr(env, f"{p}_{unit}_per_minute")
            for p in PACED_PROVIDERS
            for unit in ("requests", "tokens")
        },
        "max_cost_usd": env.max_cost_usd,
        "max_tokens": env.max_tokens,
    }
    # every provider's endpoint, not only the chosen one's: a migration's target takes its
    # credentials from the same variables
    values["openai_base_url"] = env.openai_base_url
    if env.ollama_base_url:
        values["ollama_base_url"] = env.ollama_base_url
    return EmbeddingSettings(**{**values, **extra})


def _local_model(model: str | None, errors: list[str]) -> str:
    model = model or d.LOCAL_MODEL_NAME
    if model == d.LOCAL_MODEL_NAME:
        return model
    if _is_fastembed_model(model):
        errors.append(
            f"EMBEDDING_MODEL={model!r} is not a local model: it is a fastembed model. "
            + _fastembed_note(model=model)
        )
    else:
        errors.append(
            f"EMBEDDING_MODEL={model!r} is not a local model: the local provider ships "
            f"only {d.LOCAL_MODEL_NAME!r}"
        )
    return d.LOCAL_MODEL_NAME


def _local_dim(given: int | None, size_var: str, errors: list[str]) -> int:
    dim = given or d.LOCAL_MODEL_DIM
    if dim == d.LOCAL_MODEL_DIM:
        return dim
    message = (
        f"{size_var}={dim} does not match the local model, whose vectors have "
        f"{d.LOCAL_MODEL_DIM} dimensions: unset {size_var} or set it to {d.LOCAL_MODEL_DIM}"
    )
    if dim in FASTEMBED_MODELS:
        message += ". " + _fastembed_note(dim=dim)
    errors.append(message)
    return d.LOCAL_MODEL_DIM


def target_embedding(
    credentials: dict[str, object], provider: str, model: str, dim: int
) -> tuple[EmbeddingSettings, list[str]]:
    """A migration's target: ``provider``/``model``/``dim`` checked by the rules that check
    the configured provider (resolve_embedding), its credentials and rate limits taken from
    the same variables as any provider's (``credentials``: the configured EmbeddingSettings'
    fields). Returns the settings and the problems, each naming the to_* field."""
    errors: list[str] = []
    name = (provider or "").lower()
    if name not in ("voyage", "openai", "ollama", "local"):
        errors.append(
            f"to_provider={provider!r} is not supported: expected one of voyage, openai, "
            "ollama, local"
        )
        name = "local"
    values = {k: v for k, v in credentials.items() if k in EmbeddingEnvironment.model_fields}
    values.update(provider=name, vector_size=dim)
    values["voyage_model" if name == "voyage" else "embedding_model"] = model
    if name == "ollama":
        values["ollama_model"] = model
        values.setdefault("ollama_base_url", credentials.get("ollama_base_url"))
    found: list[str] = []
    resolved = resolve_embedding(EmbeddingEnvironment(**values), "to_dim", found)
    for problem in found:
        errors.append(
            problem.replace("EMBEDDING_MODEL=", "to_model=")
            .replace("VOYAGE_MODEL=", "to_model=")
            .replace("EMBEDDING_PROVIDER=", "to_provider=")
        )
    if not found and resolved.model != model:
        errors.append(
            f"to_model={model!r} cannot make {dim}-dimensional vectors (AutoMem would run "
            f"{resolved.model!r} instead): choose a to_dim the model produces"
        )
    if not found and resolved.vector_size != dim:
        errors.append(f"to_dim={dim} is not a size {model!r} makes")
    return resolved, errors
