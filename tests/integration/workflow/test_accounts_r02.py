"""INT_R02 against the vendor simulator: accounts pushed at login (POST, then conditional PUT only when
something changed), pushed again after a failure, deactivated everywhere at once on removal."""

from __future__ import annotations

import uuid

from sas_core.platform_ids import platform_uuid
from tests.integration.workflow.conftest import sim_admin


def held(simulator, vendor: str) -> dict[str, dict]:
    items = sim_admin(simulator, "GET", f"/_admin/vendors/{vendor}/practitioners").json()
    return {p["identifier"][0]["value"]: p for p in items}


def test_login_pushes_then_only_changes(wf_api, simulator, token_for):
    sub = f"acct-{uuid.uuid4()}"
    headers = token_for("regulator", territories=["SAS-33"], sub=sub, national_id="810002673899", name="Jules MARIUS")
    first = wf_api.post("/v1/accounts/login", json={"email": "jules.marius@test.com"}, headers=headers)
    assert first.status_code == 200, first.text
    assert sorted((r["vendor"], r["ok"], r["status"]) for r in first.json()["vendor_results"]) == [
        ("agendax", True, 201), ("medilib", True, 201)]
    for vendor in ("medilib", "agendax"):
        practitioner = held(simulator, vendor)["810002673899"]
        assert practitioner["active"] is True and practitioner["name"][0] == {"family": "MARIUS", "given": ["Jules"]}
        assert practitioner["telecom"] == [{"system": "email", "value": "jules.marius@test.com"}]
        assert practitioner["meta"]["source"] == "urn:oid:1.2.250.1.213.3.6"

    unchanged = wf_api.post("/v1/accounts/login", headers=headers)
    assert unchanged.status_code == 200 and unchanged.json()["vendor_results"] == []

    sim_admin(simulator, "DELETE", "/_admin/vendors/medilib/requests")
    changed = wf_api.post("/v1/accounts/login", json={"email": "j.marius@chu-bordeaux.fr"}, headers=headers)
    results = {r["vendor"]: r for r in changed.json()["vendor_results"]}
    assert results["medilib"]["status"] == 200 and results["agendax"]["status"] == 200
    requests = sim_admin(simulator, "GET", "/_admin/vendors/medilib/requests").json()
    assert [(r["method"], "identifier=urn" in r["query"]) for r in requests] == [("PUT", True)]
    assert held(simulator, "medilib")["810002673899"]["telecom"][0]["value"] == "j.marius@chu-bordeaux.fr"


def test_regulator_without_national_id_uses_the_platform_uuid_and_removal_deactivates(wf_api, simulator, token_for):
    manager = token_for("account_manager", territories=["SAS-33"])
    account_id = str(uuid.uuid4())
    created = wf_api.put(f"/v1/accounts/{account_id}", headers=manager, json={
        "family_name": "Loridon", "given_name": "Sébastien", "email": "sebastien.loridon@test.com",
        "roles": ["osnp"], "territories": ["SAS-33"]})
    assert created.status_code == 200, created.text
    practitioner = held(simulator, "agendax")[account_id]
    assert practitioner["identifier"][0]["system"] == "urn:oid:1.2.250.1.213.3.6"
    assert practitioner["identifier"][0]["type"]["coding"][0]["code"] == "INTRN"

    outside = wf_api.put(f"/v1/accounts/{uuid.uuid4()}", headers=manager, json={
        "family_name": "X", "territories": ["SAS-92"]})
    assert outside.status_code == 403

    removed = wf_api.delete(f"/v1/accounts/{account_id}", headers=manager)
    assert removed.status_code == 200
    assert all(r["ok"] for r in removed.json()["vendor_results"]) and len(removed.json()["vendor_results"]) == 2
    for vendor in ("medilib", "agendax"):
        assert held(simulator, vendor)[account_id]["active"] is False
    account = wf_api.get(f"/v1/accounts/{account_id}", headers=manager).json()
    assert account["active"] is False and account["removed_at"]
    assert {s["vendor"]: s["active"] for s in account["vendor_sync"]} == {"agendax": False, "medilib": False}


def test_a_failed_push_is_recorded_and_retried_at_next_login(wf_api, simulator, token_for):
    sub = f"acct-{uuid.uuid4()}"
    headers = token_for("regulator", territories=["SAS-33"], sub=sub, name="Claire DUPUY")
    sim_admin(simulator, "PUT", "/_admin/vendors/agendax/faults", json={"down": True})
    try:
        # An e-mail is required by FrPractitionerRegul (without one nothing is pushed at all).
        first = wf_api.post("/v1/accounts/login", headers=headers, json={"email": "claire.dupuy@test.com"}).json()
    finally:
        sim_admin(simulator, "PUT", "/_admin/vendors/agendax/faults", json={})
    results = {r["vendor"]: r for r in first["vendor_results"]}
    assert results["medilib"]["ok"] is True and results["agendax"]["ok"] is False
    sync = {s["vendor"]: s for s in first["account"]["vendor_sync"]}
    assert sync["agendax"]["last_error"] == "http_503" and sync["medilib"]["last_error"] is None
    assert (sync["agendax"]["state"], sync["medilib"]["state"]) == ("failed", "synced")
    second = wf_api.post("/v1/accounts/login", headers=headers).json()
    assert [(r["vendor"], r["ok"]) for r in second["vendor_results"]] == [("agendax", True)]
    # The subject is not a UUID: vendors know the account by its name-based platform UUID (FAQ).
    assert platform_uuid(sub) in held(simulator, "agendax") and sub not in held(simulator, "agendax")
