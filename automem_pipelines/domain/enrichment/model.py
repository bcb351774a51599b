"""What an enrichment batch works with: its options, the memories in flight, its result, and
the node properties that track attempts."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Node properties that track attempts (queryable by the sensor, unlike metadata JSON).
ATTEMPTS = "enrichment_attempts"
LAST_ERROR = "enrichment_error"
LAST_ERROR_AT = "enrichment_error_at"
RETRY_AT = "enrichment_retry_at"  # epoch seconds; the sensor waits until then
FAILED = "enrichment_failed"
RETRY_FORCED = "enrichment_retry_forced"  # the failed attempt was a forced one
ATTEMPT_PROPS = (ATTEMPTS, LAST_ERROR, LAST_ERROR_AT, RETRY_AT, FAILED, RETRY_FORCED)

ERROR_MAX_CHARS = 500


@dataclass(frozen=True)
class EnrichmentOptions:
    # AutoMem's ENRICHMENT_* settings (defaults and ranges: automem_pipelines.settings).
    similarity_limit: int
    similarity_threshold: float
    enable_summaries: bool
    max_attempts: int
    failure_backoff_seconds: float
    temporal_limit: int = 5
    temporal_window_days: int = 7
    nlp_batch_size: int = 64


@dataclass
class BatchResult:
    index: int
    ids: list[str]  # deduplicated, as given
    forced: bool
    model: str = ""
    rule_only: bool = False
    enriched: list[str] = field(default_factory=list)
    skipped_processed: list[str] = field(default_factory=list)
    skipped_failed: list[str] = field(default_factory=list)  # marked failed; non-forced run
    missing: list[str] = field(default_factory=list)
    invalid: list[str] = field(default_factory=list)  # ids that cannot be a memory's (or shared)
    failed: dict[str, str] = field(default_factory=dict)  # this attempt's error per memory
    exhausted: list[str] = field(default_factory=list)  # marked failed by this batch
    # failed memories whose failure could not be written to the graph: their attempts,
    # backoff and error were not recorded (the error of that write per memory)
    unrecorded: dict[str, str] = field(default_factory=dict)
    no_vector: list[str] = field(default_factory=list)  # semantic step skipped
    temporal_links: int = 0
    semantic_links: int = 0
    pattern_links: int = 0
    last_success_id: str | None = None
    last_success_at: str | None = None
    last_error: str | None = None
    last_error_at: str | None = None
    nlp_seconds: float = 0.0
    graph_read_seconds: float = 0.0
    graph_write_seconds: float = 0.0
    neighbour_seconds: float = 0.0
    payload_seconds: float = 0.0
    seconds: float = 0.0

    @property
    def skipped(self) -> int:
        return (
            len(self.skipped_processed)
            + len(self.skipped_failed)
            + len(self.missing)
            + len(self.invalid)
        )


@dataclass
class Work:
    """One memory being enriched in this batch."""

    id: str
    props: dict[str, Any]
    content: str
    metadata: dict[str, Any] = field(default_factory=dict)
    entities: dict[str, list[str]] = field(default_factory=dict)
    temporal: list[str] = field(default_factory=list)
    patterns: list[dict[str, Any]] = field(default_factory=list)
    neighbours: list[tuple[str, float]] = field(default_factory=list)


def is_true(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS]


def timed(result: BatchResult, attr: str) -> Callable[[], None]:
    """Start a clock; the returned function adds the elapsed seconds to ``result.<attr>``."""
    started = time.perf_counter()

    def stop() -> None:
        setattr(result, attr, getattr(result, attr) + time.perf_counter() - started)

    return stop
