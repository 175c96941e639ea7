"""Each API replica allows its share of the platform's rate limits: ceil(limit / replicas alive)."""

from __future__ import annotations

import pytest

from sas_core.errors import TooManyRequests
from search_api.ratelimit import AuthFailureThrottle, PrincipalRateLimiter


def _allowed(limiter: PrincipalRateLimiter, key: str, tries: int) -> int:
    allowed = 0
    for _ in range(tries):
        try:
            limiter.check(key)
            allowed += 1
        except TooManyRequests:
            pass
    return allowed


def test_a_caller_spread_over_replicas_gets_the_limit_not_n_times_it():
    alive = [3]
    replicas = [PrincipalRateLimiter("10/minute", replicas=lambda: alive[0]) for _ in range(3)]
    # Round robin over the three replicas, 30 requests: 4 + 4 + 4 = 12 <= 10 + 3 - 1, not 30.
    assert sum(_allowed(replica, "attacker", 10) for replica in replicas) == 12
    assert _allowed(PrincipalRateLimiter("10/minute"), "alone", 30) == 10     # no count: the whole limit


def test_the_share_follows_the_replicas_alive_and_keeps_the_window():
    alive = [2]
    limiter = PrincipalRateLimiter("10/minute", replicas=lambda: alive[0])
    assert _allowed(limiter, "op", 10) == 5
    alive[0] = 1                  # the other replica died: this one takes the whole limit...
    assert _allowed(limiter, "op", 10) == 5     # ...counting the 5 hits already in the window
    alive[0] = 4                  # two more joined: the hits already made exceed the new share of 3
    with pytest.raises(TooManyRequests) as refused:
        limiter.check("op")
    assert 1 <= refused.value.retry_after_s <= 60


def test_failed_authentications_are_shared_too():
    throttle = AuthFailureThrottle("4/minute", replicas=lambda: 2)
    for _ in range(2):
        throttle.check("192.0.2.9")
        throttle.failed("192.0.2.9")
    with pytest.raises(TooManyRequests):
        throttle.check("192.0.2.9")
