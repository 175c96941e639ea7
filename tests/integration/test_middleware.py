"""Request ids, security headers, Prometheus metrics and CORS on the real app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from search_api.app import create_app


def test_request_id_is_generated_and_echoed(api):
    generated = api.get("/healthz")
    assert len(generated.headers["X-Request-ID"]) == 32
    given = api.get("/healthz", headers={"X-Request-ID": "0123456789abcdef0123456789abcdef"})
    assert given.headers["X-Request-ID"] == "0123456789abcdef0123456789abcdef"


def test_security_headers(api):
    response = api.get("/v1/me")
    assert response.status_code == 401
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Cache-Control"] == "no-store"


def test_metrics_need_admin_and_show_route_latency(api, token_for):
    api.get("/readyz")
    assert api.get("/metrics").status_code == 401
    assert api.get("/metrics", headers=token_for("osnp")).status_code == 403
    response = api.get("/metrics", headers=token_for("admin"))
    assert response.status_code == 200
    assert 'sas_http_request_duration_seconds_count{method="GET",route="/readyz",status="200"}' in response.text


def test_cors_allow_list(settings, es, indices):
    allowed = settings.model_copy(update={"cors_allow_origins": ["https://portail.example.fr"]})
    with TestClient(create_app(allowed, es=es)) as client:
        ok = client.options("/v1/me", headers={"Origin": "https://portail.example.fr",
                                                "Access-Control-Request-Method": "GET"})
        assert ok.headers.get("access-control-allow-origin") == "https://portail.example.fr"
        refused = client.options("/v1/me", headers={"Origin": "https://evil.example",
                                                     "Access-Control-Request-Method": "GET"})
        assert "access-control-allow-origin" not in refused.headers
