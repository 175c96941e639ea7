"""Abuse and exposure: integrator API keys are rate limited per key (429 + Retry-After) like tokens; security
headers on every kind of answer (JSON, error, HTML page, CSV); CORS only for the allow-listed sites."""

from __future__ import annotations

from fastapi.testclient import TestClient

from search_api.app import create_app


def test_api_keys_are_rate_limited_per_key(settings, es, indices):
    limited = settings.model_copy(update={"rate_limit": "3/minute"})
    with TestClient(create_app(limited, es=es)) as client:
        store = client.app.state.api_keys
        first, _ = store.create(name="LRM 92 (limit test)", territories=["SAS-92"], slot_types=[], created_by="t")
        second, _ = store.create(name="LRM 47 (limit test)", territories=["SAS-47"], slot_types=[], created_by="t")
        statuses = [client.get("/v1/me", headers={"X-API-Key": first}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 429, 429]
        refused = client.get("/v1/me", headers={"X-API-Key": first})
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["error"] and refused.json()["message"]
        assert client.get("/v1/me", headers={"X-API-Key": second}).status_code == 200


def test_security_headers_on_every_kind_of_answer(api, token_for):
    regulator = token_for("regulator", territories=["SAS-92"], sub="headers-reg")
    answers = [
        api.get("/v1/me", headers=regulator),                                   # JSON
        api.get("/v1/orientations/export.csv", headers=regulator),              # CSV
        api.get("/v1/no-such-route", headers=regulator),                        # 404
        api.get("/v1/search?lat=abc", headers=regulator),                       # 422
        api.get("/app/tableaux/orientations", headers=regulator),               # HTML page
        api.get("/app/recherche", follow_redirects=False),                      # 303 to the login
    ]
    for answer in answers:
        assert answer.headers["X-Content-Type-Options"] == "nosniff", answer.url
        assert answer.headers["X-Frame-Options"] == "DENY", answer.url
        assert answer.headers["Referrer-Policy"] == "no-referrer", answer.url
    assert answers[0].headers["Cache-Control"] == "no-store"


def test_cors_allow_list_for_sites_embedding_the_search(settings, es, indices, token_for):
    allowed = settings.model_copy(update={"cors_allow_origins": ["https://sas92.sante.fr"]})
    with TestClient(create_app(allowed, es=es)) as client:
        preflight = client.options("/v1/search", headers={"Origin": "https://sas92.sante.fr",
                                                          "Access-Control-Request-Method": "GET",
                                                          "Access-Control-Request-Headers": "Authorization"})
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == "https://sas92.sante.fr"
        answer = client.get("/v1/search?lat=48.8924&lon=2.2071", headers={
            "Origin": "https://sas92.sante.fr", **token_for("osnp", territories=["SAS-92"])})
        assert answer.status_code == 200
        assert answer.headers["access-control-allow-origin"] == "https://sas92.sante.fr"
        foreign = client.get("/v1/search?lat=48.8924&lon=2.2071", headers={
            "Origin": "https://ailleurs.example", **token_for("osnp", territories=["SAS-92"])})
        assert "access-control-allow-origin" not in foreign.headers


def test_vendors_are_rate_limited_on_int_r03(settings, es, indices, token_for):
    limited = settings.model_copy(update={"rate_limit": "2/minute"})
    with TestClient(create_app(limited, es=es)) as client:
        vendor = {**token_for("vendor", name="medilib", sub="limit-vendor"), "Content-Type": "application/fhir+json"}
        statuses = [client.post("/fhir/Appointment", content=b"{}", headers=vendor).status_code for _ in range(3)]
        assert statuses == [400, 400, 429]
        refused = client.get("/fhir/metadata", headers=vendor)
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert refused.json()["resourceType"] == "OperationOutcome"
