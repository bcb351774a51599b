"""Names shared by the code location, the API and the tests.

Renaming anything here is a breaking change for schedules, sensors and API clients,
so every place that needs one of these names imports it from this module.
"""

CODE_LOCATION_NAME = "automem_pipelines"
REPOSITORY_NAME = "__repository__"

REEMBED_JOB = "reembed_job"
# The same ops over one id range per run: the store as a partitioned backfill.
REEMBED_PARTITIONED_JOB = "reembed_partitioned_job"
DRIFT_SYNC_JOB = "drift_sync_job"
ENRICHMENT_JOB = "enrichment_job"
# Embedding-model migration: plan → build → backfill → catch up → verify → cut over.
MIGRATE_JOB = "migrate_job"

REEMBED_SCHEDULE = "incremental_reembed_schedule"
DRIFT_SYNC_SCHEDULE = "drift_sync_schedule"
ENRICHMENT_SENSOR = "enrichment_sensor"

# External assets that stand for the two stores.
GRAPH_ASSET_KEY = ["automem", "falkordb_graph"]
VECTOR_ASSET_KEY = ["automem", "qdrant_collection"]

# Run tags.
TAG_PIPELINE = "automem/pipeline"
TAG_TRIGGER = "automem/trigger"
TAG_REQUEST_ID = "automem/request_id"
# The run queue starts queued runs highest `dagster/priority` first (an integer as a string,
# default 0; first in, first out among equals). Every job's runs carry OPERATOR_PRIORITY (a
# job tag: what the API, the CLI and the UI's launchpad start), and the runs the enrichment
# sensor and the schedules request override it with BACKGROUND_PRIORITY: a re-embed or sync
# an operator asks for waits at most for the run already in progress, never behind the
# sensor's queued enrichment runs.
TAG_PRIORITY = "dagster/priority"
OPERATOR_PRIORITY = "10"
BACKGROUND_PRIORITY = "0"
# Runs that open the embedded (local-mode) Qdrant carry this tag; the instance's run queue
# limits it to one run at a time because local mode allows a single process.
TAG_QDRANT_LOCK = "automem/qdrant"
QDRANT_LOCAL_TAG_VALUE = "local"

# Concurrency pools (Dagster's op-level limits across all runs; dagster.yaml sets the default
# limit, `dagster instance concurrency set POOL N` one pool's). Store scans: an enumeration
# reads its whole range from FalkorDB and Qdrant. Provider: steps that call the embedding
# provider (and write what they embedded).
POOL_STORE_SCAN = "automem_store_scan"
POOL_PROVIDER = "automem_provider"

# Limits from the OpenAI embeddings API.
MAX_BATCH_SIZE = 2048
DEFAULT_BATCH_SIZE = 32

# Every job ends in one summarizing op whose Output metadata carries the whole summary as a
# JSON entry under this key (next to its scalar fields as single entries), so the API reads a
# finished run's result over GraphQL from the step's ExecutionStepOutputEvent.
SUMMARY_METADATA_KEY = "summary"
SUMMARY_OPS = {
    REEMBED_JOB: "summarize_reembed",
    REEMBED_PARTITIONED_JOB: "summarize_reembed",
    DRIFT_SYNC_JOB: "summarize_sync",
    ENRICHMENT_JOB: "summarize_enrichment",
    MIGRATE_JOB: "cut_over_readers",
}

# Asset checks on the collection asset, one per kind of drift (domain/drift/checks.py says
# what each counts); /health reads their latest results.
DRIFT_CHECKS = (
    "missing_vectors",
    "stale_vectors",
    "payload_drift",
    "orphaned_points",
    "duplicate_ids",
)

# Opens the message of a run refused by its budget (domain.pricing): the API answers it 422.
BUDGET_REFUSED = "refused before any provider call"
