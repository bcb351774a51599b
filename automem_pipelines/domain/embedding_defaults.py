"""Each embedding provider's defaults, written once: the settings, the providers' constructors
and the embeddings resource take them from here."""

LOCAL_MODEL_NAME = "minilm-l6-static"
LOCAL_MODEL_DIM = 256

# Remote providers (AutoMem's EMBEDDING_MAX_RETRIES / EMBEDDING_TIMEOUT_SECONDS defaults).
MAX_CONCURRENCY = 16  # requests in flight
MAX_RETRIES = 6  # retries of a 429/5xx/timeout per request
TIMEOUT_SECONDS = 60.0
BACKOFF_BASE_SECONDS = 0.5
BACKOFF_CAP_SECONDS = 30.0
REMOTE_DEFAULT_DIM = 1024  # AutoMem's VECTOR_SIZE default

OPENAI_DEFAULT_MODEL = "text-embedding-3-small"
OPENAI_SMALL_MAX_DIM = 1536  # text-embedding-3-small cannot produce more (AutoMem upgrades)
OPENAI_LARGE_MAX_DIM = 3072

VOYAGE_DEFAULT_MODEL = "voyage-4"
VOYAGE_BASE_URL = "https://api.voyageai.com/v1"
VOYAGE_DIMENSIONS = (256, 512, 1024, 2048)
VOYAGE_MAX_TEXTS = 128  # texts per request, Voyage's limit (AutoMem's batch size too)

OLLAMA_DEFAULT_MODEL = "nomic-embed-text"
OLLAMA_BASE_URL = "http://localhost:11434"
OLLAMA_MAX_CONCURRENCY = 2  # one local server: a deep queue would only hit the timeout
OLLAMA_MAX_RETRIES = 2  # AutoMem's OLLAMA_MAX_RETRIES
OLLAMA_TIMEOUT_SECONDS = 30.0  # AutoMem's OLLAMA_TIMEOUT

# The budget a re-embed runs under unless raised (REEMBED_MAX_COST_USD, max_cost_usd): a run
# whose estimate is above it is refused before any provider call.
MAX_COST_USD = 10.0
MAX_COST_USD_LIMIT = 1_000_000.0  # the highest budget a run config or request may give
