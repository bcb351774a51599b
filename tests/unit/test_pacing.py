"""Pacing under requests/tokens per minute, with an injected clock: nothing really sleeps."""

from __future__ import annotations

import numpy as np
import pytest

from automem_pipelines.domain.embeddings import EmbeddedBatch, PacedProvider, RateLimiter, paced
from automem_pipelines.domain.embeddings.pacing import TokenBucket


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds


def _worst_window(times: list[float], costs: list[float], span: float) -> float:
    """The most sent in any window [t, t + span) starting at a send."""
    worst = 0.0
    for i, start in enumerate(times):
        worst = max(worst, sum(c for t, c in zip(times[i:], costs[i:]) if t < start + span))
    return worst


def test_bucket_reserves_and_refills():
    clock = FakeClock()
    bucket = TokenBucket(60, burst_seconds=1.0, clock=clock)  # 1 per second, burst 1
    assert bucket.reserve(1) == 0.0
    assert bucket.reserve(1) == pytest.approx(1.0)  # in debt: wait one second
    clock.now = 10.0
    assert bucket.reserve(1) == 0.0  # refilled, but never above its capacity
    assert bucket.reserve(1) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        TokenBucket(0)


def test_requests_per_minute_are_respected():
    clock = FakeClock()
    limiter = RateLimiter(120, None, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(300):
        limiter.acquire(10)
        sent.append(clock.now)
    # 300 requests at 2 per second: about 150 s, and never more than burst + rate × span
    assert sent[-1] == pytest.approx((300 - 2) / 2.0)
    for span in (1.0, 10.0, 60.0):
        assert _worst_window(sent, [1] * len(sent), span) <= 2 + 2 * span
    assert limiter.waited == pytest.approx(sent[-1])


def test_tokens_per_minute_are_respected_with_large_requests():
    clock = FakeClock()
    limiter = RateLimiter(None, 60_000, clock=clock, sleep=clock.sleep)  # 1000 tokens/s
    costs = [5000, 200, 3000, 800, 5000] * 20  # requests larger than the bucket go through
    sent = []
    for cost in costs:
        limiter.acquire(cost)
        sent.append(clock.now)
    assert sent[-1] >= (sum(costs) - costs[-1] - 1000) / 1000.0
    for span in (1.0, 5.0, 60.0):
        # what started within any span is at most the burst + rate × span + one request
        assert _worst_window(sent, costs, span) <= 1000 + 1000 * span + max(costs)


def test_both_limits_the_slower_wins():
    clock = FakeClock()
    limiter = RateLimiter(60, 600, clock=clock, sleep=clock.sleep)
    for _ in range(30):
        limiter.acquire(100)  # 10 tokens/s → 10 s per request, slower than 1 request/s
    assert clock.now == pytest.approx(29 * 10.0, rel=0.05)


class _Inner:
    provider, model, dim, max_concurrency = "openai", "text-embedding-3-small", 4, 1

    def __init__(self):
        self.calls = []

    def embed(self, texts):
        self.calls.append(list(texts))
        return EmbeddedBatch(np.ones((len(texts), 4), np.float32))

    def close(self):
        pass


def test_paced_provider_paces_every_call_and_keeps_the_identity():
    clock = FakeClock()
    inner = _Inner()
    provider = PacedProvider(
        inner, RateLimiter(60, None, clock=clock, sleep=clock.sleep), lambda t: len(t)
    )
    for _ in range(5):
        provider.embed(["a", "b"])
    assert len(inner.calls) == 5 and clock.now == pytest.approx(4.0)
    assert (provider.provider, provider.model, provider.dim) == (
        "openai",
        "text-embedding-3-small",
        4,
    )
    assert paced(inner, None, None) is inner  # no limits: the provider itself
    wrapped = paced(inner, None, 1_000_000)
    assert isinstance(wrapped, PacedProvider) and wrapped.limiter.tokens is not None
