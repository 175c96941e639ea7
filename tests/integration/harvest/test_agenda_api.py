"""The platform's own agenda: publish slots and time ranges, list, delete; searched like vendor slots."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from mappings.registry import alias_name
from mappings.slots import visible_slot_filter
from tests.integration.harvest.conftest import practitioner_offer, write_offers

DOCTOR = "810000000702"


def test_effecteur_publishes_lists_and_deletes(api, es, settings, token_for):
    write_offers(es, settings, [
        {**practitioner_offer(offer_id="agenda-own", national_id=DOCTOR, vendor=None, line="3 place Jasmin",
                              postcode="47000", city="Agen", lat=44.2031, lon=0.6161, departement="47"),
         "convention_sector": "2"},
        practitioner_offer(offer_id="agenda-vendor", national_id=DOCTOR, vendor="agendomed", line="8 rue Voltaire",
                           postcode="47000", city="Agen", lat=44.2035, lon=0.6165, departement="47"),
        practitioner_offer(offer_id="agenda-other", national_id="810000000710", vendor=None, line="5 rue Palissy",
                           postcode="47000", city="Agen", lat=44.2037, lon=0.6167, departement="47"),
    ])
    me = token_for("effecteur", national_id=DOCTOR)
    start = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(microsecond=0)
    body = {"offer_id": "agenda-own", "items": [
        {"start": start.isoformat(), "end": (start + timedelta(minutes=20)).isoformat(), "modes": ["AMB"]},
        {"start": (start + timedelta(hours=1)).isoformat(), "end": (start + timedelta(hours=3)).isoformat(),
         "capacity": 6, "modes": ["AMB", "VR"], "motive": "Consultations non programmées"},
    ]}
    created = api.post("/v1/agenda/slots", json=body, headers=me)
    assert created.status_code == 201, created.text
    slots = created.json()["created"]
    assert [s["capacity"] for s in slots] == [None, 6]

    # Stored as slot documents of source "sas", denormalised like vendor slots, visible to search.
    alias = alias_name(settings.index_prefix, "slots")
    doc = es.get(index=alias, id=slots[1]["id"])["_source"]
    assert doc["source"] == "sas" and doc["offer_id"] == "agenda-own" and doc["practitioner_national_id"] == DOCTOR
    assert doc["location"] == {"lat": 44.2031, "lon": 0.6161} and doc["territory"] == "SAS-47"
    assert doc["convention_sector"] == "2"      # the search's sector filter reads it on the slot
    assert doc["modes"] == ["AMB", "VR"] and doc["types"] == ["SNP"] and doc["duration_min"] == 120
    # The second item starts an hour after ``start`` (the next day when the test runs after 20:00 UTC).
    second_start = start + timedelta(hours=1)
    assert datetime.fromisoformat(doc["date_range"]["gte"]) == second_start and doc["bookable"] is True
    visible = es.count(index=alias, query={"bool": {"filter": [
        {"term": {"offer_id": "agenda-own"}},
        *visible_slot_filter(now=datetime.now(timezone.utc), stale_after_s=900)]}})
    assert visible["count"] == 2

    listed = api.get("/v1/agenda/slots", params={"offer_id": "agenda-own"}, headers=me)
    assert listed.status_code == 200 and [s["id"] for s in listed.json()] == [s["id"] for s in slots]

    assert api.delete(f"/v1/agenda/slots/{slots[0]['id']}", headers=me).status_code == 204
    assert [s["id"] for s in api.get("/v1/agenda/slots", params={"offer_id": "agenda-own"}, headers=me).json()] \
        == [slots[1]["id"]]
    assert api.delete(f"/v1/agenda/slots/{slots[0]['id']}", headers=me).status_code == 404

    # Someone else's offer, a vendor-fed offer, bad input, wrong roles.
    assert api.post("/v1/agenda/slots", json={**body, "offer_id": "agenda-other"}, headers=me).status_code == 403
    vendor_fed = api.post("/v1/agenda/slots", json={**body, "offer_id": "agenda-vendor"}, headers=me)
    assert vendor_fed.status_code == 409 and "agendomed" in vendor_fed.json()["message"]
    backwards = {"offer_id": "agenda-own", "items": [{"start": start.isoformat(), "end": start.isoformat()}]}
    assert api.post("/v1/agenda/slots", json=backwards, headers=me).status_code == 422
    past = {"offer_id": "agenda-own", "items": [{"start": (start - timedelta(days=2)).isoformat(),
                                                 "end": (start - timedelta(days=2, minutes=-20)).isoformat()}]}
    assert api.post("/v1/agenda/slots", json=past, headers=me).status_code == 400
    assert api.post("/v1/agenda/slots", json=body, headers=token_for("osnp", territories=["SAS-47"])).status_code == 403
    assert api.post("/v1/agenda/slots", json=body).status_code == 401
    other = token_for("effecteur", national_id="810000000710")
    assert api.delete(f"/v1/agenda/slots/{slots[1]['id']}", headers=other).status_code == 403
    # An admin may manage any offer.
    admin = token_for("admin")
    assert api.delete(f"/v1/agenda/slots/{slots[1]['id']}", headers=admin).status_code == 204
