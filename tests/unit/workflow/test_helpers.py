"""Pure helpers of the workflow: INT_L01 parameters, INT_L02 messages, INT_R02 bodies, CSV, booking URLs."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timezone

import pytest

from connectors.lrm import appointment_content, envelope, hold_reason, parse_hub_report, samu_recipient
from connectors.reference import Commune
from connectors.vendor_appointments import PatientDetails, appointment_resource
from connectors.vendors_accounts import fingerprint, practitioner_resource
from sas_core.errors import BadRequest, Forbidden
from sas_core.territories import known_samu_ids
from search_api.auth import Principal, Role
from search_api.specialties import SpecialtyResolver
from search_api.workflow import csv_export
from search_api.workflow.common import acting_territory, category_for_slot, idempotent_id, with_origin_sas
from search_api.workflow.contextual import (
    NOTICE_DEFAULT_SPECIALTY,
    NOTICE_DOCTOR_MISSING,
    NOTICE_DOCTOR_UNIDENTIFIED,
    UnknownOrigin,
    own_doctor_first,
    parse_contextual,
    territory_of_samu,
)
from search_api.workflow.declarations import PeriodIn, check_periods, end_of_day

ORIENTATION = {
    "id": "2d2db05f-e2b0-4169-be8f-891806da2c74", "created_at": "2025-06-17T08:15:00+00:00",
    "consultation_start": "2025-06-17T12:00:00+00:00", "consultation_end": "2025-06-17T12:20:00+00:00",
    "status": "booked", "category": "PS", "territory": "SAS-33",
    "effecteur": {"national_id": "810005681340", "name": "Didier MOREL", "family_name": "MOREL",
                  "given_name": "Didier", "specialty": "SM54", "profession_code": "10"},
    "regulator": {"id": "u-1", "national_id": "3620100057/70326SR", "family_name": "RICART", "given_name": "Pauline",
                  "email": "pauline.ricart@ghsas.fr", "territory": "SAS-33"},
    "structure": {}, "place_address": "12 rue Sainte-Catherine, 33000 Bordeaux",
}


def test_lrm_content_has_the_specified_fields():
    content = appointment_content(ORIENTATION, method="CreateAppointment")
    assert content == {
        "appointmentId": "2d2db05f-e2b0-4169-be8f-891806da2c74", "method": "CreateAppointment",
        "created": "2025-06-17T10:15:00+02:00", "status": "BOOKED", "orientationCategory": "PS",
        "start": "2025-06-17T14:00:00+02:00", "end": "2025-06-17T14:20:00+02:00",
        "practitioner": {
            "rppsId": "810005681340", "lastName": "MOREL", "firstName": "Didier", "specialityCode": "SM54",
            "specialityUrl": "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale",
            "professionUrl": "https://mos.esante.gouv.fr/NOS/TRE_G15-ProfessionSante/FHIR/TRE-G15-ProfessionSante",
            "professionCode": "10"},
        "regulator": {"regulatorId": "3620100057/70326SR", "regulatorName": "RICART", "regulatorFirstname": "Pauline",
                      "regulatorEmail": "pauline.ricart@ghsas.fr"},
    }


@pytest.mark.parametrize(("internal", "guide"), [("oriented", "PENDING"), ("pending", "PENDING"), ("booked", "BOOKED"),
                                               ("fulfilled", "FULFILLED"), ("noshow", "NOSHOW"),
                                               ("cancelled", "CANCELLED")])
def test_lrm_status_is_one_of_the_guide_list(internal, guide):
    # The guide's list (PENDING, BOOKED, FULFILLED, NOSHOW, CANCELLED): a redirect is PENDING until confirmed.
    assert appointment_content({**ORIENTATION, "status": internal}, method="UpdateAppointment")["status"] == guide


def test_lrm_category_outside_the_guide_list_is_left_out_and_half_organizations_too():
    content = appointment_content({**ORIENTATION, "category": "Medecin", "structure": {"id": "1330000001"}},
                                  method="CreateAppointment")
    assert "orientationCategory" not in content and "organization" not in content
    sos = appointment_content({**ORIENTATION, "category": "SOS",
                               "structure": {"id": "312345678900012", "name": "SOS Médecins Bordeaux"}},
                              method="CreateAppointment")
    assert sos["orientationCategory"] == "SOS"
    assert sos["organization"] == {"organizationId": "312345678900012", "name": "SOS Médecins Bordeaux"}


def test_lrm_hold_until_start_and_end_are_known():
    assert hold_reason(ORIENTATION) is None
    assert hold_reason({**ORIENTATION, "consultation_start": None, "consultation_end": None}) == "start_unknown"
    assert hold_reason({**ORIENTATION, "consultation_end": None}) == "end_unknown"


def test_hub_reports_are_parsed():
    def wrap(kind, message, sender="fr.health.samu330"):
        import orjson
        return orjson.dumps({"distributionID": f"{sender}_1", "senderID": sender, "distributionKind": kind,
                             "content": [{"jsonContent": {"embeddedJsonContent": {"message": message}}}]})

    ack = parse_hub_report(wrap("Ack", {"kind": "Ack", "reference": {"distributionID": "fr.health.ptfsas_a"}}))
    assert (ack.kind, ack.distribution_id, ack.refused, ack.sender) == ("ack", "fr.health.ptfsas_a", False,
                                                                       "fr.health.samu330")
    refused = parse_hub_report(wrap("Ack", {"reference": {"distributionID": "x_1", "refused": True}}))
    assert refused.refused
    error = parse_hub_report(wrap("Error", {"error": {
        "errorCode": {"statusCode": 300, "statusString": "INVALID_MESSAGE"}, "errorCause": "bad category",
        "sourceMessage": {"distributionID": "x_2"}}}, sender="fr.health.hub"))
    assert (error.kind, error.code, error.status, error.distribution_id, error.sender) == (
        "error", 300, "INVALID_MESSAGE", "x_2", "fr.health.hub")
    assert parse_hub_report(b"not json") is None
    assert parse_hub_report(wrap("Report", {"appointment": {}})) is None


def test_lrm_envelope_and_recipient():
    assert samu_recipient("SAS-33") == "fr.health.samu330"
    assert samu_recipient("SAS-2A") == "fr.health.samu2A0"
    assert samu_recipient("SAS-971") == "fr.health.samu971"
    now = datetime(2025, 10, 28, 16, 5, 54, tzinfo=timezone.utc)
    message = envelope({"appointmentId": "x"}, sender_id="fr.health.ptfsas", recipient="fr.health.samu330", now=now,
                       ttl_s=240, message_id="fr.health.ptfsas_1")
    assert message["distributionKind"] == "Report" and message["distributionStatus"] == "Actual"
    assert message["descriptor"]["explicitAddress"] == {"explicitAddressScheme": "hubex",
                                                        "explicitAddressValue": "fr.health.samu330"}
    assert message["dateTimeExpires"] == "2025-10-28T16:09:54+00:00"
    inner = message["content"][0]["jsonContent"]["embeddedJsonContent"]["message"]
    assert inner["messageId"] == "fr.health.ptfsas_1" and inner["appointment"] == {"appointmentId": "x"}
    assert inner["recipient"] == [{"name": "fr.health.samu330", "URI": "hubex:fr.health.samu330"}]


def test_practitioner_resource_national_id_and_uuid():
    with_id = practitioner_resource({"id": "u1", "national_id": "810002673899", "family_name": "MARIUS",
                                     "given_name": "Jules", "email": "jules.marius@test.com", "active": True})
    assert with_id["identifier"][0]["system"] == "urn:oid:1.2.250.1.71.4.2.1"
    assert with_id["identifier"][0]["type"]["coding"][0]["code"] == "IDNPS"
    assert with_id["meta"]["source"] == "urn:oid:1.2.250.1.213.3.6"
    assert with_id["telecom"] == [{"system": "email", "value": "jules.marius@test.com"}]
    without = practitioner_resource({"id": "1ef1c748-01a3-6180-b098-73283ce4e5b1", "family_name": "Loridon"},
                                    active=False)
    assert without["identifier"][0] == {
        "type": {"coding": [{"system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "INTRN"}]},
        "system": "urn:oid:1.2.250.1.213.3.6", "value": "1ef1c748-01a3-6180-b098-73283ce4e5b1"}
    assert without["active"] is False
    assert fingerprint(with_id) == fingerprint(dict(reversed(list(with_id.items()))))
    assert fingerprint(with_id) != fingerprint({**with_id, "active": False})


def test_patient_details_never_print():
    patient = PatientDetails(family_name="Quatrebarbes", given_name="Zéphyrine")
    assert "Quatrebarbes" not in repr(patient) and "Quatrebarbes" not in str(patient)
    body = appointment_resource(vendor_slot_id="s1", start=datetime(2025, 1, 1, tzinfo=timezone.utc),
                                end=datetime(2025, 1, 1, 0, 15, tzinfo=timezone.utc), national_id="810100050075",
                                operator_system="urn:oid:1.2.250.1.213.3.6", operator_value="u1",
                                operator_type="INTRN", patient=patient)
    assert body["contained"][0]["name"] == [{"family": "Quatrebarbes", "given": ["Zéphyrine"]}]
    assert body["slot"] == [{"reference": "Slot/s1"}]


BORDEAUX = Commune(insee="33063", name="Bordeaux", departement="33", region="75",
                   postcodes=("33000", "33100", "33200", "33300", "33800"), lat=44.85724, lon=-0.5737, population=1)
COMMUNES = {"33063": BORDEAUX}
SPECIALTIES = SpecialtyResolver({"SM54": "Médecine générale (SM)", "SM26": "Qualifié en médecine générale (SM)",
                                 "SM53": "Spécialiste en médecine générale (SM)", "SM40": "Pédiatrie (SM)",
                                 "SM43": "Psychiatrie, option enfant et adolescent (SM)"})


def parse(params: dict) -> object:
    return parse_contextual(params, communes=COMMUNES, specialties=SPECIALTIES)


def test_contextual_parameters():
    call = parse({"adresse": "12 rue Sainte-Catherine", "code_postal": "33000", "ville": "Bordeaux",
                  "specialite": "SM54", "medecin_traitant": "10005681340", "samu": "330"})
    assert call.q == "12 rue Sainte-Catherine, 33000 Bordeaux"
    assert call.own_doctor == "810005681340" and call.territory == "SAS-33" and call.samu == "330"
    assert call.search_parameters() == {"q": "12 rue Sainte-Catherine, 33000 Bordeaux", "specialty": ["SM54"]}
    assert call.warnings == ()
    assert territory_of_samu("fr.health.samu470") == ("470", "SAS-47")
    assert territory_of_samu("2A") == ("2A0", "SAS-2A")
    for bad in ({"ville": "Agen", "code_postal": "4700"}, {}, {"ville": "Agen", "samu": "xyz"},
                {"ville": "Agen", "medecin_traitant": "123"}, {"ville": "Agen", "samu": "990"},
                {"ville": "A\x00gen"}, {"ville": "x" * 81}):
        with pytest.raises(BadRequest):
            parse(bad)


def test_contextual_parameters_of_the_national_platform():
    call = parse({"origin": "fr.health.samu330", "streetnumber": "12 bis", "streetname": "rue Sainte-Catherine",
                  "inseecode": "33063", "city": "ignored when the INSEE code is known",
                  "specialty": "urn:oid:1.2.250.1.213.2.28|sm54",
                  "practitioner": "urn:oid:1.2.250.1.71.4.2.1|810005681340"})
    assert call.q == "12 bis rue Sainte-Catherine, 33000 Bordeaux" and call.insee == "33063"
    assert (call.origin, call.samu, call.territory) == ("fr.health.samu330", "330", "SAS-33")
    assert call.specialties == ("SM54",) and call.own_doctor == "810005681340" and call.warnings == ()
    # A label, the city alone, a malformed doctor: the search still opens, the operator is told.
    call = parse({"origin": "FR.HEALTH.SAMU2a0", "city": "Ajaccio", "specialty": "Pédiatrie",
                  "practitioner": "urn:oid:1.2.250.1.213.3.6|b6e39355"})
    assert call.territory == "SAS-2A" and call.q == "Ajaccio" and call.specialties == ("Pédiatrie",)
    assert call.own_doctor is None and call.warnings == (NOTICE_DOCTOR_UNIDENTIFIED,)
    # No specialty, no doctor from regulation software: general practice, and both said.
    call = parse({"origin": "fr.health.samu974", "inseecode": "97411", "city": "Saint-Denis"})
    assert call.specialties == ("SM54",) and call.q == "Saint-Denis"
    assert NOTICE_DOCTOR_MISSING in call.warnings and NOTICE_DEFAULT_SPECIALTY in call.warnings
    assert any("97411" in w for w in call.warnings)                      # unknown INSEE code, city used
    # A label with a comma in it is one label; several values are still split on commas.
    assert parse({"city": "Bordeaux", "specialty": "Psychiatrie, option enfant et adolescent"}).specialties == ("SM43",)
    assert parse({"city": "Bordeaux", "specialty": "SM40, Médecine générale"}).specialties == \
        ("SM40", "Médecine générale")
    # The French names keep their meaning: no default specialty without origin.
    assert parse({"ville": "Bordeaux"}).specialties == ()
    for bad in ({"origin": "fr.health.samu990", "city": "Bordeaux"}, {"origin": "", "city": "Bordeaux"},
                {"origin": "samu330", "city": "Bordeaux"}):
        with pytest.raises(UnknownOrigin):
            parse(bad)
    for bad in ({"streetnumber": "12", "inseecode": "33063"}, {"inseecode": "3306"}, {"inseecode": "99999"},
                {"streetnumber": "bis", "streetname": "rue X", "city": "Bordeaux"},
                {"city": "Bordeaux", "specialty": "urn:oid:1.2.3|SM99"}, {"city": "Bordeaux", "specialty": "urn:x"}):
        with pytest.raises(BadRequest):
            parse(bad)
    with pytest.raises(UnknownOrigin):       # an id the deployment switched off
        parse_contextual({"origin": "fr.health.samu330", "city": "Bordeaux"}, communes=COMMUNES,
                         specialties=SPECIALTIES, origins={"fr.health.samu470": "SAS-47"})


def test_known_samu_ids():
    known = known_samu_ids()
    assert len(known) == 101 and known["fr.health.samu330"] == "SAS-33" and known["fr.health.samu010"] == "SAS-01"
    assert known["fr.health.samu2B0"] == "SAS-2B" and known["fr.health.samu976"] == "SAS-976"
    assert "fr.health.samu200" not in known and "fr.health.samu975" not in known
    assert all(samu_recipient(territory) == samu for samu, territory in known.items())   # the INT_L02 recipient


def test_own_doctor_first():
    cards = [{"offer": {"id": "a"}, "slots": [1]}, {"offer": {"id": "b"}, "slots": [1]}]
    assert [c["offer"]["id"] for c in own_doctor_first(cards, {"b"}, [])] == ["b", "a"]
    extra = [{"offer": {"id": "z"}, "slots": [1]}]
    assert [c["offer"]["id"] for c in own_doctor_first(list(cards), {"z"}, extra)] == ["z", "a", "b"]
    assert [c["offer"]["id"] for c in own_doctor_first(list(cards), {"z"}, [{"offer": {"id": "z"}, "slots": []}])] \
        == ["a", "b"]


def test_csv_is_excel_friendly():
    text = "".join(csv_export.stream([ORIENTATION], specialty_label={"SM54": "Médecine générale"}.get))
    assert text.startswith("\ufeffdate d'orientation;date de consultation;créneau;régulateur;territoire;effecteur;"
                           "RPPS;spécialité;adresse;statut\r\n")
    rows = list(csv.reader(io.StringIO(text.lstrip("\ufeff")), delimiter=";"))
    # Issue 17 (11): the screen's wording and formats (was "10:15", "SM54", "booked").
    assert rows[1] == ["17/06/2025 10h15", "17/06/2025", "14h00-14h20", "u-1", "SAS-33", "Didier MOREL",
                       "10005681340", "Médecine générale", "12 rue Sainte-Catherine, 33000 Bordeaux", "Confirmé"]


def test_booking_helpers():
    assert with_origin_sas("https://rdv.example/p/1?slot=9&origin=web") == "https://rdv.example/p/1?slot=9&origin=sas"
    assert idempotent_id("u1", "k") == idempotent_id("u1", "k") != idempotent_id("u2", "k")
    assert category_for_slot({"use_case": "sos", "sos": {}}) == "SOS"
    assert category_for_slot({"use_case": "cpts", "cpts": [{"finess": "1"}], "offer_kind": "ps"}) == "CPTS"
    assert category_for_slot({"offer_kind": "centre"}) == "CDS"
    assert category_for_slot({"offer_kind": "ps"}) == "PS"
    two = Principal(sub="r", roles=frozenset({Role.REGULATOR}), territories=frozenset({"SAS-47", "SAS-33"}))
    assert acting_territory(two, requested=None, fallback="SAS-47") == "SAS-47"
    with pytest.raises(BadRequest):
        acting_territory(two, requested=None, fallback="SAS-92")
    with pytest.raises(Forbidden):
        acting_territory(two, requested="SAS-92", fallback=None)


def test_declaration_periods():
    now = datetime(2025, 6, 1, 10, tzinfo=timezone.utc)
    assert end_of_day(now).isoformat() == "2025-06-02T00:00:00+02:00"
    ok = check_periods([PeriodIn(datetime(2025, 6, 10, tzinfo=timezone.utc)),
                        PeriodIn(datetime(2025, 6, 2, tzinfo=timezone.utc), datetime(2025, 6, 3, tzinfo=timezone.utc))],
                       now=now)
    assert ok[0].start.day == 2 and ok[1].end is None
    for bad in ([PeriodIn(datetime(2025, 6, 2, tzinfo=timezone.utc)),
                 PeriodIn(datetime(2025, 6, 5, tzinfo=timezone.utc))],
                [PeriodIn(datetime(2025, 6, 3, tzinfo=timezone.utc), datetime(2025, 6, 2, tzinfo=timezone.utc))],
                [PeriodIn(datetime(2025, 6, 3))], []):
        with pytest.raises(BadRequest):
            check_periods(bad, now=now)


def test_hub_settings_need_the_platform_certificate(tmp_path):
    from sas_core.settings import Settings
    from search_api.workflow.wiring import hub_connection

    assert hub_connection(Settings(lrm_hub_host=None)) is None          # INT_L02 off
    with pytest.raises(ValueError, match="SAS_LRM_TLS_CERT, SAS_LRM_TLS_KEY"):
        hub_connection(Settings(lrm_hub_host="messaging.hub.esante.gouv.fr", lrm_tls_ca=tmp_path / "ca.pem"))
    connection = hub_connection(Settings(lrm_hub_host="messaging.hub.esante.gouv.fr", lrm_tls_cert=tmp_path / "c.pem",
                                         lrm_tls_key=tmp_path / "c.key", lrm_tls_ca=tmp_path / "ca.pem"))
    # The Hub's values by default: AMQPS port, the vhost of its client examples.
    assert (connection.port, connection.vhost) == (5671, "15-15_v2.0")
