"""End to end: the specification's INT_R01 example bundle (Dr THOMAS at two places in Agen, Dr MARCEL),
served by the vendor simulator, harvested through the real harvest path, then searched near 47000 Agen
for general practice. The bundle's instants are moved to the coming hours (same gaps between slots)."""

from __future__ import annotations

import copy
from datetime import datetime, timedelta, timezone

import pytest
from geopy.distance import great_circle

from bench.common import free_port
from connectors.vendors.config import VendorConfig
from indexer.harvest import Harvester
from simulator.app import Simulator
from simulator.roster import Roster
from simulator.server import SimulatorThread
from tests.integration.harvest.conftest import fixture_bundle, practitioner_offer
from tests.integration.search.conftest import AGEN

VENDOR = "spec-examples"
URL = "https://exemple.com/rdv/com/?origin=sas"


def _shifted(bundle: dict, *, first_start: datetime) -> dict:
    """The bundle with every Slot moved so that the earliest starts at ``first_start``."""
    bundle = copy.deepcopy(bundle)
    slots = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "Slot"]
    earliest = min(datetime.fromisoformat(s["start"]) for s in slots)
    delta = first_start - earliest
    for slot in slots:
        for key in ("start", "end"):
            slot[key] = (datetime.fromisoformat(slot[key]) + delta).isoformat(timespec="milliseconds")
    return bundle


@pytest.fixture
def harvested(clean, search_settings, es):
    offers = [
        practitioner_offer(offer_id="ex-thomas-1", national_id="810100050075", vendor=VENDOR,
                           line="1 rue Madame Delmas", postcode="47000", city="Agen", lat=44.2049, lon=0.6212,
                           departement="47", family="THOMAS", given="Sébastien"),
        practitioner_offer(offer_id="ex-thomas-30", national_id="810100050075", vendor=VENDOR,
                           line="30 rue Madame Delmas", postcode="47000", city="Agen", lat=44.2051, lon=0.6215,
                           departement="47", family="THOMAS", given="Sébastien"),
    ]
    for offer in offers:
        offer["geo_precision"] = "address"     # as the directory's BAN geocoding would say
    clean.put("offers", offers)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    bundle = _shifted(fixture_bundle("ps_individual.json"), first_start=now + timedelta(hours=1))
    port = free_port()
    simulator = Simulator({VENDOR: Roster()}, public_url=f"http://127.0.0.1:{port}", taken_share=0.0)
    simulator.vendors[VENDOR].fixtures = {"ps": [bundle]}
    with SimulatorThread(simulator, port=port):
        vendor = VendorConfig(name=VENDOR, base_url=f"http://127.0.0.1:{port}/{VENDOR}/fhir", use_cases=["ps"],
                              roster=["810100050075", "810002673899"], backoff_initial_s=0.01)
        run = Harvester(es=es, settings=search_settings, vendors=[vendor]).run(VENDOR, mode="full", now=now)
    assert run["status"] == "success", run["errors"]
    assert run["upserted"] == 4
    es.indices.refresh(index=clean.alias("slots"))
    es.indices.refresh(index=clean.alias("offers"))
    return {o["id"]: o for o in offers}


def test_general_practice_near_agen_from_the_harvested_example_bundle(search_api, token_for, harvested):
    response = search_api.get("/v1/search", params={"q": "47000", "specialty": "SM54", "explain": "true"},
                              headers=token_for("osnp", territories=["SAS-47"]))
    assert response.status_code == 200, response.text
    body = response.json()
    cards = body["results"]
    assert body["total"] == 3 and body["radius_km"] == 80.0       # too few places: the radius grew to the maximum

    # Documented order: Dr MARCEL's home visit 1 h 20 from now (his pneumology-only slot is not general
    # practice), then Dr THOMAS at 1 rue Delmas the next morning, then his walk-in at no 30.
    marcel, thomas_1, thomas_30 = cards
    assert marcel["offer"]["national_id"] == "810002673899"
    assert [s["id"] for s in marcel["slots"]] == [f"{VENDOR}:ExampleSlotPSIndiv4"]
    (home,) = marcel["slots"]
    assert home["modes"] == ["HH"] and home["types"] == ["PUBLIC", "PRO"]
    assert home["bookable"] is True and home["booking_url"] == URL
    # Dr MARCEL is unknown to the directory: the harvest created his place, placed at the commune.
    assert marcel["offer"]["geo_precision"] in ("municipality", "postcode")

    assert thomas_1["offer"]["id"] == "ex-thomas-1" and thomas_1["offer"]["national_id"] == "810100050075"
    (visit,) = thomas_1["slots"]
    assert visit["id"] == f"{VENDOR}:ExampleSlotPSIndiv1"
    assert visit["modes"] == ["AMB", "VR"] and visit["types"] == ["PUBLIC"]
    assert visit["bookable"] is True and visit["booking_url"] == URL and visit["motive"] == "Visite de contrôle"

    assert thomas_30["offer"]["id"] == "ex-thomas-30"
    (walk_in,) = thomas_30["slots"]
    assert walk_in["id"] == f"{VENDOR}:ExampleSlotPSIndiv2"
    assert walk_in["types"] == ["PRO"] and walk_in["bookable"] is False and walk_in["booking_url"] is None

    for card in (thomas_1, thomas_30):
        place = harvested[card["offer"]["id"]]["location"]
        expected = great_circle((AGEN["lat"], AGEN["lon"]), (place["lat"], place["lon"])).km
        assert card["distance_km"] == pytest.approx(expected, abs=0.01)
        assert card["distance_precision"] == "municipality"
    scores = [c["explain"]["score"] for c in cards]
    assert scores == sorted(scores, reverse=True)

    # A practitioner sees the same (PUBLIC / PRO) slots; SNP-only slots are covered elsewhere.
    practitioner = search_api.get("/v1/search", params={"q": "47000", "specialty": "médecine générale"},
                                  headers=token_for("effecteur", national_id="810100050075"))
    assert [c["offer"]["id"] for c in practitioner.json()["results"]] == [c["offer"]["id"] for c in cards]
