"""Rate limiting per token / API key (``limits``, moving window, in memory per API replica)."""

from __future__ import annotations

import math
import time

from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from sas_core.errors import TooManyRequests

#: Seconds between two clean-ups of expired hits (they never count: the moving window compares times).
EXPIRY_SWEEP_S = 1.0


class _SweepingMemoryStorage(MemoryStorage):
    """``limits``' in-memory storage, cleaning expired hits at most once per ``EXPIRY_SWEEP_S``.

    The stock storage starts a clean-up timer thread on every hit once the previous one has ended
    (10 ms later): under steady traffic, one new thread per request. Expired hits only take memory —
    the moving window reads their timestamps — so cleaning once a second changes no decision."""

    _next_sweep = 0.0

    def _MemoryStorage__schedule_expiry(self) -> None:  # the stock (name-mangled) scheduler
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + EXPIRY_SWEEP_S
            super()._MemoryStorage__schedule_expiry()  # type: ignore[misc]


class PrincipalRateLimiter:
    """``check(key)`` raises ``TooManyRequests`` with a Retry-After once ``key`` exceeds any limit."""

    def __init__(self, spec: str) -> None:
        self._limits = parse_many(spec) if spec.strip() else []
        self._limiter = MovingWindowRateLimiter(_SweepingMemoryStorage())

    def check(self, key: str) -> None:
        for limit in self._limits:
            if not self._limiter.hit(limit, key):
                reset_at, _ = self._limiter.get_window_stats(limit, key)
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise TooManyRequests(f"rate limit {limit} exceeded", retry_after_s=retry_after)


class AuthFailureThrottle:
    """Failed authentications per client address (moving window, in memory per API replica).

    Each unknown API key costs an Elasticsearch read and each bad token a signature check: past
    ``spec`` failures, an address gets 429 for credentials not verified lately (those in the verifiers'
    caches still pass, so colleagues behind the same address keep working while a script guesses)."""

    def __init__(self, spec: str) -> None:
        self._limits = parse_many(spec) if spec.strip() else []
        self._limiter = MovingWindowRateLimiter(_SweepingMemoryStorage())

    def check(self, address: str | None) -> None:
        """``TooManyRequests`` when ``address`` has used up a failure budget (records nothing)."""
        key = f"authfail:{address or 'unknown'}"
        for limit in self._limits:
            if not self._limiter.test(limit, key):
                reset_at, _ = self._limiter.get_window_stats(limit, key)
                retry_after = max(1, math.ceil(reset_at - time.time()))
                raise TooManyRequests(f"too many failed authentications from this address ({limit})",
                                      retry_after_s=retry_after)

    def failed(self, address: str | None) -> None:
        """Record one failed authentication of ``address``."""
        key = f"authfail:{address or 'unknown'}"
        for limit in self._limits:
            self._limiter.hit(limit, key)
