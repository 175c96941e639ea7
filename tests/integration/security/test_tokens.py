"""Bearer tokens refused for every reason the issue names — expired, wrongly signed, wrong audience — in
OIDC mode (real local JWKS endpoint) and in dev mode; clock skew within the leeway accepted, beyond it
refused; the key set is cached (one fetch for many requests) and refetched when the provider rotates."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from search_api.app import create_app
from search_api.auth import AUDIENCE, DEV_ISSUER
from tests.integration.test_api_foundation import _Jwks


@pytest.fixture()
def oidc_app(settings, es, indices):
    jwks = _Jwks()
    oidc_settings = settings.model_copy(update={
        "auth_mode": "oidc", "oidc_issuer": "https://idp.test", "oidc_audience": "sas-api",
        "oidc_jwks_url": jwks.url, "jwt_leeway_s": 30, "oidc_jwks_refresh_cooldown_s": 0,
        "public_base_url": "https://sas.test",   # OIDC mode refuses to start without it (issue 15, point 11)
    })
    with TestClient(create_app(oidc_settings, es=es)) as client:
        yield jwks, client
    jwks.server.shutdown()


def status(client, token: str) -> int:
    return client.get("/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code


def test_oidc_refusals_and_clock_skew(oidc_app):
    jwks, client = oidc_app
    kid = jwks.rotate()
    now = int(time.time())
    assert status(client, jwks.sign(kid)) == 200
    refused = {
        "expired": jwks.sign(kid, exp=now - 120),
        "wrong audience": jwks.sign(kid, aud="another-api"),
        "wrong issuer": jwks.sign(kid, iss="https://idp.evil"),
        "not yet valid": jwks.sign(kid, nbf=now + 600),
        "issued in the future": jwks.sign(kid, iat=now + 600),
    }
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused["wrongly signed"] = jwt.encode({"iss": "https://idp.test", "aud": "sas-api", "sub": "x", "iat": now,
                                            "exp": now + 60}, stranger, algorithm="RS256", headers={"kid": kid})
    refused["alg none"] = jwt.encode({"iss": "https://idp.test", "aud": "sas-api", "sub": "x", "iat": now,
                                      "exp": now + 60}, None, algorithm="none")
    body, signature = jwks.sign(kid).rsplit(".", 1)
    refused["tampered"] = body[:-4] + "AAAA." + signature
    for reason, token in refused.items():
        assert status(client, token) == 401, reason
    # expired 10 s ago: within the 30 s leeway (clock skew between the provider and us)
    assert status(client, jwks.sign(kid, exp=now - 10)) == 200


def test_jwks_is_cached_and_refetched_on_rotation(oidc_app):
    jwks, client = oidc_app
    first = jwks.rotate()
    for _ in range(5):
        assert status(client, jwks.sign(first)) == 200
    fetched = jwks.fetches
    for _ in range(5):
        assert status(client, jwks.sign(first)) == 200
    assert jwks.fetches == fetched, "the key set must be cached, not fetched per request"
    second = jwks.rotate()
    assert status(client, jwks.sign(second)) == 200
    assert jwks.fetches == fetched + 1


def test_dev_tokens_refused_when_expired_forged_or_for_another_audience(api, settings):
    from search_api.auth import dev_signing_key

    key = dev_signing_key(settings)
    now = int(time.time())
    base = {"iss": DEV_ISSUER, "aud": AUDIENCE, "sub": "dev-x", "iat": now, "exp": now + 60, "roles": ["admin"]}
    assert status(api, jwt.encode(base, key, algorithm="HS256")) == 200
    for reason, token in {
        "expired": jwt.encode({**base, "exp": now - 3600}, key, algorithm="HS256"),
        "wrong audience": jwt.encode({**base, "aud": "other"}, key, algorithm="HS256"),
        "wrongly signed": jwt.encode(base, "another-key-of-sufficient-length-0123456789", algorithm="HS256"),
        "no expiry": jwt.encode({k: v for k, v in base.items() if k != "exp"}, key, algorithm="HS256"),
    }.items():
        assert status(api, token) == 401, reason


def test_oidc_mode_int_r03_needs_the_client_certificate(oidc_app):
    """In production (OIDC) a vendor cannot use a bearer token on the main API: INT_R03 is mutual TLS only
    (the dedicated listener, ``tests/integration/workflow/test_mtls_r03.py``)."""
    jwks, client = oidc_app
    kid = jwks.rotate()
    token = jwks.sign(kid, roles=["vendor"], name="medilib")
    answer = client.post("/fhir/Appointment", content=b"{}", headers={"Authorization": f"Bearer {token}",
                                                                      "Content-Type": "application/fhir+json"})
    assert answer.status_code == 401 and answer.json()["resourceType"] == "OperationOutcome"
    assert "client certificate" in answer.json()["issue"][0]["diagnostics"]
