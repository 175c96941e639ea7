"""Rate limiting per token / API key (``limits``, moving window, in memory per API replica)."""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from sas_core.errors import TooManyRequests


class PrincipalRateLimiter:
    """``check(key)`` raises ``TooManyRequests`` with a Retry-After once ``key`` exceeds any limit."""

    def __init__(self, spec: str) -> None:
        self._limits = parse_many(spec) if spec.strip() else []
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, key: str) -> None:
        for limit in self._limits:
            if not self._limiter.hit(limit, key):
                reset_at, _ = self._limiter.get_window_stats(limit, key)
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise TooManyRequests(f"rate limit {limit} exceeded", retry_after_s=retry_after)
