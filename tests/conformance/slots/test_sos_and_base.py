"""Guide rules the test kit does not cover: the SOS Médecins Schedule search
(``specifications_techniques-sos-recherche_creneaux.md``, profiles ``input/fsh/profiles/SOS/**``) and the
basic answers every search owes ("Réponse de base — Succès / Echec" of the three search pages)."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

from tests.conformance import profiles as p
from tests.conformance.slots.conftest import SINGLE, SOS_LORIENT, SOS_RENNES

SOS_IDS = ["3" + SOS_RENNES, "3" + SOS_LORIENT]
KIT_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")


def test_sos_validate_bundle(bed):
    """BundleAgregateurSOS and the SOS profiles (FrSlotAgregateurSOS, FrScheduleAgregateurSOS,
    FrLocationAgregateurSOS, FrOrganizationAgregateurSOS with SIRET-invariant ^3[0-9]{14}$)."""
    answer = bed.sos(SOS_IDS)
    assert answer.status == 200 and answer.content_type.split(";")[0] == "application/fhir+json"
    assert answer.of_type("Slot"), "no SOS slot in the next days"
    issues = p.check_bundle(answer.body, "sos")
    assert issues == [], "\n".join(issues[:40])


def test_sos_search_by_prefixed_siret(bed):
    """actor:Location.organization.identifier = urn:oid:1.2.250.1.71.4.2.2|3<SIRET> (SIRET avec préfixe
    correspondant): both associations asked are answered, each Organization with the id asked for."""
    answer = bed.sos(SOS_IDS)
    organizations = answer.of_type("Organization")
    assert sorted(i.get("value") for o in organizations for i in o.get("identifier") or []) == sorted(SOS_IDS)
    assert answer.body.get("total") == len(answer.of_type("Slot"))


def test_sos_search_by_bare_siret_matches_nothing(bed):
    """Token search on actor:Location.organization.identifier (FHIR search, token = system|value, exact value):
    the bare 14-digit SIRET is not the association's identifier (3 + SIRET), so it matches nothing — an empty
    searchset, not an error."""
    answer = bed.sos([SOS_RENNES, SOS_LORIENT])
    assert answer.status == 200 and answer.body.get("type") == "searchset"
    assert answer.body.get("total") == 0 and not answer.of_type("Slot")


def test_sos_validate_ref(bed):
    """SOS graph (specifications_techniques-sos-recherche_creneaux.md): Slot.schedule → Schedule →
    actor Location → managingOrganization Organization, all in the Bundle."""
    answer = bed.sos(SOS_IDS)
    slots = answer.of_type("Slot")
    assert slots
    for slot in slots:
        schedule = answer.resolve((slot.get("schedule") or {}).get("reference"))
        assert schedule and schedule["resourceType"] == "Schedule", slot["id"]
        locations = [answer.resolve(a.get("reference")) for a in schedule.get("actor") or []]
        assert locations and all(loc and loc["resourceType"] == "Location" for loc in locations), schedule["id"]
        for location in locations:
            organization = answer.resolve((location.get("managingOrganization") or {}).get("reference"))
            assert organization and organization["resourceType"] == "Organization", location["id"]


def test_sos_validate_dates(bed):
    """validate_dates applied to SOS slots (the guide's SOS examples write …T09:00:00.000+02:00): in the
    window, start < end, the kit's instant form."""
    answer = bed.sos(SOS_IDS)
    slots = answer.by_profile(p.SLOT_SOS)
    assert slots
    for slot in slots:
        assert KIT_INSTANT.match(slot["start"]) and KIT_INSTANT.match(slot["end"]), (slot["start"], slot["end"])
        start, end = datetime.fromisoformat(slot["start"]), datetime.fromisoformat(slot["end"])
        assert answer.sent_at <= start < end and start <= answer.window_end


def test_sos_slot_has_url(bed):
    """FrSlotAgregateurSOS: comment (booking URL) filled when appointmentType is ROUTINE."""
    slots = bed.sos(SOS_IDS).by_profile(p.SLOT_SOS)
    routine = [s for s in slots if (p.V2_0276, "ROUTINE") in p.codings(s, "appointmentType.coding")]
    assert routine and all((s.get("comment") or "").startswith(("http://", "https://")) for s in routine)


def test_sos_location_hours_of_operation(bed):
    """FrLocationAgregateurSOS (guide SOS page, Location): opening hours with daysOfWeek, openingTime, closingTime."""
    locations = bed.sos(SOS_IDS).of_type("Location")
    assert locations
    for location in locations:
        hours = location.get("hoursOfOperation") or []
        assert hours and all(h.get("daysOfWeek") and h.get("openingTime") and h.get("closingTime") for h in hours)


def test_search_failure_is_operation_outcome(bed):
    """Réponse de base — Echec: a search that cannot run (status=free missing) → HTTP 4XX with an
    OperationOutcome."""
    response = bed.client.get(f"{bed.base}/Slot", params=[
        ("_include", "Slot:schedule"), ("_include:iterate", "Schedule:actor"),
        ("schedule.actor:Practitioner.identifier", f"{p.RPPS_SYSTEM}|{SINGLE}"),
        ("start", "ge2030-01-01T00:00:00.000+00:00"), ("start", "le2030-01-02T00:00:00.000+00:00")])
    assert 400 <= response.status_code < 500
    assert response.json().get("resourceType") == "OperationOutcome"


def test_search_without_match_is_empty_searchset(bed):
    """Réponse de base — Succès: no match is a success, a searchset with total 0."""
    answer = bed.slots(["810000000000"], cpts=False, cached=False)
    assert answer.status == 200
    assert answer.body.get("type") == "searchset" and answer.body.get("total") == 0
    assert not answer.of_type("Slot")



def test_sos_bundle_url_equal_url(bed):
    """bundle_url_equal_url applied to the SOS search (BundleAgregateurSOS link 1..1, the example's self link
    carries the query): link.url's query is the request's."""
    answer = bed.sos(SOS_IDS)
    links = answer.body.get("link") or []
    assert len(links) == 1 and links[0].get("relation") == "self"
    assert {k: sorted(v) for k, v in parse_qs(urlsplit(links[0]["url"]).query, keep_blank_values=True).items()} \
        == answer.query


def test_search_mode(scenario, bed):
    """search.mode (FHIR search, the guide's examples and simplified answers): INT_R01 / INT_R04 Slots are
    ``match`` and what they include ``include``; in the SOS Schedule search the Schedules are ``match`` and the
    revincluded Slots, Locations, Organizations ``include``."""
    for answer, matched in [(scenario("single_location"), "Slot"), (scenario("two_cpts"), "Slot"),
                            (bed.sos(SOS_IDS), "Schedule")]:
        for entry in answer.body.get("entry") or []:
            kind = entry["resource"]["resourceType"]
            expected = "match" if kind == matched else "include"
            assert (entry.get("search") or {}).get("mode") == expected, (kind, entry.get("search"))


def test_accept_header_as_the_guide_spells_it(bed):
    """Caractéristiques de l'API: ``Accept: application/json+fhir`` (the guide's spelling) is answered with
    FHIR JSON, as ``application/fhir+json`` is."""
    response = bed.client.get(f"{bed.base}/Slot", headers={"Accept": "application/json+fhir"}, params=[
        ("_include", "Slot:schedule"), ("_include:iterate", "Schedule:actor"),
        ("schedule.actor:Practitioner.identifier", f"{p.RPPS_SYSTEM}|{SINGLE}"),
        ("start", "ge2030-01-01T00:00:00.000+00:00"), ("start", "le2030-01-02T00:00:00.000+00:00"), ("status", "free")])
    assert response.status_code == 200
    assert response.headers["content-type"].split(";")[0] in ("application/fhir+json", "application/json+fhir")
    assert response.json().get("resourceType") == "Bundle"
