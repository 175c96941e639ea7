"""Adaptive radius, "beyond displayed slots" (en sus), and the CPTS card, on the real Elasticsearch."""

from __future__ import annotations

import math

from search_api.query import defaults
from tests.integration.search.conftest import offer, slot

CAEN = (49.18479, -0.3698)   # centroid of 14000 Caen in the communes table


def _east_of(origin: tuple[float, float], km: float, north_km: float = 0.0) -> tuple[float, float]:
    lat = origin[0] + north_km / 111.195
    return lat, origin[1] + km / (111.195 * math.cos(math.radians(origin[0])))


def _place_gps(world, at, distances_km: list[float], *, prefix: str) -> list[dict]:
    offers, slots = [], []
    for i, km in enumerate(distances_km):
        lat, lon = _east_of(CAEN, km, north_km=0.01 * i)
        o = offer(f"ps-{prefix}{i:02d}", name=f"Médecin {prefix} {i}", national_id=f"8100000{i:05d}", lat=lat, lon=lon,
                  postcode="14000", city="CAEN")
        offers.append(o)
        slots.append(slot(f"v:{prefix}{i:02d}", of=o, start=at(hours=2 + i)))
    world.put("offers", offers)
    world.put("slots", slots)
    return offers


def _search(api, headers, **params):
    response = api.get("/v1/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_adaptive_radius_stops_at_the_first_radius_with_enough_offers(search_api, token_for, clean, at):
    headers = token_for("osnp")
    wanted = defaults.MIN_OFFERS_WITH_SLOTS
    _place_gps(clean, at, [0.5 + 0.3 * i for i in range(wanted + 2)], prefix="near")
    body = _search(search_api, headers, q="14000 Caen", specialty="SM54")
    assert body["radius_km"] == defaults.RADIUS_LADDER_KM[0] and body["total"] == wanted + 2
    assert body["beyond"] == []     # enough offers: no "en sus" list


def test_adaptive_radius_grows_until_enough_offers(search_api, token_for, clean, at):
    headers = token_for("osnp")
    wanted = defaults.MIN_OFFERS_WITH_SLOTS
    # 3 places within 4 km, the others 14 to 16 km away: 5 and 10 km are not enough, 20 km is.
    _place_gps(clean, at, [1.0, 2.0, 3.5] + [14.0 + 0.2 * i for i in range(wanted)], prefix="grow")
    body = _search(search_api, headers, q="14000 Caen", specialty="SM54", size=50)
    assert body["radius_km"] == 20.0
    assert body["total"] == wanted + 3 and len(body["results"]) == wanted + 3
    assert max(c["distance_km"] for c in body["results"]) < 20.0
    # A fixed radius is applied as given, however few offers it finds.
    fixed = _search(search_api, headers, q="14000 Caen", specialty="SM54", radius_km=5)
    assert fixed["radius_km"] == 5.0 and fixed["radius_adaptive"] is False and fixed["total"] == 3


def test_beyond_listed_when_too_few_offers_and_on_its_own_endpoint(search_api, token_for, clean, at):
    headers = token_for("regulator")
    _place_gps(clean, at, [1.0], prefix="one")
    lat, lon = _east_of(CAEN, 2.0)
    far_lat, far_lon = _east_of(CAEN, 6.0)
    clean.put("offers", [
        offer("ps-beyond-gp", name="Claire DURAND", national_id="810000099991", lat=lat, lon=lon, postcode="14000",
              city="CAEN", accepts_beyond=True, beyond_phone="+33231000001", phone="+33231000000"),
        offer("ps-beyond-far", name="Marc PETIT", national_id="810000099992", lat=far_lat, lon=far_lon,
              postcode="14000", city="CAEN", accepts_beyond=True, beyond_phone="+33231000002"),
        offer("ps-beyond-pediatre", name="Anne ROUX", national_id="810000099993", lat=lat, lon=lon, postcode="14000",
              city="CAEN", accepts_beyond=True, beyond_phone="+33231000003", specialties=("SM40",)),
        offer("cpts-140099999", name="CPTS Caen Nord", kind="cpts", lat=lat, lon=lon, postcode="14000", city="CAEN",
              specialties=(), accepts_beyond=True, beyond_phone="+33231000004", finess="140099999"),
        offer("ps-beyond-unavailable", name="Paul MOREAU", national_id="810000099994", lat=lat, lon=lon,
              postcode="14000", city="CAEN", accepts_beyond=True, beyond_phone="+33231000005"),
        offer("ps-not-beyond", name="Luc BLANC", national_id="810000099995", lat=lat, lon=lon, postcode="14000",
              city="CAEN"),
    ])
    clean.put("declarations", [{
        "id": "d-moreau", "kind": "unavailable", "declared_by_role": "effecteur", "declared_by": "810000099994",
        "national_id": "810000099994", "periods": [{"start": at(days=-2).isoformat(), "end": at(days=5).isoformat()}],
        "created_at": at(days=-2).isoformat(), "active": True,
    }])
    body = _search(search_api, headers, q="14000 Caen", specialty="SM54")
    assert body["total"] == 1
    beyond = body["beyond"]
    names = [c["offer"]["id"] for c in beyond]
    assert set(names) == {"ps-beyond-gp", "ps-beyond-far", "cpts-140099999"}
    assert names[-1] == "ps-beyond-far"                      # nearest first
    gp = next(c for c in beyond if c["offer"]["id"] == "ps-beyond-gp")
    assert gp["phone"] == "+33231000001" and gp["distance_km"] == round(gp["distance_km"], 2)

    endpoint = search_api.get("/v1/search/beyond", params={"q": "Caen", "specialty": "pédiatrie", "radius_km": 10},
                              headers=headers)
    assert endpoint.status_code == 200, endpoint.text
    # Same place for both: their order is the day's rotation. The CPTS lists no specialty: it qualifies.
    assert {c["offer"]["id"] for c in endpoint.json()["results"]} == {"ps-beyond-pediatre", "cpts-140099999"}
    small = search_api.get("/v1/search/beyond", params={"q": "Caen", "radius_km": 3, "kinds": "ps"}, headers=headers)
    assert {c["offer"]["id"] for c in small.json()["results"]} == {"ps-beyond-gp", "ps-beyond-pediatre"}


def test_cpts_card_with_all_participating_members_and_their_slots(search_api, token_for, clean, at):
    finess = "140088888"
    lat, lon = _east_of(CAEN, 1.0)
    cpts = offer("cpts-140088888", name="CPTS Caen Sud", kind="cpts", lat=lat, lon=lon, postcode="14000", city="CAEN",
                 specialties=(), finess=finess, phone="+33231888888", accepts_beyond=True,
                 beyond_phone="+33231888889")
    member_a = offer("ps-cpts-a", name="Alice ARNAUD", national_id="810000088881", lat=lat, lon=lon,
                     postcode="14000", city="CAEN", cpts_finess=finess, cpts_name="CPTS Caen Sud")
    member_b = offer("ps-cpts-b", name="Bruno BERNARD", national_id="810000088882", lat=lat, lon=lon,
                     postcode="14000", city="CAEN", cpts_finess=finess, cpts_name="CPTS Caen Sud")
    member_away = offer("ps-cpts-away", name="Zoé ZELLER", national_id="810000088883", lat=lat, lon=lon,
                        postcode="14000", city="CAEN", cpts_finess=finess, cpts_name="CPTS Caen Sud")
    via_slot = offer("ps-cpts-slot", name="Hugo HENRY", national_id="810000088884", lat=lat, lon=lon,
                     postcode="14000", city="CAEN")
    outsider = offer("ps-outsider", name="Olga ORY", national_id="810000088885", lat=lat, lon=lon, postcode="14000",
                     city="CAEN")
    clean.put("offers", [cpts, member_a, member_b, member_away, via_slot, outsider])
    through = [{"finess": finess, "name": "CPTS Caen Sud", "phone": "+33231888888"}]
    clean.put("slots", [
        slot("v:cpts-a1", of=member_a, start=at(hours=3)),
        slot("v:cpts-a2", of=member_a, start=at(hours=1), types=("CPTS",), cpts=through),
        slot("v:cpts-b-snp", of=member_b, start=at(hours=2), types=("SNP",)),
        slot("v:cpts-away", of=member_away, start=at(hours=2)),
        slot("v:cpts-slot", of=via_slot, start=at(hours=5), types=("PUBLIC", "CPTS"), cpts=through),
        slot("v:outsider", of=outsider, start=at(hours=1)),
    ])
    clean.put("declarations", [{
        "id": "d-zeller", "kind": "unavailable", "declared_by_role": "effecteur", "declared_by": "810000088883",
        "national_id": "810000088883", "periods": [{"start": at(days=-1).isoformat()}],
        "created_at": at(days=-1).isoformat(), "active": True,
    }])

    response = search_api.get(f"/v1/cpts/{finess}", headers=token_for("regulator"), params={"q": "14000"})
    assert response.status_code == 200, response.text
    card = response.json()
    assert card["cpts"]["id"] == "cpts-140088888" and card["cpts"]["phone"] == "+33231888888"
    assert card["beyond"] == {"phone": "+33231888889"}
    members = {m["offer"]["id"]: m for m in card["members"]}
    assert set(members) == {"ps-cpts-a", "ps-cpts-b", "ps-cpts-slot"}     # the unavailable one and outsiders: no
    assert [m["offer"]["id"] for m in card["members"]] == ["ps-cpts-a", "ps-cpts-b", "ps-cpts-slot"]
    assert [s["id"] for s in members["ps-cpts-a"]["slots"]] == ["v:cpts-a2", "v:cpts-a1"]
    assert [s["id"] for s in members["ps-cpts-b"]["slots"]] == ["v:cpts-b-snp"]
    assert members["ps-cpts-a"]["distance_km"] is not None

    # By offer id too; a practitioner outside the CPTS does not see its CPTS-only slot, nor SNP ones.
    practitioner = search_api.get("/v1/cpts/cpts-140088888", headers=token_for("effecteur", structure_id="990000000"))
    members = {m["offer"]["id"]: m for m in practitioner.json()["members"]}
    assert [s["id"] for s in members["ps-cpts-a"]["slots"]] == ["v:cpts-a1"]
    assert members["ps-cpts-b"]["slots"] == [] and members["ps-cpts-b"]["distance_km"] is None
    coordinator = search_api.get("/v1/cpts/cpts-140088888", headers=token_for("structure_manager", structure_id=finess))
    members = {m["offer"]["id"]: m for m in coordinator.json()["members"]}
    assert [s["id"] for s in members["ps-cpts-a"]["slots"]] == ["v:cpts-a2", "v:cpts-a1"]

    missing = search_api.get("/v1/cpts/149999999", headers=token_for("regulator"))
    assert missing.status_code == 404


def test_windows_of_platform_time_ranges(search_api, token_for, clean, at):
    """A time range of the platform agenda (capacity) that has started is still shown until it ends;
    a vendor slot that has started is not."""
    lat, lon = _east_of(CAEN, 1.0)
    o = offer("ps-agenda", name="Eva EVRARD", national_id="810000077771", lat=lat, lon=lon, postcode="14000",
              city="CAEN")
    clean.put("offers", [o])
    started_range = slot("sas:range", of=o, start=at(hours=-1), minutes=240, capacity=4, booking_url=None)
    started_range["source"] = "sas"
    clean.put("slots", [started_range, slot("v:started", of=o, start=at(minutes=-5))])
    body = _search(search_api, token_for("osnp"), q="14000", specialty="SM54")
    (card,) = body["results"]
    assert [s["id"] for s in card["slots"]] == ["sas:range"] and card["slots"][0]["capacity"] == 4


def test_window_shortcut_and_explicit_window_agree(search_api, token_for, clean, at):
    lat, lon = _east_of(CAEN, 1.0)
    o = offer("ps-window", name="Iris IMBERT", national_id="810000066661", lat=lat, lon=lon, postcode="14000",
              city="CAEN")
    clean.put("offers", [o])
    clean.put("slots", [slot("v:w-50h", of=o, start=at(hours=50)), slot("v:w-3h", of=o, start=at(hours=3))])
    headers = token_for("osnp")
    default = _search(search_api, headers, q="14000", specialty="SM54", slots=5)
    assert [s["id"] for s in default["results"][0]["slots"]] == ["v:w-3h"]       # default window: 48 h
    later = _search(search_api, headers, q="14000", specialty="SM54", within="48-72h")
    assert [s["id"] for s in later["results"][0]["slots"]] == ["v:w-50h"]
    explicit = _search(search_api, headers, q="14000", specialty="SM54",
                       **{"from": (at(hours=49)).isoformat(), "to": (at(hours=51)).isoformat()})
    assert [s["id"] for s in explicit["results"][0]["slots"]] == ["v:w-50h"]
    assert explicit["window"]["from"].startswith(str((at(hours=49)).year))


def test_remembered_radius_is_checked_against_the_data(search_api, token_for, clean, at):
    """The radius a search ended with is reused only while it still is the first radius with enough
    offers: more places nearby shrink it, fewer grow it."""
    headers = token_for("osnp")
    wanted = defaults.MIN_OFFERS_WITH_SLOTS
    _place_gps(clean, at, [14.0 + 0.2 * i for i in range(wanted)], prefix="far")
    assert _search(search_api, headers, q="14000 Caen", specialty="SM54")["radius_km"] == 20.0
    assert _search(search_api, headers, q="14000 Caen", specialty="SM54")["radius_km"] == 20.0   # remembered
    near = _place_gps(clean, at, [0.5 + 0.3 * i for i in range(wanted)], prefix="near")
    assert _search(search_api, headers, q="14000 Caen", specialty="SM54")["radius_km"] == 5.0
    clean.delete("slots", [f"v:near{i:02d}" for i in range(len(near))] + [f"v:far{i:02d}" for i in range(3)])
    grown = _search(search_api, headers, q="14000 Caen", specialty="SM54")
    assert grown["radius_km"] == 80.0 and grown["total"] == wanted - 3
