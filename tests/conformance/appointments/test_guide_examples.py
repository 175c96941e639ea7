"""The guide's INT_R03 examples (``specifications_techniques-tous-gestion_rdv.md``) against the real
mutual-TLS listener: creation by POST, the update example exactly as the guide writes it (``PUT
[base]/Appointment`` with no query, and ``?Identifier=`` with a capital I), and the SOS Médecins profile:
an appointment ``pending`` without practitioner, completed when a later update names the doctor — the
orientation's practitioner is filled from that update and the directory, and the regulation software
is told (INT_L02 update on RabbitMQ)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from mappings.registry import alias_name
from tests.conformance.appointments.conftest import DOCTOR, REGULATOR, fixture


def orientation(es, settings, location: str) -> dict:
    return es.get(index=alias_name(settings.index_prefix, "orientations"), id=location.rsplit("/", 1)[-1])["_source"]


def query(body: dict, *, name: str = "identifier", bare: bool = False) -> str:
    identifier = body["identifier"][0]
    value = identifier["value"] if bare else f"{identifier['system']}|{identifier['value']}"
    return f"/fhir/Appointment?{name}={value}"


def test_ps_booked_then_cancelled_as_the_guide_writes_it(vendor_client, listener, es, settings):
    client = vendor_client("conf-ps")
    booked, cancelled = fixture("ps_booked.json"), fixture("ps_cancelled.json")

    created = client.post("/fhir/Appointment", content=json.dumps(booked))
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert location.startswith(f"{listener}/fhir/Appointment/")
    doc = orientation(es, settings, location)
    assert doc["status"] == "booked" and doc["vendor"] == "conf-ps" and doc["category"] == "PS"
    assert doc["effecteur"]["national_id"] == DOCTOR and doc["effecteur"]["family_name"] == "DUBERNET"
    assert doc["regulator"]["national_id"] == REGULATOR and doc["regulator"]["territory"] == "SAS-33"
    assert datetime.fromisoformat(doc["consultation_start"]) == datetime(2022, 9, 4, 13, 0, tzinfo=timezone.utc)

    # "PUT[base]/Appointment?Identifier=[ID]": the guide's spelling of the parameter.
    updated = client.put(query(cancelled, name="Identifier"), content=json.dumps(cancelled))
    assert updated.status_code == 200, updated.text
    assert updated.headers["Location"] == location and updated.json()["status"] == "cancelled"
    doc = orientation(es, settings, location)
    assert doc["status"] == "cancelled"
    assert [h["status"] for h in doc["status_history"]] == ["booked", "cancelled"]

    # "put[BASE]/Appointment" with the body only: the guide's example request. Same appointment, same
    # status: nothing changes (idempotent), and no second orientation.
    again = client.put("/fhir/Appointment", content=json.dumps(cancelled))
    assert again.status_code == 200, again.text
    assert again.headers["Location"] == location
    # A bare value, and the parameter in capitals, name the same appointment.
    for url in (query(cancelled, bare=True), query(cancelled, name="IDENTIFIER")):
        answer = client.put(url, content=json.dumps(cancelled))
        assert answer.status_code == 200 and answer.headers["Location"] == location, (url, answer.text)
    assert len(orientation(es, settings, location)["status_history"]) == 2


def test_put_naming_another_appointment_is_refused(vendor_client):
    client = vendor_client("conf-ps")
    cancelled = fixture("ps_cancelled.json")
    for url in ("/fhir/Appointment?Identifier=urn:oid:1.1.111.1.11.1.1.1|another-id",
                "/fhir/Appointment?identifier=another-id", "/fhir/Appointment?Identifier="):
        answer = client.put(url, content=json.dumps(cancelled))
        assert answer.status_code == 400, (url, answer.text)
        assert answer.json()["resourceType"] == "OperationOutcome"


def test_sos_pending_then_completed_with_the_doctor(vendor_client, listener, es, settings, lrm_messages):
    _, receive = lrm_messages
    client = vendor_client("conf-sos")
    pending, completed = fixture("sos_pending.json"), fixture("sos_completed.json")

    # The SOS example (sas-sos-appointment): pending, participant ADM / needs-action, no practitioner.
    created = client.put("/fhir/Appointment", content=json.dumps(pending))
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert created.json()["status"] == "pending"
    doc = orientation(es, settings, location)
    assert doc["status"] == "pending" and doc["category"] == "SOS" and doc["vendor"] == "conf-sos"
    assert not doc["effecteur"].get("national_id")
    first = receive(doc["id"], 1)
    assert len(first) == 1 and first[0][2]["status"] == "PENDING"
    assert first[0][0] == "fr.health.test.ptfsas"             # the Hub routes on the sender's id
    assert first[0][1] == "fr.health.samu330"                 # addressed to the regulator's SAS
    assert "practitioner" not in first[0][2]

    # The association names its doctor: the same appointment, now booked with the practitioner.
    updated = client.put(query(completed, name="Identifier"), content=json.dumps(completed))
    assert updated.status_code == 200, updated.text
    assert updated.headers["Location"] == location and updated.json()["status"] == "booked"
    doc = orientation(es, settings, location)
    assert doc["status"] == "booked" and doc["category"] == "SOS"
    assert [h["status"] for h in doc["status_history"]] == ["pending", "booked"]
    effecteur = doc["effecteur"]
    assert effecteur["national_id"] == DOCTOR
    assert (effecteur["family_name"], effecteur["given_name"]) == ("DUBERNET", "Hélène")
    assert effecteur["specialty"] == "SM54" and effecteur["profession_code"] == "10"

    messages = receive(doc["id"], 2)
    assert len(messages) == 2, messages
    update = messages[1][2]
    assert update["method"] == "UpdateAppointment" and update["status"] == "BOOKED"
    assert update["practitioner"]["rppsId"] == DOCTOR and update["practitioner"]["specialityCode"] == "SM54"

    # Reporting the pending state again never erases the doctor the orientation now has.
    client.put("/fhir/Appointment", content=json.dumps(pending))
    assert orientation(es, settings, location)["effecteur"]["national_id"] == DOCTOR


def test_capability_statement_lists_both_profiles(vendor_client):
    answer = vendor_client("conf-sos").get("/fhir/metadata")
    assert answer.status_code == 200
    resource = answer.json()["rest"][0]["resource"][0]
    assert resource["type"] == "Appointment" and resource["conditionalUpdate"] is True
    assert "http://sas.fr/fhir/StructureDefinition/FrAppointmentSAS" in resource["supportedProfile"]
    assert "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/sas-sos-appointment" in \
        resource["supportedProfile"]


def test_sos_doctor_named_later_with_the_usual_parameter(vendor_client, es, settings):
    """The same completion with ``?identifier=<system>|<value>`` (the FHIR spelling) and a fresh
    identifier: what completes the orientation is the named doctor, not the way the URL is written."""
    client = vendor_client("conf-sos")
    pending, completed = fixture("sos_pending.json"), fixture("sos_completed.json")
    value = str(uuid.uuid4())
    for body in (pending, completed):
        body["identifier"][0]["value"] = value
    created = client.put(query(pending), content=json.dumps(pending))
    assert created.status_code == 201, created.text
    assert not orientation(es, settings, created.headers["Location"])["effecteur"].get("national_id")
    updated = client.put(query(completed), content=json.dumps(completed))
    assert updated.status_code == 200, updated.text
    doc = orientation(es, settings, updated.headers["Location"])
    assert doc["status"] == "booked" and doc["effecteur"]["national_id"] == DOCTOR
    assert doc["effecteur"]["family_name"] == "DUBERNET" and doc["effecteur"]["specialty"] == "SM54"
