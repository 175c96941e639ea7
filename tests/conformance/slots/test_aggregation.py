"""The test kit's aggregation checks (``lib/sas_test_kit/aggregation/**``) against the vendor simulator.

One test per kit check, named after the kit's ``id``; the setup search of each kit group is the
``scenario`` fixture (``slots/conftest.py``). Where the kit selects resources it does it on
``meta.profile`` (``entry.where(resource.meta.profile = …)``), and so do these tests: a resource without
the guide's profile URL is invisible to the kit, as it is here.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.conformance import profiles as p
from tests.conformance.slots.conftest import (
    CPTS_A,
    DECLARED_CONSULTATION_TYPES,
    DECLARED_SLOT_TYPES_CPTS,
    DECLARED_SLOT_TYPES_PS,
    IN_CPTS,
    SINGLE,
    SOS_RENNES,
    VENDOR,
)

#: The kit's two launch versions of the single-location group: ig_launch_1 (INT_R01, FrSlotAgregateur) and
#: ig_launch_2 (INT_R04, every Slot a sas-cpts-slot-aggregator).
LAUNCHES = [pytest.param("single_location", p.SLOT_PS, id="int_r01"),
            pytest.param("single_location_cpts", p.SLOT_CPTS, id="int_r04")]
KIT_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")


def _reference(value: dict | None) -> str | None:
    return (value or {}).get("reference")


def _one(items: list, what: str):
    assert len(items) == 1, f"exactly one {what} expected, {len(items)} found"
    return items[0]


# -- setup (setup_test.rb) -------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["single_location", "single_location_cpts", "multi_lieux", "search_multiple_ps",
                                  "two_cpts", "options_ps", "options_cpts"])
def test_slot_search_setup(scenario, name):
    """slot_search_setup (specifications_techniques-ps-recherche_creneaux.md, réponse de base — succès): 200,
    a Bundle, not empty, served as application/fhir+json."""
    answer = scenario(name)
    assert answer.status == 200, answer.body
    assert answer.body.get("resourceType") == "Bundle"
    assert answer.resources, "Le Bundle est vide."
    assert answer.content_type.split(";")[0].strip() == "application/fhir+json"


def test_slot_search_setup_local_time_window(bed):
    """slot_search_setup, ig_launch_2 form (setup_helper.rb: ``start=ge<local>.000`` without offset; the guide's
    PS example request ``start=ge2021-01-02T10:00:00``): read as French local time, answered, nothing before."""
    answer = bed.slots([IN_CPTS], cpts=True, naive=True)
    assert answer.status == 200 and answer.body.get("resourceType") == "Bundle", answer.body
    slots = answer.by_profile(p.SLOT_CPTS)
    assert slots and all(datetime.fromisoformat(s["start"]) >= answer.sent_at for s in slots)


# -- slot_group: "Vérification du Bundle par le validateur" ------------------------------------------------------

@pytest.mark.parametrize(("name", "use_case"), [("single_location", "ps"), ("multi_lieux", "ps"),
                                                ("search_multiple_ps", "ps"), ("options_ps", "ps"),
                                                ("single_location_cpts", "cpts"), ("two_cpts", "cpts"),
                                                ("options_cpts", "cpts")])
def test_slot_group_validate_bundle(scenario, name, use_case):
    """slot_group validator (input/fsh/profiles/**): the answer validates against BundleAgregateur
    (INT_R01) or BundleAgregateurCPTS (INT_R04) and every entry against its profile."""
    issues = p.check_bundle(scenario(name).body, use_case)
    assert issues == [], "\n".join(issues[:40])


# -- single_practitioner_single_location ---------------------------------------------------------------------

@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_validate_cardinality(scenario, name, slot_profile):
    """validate_cardinality (BundleAgregateur, PS with one place): one Practitioner, PractitionerRole,
    Schedule and contained Location; total = number of Slots."""
    answer = scenario(name)
    _one(answer.by_profile(p.PRACTITIONER), "FrPractitionerAgregateur")
    _one(answer.by_profile(p.SCHEDULE), "FrScheduleAgregateur")
    role = _one(answer.by_profile(p.PRACTITIONER_ROLE), "FrPractitionerRoleExerciceAgregateur")
    assert len(role.get("contained") or []) == 1, "Une seule ressource Location doit être présente pour ce RPPS"
    slots = answer.by_profile(slot_profile)
    assert slots, f"no Slot declares {slot_profile}"
    assert answer.body.get("total") == len(slots), "total must equal the number of Slots"


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_validate_rpps(scenario, name, slot_profile):
    """validate_rpps (FrPractitionerAgregateur identifier): the RPPS asked for, 8 + 11 digits."""
    answer = scenario(name)
    practitioner = _one(answer.by_profile(p.PRACTITIONER), "FrPractitionerAgregateur")
    value = practitioner["identifier"][0].get("value")
    assert value == answer.requested_ids[0]
    assert re.fullmatch(r"8[0-9]{11}", value)


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_validate_dates(scenario, name, slot_profile):
    """validate_dates (FrSlotAgregateur start/end): no slot before now, none after the window, start < end,
    instants written AAAA-MM-DDTHH:MM:SS.000±hh:mm."""
    answer = scenario(name)
    slots = answer.by_profile(slot_profile)
    assert slots
    for slot in slots:
        assert KIT_INSTANT.match(slot.get("start", "")), f"start {slot.get('start')!r}"
        assert KIT_INSTANT.match(slot.get("end", "")), f"end {slot.get('end')!r}"
        start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        assert start >= answer.sent_at, f"{slot['id']} starts before the search"
        assert start.date() <= answer.window_end.date()
        assert start < end


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_validate_ref(scenario, name, slot_profile):
    """validate_ref (FrPractitionerRoleExerciceAgregateur / FrScheduleAgregateur references): role →
    Practitioner/<id>, Schedule actors → the Practitioner and the PractitionerRole, location → #contained."""
    answer = scenario(name)
    practitioner = _one(answer.by_profile(p.PRACTITIONER), "Practitioner")
    role = _one(answer.by_profile(p.PRACTITIONER_ROLE), "PractitionerRole")
    schedule = _one(answer.by_profile(p.SCHEDULE), "Schedule")
    assert _reference(role.get("practitioner")) == f"Practitioner/{practitioner['id']}"
    actors = [_reference(a) for a in schedule.get("actor") or []]
    assert f"PractitionerRole/{role['id']}" in actors and f"Practitioner/{practitioner['id']}" in actors
    assert _reference((role.get("location") or [{}])[0]) == "#" + role["contained"][0]["id"]


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_validate_location(scenario, name, slot_profile):
    """validate_location (FrLocationAgregateur address 1..1: line, city, postalCode): postal code of 5 digits."""
    role = _one(scenario(name).by_profile(p.PRACTITIONER_ROLE), "PractitionerRole")
    address = role["contained"][0].get("address") or {}
    assert address.get("line") and address.get("city")
    assert re.fullmatch(r"[0-9]{5}", address.get("postalCode") or "")


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_bundle_url_equal_url(scenario, name, slot_profile):
    """bundle_url_equal_url (Bundle.link self): link.url carries exactly the query that produced the Bundle."""
    answer = scenario(name)
    links = [link for link in answer.body.get("link") or [] if link.get("url")]
    assert links, "Le champ link.URL n'est pas présent ou est vide"
    link_query = {k: sorted(v) for k, v in parse_qs(urlsplit(links[0]["url"]).query, keep_blank_values=True).items()}
    assert link_query == answer.query


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_slot_has_url(scenario, name, slot_profile):
    """slot_has_url (FrSlotAgregateur comment = URL de prise de RDV): every bookable (ROUTINE) slot has a
    non-blank booking URL. The kit asks it of every slot; walk-in slots have nothing to book and the guide's
    own WALKIN examples (ExampleSlotPSIndiv2, 5) carry none."""
    slots = scenario(name).by_profile(slot_profile)
    bookable = [s for s in slots if ("http://terminology.hl7.org/CodeSystem/v2-0276", "ROUTINE")
                in p.codings(s, "appointmentType.coding")]
    assert bookable
    for slot in bookable:
        assert (slot.get("comment") or "").strip(), f"{slot['id']}: no booking URL"
        assert slot["comment"].startswith(("http://", "https://"))


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_ps_validate_slots_status(scenario, name, slot_profile):
    """ps_validate_slots_status (FrSlotAgregateur status = #free)."""
    slots = scenario(name).by_profile(slot_profile)
    assert slots and all(s.get("status") == "free" for s in slots)


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_ps_validate_appointmentType(scenario, name, slot_profile):
    """ps_validate_appointmentType (sas-valueset-appointmentreason): ROUTINE or WALKIN."""
    slots = scenario(name).by_profile(slot_profile)
    codes = {code for s in slots for _, code in p.codings(s, "appointmentType.coding")}
    assert codes and codes <= {"ROUTINE", "WALKIN"}


def test_validate_cardinality_cpts(scenario):
    """validate_cardinality_cpts (BundleAgregateurCPTS slices): HealthcareService and Organization present,
    as many of each."""
    answer = scenario("single_location_cpts")
    services = answer.by_profile(p.HEALTHCARE_SERVICE_CPTS)
    organizations = answer.by_profile(p.ORGANIZATION_CPTS)
    assert services and organizations
    assert len(services) == len(organizations)


def test_validate_ref_cpts(scenario):
    """validate_ref_cpts (FrSlotAgregateurCPTS serviceType[referencecpts] → HealthcareService → providedBy
    Organization): the references name the bundle's HealthcareService and Organization."""
    answer = scenario("single_location_cpts")
    service = _one(answer.by_profile(p.HEALTHCARE_SERVICE_CPTS), "HealthcareService")
    organization = _one(answer.by_profile(p.ORGANIZATION_CPTS), "Organization")
    assert _reference(service.get("providedBy")) == f"Organization/{organization['id']}"
    references = [e["valueReference"]["reference"] for s in answer.by_profile(p.SLOT_CPTS)
                  for st in s.get("serviceType") or [] if (p.R66, "604") in p.codings(st, "coding")
                  for e in st.get("extension") or [] if e.get("url") == p.SERVICE_TYPE_EXT and "valueReference" in e]
    assert references, "no CPTS slot references its HealthcareService"
    assert set(references) == {f"HealthcareService/{service['id']}"}


def test_validate_cpts_id(scenario):
    """validate_cpts_id (FrOrganizationAgregateurCPTS FINESS-invariant): 1 + 9 digits."""
    organizations = scenario("single_location_cpts").by_profile(p.ORGANIZATION_CPTS)
    values = [i.get("value") for o in organizations for i in o.get("identifier") or []]
    assert values and all(re.fullmatch(r"1[0-9]{9}", v or "") for v in values), values
    assert values == ["1" + CPTS_A[0]]        # the directory's FINESS, prefixed once


# -- multi_lieux ---------------------------------------------------------------------------------------------

def test_validate_practitioner_cardinality_1(scenario):
    """validate_practitioner_cardinality_1: one Practitioner for a PS with two places."""
    _one(scenario("multi_lieux").by_profile(p.PRACTITIONER), "FrPractitionerAgregateur")


def test_validate_practitionerrole_cardinality_1(scenario):
    """validate_practitionerrole_cardinality_1: one PractitionerRole per place, two."""
    assert len(scenario("multi_lieux").by_profile(p.PRACTITIONER_ROLE)) == 2


def test_validate_schedule_cardinality_1(scenario):
    """validate_schedule_cardinality_1: one Schedule per place, two."""
    assert len(scenario("multi_lieux").by_profile(p.SCHEDULE)) == 2


def test_validate_practitionerrole_practitioner_ref(scenario):
    """validate_practitionerrole_practitioner_ref: both PractitionerRoles reference the one Practitioner."""
    answer = scenario("multi_lieux")
    practitioner = _one(answer.by_profile(p.PRACTITIONER), "Practitioner")
    roles = answer.by_profile(p.PRACTITIONER_ROLE)
    assert roles and all(_reference(r.get("practitioner")) == f"Practitioner/{practitioner['id']}" for r in roles)


def test_validate_schedule_practitionerrole_ref(scenario):
    """validate_schedule_practitionerrole_ref: every PractitionerRole a Schedule names is in the Bundle."""
    answer = scenario("multi_lieux")
    role_ids = {r["id"] for r in answer.by_profile(p.PRACTITIONER_ROLE)}
    for schedule in answer.by_profile(p.SCHEDULE):
        refs = [_reference(a) for a in schedule.get("actor") or []
                if (_reference(a) or "").startswith("PractitionerRole/")]
        assert refs and all(ref.split("/")[-1] in role_ids for ref in refs)


def test_validate_schedule_practitioner_ref(scenario):
    """validate_schedule_practitioner_ref: each Schedule names exactly one Practitioner, the Bundle's."""
    answer = scenario("multi_lieux")
    practitioner = _one(answer.by_profile(p.PRACTITIONER), "Practitioner")
    schedules = answer.by_profile(p.SCHEDULE)
    assert schedules
    for schedule in schedules:
        refs = [_reference(a) for a in schedule.get("actor") or [] if (_reference(a) or "").startswith("Practitioner/")]
        assert refs == [f"Practitioner/{practitioner['id']}"]


def test_validate_practitionerrole_location_ref(scenario):
    """validate_practitionerrole_location_ref: each PractitionerRole's location is its contained Location."""
    roles = scenario("multi_lieux").by_profile(p.PRACTITIONER_ROLE)
    assert len(roles) == 2
    for role in roles:
        contained = [c["id"] for c in role.get("contained") or [] if c.get("resourceType") == "Location"]
        assert [_reference(loc) for loc in role.get("location") or []] == ["#" + i for i in contained]


# -- search_multiple_ps ----------------------------------------------------------------------------------------

def test_validate_practitioner_cardinality_2(scenario):
    """validate_practitioner_cardinality_2: two practitioners asked, two Practitioners, the ones asked."""
    answer = scenario("search_multiple_ps")
    practitioners = answer.by_profile(p.PRACTITIONER)
    assert len(practitioners) == 2
    assert sorted(i["value"] for r in practitioners for i in r["identifier"]) == sorted(answer.requested_ids)


def test_validate_practitionerrole_cardinality_2(scenario):
    """validate_practitionerrole_cardinality_2: at least two PractitionerRoles."""
    assert len(scenario("search_multiple_ps").by_profile(p.PRACTITIONER_ROLE)) >= 2


def test_validate_schedule_cardinality_2(scenario):
    """validate_schedule_cardinality_2: at least two Schedules."""
    assert len(scenario("search_multiple_ps").by_profile(p.SCHEDULE)) >= 2


# -- practitioner_optionnel ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_ps_validate_rpps(scenario, name, slot_profile):
    """ps_validate_rpps: the RPPS returned is the one asked for, 8 + 11 digits."""
    practitioner = _one(scenario(name).by_profile(p.PRACTITIONER), "Practitioner")
    value = practitioner["identifier"][0]["value"]
    assert value == scenario(name).requested_ids[0]
    assert re.fullmatch(r"8[0-9]{11}", value)


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_ps_validate_name(scenario, name, slot_profile):
    """ps_validate_name (FrPractitionerAgregateur name.family, nom d'exercice)."""
    practitioner = _one(scenario(name).by_profile(p.PRACTITIONER), "Practitioner")
    assert p.values(practitioner, "name.family") and p.values(practitioner, "name.family")[0]


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_ps_validate_firstname(scenario, name, slot_profile):
    """ps_validate_firstname (FrPractitionerAgregateur name.given, prénom)."""
    practitioner = _one(scenario(name).by_profile(p.PRACTITIONER), "Practitioner")
    given = p.values(practitioner, "name.given")
    assert given and given[0]


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_ps_validate_phone(scenario, name, slot_profile):
    """ps_validate_phone (PractitionerRole telecom): +33 (or overseas +262/+590/+596/+594) and 9 digits."""
    role = _one(scenario(name).by_profile(p.PRACTITIONER_ROLE), "PractitionerRole")
    phone = (p.values(role, "telecom.value") or [""])[0]
    assert re.fullmatch(r"\+(33|262|590|596|594)\d{9}", phone), phone


@pytest.mark.parametrize(("name", "slot_profile"), LAUNCHES)
def test_ps_validate_idnst(scenario, name, slot_profile):
    """ps_validate_idnst (FrPractitionerRoleExerciceAgregateur organization.identifier, IDNST): present,
    1 + FINESS, 3 + SIRET or 4 + RPPS rang."""
    role = _one(scenario(name).by_profile(p.PRACTITIONER_ROLE), "PractitionerRole")
    value = (p.values(role, "organization.identifier.value") or [""])[0]
    assert value, "L'identifiant de structure est manquant"
    assert re.fullmatch(r"1[0-9]{9}|3[0-9]{14}|4[0-9]{14}", value), value


# -- options_slots ---------------------------------------------------------------------------------------------

def test_ps_validate_slot_type(scenario):
    """ps_validate_slot_type (JDV_J165 TypeCreneau): the slot types returned are those the solution declares."""
    slots = scenario("options_ps").by_profile(p.SLOT_PS)
    returned = {code.upper() for s in slots for _, code in p.codings(s, "meta.security")}
    assert returned == DECLARED_SLOT_TYPES_PS


def test_cpts_validate_slot_type(scenario):
    """cpts_validate_slot_type (sas-cpts-valueset-typecreneau): with the CPTS includes, CPTS slots too."""
    slots = scenario("options_cpts").by_profile(p.SLOT_CPTS)
    returned = {code.upper() for s in slots for _, code in p.codings(s, "meta.security") if code != "604"}
    assert returned == DECLARED_SLOT_TYPES_CPTS


@pytest.mark.parametrize(("name", "slot_profile"), [("options_ps", p.SLOT_PS), ("options_cpts", p.SLOT_CPTS)])
def test_ps_validate_motif_type(scenario, name, slot_profile):
    """ps_validate_motif_type (TypeConsultation AMB / HH / VR): the consultation types returned are those
    declared (the CPTS category 604 aside)."""
    slots = scenario(name).by_profile(slot_profile)
    returned = {code.upper() for s in slots for _, code in p.codings(s, "serviceType.coding") if code != "604"}
    assert returned == DECLARED_CONSULTATION_TYPES


# -- single_practitioner_multiple_cpts (two_slot_two_cpts, single_slot_two_cpts) --------------------------------

def _cpts_slots(answer) -> list[dict]:
    """Slots offered through a CPTS: a serviceType TRE_R66 604 (the kit's precondition is a practitioner
    whose slots are all CPTS slots; the simulated member has others too, which these checks leave out)."""
    return [s for s in answer.by_profile(p.SLOT_CPTS) if (p.R66, "604") in p.codings(s, "serviceType.coding")]


def _service_refs(slot: dict) -> list[str]:
    return [e.get("valueReference", {}).get("reference") for st in slot.get("serviceType") or []
            for e in st.get("extension") or [] if e.get("url") == p.SERVICE_TYPE_EXT]


def test_cpts_validate_healthcare_service_cardinality(scenario):
    """cpts_validate_healthcare_service_cardinality: a member of two CPTS → at least two HealthcareServices."""
    assert len(scenario("two_cpts").by_profile(p.HEALTHCARE_SERVICE_CPTS)) >= 2


def test_cpts_validate_organization_cardinality(scenario):
    """cpts_validate_organization_cardinality: at least two CPTS Organizations."""
    assert len(scenario("two_cpts").by_profile(p.ORGANIZATION_CPTS)) >= 2


def test_cpts_validate_meta(scenario):
    """cpts_validate_meta (sas-cpts-valueset-typecreneau CPTS): every CPTS slot carries meta.security CPTS, and
    every slot typed CPTS is offered through a CPTS. (The kit's literal check wants CPTS as the only code; the
    guide's own ExampleSlotCPTS1/2 carry PUBLIC and CPTS, so the code is required, not exclusive.)"""
    answer = scenario("two_cpts")
    cpts_slots = _cpts_slots(answer)
    assert cpts_slots
    for slot in cpts_slots:
        assert (p.R314, "CPTS") in p.codings(slot, "meta.security"), slot["id"]
    for slot in answer.by_profile(p.SLOT_CPTS):
        if (p.R314, "CPTS") in p.codings(slot, "meta.security"):
            assert slot in cpts_slots, f"{slot['id']} is typed CPTS but names no CPTS"


def test_cpts_validate_service_type(scenario):
    """cpts_validate_service_type: serviceType.coding TRE_R66 #604 present on the CPTS slots."""
    service_types = [st for s in scenario("two_cpts").by_profile(p.SLOT_CPTS) for st in s.get("serviceType") or []]
    assert service_types
    assert any((p.R66, "604") in p.codings(st, "coding") for st in service_types)


def test_cpts_validate_service_type_healthcare_service_ref(scenario):
    """cpts_validate_service_type_healthcare_service_ref (two_slot_two_cpts): serviceType extension
    extension-Slot.serviceType → a HealthcareService of the Bundle, on every CPTS slot."""
    answer = scenario("two_cpts")
    services = {f"HealthcareService/{s['id']}" for s in answer.by_profile(p.HEALTHCARE_SERVICE_CPTS)}
    cpts_slots = _cpts_slots(answer)
    assert cpts_slots
    for slot in cpts_slots:
        refs = _service_refs(slot)
        assert refs and set(refs) <= services, (slot["id"], refs, services)


def test_cpts_validate_service_type_multiple_healthcare_service_ref(scenario):
    """cpts_validate_service_type_multiple_healthcare_service_ref (single_slot_two_cpts): one slot offered
    through both CPTS names two distinct HealthcareServices of the Bundle."""
    answer = scenario("two_cpts")
    services = {f"HealthcareService/{s['id']}" for s in answer.by_profile(p.HEALTHCARE_SERVICE_CPTS)}
    assert any(len(set(_service_refs(s))) >= 2 and set(_service_refs(s)) <= services for s in _cpts_slots(answer))


def test_cpts_validate_healthcare_service_organization_ref(scenario):
    """cpts_validate_healthcare_service_organization_ref (FrHealthcareServiceAgregateurCPTS providedBy 1..1):
    every HealthcareService → an Organization of the Bundle, two distinct ones."""
    answer = scenario("two_cpts")
    organizations = {f"Organization/{o['id']}" for o in answer.by_profile(p.ORGANIZATION_CPTS)}
    refs = [_reference(s.get("providedBy")) for s in answer.by_profile(p.HEALTHCARE_SERVICE_CPTS)]
    assert refs and all(ref in organizations for ref in refs)
    assert len(set(refs)) >= 2


# -- orga_optionnel_group ---------------------------------------------------------------------------------------

def test_orga_optionnel_cpts_name(scenario):
    """orga_optionnel_group "Vérification nom CPTS" (FrOrganizationAgregateurCPTS name 0..1 MS)."""
    organizations = scenario("single_location_cpts").by_profile(p.ORGANIZATION_CPTS)
    assert organizations and all(o.get("name") for o in organizations)


def test_orga_optionnel_cpts_phone(scenario):
    """orga_optionnel_group "Vérification téléphone CPTS" (FrOrganizationAgregateurCPTS telecom MS)."""
    organizations = scenario("single_location_cpts").by_profile(p.ORGANIZATION_CPTS)
    assert organizations and all(p.values(o, "telecom.value") for o in organizations)


# -- performance_group, capability_statement -------------------------------------------------------------------

def test_performance_group(bed):
    """performance_group "Test de performance": an INT_R01 search over the kit's window answers in < 1 s."""
    answer = bed.slots([SINGLE], cpts=False, days=3, cached=False)
    assert answer.status == 200 and answer.body.get("resourceType") == "Bundle"
    assert answer.elapsed_s < 1.0, f"{answer.elapsed_s:.2f} s"


def test_capability_statement_read(bed):
    """capability_statement_read (FHIR http.html#capabilities): GET [base]/metadata → a CapabilityStatement."""
    response = bed.client.get(f"{bed.base}/metadata")
    assert response.status_code == 200
    assert response.json().get("resourceType") == "CapabilityStatement"


# -- the same searches over mutual TLS (the kit's mTLS input) ------------------------------------------------------

@pytest.mark.parametrize("use_case", ["ps", "cpts", "sos"])
def test_slot_search_setup_mtls(tls_bed, use_case):
    """slot_search_setup with mTLS = true (guide securite.md: every exchange over mutual TLS): over HTTPS with
    the platform's client certificate the answers are the same conformant Bundles; plain HTTP is refused."""
    if use_case == "sos":
        answer = tls_bed.sos(["3" + SOS_RENNES])
    else:
        answer = tls_bed.slots([IN_CPTS if use_case == "cpts" else SINGLE], cpts=use_case == "cpts")
    assert answer.url.startswith("https://") and answer.status == 200, answer.body
    assert answer.of_type("Slot")
    issues = p.check_bundle(answer.body, use_case)
    assert issues == [], "\n".join(issues[:20])
    plain = httpx.get(f"http://127.0.0.1:{tls_bed.thread.port}/{VENDOR}/fhir/"
                      f"{'Schedule' if use_case == 'sos' else 'Slot'}",
                      params=parse_qs(urlsplit(answer.url).query))
    assert plain.status_code == 403 and plain.json().get("resourceType") == "OperationOutcome"
