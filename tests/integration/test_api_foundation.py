"""The API skeleton against the real Elasticsearch: probes, 401 without token, dev tokens accepted,
and OIDC tokens verified against a real local JWKS endpoint."""

from __future__ import annotations

import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from search_api.app import create_app


def test_healthz_needs_no_token(api):
    response = api.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_ready_when_aliases_exist(api):
    response = api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["missing_aliases"] == []


def test_readyz_503_when_aliases_missing(settings, es):
    other = settings.model_copy(update={"index_prefix": f"{settings.index_prefix}-none"})
    with TestClient(create_app(other, es=es)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert f"{settings.index_prefix}-none-offers" in response.json()["missing_aliases"]


def test_readyz_503_when_elasticsearch_unreachable(settings):
    down = settings.model_copy(update={"es_url": "http://127.0.0.1:9", "es_request_timeout_s": 1})
    with TestClient(create_app(down)) as client:
        response = client.get("/readyz")
    assert response.status_code == 503
    assert "unreachable" in response.json()["reason"]


def test_docs_are_public(api):
    assert api.get("/openapi.json").status_code == 200
    assert api.get("/docs").status_code == 200


def test_request_without_token_gets_401(api):
    response = api.get("/v1/me")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthenticated"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_garbage_token_gets_401(api):
    response = api.get("/v1/me", headers={"Authorization": "Bearer not-a-jwt"})
    assert response.status_code == 401


def test_dev_token_is_accepted(api, token_for):
    response = api.get("/v1/me", headers=token_for("regulator", territories=["SAS-92"], sub="reg-1"))
    assert response.status_code == 200
    assert response.json() == {"sub": "reg-1", "roles": ["regulator"], "territories": ["SAS-92"],
                               "national_id": None, "name": None}


class _Jwks:
    """A real HTTP JWKS endpoint whose key set can be rotated."""

    def __init__(self) -> None:
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                jwks.fetches += 1
                public = [
                    {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(k.public_key())), "kid": kid, "use": "sig",
                     "alg": "RS256"}
                    for kid, k in jwks.keys.items()
                ]
                payload = json.dumps({"keys": public}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/jwks"

    def rotate(self) -> str:
        kid = uuid.uuid4().hex[:8]
        self.keys = {kid: rsa.generate_private_key(public_exponent=65537, key_size=2048)}
        return kid

    def sign(self, kid: str, **claims) -> str:
        now = int(time.time())
        base = {"iss": "https://idp.test", "aud": "sas-api", "sub": "u", "iat": now, "exp": now + 300,
                "roles": ["osnp"], "territories": ["SAS-47"]}
        return jwt.encode({**base, **claims}, self.keys[kid], algorithm="RS256", headers={"kid": kid})


@pytest.fixture()
def oidc(settings, es, indices):
    jwks = _Jwks()
    oidc_settings = settings.model_copy(update={
        "auth_mode": "oidc", "oidc_issuer": "https://idp.test", "oidc_audience": "sas-api",
        "oidc_jwks_url": jwks.url, "jwt_leeway_s": 0, "oidc_jwks_refresh_cooldown_s": 0,
        "public_base_url": "https://sas.test",   # OIDC mode refuses to start without it (issue 15, point 11)
    })
    with TestClient(create_app(oidc_settings, es=es)) as client:
        yield jwks, client
    jwks.server.shutdown()


def test_oidc_token_is_verified_against_jwks(oidc):
    jwks, client = oidc
    kid = jwks.rotate()
    ok = client.get("/v1/me", headers={"Authorization": f"Bearer {jwks.sign(kid)}"})
    assert ok.status_code == 200 and ok.json()["territories"] == ["SAS-47"]
    for bad in (
        jwks.sign(kid, aud="another-api"),
        jwks.sign(kid, iss="https://evil.test"),
        jwks.sign(kid, exp=int(time.time()) - 10),
    ):
        assert client.get("/v1/me", headers={"Authorization": f"Bearer {bad}"}).status_code == 401
    # a token signed by a key the provider never published
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"iss": "https://idp.test", "aud": "sas-api", "sub": "x", "iat": int(time.time()),
                         "exp": int(time.time()) + 60}, stranger, algorithm="RS256", headers={"kid": kid})
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {forged}"}).status_code == 401
    # dev tokens are not accepted in oidc mode
    hs = jwt.encode({"iss": "https://idp.test", "aud": "sas-api", "sub": "x", "iat": int(time.time()),
                     "exp": int(time.time()) + 60}, "secret", algorithm="HS256", headers={"kid": kid})
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {hs}"}).status_code == 401


def test_oidc_key_rotation_is_followed(oidc):
    jwks, client = oidc
    first = jwks.rotate()
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {jwks.sign(first)}"}).status_code == 200
    second = jwks.rotate()
    response = client.get("/v1/me", headers={"Authorization": f"Bearer {jwks.sign(second)}"})
    assert response.status_code == 200, response.text
