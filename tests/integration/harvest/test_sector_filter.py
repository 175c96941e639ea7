"""The convention-sector filter on harvested slots: the sector comes from the directory (the
participation file), travels with every slot the harvest writes, and ``/v1/search?sector=`` selects on it.

Before, the harvest did not copy it: every ``sector=`` search found 0 places although the cards showed the
offer's sector (the search tests wrote their slots by hand, with the field)."""

from __future__ import annotations

from indexer.harvest import Harvester
from mappings.registry import alias_name
from tests.integration.harvest.conftest import town_offers, write_offers
from tests.integration.harvest.test_harvest_semantics import vendor_config

VENDOR = "sector-agenda"


def test_harvested_slots_carry_the_offers_sector_and_the_filter_selects_on_it(api, es, indices, settings, run_simulator,
                                                                              token_for):
    offers = town_offers(VENDOR, 6, start=7000)
    for number, offer in enumerate(offers):
        offer["convention_sector"] = ("1", "2", None)[number % 3]
    write_offers(es, settings, offers)
    sim = run_simulator(offers)
    run = Harvester(es=es, settings=settings, vendors=[vendor_config(VENDOR, sim.port)]).run(VENDOR, mode="full")
    assert run["status"] == "success" and run["upserted"] > 0, run
    es.indices.refresh(index=alias_name(settings.index_prefix, "slots"))

    by_sector = {o["id"]: o["convention_sector"] for o in offers}
    hits = es.search(index=alias_name(settings.index_prefix, "slots"), size=2000,
                     query={"term": {"vendor": VENDOR}}, _source=["offer_id", "convention_sector"])["hits"]["hits"]
    assert hits and all(h["_source"].get("convention_sector") == by_sector[h["_source"]["offer_id"]] for h in hits)

    headers = token_for("osnp", territories=["SAS-47"])
    found = {}
    for sector in ("1", "2"):
        answer = api.get("/v1/search", headers=headers, params={
            "lat": 44.2033, "lon": 0.6163, "radius_km": 5, "sector": sector,
            "size": 50})
        assert answer.status_code == 200, answer.text
        found[sector] = {card["offer"]["id"] for card in answer.json()["results"] if card["offer"]["id"] in by_sector}
    assert found["1"] and found["1"] <= {i for i, s in by_sector.items() if s == "1"}
    assert found["2"] and found["2"] <= {i for i, s in by_sector.items() if s == "2"}
