"""Rate limiting per token / API key and failed authentications per address (``limits``, moving
window, in memory), each replica's share of the platform's limit.

The windows are kept in each API process (no I/O on the event loop, where the check runs), and each
replica allows ``ceil(limit / replicas alive)`` (``search_api.replicas``): a caller spreading requests
over N replicas — the reverse proxy's round robin does it for everyone, an attacker may do it on
purpose — gets at most N × ceil(limit / N) ≤ limit + N - 1 across them, never N × limit. The price: a
caller whose requests all reach one replica (no proxy, or a sticky one) gets only its share. When the
count changes (a replica joins or dies) the windows carry on: a hit is kept under the limit's own key
and compared with the new share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage

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


class _SharedLimits:
    """The limits of ``spec``, each replica allowing its share (``replicas()``: replicas alive)."""

    def __init__(self, spec: str, replicas: Callable[[], int] | None) -> None:
        self._limits: list[RateLimitItem] = parse_many(spec) if spec.strip() else []
        self._storage = _SweepingMemoryStorage()
        self._replicas = replicas

    def replicas(self) -> int:
        return max(1, self._replicas()) if self._replicas is not None else 1

    def share(self, limit: RateLimitItem) -> int:
        """This replica's part of ``limit``: ``ceil(amount / replicas)``."""
        return max(1, math.ceil(limit.amount / self.replicas()))

    def _retry_after(self, limit: RateLimitItem, key: str, share: int) -> int:
        start, _ = self._storage.get_moving_window(limit.key_for(key), share, limit.get_expiry())
        return max(1, math.ceil(start + limit.get_expiry() - time.time()))

    def hit(self, key: str) -> tuple[RateLimitItem, int] | None:
        """Count one hit of ``key``; the first limit it exceeds and the Retry-After (``None``: allowed)."""
        for limit in self._limits:
            share = self.share(limit)
            if not self._storage.acquire_entry(limit.key_for(key), share, limit.get_expiry()):
                return limit, self._retry_after(limit, key, share)
        return None

    def exceeded(self, key: str) -> tuple[RateLimitItem, int] | None:
        """Like ``hit`` without counting (whether one more would pass)."""
        for limit in self._limits:
            share = self.share(limit)
            if self._storage.get_moving_window(limit.key_for(key), share, limit.get_expiry())[1] > share - 1:
                return limit, self._retry_after(limit, key, share)
        return None


class PrincipalRateLimiter:
    """``check(key)`` raises ``TooManyRequests`` with a Retry-After once ``key`` exceeds any limit (this
    replica's share of it when ``replicas`` counts the replicas alive)."""

    def __init__(self, spec: str, *, replicas: Callable[[], int] | None = None) -> None:
        self._shared = _SharedLimits(spec, replicas)

    def check(self, key: str) -> None:
        refused = self._shared.hit(key)
        if refused is not None:
            limit, retry_after = refused
            raise TooManyRequests(f"rate limit {limit} exceeded", retry_after_s=retry_after)


class AuthFailureThrottle:
    """Failed authentications per client address (moving window, this replica's share of the limit).

    Each unknown API key costs an Elasticsearch read and each bad token a signature check: past
    ``spec`` failures, an address gets 429 for credentials not verified lately (those in the verifiers'
    caches still pass, so colleagues behind the same address keep working while a script guesses)."""

    def __init__(self, spec: str, *, replicas: Callable[[], int] | None = None) -> None:
        self._shared = _SharedLimits(spec, replicas)

    def check(self, address: str | None) -> None:
        """``TooManyRequests`` when ``address`` has used up a failure budget (records nothing)."""
        refused = self._shared.exceeded(f"authfail:{address or 'unknown'}")
        if refused is not None:
            limit, retry_after = refused
            raise TooManyRequests(f"too many failed authentications from this address ({limit})",
                                  retry_after_s=retry_after)

    def failed(self, address: str | None) -> None:
        """Record one failed authentication of ``address``."""
        self._shared.hit(f"authfail:{address or 'unknown'}")
