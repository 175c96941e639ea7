"""A vendor serving the specification's own example bundles (PS individual, CPTS through two
communities, SOS Médecins) is harvested over real HTTP with every field mapped, places matched to the
directory or created and geocoded."""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import parse_qsl

import httpx
import pytest

from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from mappings.registry import alias_name
from mappings.slots import SlotDoc
from tests.integration.harvest.conftest import fixture_bundle, practitioner_offer, sos_offer, write_offers

VENDOR = "spec-examples"


@pytest.fixture(scope="module")
def example_offers():
    return [
        practitioner_offer(offer_id="ex-thomas-1", national_id="810100050075", vendor=None, line="1 rue Madame Delmas",
                           postcode="47000", city="Agen", lat=44.2049, lon=0.6212, departement="47",
                           family="THOMAS", given="Sébastien"),
        practitioner_offer(offer_id="ex-thomas-30", national_id="810100050075", vendor=None,
                           line="30 rue Madame Delmas",
                           postcode="47000", city="Agen", lat=44.2051, lon=0.6215, departement="47",
                           family="THOMAS", given="Sébastien"),
        practitioner_offer(offer_id="ex-foret", national_id="810002909371", vendor=None, line="25 chemin de Mounestié",
                           postcode="31840", city="Aussonne", lat=43.6817, lon=1.3236, departement="31",
                           family="FORET", given="Pierre",
                           cpts=("950047225", "CPTS AXE MAJEUR")),   # the directory's FINESS
        sos_offer(offer_id="ex-sos-rennes-nord", siret="34173748400020",   # the directory's bare SIRET
                  association="SOS Médecins de Rennes",
                  name="Centre de consultation Rennes Nord", line="320 avenue Général Georges Patton",
                  postcode="35700", city="Rennes", lat=48.1325, lon=-1.6602, departement="35"),
    ]


def test_spec_example_vendor_is_harvested_with_every_field(es, indices, settings, run_simulator, example_offers):
    write_offers(es, settings, example_offers)
    fixtures = {"ps": [fixture_bundle("ps_individual.json")],
                "cpts": [fixture_bundle("cpts_one_community.json"), fixture_bundle("cpts_two_communities.json")],
                "sos": [fixture_bundle("sos.json")]}
    sim = run_simulator(fixtures={VENDOR: fixtures})
    vendor = VendorConfig(name=VENDOR, base_url=f"http://127.0.0.1:{sim.port}/{VENDOR}/fhir",
                          use_cases=["ps", "cpts", "sos"], roster=["810100050075", "810002673899", "810002909371"],
                          sos_roster=["34173748400020", "92080466300010"], backoff_initial_s=0.01,
                          # the fixtures answer whatever the window: one request over the examples' dates
                          max_window_h=24 * 366 * 3)
    harvester = Harvester(es=es, settings=settings, vendors=[vendor])
    run = harvester.run(VENDOR, mode="full", start=datetime(2021, 11, 1, tzinfo=timezone.utc),
                        end=datetime(2024, 7, 1, tzinfo=timezone.utc), now=datetime(2021, 11, 1, tzinfo=timezone.utc))

    assert run["status"] == "success", run["errors"]
    assert run["read"] == 10 and run["upserted"] == 10 and run["rejected"] == 0
    reasons = {r["reason"]: r["count"] for r in run["rejected_by_reason"]}
    assert reasons["flag:national_id_bad_check_digit"] == 4
    assert run["requests"] == 2

    # The requests are the specification's, parameter by parameter.
    log = httpx.get(f"http://127.0.0.1:{sim.port}/_admin/vendors/{VENDOR}/requests").json()
    queries = {entry["path"].rsplit("/", 1)[-1]: parse_qsl(entry["query"]) for entry in log}
    slot_query = queries["Slot"]
    assert [v for k, v in slot_query if k == "start"] == ["ge2021-11-01T00:00:00+00:00", "le2024-07-01T00:00:00+00:00"]
    assert ("status", "free") in slot_query
    assert sorted(v for k, v in slot_query if k == "_include") == ["Slot:schedule", "Slot:service-type-reference"]
    assert sorted(v for k, v in slot_query if k == "_include:iterate") == ["HealthcareService:organization",
                                                                          "Schedule:actor"]
    assert dict(slot_query)["schedule.actor:Practitioner.identifier"] == ",".join(
        f"urn:oid:1.2.250.1.71.4.2.1|{i}" for i in ["810100050075", "810002673899", "810002909371"])
    sos_query = queries["Schedule"]
    assert ("_revinclude", "Slot:schedule") in sos_query and ("_has:Slot:schedule:status", "free") in sos_query
    # The guide's form ``3`` + SIRET, from the directory's bare SIRETs.
    assert dict(sos_query)["actor:Location.organization.identifier"] == \
        "urn:oid:1.2.250.1.71.4.2.2|334173748400020,urn:oid:1.2.250.1.71.4.2.2|392080466300010"

    es.indices.refresh(index=alias_name(settings.index_prefix, "slots"))
    es.indices.refresh(index=alias_name(settings.index_prefix, "offers"))
    hits = es.search(index=alias_name(settings.index_prefix, "slots"), size=50,
                     query={"term": {"vendor": VENDOR}})["hits"]["hits"]
    slots = {h["_id"]: h["_source"] for h in hits}
    assert len(slots) == 10
    for source in slots.values():
        SlotDoc.model_validate(source)            # the strict model accepts every document

    one = slots[f"{VENDOR}:ExampleSlotPSIndiv1"]
    assert one["offer_id"] == "ex-thomas-1"         # matched by national id + address
    assert one["practitioner_national_id"] == "810100050075" and one["national_id_check_ok"] is False
    assert one["start"] == "2021-11-05T09:00:00+00:00" and one["end"] == "2021-11-05T09:30:00+00:00"
    assert one["date_range"] == {"gte": "2021-11-05T09:00:00+00:00", "lt": "2021-11-05T09:30:00+00:00"}
    assert one["types"] == ["PUBLIC"] and one["modes"] == ["AMB", "VR"] and one["motive"] == "Visite de contrôle"
    assert one["specialties"] == ["SM54", "SM05"] and one["bookable"] is True
    assert one["booking_url"] == "https://exemple.com/rdv/com/"
    assert one["location"] == {"lat": 44.2049, "lon": 0.6212} and one["territory"] == "SAS-47"
    assert one["departement"] == "47" and one["name_folded"] == "sebastien thomas"
    assert one["harvested_at"] and one["stale_since"] is None and one["hidden"] is False
    assert one["source"] == "vendor" and one["use_case"] == "cpts" and one["roster_key"] == "810100050075"

    two = slots[f"{VENDOR}:ExampleSlotPSIndiv2"]
    assert two["offer_id"] == "ex-thomas-30" and two["bookable"] is False and two["types"] == ["PRO"]

    # 810002673899 is unknown to the directory: a vendor-only place, geocoded in Agen.
    three = slots[f"{VENDOR}:ExampleSlotPSIndiv3"]
    assert three["offer_id"].startswith(f"vendor-{VENDOR}-")
    place = es.get(index=alias_name(settings.index_prefix, "offers"), id=three["offer_id"])["_source"]
    assert place["source"] == "vendor" and place["national_id"] == "810002673899"
    assert place["address"]["postcode"] == "47000" and place["departement"] == "47"
    assert abs(place["location"]["lat"] - 44.2) < 0.1 and abs(place["location"]["lon"] - 0.62) < 0.1
    assert three["location"] == place["location"] and three["territory"] == "SAS-47"
    assert slots[f"{VENDOR}:ExampleSlotPSIndiv4"]["offer_id"] == three["offer_id"]   # same place, once

    cpts2 = slots[f"{VENDOR}:ExampleSlotCPTS2"]
    assert cpts2["offer_id"] == "ex-foret" and cpts2["types"] == ["PUBLIC", "CPTS"]
    assert cpts2["cpts"] == [
        {"finess": "950047225", "name": "CPTS AXE MAJEUR", "phone": "+33102030405"},
        {"finess": "950046227", "name": "CPTS VAL D OISE CENTRE", "phone": "+33139599280"}]
    assert cpts2["start"] == "2024-06-12T14:40:00+00:00"
    assert [c["finess"] for c in slots[f"{VENDOR}:ExampleSlotCPTS1"]["cpts"]] == ["950047225"]

    sos1 = slots[f"{VENDOR}:ExampleSlotSOS1"]
    assert sos1["offer_id"] == "ex-sos-rennes-nord" and sos1["offer_kind"] == "sos"
    assert sos1["sos"] == {"association_siret": "34173748400020", "association_name": "SOS Médecins de Rennes",
                           "place_name": "Centre de consultation Rennes Nord", "place_phone": "+33193246789",
                           "opening_hours": "mar-dim 08:00-19:00"}
    assert sos1["types"] == ["PUBLIC", "SNP"] and sos1["booking_url"] == "http://www.editeur.com/agenda-pfg/creneau1"
    lorient = slots[f"{VENDOR}:ExampleSlotSOS3"]
    lorient_place = es.get(index=alias_name(settings.index_prefix, "offers"), id=lorient["offer_id"])["_source"]
    assert lorient_place["kind"] == "sos" and lorient_place["departement"] == "56"
    assert lorient_place["sos"]["association_siret"] == "92080466300010"   # a vendor-only place: bare too
    assert lorient["offer_kind"] == "sos" and lorient["territory"] == "SAS-56"
