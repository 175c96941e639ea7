"""The profile checker against the guide's own examples: every example passes (that proves the checker
accepts what the guide publishes), and each rule catches the mistake it is there for (that proves it
can fail)."""

from __future__ import annotations

import pytest

from tests.conformance import profiles as p

BUNDLES = [("bundle_ps_indiv.json", "ps"), ("bundle_cpts_one_community.json", "cpts"),
           ("bundle_cpts_two_communities.json", "cpts"), ("bundle_sos.json", "sos")]
RESOURCES = [("appointment_ps_booked.json", p.APPOINTMENT), ("appointment_ps_cancelled.json", p.APPOINTMENT),
             ("appointment_sos_pending.json", p.APPOINTMENT_SOS),
             *[(f"practitioner_regul{i}.json", p.PRACTITIONER_REGUL) for i in range(1, 5)]]


@pytest.mark.parametrize(("name", "use_case"), BUNDLES)
def test_guide_example_bundles_conform(example, name, use_case):
    """input/fsh/examples/{PS Indiv,CPTS,SOS}: the example bundles validate against their Bundle profiles."""
    assert p.check_bundle(example(name), use_case) == []


@pytest.mark.parametrize(("name", "profile"), RESOURCES)
def test_guide_example_resources_conform(example, name, profile):
    """input/fsh/examples: the Appointment and regulator Practitioner examples validate against their profiles."""
    assert p.check_resource(example(name), profile) == []


def _entry(bundle: dict, kind: str, index: int = 0) -> dict:
    return [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == kind][index]


def _issues(bundle: dict, use_case: str) -> str:
    return "\n".join(p.check_bundle(bundle, use_case))


def test_checker_catches_unprefixed_cpts_finess(example):
    """FrOrganizationAgregateurCPTS FINESS-invariant ^1[0-9]{9}$: a bare 9-digit FINESS is refused."""
    bundle = example("bundle_cpts_two_communities.json")
    _entry(bundle, "Organization")["identifier"][0]["value"] = "950047225"
    assert "FINESS-invariant" in _issues(bundle, "cpts")


def test_checker_catches_unprefixed_sos_siret(example):
    """FrOrganizationAgregateurSOS SIRET-invariant ^3[0-9]{14}$: a bare 14-digit SIRET is refused."""
    bundle = example("bundle_sos.json")
    _entry(bundle, "Organization")["identifier"][0]["value"] = "34173748400020"
    assert "SIRET-invariant" in _issues(bundle, "sos")


def test_checker_catches_wrong_meta_profile(example):
    """Validateur ressources (specifications_techniques-cpts-recherche_creneaux.md): each resource declares
    its profile's canonical URL; http://sas.fr/…/FrSlotAgregateurCPTS is not one."""
    bundle = example("bundle_cpts_one_community.json")
    _entry(bundle, "Slot")["meta"]["profile"] = ["http://sas.fr/fhir/StructureDefinition/FrSlotAgregateurCPTS"]
    issues = _issues(bundle, "cpts")
    assert "does not declare " + p.SLOT_CPTS in issues and "0 conformant Slot entries" in issues


def test_checker_catches_fixed_values(example):
    """FrSlotAgregateur status = #free; Bundle type = #searchset; Practitioner identifier.system fixed."""
    bundle = example("bundle_ps_indiv.json")
    bundle["type"] = "collection"
    _entry(bundle, "Slot")["status"] = "busy"
    _entry(bundle, "Practitioner")["identifier"][0]["system"] = "urn:oid:1.2.250.1.71.4.2.2"
    issues = _issues(bundle, "ps")
    assert "fixed value 'searchset'" in issues and "fixed value 'free'" in issues
    assert "identifier.system: 'urn:oid:1.2.250.1.71.4.2.2' found" in issues


def test_checker_catches_cardinalities(example):
    """FrLocationAgregateur address.postalCode 1..; FrPractitionerRoleExerciceAgregateur location 1..1;
    BundleAgregateurSOS link 1..1 and entry fullUrl 1..; Slot.end 1..1."""
    bundle = example("bundle_ps_indiv.json")
    del _entry(bundle, "PractitionerRole")["contained"][0]["address"]["postalCode"]
    _entry(bundle, "PractitionerRole", 1)["location"].append({"reference": "#ExampleLocation2"})
    del _entry(bundle, "Slot")["end"]
    issues = _issues(bundle, "ps")
    assert "address.postalCode: 0 found, 1..1 expected" in issues
    assert "location: 2 found, 1..1 expected" in issues and "end: 0 found, 1..1 expected" in issues
    sos = example("bundle_sos.json")
    sos["link"].append({"relation": "next", "url": "https://editeur.fr/Schedule?page=2"})
    del sos["entry"][0]["fullUrl"]
    issues = _issues(sos, "sos")
    assert "link: 2 found, 1..1 expected" in issues and "fullUrl: 0 found" in issues


def test_checker_catches_included_instead_of_contained_location(example):
    """FrPractitionerRoleExerciceAgregateur location ^type.aggregation = #contained."""
    bundle = example("bundle_ps_indiv.json")
    role = _entry(bundle, "PractitionerRole")
    role["location"] = [{"reference": "Location/ExampleLocation3"}]
    assert "not a reference to a contained Location" in _issues(bundle, "ps")


def test_checker_catches_bindings(example):
    """Required bindings: sas-sos-valueset-typecreneau (no PRO for SOS), sas-valueset-appointmentreason,
    CPTS serviceType slices (604 needs its HealthcareService extension)."""
    sos = example("bundle_sos.json")
    _entry(sos, "Slot")["meta"]["security"].append({"system": p.R314, "code": "PRO"})
    _entry(sos, "Slot", 1)["appointmentType"]["coding"][0]["code"] = "EMERGENCY"
    issues = _issues(sos, "sos")
    assert "#PRO is not in sas-sos-valueset-typecreneau" in issues
    assert "#EMERGENCY is not in sas-valueset-appointmentreason" in issues
    cpts = example("bundle_cpts_two_communities.json")
    del _entry(cpts, "Slot")["serviceType"][2]["extension"]
    assert "needs exactly one sas-servicetype-r5 extension" in _issues(cpts, "cpts")


def test_checker_catches_appointment_and_regulator_rules(example):
    """FrAppointmentSAS participant identifier IDNPS / RPPS system; FrPractitionerRegul telecom email,
    active 1..1, name.given 1..1; sas-sos-appointment participant status binding."""
    booked = example("appointment_ps_booked.json")
    booked["participant"][0]["actor"]["identifier"]["system"] = "urn:oid:1.2.250.1.213.3.6"
    del booked["extension"]
    issues = "\n".join(p.check_resource(booked, p.APPOINTMENT))
    assert "participant.actor.identifier.system" in issues and "extension[appointmentOperator]: 0 found" in issues
    regul = example("practitioner_regul4.json")
    regul["telecom"][0]["system"] = "phone"
    del regul["active"]
    regul["name"][0]["given"] = []
    issues = "\n".join(p.check_resource(regul, p.PRACTITIONER_REGUL))
    assert "telecom.system" in issues and "active: 0 found" in issues and "name.given: 0 found" in issues
    sos = example("appointment_sos_pending.json")
    sos["participant"][0]["status"] = "tentative"
    assert "sas-valueset-participant-status" in "\n".join(p.check_resource(sos, p.APPOINTMENT_SOS))


def test_checker_catches_duplicate_entries(example):
    """FHIR R4 Bundle invariant bdl-7: fullUrl unique in a bundle."""
    bundle = example("bundle_sos.json")
    bundle["entry"].append(bundle["entry"][3])
    assert "bdl-7" in _issues(bundle, "sos")


def test_checker_catches_identifier_type_patterns(example):
    """Identifier type patterns: FrOrganizationAgregateurSOS fr-location-identifier-type#IDNST,
    FrPractitionerAgregateur fr-v2-0203#IDNPS."""
    sos = example("bundle_sos.json")
    _entry(sos, "Organization")["identifier"][0]["type"]["coding"][0]["system"] = p.FR_CORE_V2_0203
    assert "identifier.type" in _issues(sos, "sos")
    ps = example("bundle_ps_indiv.json")
    _entry(ps, "Practitioner")["identifier"][0]["type"]["coding"][0]["code"] = "RPPS"
    assert "pattern" in _issues(ps, "ps")
