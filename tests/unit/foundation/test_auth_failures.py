"""Issue 15, points 13 and 8, without network: the per-address failure budget and the claim types."""

from __future__ import annotations

import pytest

from sas_core.errors import TooManyRequests, Unauthenticated
from search_api.auth import principal_from_claims
from search_api.ratelimit import AuthFailureThrottle


def test_failures_are_counted_per_address():
    throttle = AuthFailureThrottle("3/minute")
    for _ in range(3):
        throttle.check("192.0.2.1")
        throttle.failed("192.0.2.1")
    with pytest.raises(TooManyRequests) as refused:
        throttle.check("192.0.2.1")
    assert 1 <= refused.value.retry_after_s <= 60
    throttle.check("192.0.2.2")  # another address has its own budget
    AuthFailureThrottle("").check("192.0.2.1")  # empty: no throttling


def test_checking_records_nothing():
    throttle = AuthFailureThrottle("2/minute")
    for _ in range(10):
        throttle.check("192.0.2.3")
    throttle.failed("192.0.2.3")
    throttle.check("192.0.2.3")


def test_claims_of_the_right_types_make_a_principal():
    principal = principal_from_claims({"sub": "u", "roles": "regulator osnp", "territories": ["SAS-92"],
                                       "national_id": "810009990001", "name": "Alice", "structure_id": ""})
    assert principal.national_id == "810009990001" and principal.structure_id is None
    assert principal.territories == frozenset({"SAS-92"})


@pytest.mark.parametrize("claims", [
    {"sub": 12}, {"sub": ""}, {"sub": "u", "national_id": 1}, {"sub": "u", "name": ["a"]},
    {"sub": "u", "roles": 7}, {"sub": "u", "territories": [None]},
])
def test_claims_of_the_wrong_type_are_refused(claims):
    with pytest.raises(Unauthenticated):
        principal_from_claims(claims)
