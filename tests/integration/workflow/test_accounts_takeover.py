"""Security (issue 15, point 5): account managers cannot pre-create or take over someone's account.

Played against the real API, the real Elasticsearch and the vendor simulator (INT_R02 over HTTP): a manager of
SAS-47 writes his own e-mail and national id under the subject of a SAS-33 regulator who has not logged in
yet; when that regulator logs in, nothing the SAS-47 manager wrote is kept (account, vendors, orientations).
Once an account has logged in, its identity fields are its holder's; an account without territory is
nobody's; an account outside a manager's territories is a 404 on GET, PUT and DELETE alike."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timezone

from mappings.accounts import AccountDoc
from mappings.registry import alias_name
from sas_core.platform_ids import platform_uuid
from tests.integration.workflow.conftest import sim_admin


def rpps_id() -> str:
    """A fresh national id of the RPPS form: the simulator is shared by the package's tests."""
    return f"8{random.randrange(10**10, 10**11)}"


ATTACKER = {"family_name": "PIRATE", "given_name": "Eve", "email": "eve@attacker.test",
            "national_id": rpps_id(), "territories": ["SAS-47"]}


def held(simulator, vendor: str) -> dict[str, dict]:
    items = sim_admin(simulator, "GET", f"/_admin/vendors/{vendor}/practitioners").json()
    return {p["identifier"][0]["value"]: p for p in items}


def test_a_pre_created_account_keeps_nothing_of_another_territorys_manager(wf_api, simulator, token_for,
                                                                             free_slot):
    manager47 = token_for("account_manager", territories=["SAS-47"], sub="takeover-am-47")
    victim = f"psc-victim-{uuid.uuid4().hex[:10]}"
    planted = wf_api.put(f"/v1/accounts/{victim}", headers=manager47, json=ATTACKER)
    assert planted.status_code == 200, planted.text
    assert held(simulator, "medilib")[ATTACKER["national_id"]]["telecom"][0]["value"] == ATTACKER["email"]

    # The real regulator of SAS-33 logs in (his token has a name, no national id; he gives no e-mail).
    headers = token_for("regulator", territories=["SAS-33"], sub=victim, name="Jules MARIUS")
    login = wf_api.post("/v1/accounts/login", headers=headers)
    assert login.status_code == 200, login.text
    account = login.json()["account"]
    assert account["territories"] == ["SAS-33"]
    assert (account["family_name"], account["given_name"]) == ("MARIUS", "Jules")
    assert account["email"] is None and account["national_id"] is None        # before: the attacker's
    # The SAS-47 manager has lost it (404 like any account that is not his).
    for method in ("GET", "DELETE"):
        assert wf_api.request(method, f"/v1/accounts/{victim}", headers=manager47).status_code == 404
    assert wf_api.put(f"/v1/accounts/{victim}", headers=manager47, json=ATTACKER).status_code == 404

    # His orientations (and the appointments made for him at vendors) carry none of the attacker's values.
    slot = free_slot("medilib")
    booking = wf_api.post("/v1/bookings", json={"slot_id": slot["id"]},
                          headers={**headers, "Idempotency-Key": f"takeover-{uuid.uuid4()}"})
    assert booking.status_code == 201, booking.text
    regulator = booking.json()["orientation"]["regulator"]
    assert regulator.get("email") is None and regulator.get("national_id") is None
    assert regulator["family_name"] == "MARIUS"

    # Once he gives his e-mail, vendors get his identity (the record the planted push made is corrected).
    completed = wf_api.post("/v1/accounts/login", headers=headers, json={"email": "jules.marius@chu-bordeaux.fr"})
    assert completed.status_code == 200 and all(r["ok"] for r in completed.json()["vendor_results"])
    for vendor in ("medilib", "agendax"):
        practitioners = held(simulator, vendor)
        mine = practitioners[platform_uuid(victim)]
        assert mine["telecom"][0]["value"] == "jules.marius@chu-bordeaux.fr"
        assert mine["name"][0] == {"family": "MARIUS", "given": ["Jules"]}
        assert ATTACKER["national_id"] not in practitioners


def test_the_login_values_win_over_a_pre_created_account(wf_api, token_for):
    manager47 = token_for("account_manager", territories=["SAS-47"], sub="takeover-am-47")
    victim = f"psc-victim-{uuid.uuid4().hex[:10]}"
    assert wf_api.put(f"/v1/accounts/{victim}", headers=manager47, json=ATTACKER).status_code == 200
    headers = token_for("regulator", territories=["SAS-33"], sub=victim, name="Claire DUPUY",
                        national_id=(nid := rpps_id()))
    account = wf_api.post("/v1/accounts/login", headers=headers, json={"email": "claire.dupuy@chu-bordeaux.fr"})
    assert account.status_code == 200, account.text
    fields = account.json()["account"]
    assert (fields["family_name"], fields["given_name"], fields["email"], fields["national_id"]) == (
        "DUPUY", "Claire", "claire.dupuy@chu-bordeaux.fr", nid)


def test_a_removal_by_another_territorys_manager_does_not_lock_the_holder_out(wf_api, token_for):
    manager47 = token_for("account_manager", territories=["SAS-47"], sub="takeover-am-47")
    victim = f"psc-victim-{uuid.uuid4().hex[:10]}"
    assert wf_api.put(f"/v1/accounts/{victim}", headers=manager47, json=ATTACKER).status_code == 200
    assert wf_api.delete(f"/v1/accounts/{victim}", headers=manager47).status_code == 200
    login = wf_api.post("/v1/accounts/login", json={"email": "paul.martin@chu-bordeaux.fr"},
                        headers=token_for("regulator", territories=["SAS-33"], sub=victim, name="Paul MARTIN"))
    assert login.status_code == 200, login.text                                # before: 403 "removed"
    account = login.json()["account"]
    assert account["active"] is True and account["email"] == "paul.martin@chu-bordeaux.fr"


def test_a_manager_of_his_territory_pre_fills_what_the_login_leaves_empty(wf_api, token_for):
    """The legitimate pre-creation still works: a SAS-33 manager's e-mail stays when the login gives none."""
    manager33 = token_for("account_manager", territories=["SAS-33"], sub="takeover-am-33")
    account_id = str(uuid.uuid4())
    assert wf_api.put(f"/v1/accounts/{account_id}", headers=manager33, json={
        "family_name": "ROUX", "given_name": "Anne", "email": "anne.roux@chu-bordeaux.fr",
        "territories": ["SAS-33"]}).status_code == 200
    login = wf_api.post("/v1/accounts/login",
                        headers=token_for("regulator", territories=["SAS-33"], sub=account_id, name="Anne ROUX"))
    assert login.status_code == 200 and login.json()["account"]["email"] == "anne.roux@chu-bordeaux.fr"


def test_identity_fields_of_an_account_that_logged_in_are_its_holders(wf_api, simulator, token_for):
    manager33 = token_for("account_manager", territories=["SAS-33"], sub="takeover-am-33")
    sub = f"psc-{uuid.uuid4().hex[:10]}"
    nid = rpps_id()
    headers = token_for("regulator", territories=["SAS-33"], sub=sub, name="Marc GIRAUD", national_id=nid)
    assert wf_api.post("/v1/accounts/login", headers=headers,
                       json={"email": "marc.giraud@chu-bordeaux.fr"}).status_code == 200
    for field, value in (("email", "eve@attacker.test"), ("national_id", ATTACKER["national_id"]),
                         ("family_name", "PIRATE"), ("given_name", None)):
        refused = wf_api.put(f"/v1/accounts/{sub}", headers=manager33,
                             json={"family_name": "GIRAUD", field: value, "territories": ["SAS-33"]})
        assert refused.status_code == 409, (field, refused.text)
        assert field in refused.json()["message"]
    # What is the manager's (roles, territories) he still changes, sending the identity unchanged or not at all.
    same = wf_api.put(f"/v1/accounts/{sub}", headers=manager33, json={
        "family_name": "GIRAUD", "email": "marc.giraud@chu-bordeaux.fr", "territories": ["SAS-33"]})
    assert same.status_code == 200, same.text
    roles = wf_api.put(f"/v1/accounts/{sub}", headers=manager33, json={"roles": ["osnp"], "territories": ["SAS-33"]})
    assert roles.status_code == 200, roles.text
    account = roles.json()["account"]
    assert account["roles"] == ["osnp"]
    assert (account["family_name"], account["given_name"], account["email"], account["national_id"]) == (
        "GIRAUD", "Marc", "marc.giraud@chu-bordeaux.fr", nid)
    assert held(simulator, "medilib")[nid]["telecom"][0]["value"] == "marc.giraud@chu-bordeaux.fr"
    # A new account still needs its family name.
    assert wf_api.put(f"/v1/accounts/{uuid.uuid4()}", headers=manager33,
                      json={"territories": ["SAS-33"]}).status_code == 422


def test_an_account_without_territory_is_nobodys(wf_api, es, wf_settings, token_for):
    now = datetime.now(timezone.utc)
    account_id = f"no-territory-{uuid.uuid4().hex[:8]}"
    document = AccountDoc(id=account_id, family_name="SANS", given_name="Territoire", roles=["osnp"], territories=[],
                          created_at=now, updated_at=now, last_login_at=now).model_dump(mode="json")
    es.index(index=alias_name(wf_settings.index_prefix, "accounts"), id=account_id, document=document, refresh=True)
    manager = token_for("account_manager", territories=["SAS-33"], sub="takeover-am-33")
    assert wf_api.get(f"/v1/accounts/{account_id}", headers=manager).status_code == 404     # before: 200
    assert wf_api.put(f"/v1/accounts/{account_id}", headers=manager,
                      json={"roles": ["regulator"], "territories": ["SAS-33"]}).status_code == 404  # before: 200
    assert wf_api.delete(f"/v1/accounts/{account_id}", headers=manager).status_code == 404  # before: 200
    assert es.get(index=alias_name(wf_settings.index_prefix, "accounts"), id=account_id)["_source"]["active"] is True
    admin = token_for("admin", sub="takeover-admin")
    assert wf_api.get(f"/v1/accounts/{account_id}", headers=admin).status_code == 200


def test_put_and_delete_outside_the_territories_answer_404_like_get(wf_api, token_for):
    manager47 = token_for("account_manager", territories=["SAS-47"], sub="takeover-am-47")
    manager92 = token_for("account_manager", territories=["SAS-92"], sub="takeover-am-92")
    existing = f"oracle-{uuid.uuid4().hex[:8]}"
    assert wf_api.put(f"/v1/accounts/{existing}", headers=manager47,
                      json={"family_name": "GARNIER", "territories": ["SAS-47"]}).status_code == 200
    missing = f"oracle-{uuid.uuid4().hex[:8]}"
    for account_id in (existing, missing):
        assert wf_api.get(f"/v1/accounts/{account_id}", headers=manager92).status_code == 404
        assert wf_api.delete(f"/v1/accounts/{account_id}", headers=manager92).status_code == 404   # before: 403
    taken = wf_api.put(f"/v1/accounts/{existing}", headers=manager92,
                       json={"family_name": "GARNIER", "territories": ["SAS-92"]})
    assert taken.status_code == 404, taken.text                                               # before: 403
    # Asking for a territory one does not manage is refused whether the account exists or not.
    for account_id in (existing, missing):
        assert wf_api.put(f"/v1/accounts/{account_id}", headers=manager92,
                          json={"family_name": "X", "territories": ["SAS-47"]}).status_code == 403
