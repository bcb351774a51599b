"""A sliding-window limit on admin calls, per client address.

Counted after the API-token check and before the admin-token check, so callers holding an
API token can neither hammer the admin endpoints (the documentation's cost warning) nor
guess the admin token quickly. In-memory: one API process.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

from .config import RateLimit


class SlidingWindowLimiter:
    def __init__(self, limit: RateLimit, clock: Callable[[], float] = time.monotonic):
        self.limit = limit
        self.clock = clock
        self._calls: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record a call; None if allowed, else the seconds until the next one would be."""
        if self.limit.calls <= 0:
            return None
        now = self.clock()
        with self._lock:
            calls = self._calls.setdefault(key, deque())
            while calls and now - calls[0] >= self.limit.window_seconds:
                calls.popleft()
            if len(calls) >= self.limit.calls:
                return max(0.0, calls[0] + self.limit.window_seconds - now)
            calls.append(now)
            if len(self._calls) > 10_000:  # forget idle clients
                for k in [k for k, v in self._calls.items() if not v]:
                    del self._calls[k]
            return None


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
