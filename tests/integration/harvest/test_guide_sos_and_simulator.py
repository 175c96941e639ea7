"""Issue 13, points 1 and 8 (slot searches), against the simulator served over real HTTP:

* SOS Médecins searches name the association as ``urn:oid:1.2.250.1.71.4.2.2|3<SIRET>`` (SIRET-invariant
  ``^3[0-9]{14}$``), 10 SIRETs per request at most (functional spec), and what comes back is matched to the
  directory's SOS places, which hold the bare 14-digit SIRET;
* the simulator answers like a certified vendor: the guide's profiles, identifier types and prefixed
  ids, ``+33`` phones, one ``self`` link, and strictness — ids outside the guide's form match nothing,
  a missing required parameter is a 400 OperationOutcome.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, parse_qsl, urlsplit

import httpx
import pytest

from connectors.vendors.config import VendorConfig
from connectors.vendors.queries import practitioner_slot_search, sos_schedule_search
from indexer.harvest import Harvester
from mappings.registry import alias_name
from tests.integration.harvest.conftest import luhn_national_id, practitioner_offer, sos_offer, write_offers

P = "http://sas.fr/fhir/StructureDefinition/"
IG = "https://interop.esante.gouv.fr/ig/fhir/sas/StructureDefinition/"
FR_V2_0203 = "http://interopsante.org/fhir/CodeSystem/fr-v2-0203"
FR_CORE_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
LOCATION_TYPES = "http://interopsante.org/fhir/CodeSystem/fr-location-identifier-type"
RPPS = "urn:oid:1.2.250.1.71.4.2.1"
STRUCT = "urn:oid:1.2.250.1.71.4.2.2"
PHONE = re.compile(r"^\+33\d{9}$")
KIT_INSTANT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}[+-]\d{2}:\d{2}$")
SOS_VENDOR = "sosguide"
CERT_VENDOR = "certimed"


def sos_places(vendor: str, count: int) -> list[dict]:
    """``count`` SOS associations of ``vendor`` in Agen, one fixed place each; bare SIRETs (directory)."""
    return [sos_offer(offer_id=f"{vendor}-place-{i}", siret=f"4417374840{i:04d}", association=f"SOS Médecins {i}",
                      name=f"Centre de consultation {i}", line=f"{i + 1} avenue Foch", postcode="47000", city="Agen",
                      lat=44.20 + i / 1000, lon=0.62, departement="47", vendor=vendor) for i in range(count)]


def requests_of(sim, vendor: str, resource: str) -> list[list[tuple[str, str]]]:
    log = httpx.get(f"http://127.0.0.1:{sim.port}/_admin/vendors/{vendor}/requests").json()
    return [parse_qsl(entry["query"]) for entry in log if entry["path"].endswith(f"/{resource}")]


def clear_log(sim, vendor: str) -> None:
    httpx.delete(f"http://127.0.0.1:{sim.port}/_admin/vendors/{vendor}/requests")


# -- point 1 -----------------------------------------------------------------------------------------

def test_sos_searches_send_prefixed_sirets_ten_at_a_time_and_match_directory_places(es, indices, settings,
                                                                                      run_simulator):
    offers = sos_places(SOS_VENDOR, 12)
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    vendor = VendorConfig(name=SOS_VENDOR, base_url=f"http://127.0.0.1:{sim.port}/{SOS_VENDOR}/fhir",
                          use_cases=["sos"], max_attempts=1, backoff_initial_s=0.01)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor])
    run = harvester.run(SOS_VENDOR, mode="full")
    assert run["status"] == "success", run["errors"]

    # 12 SIRETs → 10 + 2 (the certified simulator refuses more than 10), each as 3 + SIRET; the 7 days
    # in three windows of at most 72 h each.
    queries = requests_of(sim, SOS_VENDOR, "Schedule")
    tokens = [dict(q)["actor:Location.organization.identifier"].split(",") for q in queries]
    assert sorted(len(t) for t in tokens) == [2, 2, 2, 10, 10, 10]
    sent = {token for batch in tokens for token in batch}
    assert sent == {f"{STRUCT}|3{o['sos']['association_siret']}" for o in offers}
    assert all(re.fullmatch(r"urn:oid:1\.2\.250\.1\.71\.4\.2\.2\|3[0-9]{14}", t) for t in sent)

    # Slots came back for every association, attached to the directory's own places (bare SIRET there).
    alias = alias_name(settings.index_prefix, "slots")
    es.indices.refresh(index=alias)
    hits = es.search(index=alias, size=5000, query={"term": {"vendor": SOS_VENDOR}})["hits"]["hits"]
    by_offer = {o["id"]: o for o in offers}
    assert run["upserted"] == len(hits) > 0 and run["rejected"] == 0
    assert {h["_source"]["offer_id"] for h in hits} == set(by_offer)          # no vendor-only place made up
    for hit in hits:
        slot = hit["_source"]
        siret = by_offer[slot["offer_id"]]["sos"]["association_siret"]
        assert slot["roster_key"] == siret and slot["sos"]["association_siret"] == siret and len(siret) == 14

    # The limit is a per-vendor setting; a second run with the same answers changes nothing.
    clear_log(sim, SOS_VENDOR)
    five = Harvester(es=es, settings=settings, vendors=[vendor.model_copy(update={"sos_batch_size": 5})])
    again = five.run(SOS_VENDOR, mode="full")
    assert again["status"] == "success" and again["deleted"] == 0 and again["upserted"] == 0
    assert sorted(len(dict(q)["actor:Location.organization.identifier"].split(","))
                  for q in requests_of(sim, SOS_VENDOR, "Schedule")) == [2] * 3 + [5] * 6   # x 3 windows


# -- point 8: the simulator is a certified vendor --------------------------------------------------------

@pytest.fixture(scope="module")
def certified():
    """The simulator over HTTP with a CPTS practitioner working at two places (one with a FINESS
    structure), a practitioner outside any CPTS and two SOS associations; directory forms everywhere."""
    from bench.common import free_port
    from simulator.app import Simulator
    from simulator.roster import rosters_from_offers
    from simulator.server import SimulatorThread

    cpts_doctor = [practitioner_offer(
        offer_id=f"{CERT_VENDOR}-a{k}", national_id=luhn_national_id(910001), vendor=CERT_VENDOR,
        line=f"{k + 3} rue Montesquieu", postcode="47000", city="Agen", lat=44.2, lon=0.61, departement="47",
        cpts=("470000011", "CPTS du Grand Agen")) for k in range(2)]
    cpts_doctor[0]["structure"] = {"finess": "470001234", "name": "Centre de santé Montesquieu"}
    cpts_doctor[0]["phones"] = ["05 53 47 00 00"]
    plain = practitioner_offer(offer_id=f"{CERT_VENDOR}-b", national_id=luhn_national_id(910002), vendor=CERT_VENDOR,
                               line="9 boulevard Carnot", postcode="47000", city="Agen", lat=44.2, lon=0.62,
                               departement="47")
    sos = sos_places(CERT_VENDOR, 2)
    offers = [*cpts_doctor, plain, *sos]
    port = free_port()
    thread = SimulatorThread(Simulator(rosters_from_offers(offers), public_url=f"http://127.0.0.1:{port}",
                                       taken_share=0.0), port=port).start()
    yield {"base": f"http://127.0.0.1:{port}/{CERT_VENDOR}/fhir", "cpts_doctor": cpts_doctor[0]["national_id"],
           "plain": plain["national_id"], "sirets": [o["sos"]["association_siret"] for o in sos]}
    thread.stop()


def window() -> tuple[datetime, datetime]:
    now = datetime.now(timezone.utc)
    return now, now + timedelta(days=7)


def get(base: str, resource: str, params) -> tuple[httpx.Response, dict]:
    response = httpx.get(f"{base}/{resource}", params=params, timeout=10)
    return response, response.json()


def profiles(resource: dict) -> list[str]:
    return (resource.get("meta") or {}).get("profile") or []


def coding(identifier: dict) -> tuple[str, str]:
    (code,) = identifier["type"]["coding"]
    return code["system"], code["code"]


def check_bundle_head(response: httpx.Response, bundle: dict, profile: str) -> list[dict]:
    """Bundle-level rules of the three bundle profiles; the entries' resources."""
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/fhir+json")
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "searchset" and profiles(bundle) == [profile]
    (link,) = bundle["link"]                                                       # link 1..1
    assert link["relation"] == "self"
    # The test kit: the self link's query is the request's query.
    assert parse_qs(urlsplit(link["url"]).query) == parse_qs(urlsplit(str(response.request.url)).query)
    resources = [entry["resource"] for entry in bundle["entry"]]
    full_urls = [entry["fullUrl"] for entry in bundle["entry"]]
    assert len(full_urls) == len(set(full_urls))                              # bdl-7: each resource once
    assert all(entry["fullUrl"].endswith(f"/{entry['resource']['resourceType']}/{entry['resource']['id']}")
               for entry in bundle["entry"])
    slots = [r for r in resources if r["resourceType"] == "Slot"]
    assert slots and bundle["total"] == len(slots)
    for slot in slots:
        assert slot["status"] == "free" and slot["schedule"]["reference"].startswith("Schedule/")
        # The kit's ps_validate_dates: milliseconds and a numeric offset, as the guide's examples.
        assert KIT_INSTANT.match(slot["start"]) and KIT_INSTANT.match(slot["end"]), slot["start"]
    return resources


def check_practitioner_graph(resources: list[dict], national_ids: set[str]) -> None:
    """FrPractitionerAgregateur, FrPractitionerRoleExerciceAgregateur (contained Location), FrScheduleAgregateur."""
    practitioners = {r["id"]: r for r in resources if r["resourceType"] == "Practitioner"}
    assert {tuple(profiles(p)) for p in practitioners.values()} == {(P + "FrPractitionerAgregateur",)}
    found = set()
    for practitioner in practitioners.values():
        (identifier,) = practitioner["identifier"]
        assert coding(identifier) == (FR_V2_0203, "IDNPS") and identifier["system"] == RPPS
        assert re.fullmatch(r"8[0-9]{11}", identifier["value"])
        assert practitioner["name"][0]["family"] and practitioner["name"][0]["given"]
        found.add(identifier["value"])
    assert found == national_ids                                   # one Practitioner per id asked for
    roles = {r["id"]: r for r in resources if r["resourceType"] == "PractitionerRole"}
    for role in roles.values():
        assert profiles(role) == [P + "FrPractitionerRoleExerciceAgregateur"]
        assert role["practitioner"]["reference"] in {f"Practitioner/{i}" for i in practitioners}
        (location,) = role["contained"]
        assert role["location"] == [{"reference": f"#{location['id']}"}]                   # location 1..1
        assert profiles(location) == [P + "FrLocationAgregateur"]
        address = location["address"]
        assert len(address["line"]) == 1 and address["city"] and re.fullmatch(r"[0-9]{5}", address["postalCode"])
        for telecom in role.get("telecom", []) + location.get("telecom", []):
            assert PHONE.match(telecom["value"]), telecom
        if "organization" in role:
            structure = role["organization"]["identifier"]
            assert coding(structure) == (FR_V2_0203, "IDNST") and structure["system"] == STRUCT
            assert re.fullmatch(r"1[0-9]{9}|3[0-9]{14}|4[0-9]{14}", structure["value"])
    schedules = [r for r in resources if r["resourceType"] == "Schedule"]
    for schedule in schedules:
        assert profiles(schedule) == [P + "FrScheduleAgregateur"]
        references = [a["reference"] for a in schedule["actor"]]
        assert sum(ref.startswith("Practitioner/") for ref in references) == 1
        assert all(ref.split("/", 1)[1] in (practitioners if ref.startswith("Practitioner/") else roles)
                   for ref in references)
    assert len(schedules) == len(roles)                             # one Schedule per place
    assert all(r["resourceType"] != "Location" for r in resources)  # Locations are contained, never included


def test_int_r01_answer_follows_the_ps_profiles(certified):
    start, end = window()
    ids = [certified["cpts_doctor"], certified["plain"]]
    response, bundle = get(certified["base"], "Slot", practitioner_slot_search(national_ids=ids, start=start, end=end))
    resources = check_bundle_head(response, bundle, P + "BundleAgregateur")
    check_practitioner_graph(resources, set(ids))
    slots = [r for r in resources if r["resourceType"] == "Slot"]
    assert {tuple(profiles(s)) for s in slots} == {(P + "FrSlotAgregateur",)}
    assert not any(r["resourceType"] in ("HealthcareService", "Organization") for r in resources)
    # The CPTS doctor works at two places: two PractitionerRoles / Schedules, one Practitioner.
    roles = [r for r in resources if r["resourceType"] == "PractitionerRole"]
    assert len(roles) == 3
    structures = {r["organization"]["identifier"]["value"] for r in roles if "organization" in r}
    assert structures == {"1470001234"}                         # the directory's FINESS, prefixed once
    for slot in slots:
        assert {c["code"] for c in slot["meta"]["security"]} <= {"PUBLIC", "PRO", "SNP"}
        assert all(s["coding"][0]["system"].endswith("TRE-R38-SpecialiteOrdinale") for s in slot["specialty"])
    # ``comment``: the practitioner's agenda at the place (FAQ), not the slot — one URL per Schedule, a live page.
    agendas = {s["schedule"]["reference"]: {x["comment"] for x in slots
                                            if x["schedule"] == s["schedule"] and "comment" in x}
               for s in slots}
    assert all(len(urls) <= 1 for urls in agendas.values())
    assert not any(s["id"] in s.get("comment", "") for s in slots)
    url = next(s["comment"] for s in slots if "comment" in s)
    page = httpx.get(url, params={"origin": "sas"}, timeout=10)
    assert page.status_code == 200 and "disponible" in page.text


def test_int_r04_answer_follows_the_cpts_profiles(certified):
    start, end = window()
    ids = [certified["cpts_doctor"], certified["plain"]]
    params = practitioner_slot_search(national_ids=ids, start=start, end=end, with_cpts=True)
    response, bundle = get(certified["base"], "Slot", params)
    resources = check_bundle_head(response, bundle, IG + "sas-cpts-bundle-aggregator")
    check_practitioner_graph(resources, set(ids))
    slots = [r for r in resources if r["resourceType"] == "Slot"]
    # Every Slot of an INT_R04 answer is a FrSlotAgregateurCPTS (the test kit's CPTS launch counts them).
    assert {tuple(profiles(s)) for s in slots} == {(IG + "sas-cpts-slot-aggregator",)}
    services = {r["id"]: r for r in resources if r["resourceType"] == "HealthcareService"}
    organizations = {r["id"]: r for r in resources if r["resourceType"] == "Organization"}
    assert services and organizations
    for service in services.values():
        assert profiles(service) == [IG + "sas-cpts-healthcareservice-aggregator"]
        assert service["providedBy"]["reference"].split("/", 1)[1] in organizations
    for organization in organizations.values():
        assert profiles(organization) == [IG + "sas-cpts-organization-aggregator"]
        (identifier,) = organization["identifier"]                                     # identifier 1..1
        assert coding(identifier) == (FR_CORE_V2_0203, "IDNST") and identifier["system"] == STRUCT
        assert identifier["value"] == "1470000011"                  # FINESS-invariant ^1[0-9]{9}$
        assert organization["name"] == "CPTS du Grand Agen"
    offered = [s for s in slots if any(c["code"] == "604" for t in s["serviceType"] for c in t["coding"])]
    assert offered
    for slot in offered:
        assert "CPTS" in {c["code"] for c in slot["meta"]["security"]}
        (reference,) = [t for t in slot["serviceType"] if t.get("extension")]
        (extension,) = reference["extension"]
        assert extension["url"] == "http://hl7.org/fhir/5.0/StructureDefinition/extension-Slot.serviceType"
        assert extension["valueReference"]["reference"].split("/", 1)[1] in services


def test_sos_answer_follows_the_sos_profiles(certified):
    start, end = window()
    params = sos_schedule_search(association_ids=certified["sirets"], start=start, end=end)
    response, bundle = get(certified["base"], "Schedule", params)
    resources = check_bundle_head(response, bundle, IG + "sas-sos-bundle-aggregator")
    by_type: dict[str, list[dict]] = {}
    for resource in resources:
        by_type.setdefault(resource["resourceType"], []).append(resource)
    assert set(by_type) == {"Slot", "Schedule", "Location", "Organization"}
    for slot in by_type["Slot"]:
        assert profiles(slot) == [IG + "sas-sos-slot-aggregator"]
        assert {c["code"] for c in slot["meta"]["security"]} <= {"PUBLIC", "SNP"}
        assert slot["appointmentType"]["coding"][0]["code"] == "ROUTINE" and slot["comment"].startswith("http")
    locations = {r["id"]: r for r in by_type["Location"]}
    for schedule in by_type["Schedule"]:
        assert profiles(schedule) == [IG + "sas-sos-schedule-aggregator"]
        (actor,) = schedule["actor"]
        assert actor["reference"].split("/", 1)[1] in locations
    organizations = {r["id"]: r for r in by_type["Organization"]}
    for location in locations.values():
        assert profiles(location) == [IG + "sas-sos-location-aggregator"]
        (identifier,) = location["identifier"]
        assert coding(identifier) == (LOCATION_TYPES, "INTRN") and identifier["system"] and identifier["value"]
        assert location["name"] and len(location["address"]["line"]) == 1
        assert re.fullmatch(r"[0-9]{5}", location["address"]["postalCode"])
        assert location["managingOrganization"]["reference"].split("/", 1)[1] in organizations
        assert location["hoursOfOperation"][0]["daysOfWeek"][0] == "mon"
    values = set()
    for organization in organizations.values():
        assert profiles(organization) == [IG + "sas-sos-organization-aggregator"]
        (identifier,) = organization["identifier"]
        assert coding(identifier) == (LOCATION_TYPES, "IDNST") and identifier["system"] == STRUCT
        assert re.fullmatch(r"3[0-9]{14}", identifier["value"])                       # SIRET-invariant
        values.add(identifier["value"])
    assert values == {"3" + siret for siret in certified["sirets"]}


def test_ids_outside_the_guides_form_match_nothing(certified):
    start, end = window()
    # A bare SIRET (the bug of point 1) is a success with no match, as a conformant vendor answers.
    bare = sos_schedule_search(association_ids=["3" + certified["sirets"][0]], start=start, end=end)
    bare = [(k, v.replace(f"|3{certified['sirets'][0]}", f"|{certified['sirets'][0]}")) for k, v in bare]
    response, bundle = get(certified["base"], "Schedule", bare)
    assert response.status_code == 200 and bundle["type"] == "searchset" and bundle["total"] == 0
    assert not bundle.get("entry")
    # A practitioner id without its system matches nothing either.
    params = [(k, v.split("|", 1)[1] if k == "schedule.actor:Practitioner.identifier" else v)
              for k, v in practitioner_slot_search(national_ids=[certified["plain"]], start=start, end=end)]
    response, bundle = get(certified["base"], "Slot", params)
    assert response.status_code == 200 and bundle["total"] == 0
    # Eleven SIRETs: more than the functional spec's 10.
    eleven = sos_schedule_search(association_ids=[f"4417374840{i:04d}" for i in range(11)], start=start, end=end)
    response, body = get(certified["base"], "Schedule", eleven)
    assert response.status_code == 400 and body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "too-costly"


def _without(params, name: str, value: str | None = None):
    return [(k, v) for k, v in params if not (k == name and (value is None or v.startswith(value)))]


@pytest.mark.parametrize("name, value", [
    ("_revinclude", None), ("_include", None), ("_include:iterate", None), ("_has:Slot:schedule:status", None),
    ("_has:Slot:schedule:start", "ge"), ("_has:Slot:schedule:start", "le"),
    ("actor:Location.organization.identifier", None),
])
def test_sos_search_without_a_required_parameter_is_a_400(certified, name, value):
    start, end = window()
    params = _without(sos_schedule_search(association_ids=certified["sirets"], start=start, end=end), name, value)
    response, body = get(certified["base"], "Schedule", params)
    assert response.status_code == 400 and body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] == "error" and name.split(":")[0].lstrip("_") in body["issue"][0]["diagnostics"]


@pytest.mark.parametrize("name, value", [
    ("status", None), ("_include", "Slot:schedule"), ("_include:iterate", "Schedule:actor"),
    ("_include:iterate", "HealthcareService:organization"), ("start", "ge"), ("start", "le"),
    ("schedule.actor:Practitioner.identifier", None),
])
def test_slot_search_without_a_required_parameter_is_a_400(certified, name, value):
    start, end = window()
    params = practitioner_slot_search(national_ids=[certified["plain"]], start=start, end=end, with_cpts=True)
    response, body = get(certified["base"], "Slot", _without(params, name, value))
    assert response.status_code == 400 and body["resourceType"] == "OperationOutcome"
    # A window bound given twice is refused too (1..1).
    twice = params + [("start", params[0][1])]
    assert get(certified["base"], "Slot", twice)[0].status_code == 400
