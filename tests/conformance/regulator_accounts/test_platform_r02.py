"""What the platform itself sends for INT_R02, captured by the strict vendor simulator over mutual TLS:

- the bodies of ``connectors/vendors_accounts.py`` are the guide's examples (``ExamplePractitionerRegul1..4``,
  canonical profile URL included);
- an account known by its platform UUID that gains a national id is updated at its *old* identifier
  (``PUT ?identifier=urn:oid:1.2.250.1.213.3.6|<uuid>``, the FAQ's example 2): the vendor keeps one account;
  later updates and the deactivation (example 3) go to the national id;
- an account without first name or e-mail is not pushed, says what is missing (API, web page) and is not
  tried again at every login; a body a vendor refused is not sent again until the account changes."""

from __future__ import annotations

import copy
import random
import uuid

import pytest

from connectors.vendors_accounts import AccountsClient, AccountSyncError, practitioner_resource
from sas_core.platform_ids import platform_uuid
from tests.conformance.regulator_accounts.conftest import (
    PLATFORM,
    RPPS,
    VENDORS,
    example,
    holding,
    national_id,
    received,
    vendor_config,
)

pytestmark = pytest.mark.integration


def without_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "id"}


def expected(n: int, *, value: str, email: str | None = None) -> dict:
    """Example ``n`` with a fresh identifier value (and e-mail): the vendor is shared by the session."""
    body = without_id(copy.deepcopy(example(n)))
    body["identifier"][0]["value"] = value
    if email:
        body["telecom"][0]["value"] = email
    return body


def rpps_id() -> str:
    """A fresh national id of the RPPS form (``8`` + 11 digits), as in examples 2 and 3."""
    return f"8{random.randrange(10**10, 10**11)}"


def last_request(strict_vendor, vendor: str = "certif") -> dict:
    return received(strict_vendor, vendor)[-1]


# -- the client's bodies ----------------------------------------------------------------------------------------


def test_client_create_body_is_the_guides_example_regul1(strict_vendor, pki):
    value, email = national_id(), f"{uuid.uuid4().hex[:6]}.sebastien.loridon@test.com"
    account = {"id": str(uuid.uuid4()), "national_id": value, "family_name": "Loridon", "given_name": "Sébastien",
               "email": email, "active": True}
    with AccountsClient(vendor_config(strict_vendor, pki), attempts=1) as client:
        result = client.create(practitioner_resource(account))
    assert result.status == 201
    request = last_request(strict_vendor)
    assert request["method"] == "POST" and request["status"] == 201
    assert request["body"] == expected(1, value=value, email=email)
    assert holding(strict_vendor, RPPS, value)[0]["active"] is True


def test_client_platform_uuid_body_is_the_guides_example_regul4(strict_vendor, pki):
    account_id, email = str(uuid.uuid4()), f"{uuid.uuid4().hex[:6]}.sebastien.loridon@test.com"
    account = {"id": account_id, "family_name": "Loridon", "given_name": "Sébastien", "email": email, "active": True}
    with AccountsClient(vendor_config(strict_vendor, pki), attempts=1) as client:
        assert client.upsert(practitioner_resource(account)).status == 201       # PUT-as-create
    request = last_request(strict_vendor)
    assert request["method"] == "PUT" and request["identifier"] == f"{PLATFORM}|{account_id}"
    assert request["body"] == expected(4, value=account_id, email=email)


# -- point 3: identifier change ---------------------------------------------------------------------------------


def test_identifier_change_is_sent_to_the_old_uuid_faq_regul2(r02_api, strict_vendor, token_for):
    manager = token_for("account_manager", territories=["SAS-33"])
    account_id, email, nid = str(uuid.uuid4()), f"{uuid.uuid4().hex[:6]}.jules.marius@test.com", rpps_id()
    fields = {"family_name": "MARIUS", "given_name": "Jules", "email": email, "roles": ["regulator"],
              "territories": ["SAS-33"]}
    first = r02_api.put(f"/v1/accounts/{account_id}", headers=manager, json=fields)
    assert first.status_code == 200, first.text
    assert sorted((r["vendor"], r["status"]) for r in first.json()["vendor_results"]) == [
        ("certif", 201), ("certif-b", 201)]
    [original] = holding(strict_vendor, PLATFORM, account_id)

    changed = r02_api.put(f"/v1/accounts/{account_id}", headers=manager, json={**fields, "national_id": nid})
    assert changed.status_code == 200, changed.text
    assert all(r["ok"] and r["status"] == 200 for r in changed.json()["vendor_results"])
    for vendor in VENDORS:
        request = last_request(strict_vendor, vendor)
        assert (request["method"], request["identifier"]) == ("PUT", f"{PLATFORM}|{account_id}")
        assert request["body"] == expected(2, value=nid, email=email)
        # one account at the vendor, the same one, known by the national id only
        assert holding(strict_vendor, PLATFORM, account_id, vendor) == []
        [now] = holding(strict_vendor, RPPS, nid, vendor)
        assert now["active"] is True
    [certif] = holding(strict_vendor, RPPS, nid)
    assert certif["id"] == original["id"]
    sync = {s["vendor"]: s for s in changed.json()["account"]["vendor_sync"]}
    assert {v: s["known_identifier"] for v, s in sync.items()} == {v: f"{RPPS}|{nid}" for v in VENDORS}

    # later updates, and the removal (example 3), use the national id
    removed = r02_api.delete(f"/v1/accounts/{account_id}", headers=manager)
    assert removed.status_code == 200 and all(r["ok"] for r in removed.json()["vendor_results"])
    for vendor in VENDORS:
        request = last_request(strict_vendor, vendor)
        assert (request["method"], request["identifier"], request["status"]) == ("PUT", f"{RPPS}|{nid}", 200)
        assert request["body"] == expected(3, value=nid, email=email)
        assert [p["active"] for p in holding(strict_vendor, RPPS, nid, vendor)] == [False]


def test_identifier_change_at_login_goes_to_the_old_uuid(r02_api, strict_vendor, token_for):
    """The same through the login hook: the national id arrives in the token (Pro Santé Connect)."""
    sub, nid = str(uuid.uuid4()), rpps_id()
    body = {"email": f"{uuid.uuid4().hex[:6]}@chu-bordeaux.fr"}
    before = r02_api.post("/v1/accounts/login", json=body, headers=token_for(
        "regulator", territories=["SAS-33"], sub=sub, name="Jules MARIUS"))
    assert before.status_code == 200 and len(holding(strict_vendor, PLATFORM, sub)) == 1
    after = r02_api.post("/v1/accounts/login", headers=token_for(
        "regulator", territories=["SAS-33"], sub=sub, name="Jules MARIUS", national_id=nid))
    assert after.status_code == 200 and all(r["ok"] for r in after.json()["vendor_results"])
    assert last_request(strict_vendor)["identifier"] == f"{PLATFORM}|{sub}"
    assert holding(strict_vendor, PLATFORM, sub) == [] and len(holding(strict_vendor, RPPS, nid)) == 1


# -- point 3: incomplete accounts -------------------------------------------------------------------------------


def test_incomplete_account_is_not_pushed_says_what_is_missing_and_is_not_retried(r02_api, strict_vendor,
                                                                                   token_for):
    sub = str(uuid.uuid4())
    headers = token_for("regulator", territories=["SAS-33"], sub=sub, name="DUPUY")
    count = {v: len(received(strict_vendor, v)) for v in VENDORS}
    first = r02_api.post("/v1/accounts/login", headers=headers)
    assert first.status_code == 200, first.text
    account = first.json()["account"]
    assert account["sync_missing"] == ["name.given", "telecom.email"]
    assert {s["vendor"]: (s["state"], s["missing"]) for s in account["vendor_sync"]} == {
        v: ("blocked", ["name.given", "telecom.email"]) for v in VENDORS}
    assert all(r["ok"] is False and r["blocked"] is True for r in first.json()["vendor_results"])
    assert {v: len(received(strict_vendor, v)) for v in VENDORS} == count        # nothing sent

    for _ in range(3):                                                             # later logins: nothing
        again = r02_api.post("/v1/accounts/login", headers=headers)
        assert again.status_code == 200 and again.json()["vendor_results"] == []
    assert {v: len(received(strict_vendor, v)) for v in VENDORS} == count
    shown = r02_api.get(f"/v1/accounts/{sub}", headers=headers).json()
    assert shown["sync_missing"] == ["name.given", "telecom.email"]

    # once completed, the account is pushed (a first push: POST)
    done = r02_api.post("/v1/accounts/login", headers=headers,
                        json={"given_name": "Claire", "email": "claire.dupuy@chu-bordeaux.fr"})
    assert sorted((r["vendor"], r["status"]) for r in done.json()["vendor_results"]) == [
        ("certif", 201), ("certif-b", 201)]
    assert done.json()["account"]["sync_missing"] == []
    assert holding(strict_vendor, PLATFORM, sub)[0]["name"] == [{"family": "DUPUY", "given": ["Claire"]}]


def test_body_refused_by_a_vendor_is_not_sent_again_until_the_account_changes(r02_api, strict_vendor, token_for):
    """A national id the vendors' rules refuse (here with a space): a 422, recorded, not retried per login."""
    sub = str(uuid.uuid4())
    headers = token_for("regulator", territories=["SAS-33"], sub=sub, name="Paul MARTIN", national_id="81 000")
    first = r02_api.post("/v1/accounts/login", headers=headers, json={"email": "paul.martin@chu-bordeaux.fr"})
    assert first.status_code == 200
    assert {(r["vendor"], r["ok"]) for r in first.json()["vendor_results"]} == {(v, False) for v in VENDORS}
    assert {s["state"] for s in first.json()["account"]["vendor_sync"]} == {"rejected"}
    assert all(s["last_error"] == "http_422" for s in first.json()["account"]["vendor_sync"])
    count = len(received(strict_vendor))
    assert r02_api.post("/v1/accounts/login", headers=headers).json()["vendor_results"] == []
    assert len(received(strict_vendor)) == count
    changed = r02_api.post("/v1/accounts/login", headers=headers, json={"email": "p.martin@chu-bordeaux.fr"})
    assert len(changed.json()["vendor_results"]) == 2 and len(received(strict_vendor)) == count + 1


def test_removing_an_account_no_vendor_holds_sends_nothing(r02_api, strict_vendor, token_for):
    manager = token_for("account_manager", territories=["SAS-33"])
    account_id = str(uuid.uuid4())
    created = r02_api.put(f"/v1/accounts/{account_id}", headers=manager,
                          json={"family_name": "LEMAIRE", "territories": ["SAS-33"]})
    assert created.json()["account"]["sync_missing"] == ["name.given", "telecom.email"]
    count = len(received(strict_vendor))
    removed = r02_api.delete(f"/v1/accounts/{account_id}", headers=manager)
    assert removed.status_code == 200 and removed.json()["vendor_results"] == []
    assert len(received(strict_vendor)) == count


def test_a_pushed_account_cannot_lose_its_email(r02_api, strict_vendor, token_for):
    manager = token_for("account_manager", territories=["SAS-33"])
    account_id = str(uuid.uuid4())
    fields = {"family_name": "ROUX", "given_name": "Anne", "email": "anne.roux@test.com", "territories": ["SAS-33"]}
    assert r02_api.put(f"/v1/accounts/{account_id}", headers=manager, json=fields).status_code == 200
    cleared = r02_api.put(f"/v1/accounts/{account_id}", headers=manager, json={**fields, "email": None})
    assert cleared.status_code == 422 and "e-mail" in cleared.json()["message"]
    assert holding(strict_vendor, PLATFORM, account_id)[0]["telecom"][0]["value"] == "anne.roux@test.com"


# -- managers see it ---------------------------------------------------------------------------------------------


def test_managers_see_the_missing_fields_in_the_api_and_on_the_accounts_page(r02_api, token_for):
    manager = token_for("account_manager", territories=["SAS-33"])
    account_id = str(uuid.uuid4())
    r02_api.put(f"/v1/accounts/{account_id}", headers=manager,
                json={"family_name": "BLANC", "given_name": "Léa", "territories": ["SAS-33"]})
    listed = r02_api.get("/v1/accounts", headers=manager, params={"blocked": "true"})
    assert listed.status_code == 200, listed.text
    mine = [a for a in listed.json()["items"] if a["id"] == account_id]
    assert [a["sync_missing"] for a in mine] == [["telecom.email"]]
    assert all(a["sync_missing"] for a in listed.json()["items"])
    outside = token_for("account_manager", territories=["SAS-92"])
    assert account_id not in {a["id"] for a in r02_api.get("/v1/accounts", headers=outside).json()["items"]}

    page = r02_api.get("/app/comptes", headers=manager)
    assert page.status_code == 200, page.text
    assert "BLANC" in page.text
    assert "Non transmis aux éditeurs : il manque l’adresse e-mail" in page.text
    assert r02_api.get("/app/comptes", headers=token_for("regulator", territories=["SAS-33"])).status_code == 403


def test_identifier_change_of_an_account_pushed_before_known_identifier_existed(r02_api, r02_settings, es, kit,
                                                                                  strict_vendor, token_for):
    """An account document of mapping v1 (its vendor entry has no ``known_identifier``): the vendor holds it
    under the platform UUID it was pushed with; adding a national id still targets that UUID."""
    from mappings.registry import alias_name

    account_id, email, nid = str(uuid.uuid4()), f"{uuid.uuid4().hex[:6]}@test.com", rpps_id()
    body = expected(4, value=account_id, email=email)
    assert kit.post("Practitioner", json=body).status_code == 201             # what the old platform sent
    now = "2026-11-01T08:00:00+00:00"
    legacy = {"id": account_id, "family_name": "Loridon", "given_name": "Sébastien", "email": email,
              "roles": ["regulator"], "territories": ["SAS-33"], "active": True, "created_at": now,
              "updated_at": now, "vendor_sync": [{"vendor": "certif", "synced_at": now, "active": True,
                                                  "fingerprint": "0123456789abcdef0123", "last_error": None}]}
    es.index(index=alias_name(r02_settings.index_prefix, "accounts"), id=account_id, document=legacy, refresh=True)
    manager = token_for("account_manager", territories=["SAS-33"])
    answer = r02_api.put(f"/v1/accounts/{account_id}", headers=manager, json={
        "family_name": "Loridon", "given_name": "Sébastien", "email": email, "national_id": nid,
        "territories": ["SAS-33"]})
    assert answer.status_code == 200, answer.text
    results = {r["vendor"]: r for r in answer.json()["vendor_results"]}
    assert results["certif"]["ok"] and results["certif"]["status"] == 200
    certif = [r for r in received(strict_vendor) if r["method"] == "PUT"][-1]
    assert certif["identifier"] == f"{PLATFORM}|{account_id}"
    assert holding(strict_vendor, PLATFORM, account_id) == [] and len(holding(strict_vendor, RPPS, nid)) == 1
    # certif-b never had it: a first push (POST) with the national id
    assert results["certif-b"]["status"] == 201 and last_request(strict_vendor, "certif-b")["method"] == "POST"


def test_removal_reaches_a_vendor_whose_push_failed(r02_api, strict_vendor, token_for):
    """A vendor whose first push failed may still hold the account (a create applied, its answer lost):
    the removal is sent there too — at worst a conditional update that creates a deactivated account."""
    import httpx

    faults = f"http://127.0.0.1:{strict_vendor.port}/_admin/vendors/certif-b/faults"
    sub = str(uuid.uuid4())
    headers = token_for("regulator", territories=["SAS-33"], sub=sub, name="Marc GIRAUD")
    httpx.put(faults, json={"down": True, "tls_required": True}, timeout=10).raise_for_status()
    try:
        first = r02_api.post("/v1/accounts/login", headers=headers, json={"email": "marc.giraud@test.com"})
    finally:
        httpx.put(faults, json={"tls_required": True}, timeout=10).raise_for_status()
    assert {r["vendor"]: r["ok"] for r in first.json()["vendor_results"]} == {"certif": True, "certif-b": False}
    manager = token_for("account_manager", territories=["SAS-33"])
    removed = r02_api.delete(f"/v1/accounts/{sub}", headers=manager)
    assert {r["vendor"]: r["ok"] for r in removed.json()["vendor_results"]} == {"certif": True, "certif-b": True}
    for vendor in VENDORS:
        assert [p["active"] for p in holding(strict_vendor, PLATFORM, sub, vendor)] == [False]


def test_client_sends_a_uuid_for_a_subject_that_is_not_one(strict_vendor, pki):
    """FAQ: the platform's technical id is a UUID (vendors may check it with a regex); an identity provider's
    subject that is not one is sent as its name-based platform UUID, the same at every push."""
    subject = f"psc-{uuid.uuid4().hex[:12]}"
    account = {"id": subject, "family_name": "Loridon", "given_name": "Sébastien",
               "email": f"{uuid.uuid4().hex[:6]}.sebastien.loridon@test.com", "active": True}
    with AccountsClient(vendor_config(strict_vendor, pki), attempts=1) as client:
        assert client.upsert(practitioner_resource(account)).status == 201
        assert client.upsert(practitioner_resource({**account, "family_name": "Loridon-Martin"})).status == 200
    sent = received(strict_vendor, "certif")[-2:]
    values = {request["body"]["identifier"][0]["value"] for request in sent}
    assert values == {platform_uuid(subject)} and uuid.UUID(platform_uuid(subject)).version == 5
    assert len(holding(strict_vendor, PLATFORM, platform_uuid(subject))) == 1


def test_vendor_refuses_a_platform_id_that_is_not_a_uuid(strict_vendor, pki):
    """The strict vendor checks the INTRN value's form as the FAQ allows: a non-UUID is a 422."""
    body = without_id(copy.deepcopy(example(4)))
    body["identifier"][0]["value"] = f"psc-{uuid.uuid4().hex[:12]}"
    with AccountsClient(vendor_config(strict_vendor, pki), attempts=1) as client:
        with pytest.raises(AccountSyncError) as refused:
            client.create(body)
    assert refused.value.status == 422
