"""Integrator API keys (hashed, revocable, scoped) and per-principal rate limiting, on the real app."""

from __future__ import annotations

from fastapi.testclient import TestClient

from mappings.registry import alias_name
from search_api.app import create_app


def test_api_key_lifecycle(api, es, settings, token_for):
    admin = token_for("admin")
    assert api.post("/v1/admin/api-keys", json={"name": "x", "territories": ["SAS-47"]},
                    headers=token_for("osnp")).status_code == 403
    bad = api.post("/v1/admin/api-keys", json={"name": "x", "territories": ["47"]}, headers=admin)
    assert bad.status_code == 400 and "territory" in bad.json()["message"]

    created = api.post("/v1/admin/api-keys", json={"name": "LRM 47", "territories": ["SAS-47"],
                                                    "slot_types": ["snp"]}, headers=admin)
    assert created.status_code == 201, created.text
    key = created.json()["key"]
    key_id = created.json()["id"]
    assert created.json()["slot_types"] == ["SNP"]

    # only a hash is stored
    stored = es.get(index=alias_name(settings.index_prefix, "api_keys"), id=key_id)["_source"]
    assert key.split("_", 2)[2] not in str(stored)

    me = api.get("/v1/me", headers={"X-API-Key": key})
    assert me.status_code == 200
    assert me.json()["roles"] == ["integrator"] and me.json()["territories"] == ["SAS-47"]

    listed = api.get("/v1/admin/api-keys", headers=admin).json()
    assert any(k["id"] == key_id and "key" not in k for k in listed)

    assert api.get("/v1/me", headers={"X-API-Key": key[:-2] + "xx"}).status_code == 401
    assert api.get("/v1/me", headers={"X-API-Key": "not-a-key"}).status_code == 401

    revoked = api.delete(f"/v1/admin/api-keys/{key_id}", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    assert api.get("/v1/me", headers={"X-API-Key": key}).status_code == 401
    assert api.delete("/v1/admin/api-keys/0123456789abcdef", headers=admin).status_code == 404


def test_rate_limit_per_principal(settings, es, indices, token_for):
    limited = settings.model_copy(update={"rate_limit": "5/minute"})
    with TestClient(create_app(limited, es=es)) as client:
        first, second = token_for("osnp", sub="limited-1"), token_for("osnp", sub="limited-2")
        statuses = [client.get("/v1/me", headers=first).status_code for _ in range(7)]
        assert statuses[:5] == [200] * 5 and statuses[5:] == [429, 429]
        refused = client.get("/v1/me", headers=first)
        assert int(refused.headers["Retry-After"]) >= 1
        # another principal has its own budget
        assert client.get("/v1/me", headers=second).status_code == 200
