"""Security (issue 15, point 6): a vendor cannot fabricate orientations through INT_R03.

The real app, the real Elasticsearch and the harvested test bed (medilib and agendax, each serving its own
Bordeaux practitioners — offers naming it, slots it published): a report must concern a practitioner the
calling vendor serves and name a regulator who has an account; otherwise a 422 OperationOutcome and no
orientation. Before, every such report created an orientation (for any practitioner, regulator, territory)."""

from __future__ import annotations

import copy
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from mappings.accounts import AccountDoc
from mappings.registry import alias_name
from tests.integration.workflow.conftest import GUIDE_REGULATOR

DATA = Path(__file__).resolve().parents[2] / "data" / "fhir" / "appointments"
FHIR = {"Content-Type": "application/fhir+json"}


def report(*, practitioner: str, operator: str = GUIDE_REGULATOR, operator_system: str = "urn:oid:1.2.250.1.71.4.2.1",
           operator_type: str = "IDNPS", created: datetime | None = None) -> dict:
    body = copy.deepcopy(json.loads((DATA / "booked.json").read_text(encoding="utf-8")))
    body["identifier"][0] = {"system": "https://vendor.example/rdv", "value": str(uuid.uuid4())}
    body["participant"][0]["actor"]["identifier"]["value"] = practitioner
    identifier = body["extension"][0]["valueReference"]["identifier"]
    identifier.update(system=operator_system, value=operator)
    identifier["type"]["coding"][0]["code"] = operator_type
    if created is not None:
        body["created"] = created.isoformat()
    return body


def orientations_of(es, settings, body: dict) -> list[dict]:
    index = alias_name(settings.index_prefix, "orientations")
    es.indices.refresh(index=index)
    query = {"term": {"vendor_appointment_id": body["identifier"][0]["value"]}}
    return [h["_source"] for h in es.search(index=index, query=query, size=10)["hits"]["hits"]]


def refused(answer, fragment: str) -> None:
    assert answer.status_code == 422, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["code"] == "business-rule"
    assert fragment in outcome["issue"][0]["diagnostics"], outcome


def test_a_vendor_reports_only_its_own_practitioners(wf_api, es, wf_settings, wf_offers, vendor_headers):
    medilib = {**vendor_headers["medilib"], **FHIR}
    others = [wf_offers["agendax"][0]["national_id"],      # agendax's practitioner (offer and slots name agendax)
              wf_offers["agenda"][0]["national_id"],       # on the platform's own agenda, no vendor at all
              "810009998877"]                              # anyone else in France
    for national_id in others:
        body = report(practitioner=national_id)
        refused(wf_api.post("/fhir/Appointment", content=json.dumps(body), headers=medilib), "is not served by")
        refused(wf_api.put(f"/fhir/Appointment?identifier={body['identifier'][0]['system']}|"
                           f"{body['identifier'][0]['value']}", content=json.dumps(body), headers=medilib),
                "is not served by")
        assert orientations_of(es, wf_settings, body) == []
    # Its own practitioner (the offer names medilib): accepted, in the regulator's territory.
    mine = report(practitioner=wf_offers["medilib"][0]["national_id"])
    created = wf_api.post("/fhir/Appointment", content=json.dumps(mine), headers=medilib)
    assert created.status_code == 201, created.text
    [doc] = orientations_of(es, wf_settings, mine)
    assert doc["territory"] == "SAS-33" and doc["regulator"]["national_id"] == GUIDE_REGULATOR
    # agendax's own practitioner is agendax's to report.
    theirs = report(practitioner=wf_offers["agendax"][0]["national_id"])
    assert wf_api.post("/fhir/Appointment", content=json.dumps(theirs),
                       headers={**vendor_headers["agendax"], **FHIR}).status_code == 201


def test_the_regulator_must_be_a_known_account(wf_api, es, wf_settings, wf_offers, vendor_headers):
    medilib = {**vendor_headers["medilib"], **FHIR}
    practitioner = wf_offers["medilib"][1]["national_id"]
    for body in (report(practitioner=practitioner, operator="9999999999/FORGED"),
                 report(practitioner=practitioner, operator=str(uuid.uuid4()),
                        operator_system="urn:oid:1.2.250.1.213.3.6", operator_type="INTRN")):
        refused(wf_api.post("/fhir/Appointment", content=json.dumps(body), headers=medilib), "is not an account")
        assert orientations_of(es, wf_settings, body) == []


def test_a_removed_regulator_books_nothing_new(wf_api, es, wf_settings, wf_offers, vendor_headers):
    now = datetime.now(timezone.utc)
    national_id = f"3{uuid.uuid4().int % 10**9:09d}/REMOVED"
    account = AccountDoc(id=f"removed-{uuid.uuid4().hex[:8]}", national_id=national_id, family_name="PARTI",
                         given_name="Jean", roles=["regulator"], territories=["SAS-33"], active=False,
                         created_at=now - timedelta(days=30), updated_at=now, removed_at=now - timedelta(days=1))
    es.index(index=alias_name(wf_settings.index_prefix, "accounts"), id=account.id,
             document=account.model_dump(mode="json"), refresh=True)
    medilib = {**vendor_headers["medilib"], **FHIR}
    practitioner = wf_offers["medilib"][2]["national_id"]
    late = report(practitioner=practitioner, operator=national_id, created=now - timedelta(hours=1))
    refused(wf_api.post("/fhir/Appointment", content=json.dumps(late), headers=medilib), "was removed")
    # An appointment he made before his removal, reported late, still counts.
    earlier = report(practitioner=practitioner, operator=national_id, created=now - timedelta(days=2))
    assert wf_api.post("/fhir/Appointment", content=json.dumps(earlier), headers=medilib).status_code == 201


def test_an_update_cannot_move_the_appointment_to_another_vendors_practitioner(wf_api, es, wf_settings, wf_offers,
                                                                             vendor_headers):
    medilib = {**vendor_headers["medilib"], **FHIR}
    body = report(practitioner=wf_offers["medilib"][3]["national_id"])
    assert wf_api.post("/fhir/Appointment", content=json.dumps(body), headers=medilib).status_code == 201
    body["participant"][0]["actor"]["identifier"]["value"] = wf_offers["agendax"][1]["national_id"]
    identifier = body["identifier"][0]
    moved = wf_api.put(f"/fhir/Appointment?identifier={identifier['system']}|{identifier['value']}",
                       content=json.dumps(body), headers=medilib)
    refused(moved, "is not served by")
    [doc] = orientations_of(es, wf_settings, body)
    assert doc["effecteur"]["national_id"] == wf_offers["medilib"][3]["national_id"]


# -- SOS Médecins: the doctors of the associations a vendor serves ---------------------------------------------

SOS_ROSTER_SIRET = "42000000700011"      # in the vendor's sos_roster (vendors file)
SOS_OFFER_SIRET = "42000000800019"       # an SOS place of this association names the vendor (sas.vendor)
SOS_OTHER_SIRET = "42000000900017"       # served by nobody here


def sos_offer(i: int, *, national_id: str | None, siret: str, vendor: str | None) -> dict:
    from mappings.offers import OfferDoc
    from tests.integration.workflow.conftest import bordeaux_offer

    base = bordeaux_offer(60 + i, vendor=vendor)
    return OfferDoc.model_validate({
        **base, "id": f"sos-trust-{i}", "kind": "sos", "national_id": national_id,
        "sos": {"association_siret": siret, "association_name": f"SOS Médecins test {i}"}}).model_dump(mode="json")


def test_an_sos_vendor_reports_the_doctors_of_its_associations(wf_settings, es, harvested, token_for,
                                                              tmp_path_factory):
    import yaml
    from elasticsearch import helpers
    from fastapi.testclient import TestClient

    from search_api.app import create_app

    doctors = {"roster": "810009871230", "offer": "810009871231", "other": "810009871232"}
    offers = [sos_offer(0, national_id=doctors["roster"], siret=SOS_ROSTER_SIRET, vendor=None),
              sos_offer(1, national_id=doctors["offer"], siret=SOS_OFFER_SIRET, vendor=None),
              sos_offer(2, national_id=None, siret=SOS_OFFER_SIRET, vendor="sos-trust"),
              sos_offer(3, national_id=doctors["other"], siret=SOS_OTHER_SIRET, vendor=None)]
    index = alias_name(wf_settings.index_prefix, "offers")
    helpers.bulk(es, ({"_index": index, "_id": o["id"], "_source": o} for o in offers), refresh=True)
    vendors_path = tmp_path_factory.mktemp("sos-trust") / "vendors.yaml"
    vendors_path.write_text(yaml.safe_dump({"vendors": [
        {"name": "sos-trust", "base_url": "https://fhir.sos.test/sas", "use_cases": ["sos"],
         "sos_roster": [f"3{SOS_ROSTER_SIRET}"]},                     # the guide's wire form is accepted too
        {"name": "ps-trust", "base_url": "https://fhir.ps.test/sas", "use_cases": ["ps"]}]}))
    settings = wf_settings.model_copy(update={"vendors_file": vendors_path})
    sos = {**token_for("vendor", sub="vendor-sos-trust", name="sos-trust"), **FHIR}
    ps = {**token_for("vendor", sub="vendor-ps-trust", name="ps-trust"), **FHIR}
    pending = json.loads((DATA / "sos_pending.json").read_text(encoding="utf-8"))
    with TestClient(create_app(settings, es=es)) as client:
        for doctor in ("roster", "offer"):
            body = report(practitioner=doctors[doctor])
            answer = client.post("/fhir/Appointment", content=json.dumps(body), headers=sos)
            assert answer.status_code == 201, (doctor, answer.text)
        refused(client.post("/fhir/Appointment", content=json.dumps(report(practitioner=doctors["other"])),
                            headers=sos), "is not served by")
        # A pending SOS appointment naming no doctor yet: from the SOS vendor only.
        pending["identifier"][0]["value"] = str(uuid.uuid4())
        assert client.post("/fhir/Appointment", content=json.dumps(pending), headers=sos).status_code == 201
        pending["identifier"][0]["value"] = str(uuid.uuid4())
        refused(client.post("/fhir/Appointment", content=json.dumps(pending), headers=ps), "does not serve SOS")


def test_a_pre_created_copy_of_a_regulators_national_id_does_not_capture_his_reports(wf_api, es, wf_settings,
                                                                                     wf_offers, vendor_headers):
    """A manager may pre-create an account with any national id (it never logged in). A report naming that
    national id belongs to the account whose login proved it, whatever the ids' order."""
    now = datetime.now(timezone.utc)
    national_id = f"3{uuid.uuid4().int % 10**9:09d}/HOLDER"
    index = alias_name(wf_settings.index_prefix, "accounts")
    holder = AccountDoc(id="zz-holder", national_id=national_id, family_name="VRAI", given_name="Hélène",
                        email="helene.vrai@sas33.test", roles=["regulator"], territories=["SAS-33"],
                        created_at=now - timedelta(days=10), updated_at=now, last_login_at=now - timedelta(hours=2))
    copy_ = AccountDoc(id="aa-precreated", national_id=national_id, family_name="FAUX", given_name="Eve",
                       email="eve@attacker.test", roles=["regulator"], territories=["SAS-33"],
                       created_at=now, updated_at=now)
    for account in (copy_, holder):    # the copy first: without a rule it would be the first hit
        es.index(index=index, id=account.id, document=account.model_dump(mode="json"), refresh=True)
    medilib = {**vendor_headers["medilib"], **FHIR}
    body = report(practitioner=wf_offers["medilib"][3]["national_id"], operator=national_id)
    answer = wf_api.post("/fhir/Appointment", content=json.dumps(body), headers=medilib)
    assert answer.status_code == 201, answer.text
    [orientation] = orientations_of(es, wf_settings, body)
    assert orientation["regulator"]["id"] == "zz-holder"
    assert orientation["regulator"]["email"] == "helene.vrai@sas33.test"
