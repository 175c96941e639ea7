"""INT_R03 Appointment validation: the specification's examples pass, broken ones are refused with
every problem named (400 structure, 422 rules)."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from search_api.workflow.appointments import (
    FhirInvalid,
    IdentifierCondition,
    conditional_identifier,
    operation_outcome,
    parse_appointment,
)

DATA = Path(__file__).resolve().parents[2] / "data" / "fhir" / "appointments"


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def test_booked_example_is_read_field_by_field():
    report = parse_appointment(json.dumps(load("booked.json")).encode())
    assert (report.system, report.value) == ("urn:oid:1.1.111.1.11.1.1.1", "b6e39355-8a61-4556-b340-36f7b95fec6a")
    assert report.status == "booked"
    assert report.start == datetime(2022, 9, 4, 13, 0, tzinfo=timezone.utc)
    assert report.end - report.start == timedelta(minutes=15)
    assert report.created == datetime(2022, 9, 4, 9, 0, tzinfo=timezone.utc)
    assert report.practitioner_national_id == "810100050075"
    assert report.operator_type == "IDNPS" and report.operator_national_id == "3456780581/11242343"
    assert report.operator_account_id is None
    assert report.participant_status == "accepted"


def test_cancelled_and_sos_pending_examples():
    assert parse_appointment(load("cancelled.json")).status == "cancelled"
    sos = parse_appointment(load("sos_pending.json"))
    assert sos.status == "pending" and sos.practitioner_national_id is None
    assert sos.participant_status == "needs-action"


def test_platform_uuid_operator_and_category_extension():
    body = load("booked.json")
    body["extension"][0]["valueReference"]["identifier"] = {
        "type": {"coding": [{"system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "INTRN"}]},
        "system": "urn:oid:1.2.250.1.213.3.6", "value": "1ef1c748-01a3-6180-b098-73283ce4e5b1"}
    body["extension"].append({"url": "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/sas-categorie-orientation",
                              "valueCodeableConcept": {"coding": [{"code": "604"}]}})
    report = parse_appointment(body)
    assert report.operator_account_id == "1ef1c748-01a3-6180-b098-73283ce4e5b1"
    assert report.category == "CPTS"


def test_rule_violations_are_422_with_every_issue():
    with pytest.raises(FhirInvalid) as caught:
        parse_appointment(load("invalid_rules.json"))
    assert caught.value.status == 422
    texts = " | ".join(i.diagnostics for i in caught.value.issues)
    assert "FrAppointmentOperator" in texts
    assert "arrived" in texts
    assert "after Appointment.start" in texts


def test_structure_errors_are_400():
    with pytest.raises(FhirInvalid) as caught:
        parse_appointment(load("invalid_structure.json"))
    assert caught.value.status == 400
    expressions = {i.expression for i in caught.value.issues}
    assert "Appointment.start" in expressions and "Appointment.participant" in expressions


@pytest.mark.parametrize("raw, fragment", [
    (b"{not json", "not JSON"),
    (b"[]", "JSON object"),
    (json.dumps({"resourceType": "Patient", "name": [{"family": "X"}]}).encode(), "Patient"),
])
def test_not_an_appointment_is_400(raw, fragment):
    with pytest.raises(FhirInvalid) as caught:
        parse_appointment(raw)
    assert caught.value.status == 400
    assert fragment in caught.value.issues[0].diagnostics


@pytest.mark.parametrize("mutate, fragment", [
    (lambda b: b.pop("identifier"), "identifier is required"),
    (lambda b: b["identifier"][0].pop("system"), "identifier.system"),
    (lambda b: b.update(start="2022-09-04"), "offset"),
    (lambda b: b.update(start="2022-09-04T14:00:00"), "offset"),
    (lambda b: b["participant"][0]["actor"]["identifier"].update(value="12345"), "not a national id"),
    (lambda b: b["participant"][0].update(status="declined"), "accepted or needs-action"),
    (lambda b: b["extension"][0]["valueReference"]["identifier"].update(system="urn:oid:9.9"), "IDNPS identifier"),
])
def test_each_rule(mutate, fragment):
    body = copy.deepcopy(load("booked.json"))
    mutate(body)
    with pytest.raises(FhirInvalid) as caught:
        parse_appointment(body)
    assert caught.value.status == 422
    assert any(fragment in i.diagnostics for i in caught.value.issues), caught.value.issues


def test_identifier_parameter():
    """``?identifier=``, ``?Identifier=`` (the guide's spelling), any case; a bare value (the guide's
    ``?Identifier=[ID]``); no parameter → ``None`` (the body's identifier is the condition)."""
    assert conditional_identifier([("identifier", "urn:oid:1.1|abc")]) == IdentifierCondition("urn:oid:1.1", "abc")
    assert conditional_identifier([("Identifier", "urn:oid:1.1|abc"), ("_format", "json")]) == \
        IdentifierCondition("urn:oid:1.1", "abc")
    assert conditional_identifier([("IDENTIFIER", " abc ")]) == IdentifierCondition(None, "abc")
    assert conditional_identifier([("identifier", "|abc")]) == IdentifierCondition(None, "abc")
    assert conditional_identifier([]) is None and conditional_identifier([("_format", "json")]) is None
    assert IdentifierCondition(None, "abc").matches("urn:any", "abc")
    assert not IdentifierCondition("urn:oid:1.1", "abc").matches("urn:oid:1.2", "abc")
    for bad in ([("identifier", "")], [("identifier", "urn:x|")], [("identifier", "a|b"), ("Identifier", "a|c")]):
        with pytest.raises(FhirInvalid) as caught:
            conditional_identifier(bad)
        assert caught.value.status == 400


def test_operation_outcome_shape():
    outcome = operation_outcome(FhirInvalid(422, []).issues or [])
    assert outcome == {"resourceType": "OperationOutcome", "issue": []}
    with pytest.raises(FhirInvalid) as caught:
        parse_appointment(load("invalid_rules.json"))
    body = operation_outcome(caught.value.issues)
    assert body["resourceType"] == "OperationOutcome"
    assert all(i["severity"] == "error" and i["diagnostics"] for i in body["issue"])


def test_sos_profile_pending_without_practitioner_then_named():
    """sas-sos-appointment (FrAppointmentSASSOS): pending, participant ADM / needs-action, no practitioner
    is valid and read as an SOS orientation; the later update naming the doctor carries his id, the
    participant's display and Appointment.specialty (TRE_R38)."""
    pending = load("sos_pending.json")
    report = parse_appointment(pending)
    assert report.status == "pending" and report.practitioner_national_id is None
    assert report.participant_status == "needs-action" and report.category == "SOS"
    named = copy.deepcopy(pending)
    named["status"] = "booked"
    named["participant"] = [{"type": pending["participant"][0]["type"], "status": "accepted",
                             "actor": {"identifier": {"system": "urn:oid:1.2.250.1.71.4.2.1", "value": "810100050075"},
                                       "display": "Dr Hélène DUBERNET"}}]
    named["specialty"] = [{"coding": [{"system": "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/"
                                                 "TRE-R38-SpecialiteOrdinale", "code": "SM54"}]}]
    report = parse_appointment(named)
    assert report.status == "booked" and report.practitioner_national_id == "810100050075"
    assert report.practitioner_display == "Dr Hélène DUBERNET" and report.specialty == "SM54"
    # Without the SOS profile nor category extension, no category is guessed by the parser.
    assert parse_appointment(load("booked.json")).category is None
