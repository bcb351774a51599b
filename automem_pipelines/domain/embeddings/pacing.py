"""Pacing under a provider's rate limits: requests and tokens per minute, as token buckets
every provider shares (``PacedProvider`` wraps any of them), so a run stays under its
limits instead of discovering them by 429s.

A bucket holds at most ``burst_seconds`` of its rate and refills continuously. A request
takes its cost at once, possibly leaving the bucket in debt (a request larger than the
bucket still goes through), and waits until the debt is repaid before it is sent: over any
span of T seconds what is sent is at most the burst plus rate × T.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from .base import EmbeddedBatch, EmbeddingProvider

BURST_SECONDS = 1.0  # what a full bucket lets through at once: one second of its rate


class TokenBucket:
    def __init__(
        self,
        per_minute: float,
        burst_seconds: float = BURST_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        if per_minute <= 0:
            raise ValueError(f"a rate limit must be positive, got {per_minute}")
        self.rate = per_minute / 60.0  # per second
        self.capacity = max(1.0, self.rate * burst_seconds)
        self._clock = clock
        self._level = self.capacity
        self._at = clock()
        self._lock = threading.Lock()

    def reserve(self, cost: float) -> float:
        """Take ``cost`` now; the seconds to wait before using it (0: go)."""
        with self._lock:
            now = self._clock()
            self._level = min(self.capacity, self._level + (now - self._at) * self.rate)
            self._at = now
            self._level -= cost
            return 0.0 if self._level >= 0 else -self._level / self.rate


class RateLimiter:
    """Requests and tokens per minute (either may be None: not limited)."""

    def __init__(
        self,
        requests_per_minute: int | None,
        tokens_per_minute: int | None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        burst_seconds: float = BURST_SECONDS,
    ):
        self.requests = (
            TokenBucket(requests_per_minute, burst_seconds, clock) if requests_per_minute else None
        )
        self.tokens = (
            TokenBucket(tokens_per_minute, burst_seconds, clock) if tokens_per_minute else None
        )
        self._sleep = sleep
        self.waited = 0.0  # seconds slept in all, for the logs and tests

    @property
    def enabled(self) -> bool:
        return self.requests is not None or self.tokens is not None

    def acquire(self, tokens: int) -> float:
        """Wait until one request of ``tokens`` tokens may be sent; the seconds waited."""
        wait = 0.0
        if self.requests is not None:
            wait = max(wait, self.requests.reserve(1))
        if self.tokens is not None:
            wait = max(wait, self.tokens.reserve(tokens))
        if wait > 0:
            self._sleep(wait)
            self.waited += wait
        return wait


class PacedProvider:
    """Any provider, each ``embed`` call paced by the limiter (its tokens counted with the
    model family's tokenizer: domain.tokens). Everything else is the provider's."""

    def __init__(
        self,
        inner: EmbeddingProvider,
        limiter: RateLimiter,
        count_tokens: Callable[[Sequence[str]], int],
    ):
        self.inner = inner
        self.limiter = limiter
        self._count = count_tokens

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    @property
    def provider(self) -> str:
        return self.inner.provider

    @property
    def model(self) -> str:
        return self.inner.model

    @property
    def dim(self) -> int:
        return self.inner.dim

    @property
    def max_concurrency(self) -> int:
        return self.inner.max_concurrency

    def embed(self, texts: Sequence[str]) -> EmbeddedBatch:
        self.limiter.acquire(self._count(texts))
        return self.inner.embed(texts)

    def close(self) -> None:
        self.inner.close()


def paced(
    provider: EmbeddingProvider,
    requests_per_minute: int | None,
    tokens_per_minute: int | None,
) -> EmbeddingProvider:
    """The provider paced under these limits; itself when neither is set."""
    limiter = RateLimiter(requests_per_minute, tokens_per_minute)
    if not limiter.enabled:
        return provider
    from ..tokens import counter_for

    counter = counter_for(provider.provider, provider.model)
    return PacedProvider(provider, limiter, counter.count)
