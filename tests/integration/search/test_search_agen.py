"""Searching near Agen (47000) for general practice, on the practitioners of the specification's example
bundle (INT_R01: Dr Sébastien THOMAS at two places, Dr Guillaume MARCEL), with the bundle's slots moved
to the next hours: cards, slots, modes, types, booking URLs, distances, order, visibility, exclusions."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from geopy.distance import great_circle

from tests.integration.search.conftest import AGEN, offer, slot

THOMAS_1 = "ps-810100050075-1810004421"      # 1 rue Mme Delmas
THOMAS_30 = "ps-810100050075-1810004956"     # 30 rue Mme Delmas
MARCEL_1 = "ps-810002673899-1810004421"      # 1 rue Mme Delmas
URL = "https://exemple.com/rdv/com/"


@pytest.fixture
def agen(clean, at):
    """The example bundle's places and slots. Its instants (4 Nov 14:20 … 5 Nov 11:00) are shifted so
    that the first slot starts 30 minutes from now, keeping their gaps."""
    thomas_1 = offer(THOMAS_1, name="Sébastien THOMAS", national_id="810100050075", line="1 rue Mme DELMAS",
                     lat=44.2058, lon=0.6178, phone="+33553000001", sector="1")
    thomas_30 = offer(THOMAS_30, name="Sébastien THOMAS", national_id="810100050075", line="30 rue Mme DELMAS",
                      lat=44.2051, lon=0.6240, sector="1")
    marcel_1 = offer(MARCEL_1, name="Guillaume MARCEL", national_id="810002673899", line="1 rue Mme DELMAS",
                     lat=44.2058, lon=0.6178, phone="+33658913859", specialties=("SM41", "SM54"), sector="2")
    clean.put("offers", [thomas_1, thomas_30, marcel_1])
    base = at(minutes=30)
    slots = [
        # Slot 1636102800: SM54 (+SM05), AMB + VR, PUBLIC, ROUTINE, booking URL.
        slot("editeur-a:1636102800", of=thomas_1, start=base + timedelta(hours=18, minutes=40),
             specialties=("SM54", "SM05"), modes=("AMB", "VR"), types=("PUBLIC",), motive="Visite de contrôle"),
        # Slot 1636110000: text-only "Médecine générale (polyvalente)", AMB, PRO, WALKIN (no booking).
        slot("editeur-a:1636110000", of=thomas_30, start=base + timedelta(hours=20, minutes=40),
             specialties=("SM54",), modes=("AMB",), types=("PRO",), bookable=False, motive="Visite urgente"),
        # Slot 1636035600: Pneumologie only, VR, PUBLIC + PRO: not general practice.
        slot("editeur-a:1636035600", of=marcel_1, start=base, minutes=20, specialties=("SM41",), modes=("VR",),
             types=("PUBLIC", "PRO")),
        # Slot 1636036800: Pneumologie + Médecine générale, HH, PUBLIC + PRO.
        slot("editeur-a:1636036800", of=marcel_1, start=base + timedelta(minutes=20), minutes=20,
             specialties=("SM41", "SM54"), modes=("HH",), types=("PUBLIC", "PRO")),
    ]
    clean.put("slots", slots)
    return {"offers": {o["id"]: o for o in (thomas_1, thomas_30, marcel_1)}, "slots": {s["id"]: s for s in slots},
            "base": base}


def _search(api, headers, **params):
    response = api.get("/v1/search", params=params, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_general_practice_near_agen(search_api, token_for, agen):
    body = _search(search_api, token_for("osnp", territories=["SAS-47"]), q="47000", specialty="SM54")

    assert body["origin"]["label"] == "47000 Agen" and body["origin"]["precision"] == "municipality"
    # Three places have general-practice slots: fewer than wanted, so the radius grew to its maximum.
    assert body["total"] == 3
    assert body["radius_adaptive"] is True and body["radius_km"] == 80.0
    # Documented order (balanced): Dr MARCEL's home visit in 50 minutes first, then Dr THOMAS tomorrow
    # morning at 1 rue Mme Delmas, then his walk-in consultation at no 30 two hours later.
    assert [c["offer"]["id"] for c in body["results"]] == [MARCEL_1, THOMAS_1, THOMAS_30]
    cards = {c["offer"]["id"]: c for c in body["results"]}

    marcel = cards[MARCEL_1]
    assert marcel["offer"]["national_id"] == "810002673899"
    assert marcel["offer"]["phone"] == "+33658913859"
    assert [s["id"] for s in marcel["slots"]] == ["editeur-a:1636036800"]  # the pneumology-only slot is not GP
    (home_visit,) = marcel["slots"]
    assert home_visit["modes"] == ["HH"] and home_visit["types"] == ["PUBLIC", "PRO"]
    assert home_visit["bookable"] is True and home_visit["booking_url"] == URL + "?origin=sas"

    thomas = cards[THOMAS_1]
    (visit,) = thomas["slots"]
    assert visit["id"] == "editeur-a:1636102800"
    assert visit["modes"] == ["AMB", "VR"] and visit["types"] == ["PUBLIC"]
    assert visit["booking_url"] == URL + "?origin=sas" and visit["motive"] == "Visite de contrôle"
    assert thomas["offer"]["address"] == "1 rue Mme DELMAS, 47000 AGEN"

    walk_in = cards[THOMAS_30]["slots"][0]
    assert walk_in["bookable"] is False and walk_in["booking_url"] is None and walk_in["types"] == ["PRO"]

    for card in body["results"]:
        loc = agen["offers"][card["offer"]["id"]]["location"]
        expected = great_circle((AGEN["lat"], AGEN["lon"]), (loc["lat"], loc["lon"])).km
        assert card["distance_km"] == pytest.approx(expected, abs=0.01)
        assert card["distance_precision"] == "municipality"
        assert card["slot_count"] == len(card["slots"])


def test_label_and_other_general_practice_codes_match_the_same(search_api, token_for, agen):
    headers = token_for("regulator", territories=["SAS-47"])
    by_code = _search(search_api, headers, q="47000 Agen", specialty="SM54")
    for specialty in ("SM26", "Médecine générale", "medecin generaliste"):
        other = _search(search_api, headers, q="47000 Agen", specialty=specialty)
        assert [c["offer"]["id"] for c in other["results"]] == [c["offer"]["id"] for c in by_code["results"]]


def test_where_by_coordinates_and_insee(search_api, token_for, agen):
    headers = token_for("osnp")
    by_insee = _search(search_api, headers, insee="47001", specialty="SM54")
    by_point = _search(search_api, headers, lat=AGEN["lat"], lon=AGEN["lon"], specialty="SM54")
    assert [c["offer"]["id"] for c in by_insee["results"]] == [c["offer"]["id"] for c in by_point["results"]]
    assert by_point["origin"]["precision"] == "coordinates"
    assert by_point["results"][0]["distance_precision"] == "address"


def test_snp_slots_for_osnp_not_for_practitioners(search_api, token_for, agen, clean):
    thomas = agen["offers"][THOMAS_1]
    clean.put("slots", [slot("editeur-a:snp-1", of=thomas, start=agen["base"] + timedelta(hours=2), types=("SNP",))])

    osnp = _search(search_api, token_for("osnp"), q="47000", specialty="SM54")
    card = next(c for c in osnp["results"] if c["offer"]["id"] == THOMAS_1)
    assert "editeur-a:snp-1" in [s["id"] for s in card["slots"]]
    assert card["slots"][0]["types"] == ["SNP"]

    practitioner = _search(search_api, token_for("effecteur", national_id="810002673899"), q="47000", specialty="SM54")
    card = next(c for c in practitioner["results"] if c["offer"]["id"] == THOMAS_1)
    assert "editeur-a:snp-1" not in [s["id"] for s in card["slots"]]
    # Practitioners still see PUBLIC and PRO slots.
    assert {c["offer"]["id"] for c in practitioner["results"]} == {MARCEL_1, THOMAS_1, THOMAS_30}


def test_integrators_see_public_unless_granted(search_api, token_for, agen):
    plain = _search(search_api, token_for("integrator"), q="47000", specialty="SM54")
    # Dr THOMAS's walk-in at no 30 is a PRO slot only.
    assert {c["offer"]["id"] for c in plain["results"]} == {MARCEL_1, THOMAS_1}
    granted = _search(search_api, token_for("integrator", slot_types=["PRO"]), q="47000", specialty="SM54")
    assert {c["offer"]["id"] for c in granted["results"]} == {MARCEL_1, THOMAS_1, THOMAS_30}


def test_cpts_slots_visible_to_members_of_that_cpts_only(search_api, token_for, agen, clean):
    marcel = agen["offers"][MARCEL_1]
    cpts = [{"finess": "470012345", "name": "CPTS du Pays de l'Agenais", "phone": "+33553999999"}]
    clean.put("slots", [slot("editeur-a:cpts-1", of=marcel, start=agen["base"] + timedelta(hours=3), types=("CPTS",),
                             cpts=cpts)])

    def marcel_slots(headers):
        body = _search(search_api, headers, q="47000", specialty="SM54")
        card = next(c for c in body["results"] if c["offer"]["id"] == MARCEL_1)
        return card

    member = marcel_slots(token_for("effecteur", structure_id="470012345"))
    assert "editeur-a:cpts-1" in [s["id"] for s in member["slots"]]
    assert member["cpts"] == [{"finess": "470012345", "name": "CPTS du Pays de l'Agenais", "phone": "+33553999999"}]
    other = marcel_slots(token_for("effecteur", structure_id="330099999"))
    assert "editeur-a:cpts-1" not in [s["id"] for s in other["slots"]]
    regulator = marcel_slots(token_for("regulator"))
    assert "editeur-a:cpts-1" in [s["id"] for s in regulator["slots"]]


def test_unavailable_practitioner_disappears_at_once_and_comes_back(search_api, token_for, agen, clean, at):
    headers = token_for("osnp")
    declaration = {
        "id": "decl-marcel", "kind": "unavailable", "declared_by_role": "effecteur", "declared_by": "810002673899",
        "national_id": "810002673899", "periods": [{"start": at(days=-1).isoformat()}],
        "created_at": at(minutes=-1).isoformat(), "active": True,
    }
    assert MARCEL_1 in _ids(_search(search_api, headers, q="47000", specialty="SM54"))
    clean.put("declarations", [declaration], settle=False)     # written and refreshed: searchable from now
    written = time.monotonic()
    gone_after = _seconds_until(lambda: MARCEL_1 not in _ids(_search(search_api, headers, q="47000", specialty="SM54")),
                                since=written)
    # The searches share one read of the declarations per DECLARATIONS_CACHE_S (0.5 s): well within a second.
    assert gone_after <= 1.0
    body = _search(search_api, headers, q="47000", specialty="SM54")
    assert MARCEL_1 not in _ids(body) and body["total"] == 2

    clean.put("declarations", [{**declaration, "active": False, "cancelled_at": at().isoformat()}], settle=False)
    written = time.monotonic()
    back_after = _seconds_until(lambda: MARCEL_1 in _ids(_search(search_api, headers, q="47000", specialty="SM54")),
                                since=written)
    assert back_after <= 1.0


def _ids(body: dict) -> set[str]:
    return {c["offer"]["id"] for c in body["results"]}


def _seconds_until(condition, *, since: float, timeout_s: float = 5.0) -> float:
    """Seconds from ``since`` until ``condition()`` holds (polling); fails after ``timeout_s``."""
    while not condition():
        assert time.monotonic() - since < timeout_s, "condition never held"
        time.sleep(0.02)
    return time.monotonic() - since


def test_partial_unavailability_hides_only_the_slots_it_covers(search_api, token_for, agen, clean, at):
    # Dr THOMAS is away tomorrow from 08:00 after now for six hours... only his slots then are hidden.
    base = agen["base"]
    clean.put("declarations", [{
        "id": "decl-thomas-place", "kind": "unavailable", "declared_by_role": "regulator", "declared_by": "x",
        "offer_id": THOMAS_1,
        "periods": [{"start": (base + timedelta(hours=18)).isoformat(),
                     "end": (base + timedelta(hours=19)).isoformat()}],
        "created_at": at().isoformat(), "active": True,
    }])
    body = _search(search_api, token_for("osnp"), q="47000", specialty="SM54")
    ids = {c["offer"]["id"] for c in body["results"]}
    assert THOMAS_1 not in ids            # its only GP slot falls in the period
    assert THOMAS_30 in ids               # the same doctor at his other place is not concerned


def test_stale_and_hidden_slots_are_never_returned(search_api, token_for, agen, clean, at):
    thomas = agen["offers"][THOMAS_1]
    clean.put("slots", [
        slot("editeur-b:stale", of=thomas, start=at(hours=1), stale_since=at(hours=-1), vendor="editeur-b"),
        slot("editeur-b:recently-stale", of=thomas, start=at(hours=1, minutes=10), stale_since=at(minutes=-2),
             vendor="editeur-b"),
        slot("editeur-b:hidden", of=thomas, start=at(hours=1, minutes=20), hidden=True, vendor="editeur-b"),
        slot("editeur-b:past", of=thomas, start=at(hours=-1), vendor="editeur-b"),
    ])
    body = _search(search_api, token_for("osnp"), q="47000", specialty="SM54", slots=10)
    card = next(c for c in body["results"] if c["offer"]["id"] == THOMAS_1)
    ids = [s["id"] for s in card["slots"]]
    assert "editeur-b:recently-stale" in ids          # within the grace period
    assert not {"editeur-b:stale", "editeur-b:hidden", "editeur-b:past"} & set(ids)


def test_filters(search_api, token_for, agen):
    headers = token_for("osnp")

    def ids(**params):
        return [c["offer"]["id"]
                for c in _search(search_api, headers, q="47000", specialty="SM54", **params)["results"]]

    assert ids(modes="VR") == [THOMAS_1]
    assert ids(modes="HH,VR") == [MARCEL_1, THOMAS_1]
    assert ids(bookable_only="true") == [MARCEL_1, THOMAS_1]
    assert ids(within="0-4h") == [MARCEL_1]
    assert ids(within="12-24h") == [THOMAS_1, THOMAS_30]
    assert ids(sector="2") == [MARCEL_1]
    assert ids(kinds="sos") == []
    assert ids(radius_km="0.5") == [THOMAS_30]      # 0.29 km from the centroid of Agen
    window_from = (agen["base"] + timedelta(hours=18)).isoformat()
    assert ids(**{"from": window_from}) == [THOMAS_1, THOMAS_30]


def test_sorts_pagination_and_explain(search_api, token_for, agen):
    headers = token_for("osnp")
    earliest = _search(search_api, headers, q="47000", specialty="SM54", sort="earliest")
    assert [c["offer"]["id"] for c in earliest["results"]] == [MARCEL_1, THOMAS_1, THOMAS_30]
    nearest = _search(search_api, headers, lat=44.2051, lon=0.6240, specialty="SM54", sort="nearest")
    assert nearest["results"][0]["offer"]["id"] == THOMAS_30
    # THOMAS_1 and MARCEL_1 share a place: their order is the day's rotation, the same on every call.
    tied = [c["offer"]["id"] for c in nearest["results"][1:]]
    assert set(tied) == {THOMAS_1, MARCEL_1}
    for _ in range(3):
        again = _search(search_api, headers, lat=44.2051, lon=0.6240, specialty="SM54", sort="nearest")
        assert [c["offer"]["id"] for c in again["results"][1:]] == tied

    page2 = _search(search_api, headers, q="47000", specialty="SM54", size=1, page=2)
    assert page2["total"] == 3 and [c["offer"]["id"] for c in page2["results"]] == [THOMAS_1]

    explained = _search(search_api, headers, q="47000", specialty="SM54", explain="true")
    for card in explained["results"]:
        e = card["explain"]
        assert e["sort"] == "balanced" and 0.0 <= e["rotation"] <= 1.0
        # The score Elasticsearch computed is the documented formula.
        assert e["score"] == pytest.approx(0.5 * e["distance_score"] + 0.5 * e["time_score"] + 0.0001 * e["rotation"],
                                           abs=1e-5)
        assert e["distance_km"] == pytest.approx(card["distance_km"], abs=0.01)
    scores = [c["explain"]["score"] for c in explained["results"]]
    assert scores == sorted(scores, reverse=True)
    assert "explain" not in earliest["results"][0] or earliest["results"][0]["explain"] is None


def test_same_query_same_ranking_for_every_operator(search_api, token_for, agen):
    first = _search(search_api, token_for("osnp", territories=["SAS-47"]), q="47000", specialty="SM54")
    second = _search(search_api, token_for("regulator", territories=["SAS-33"]), q="47000", specialty="SM54")
    assert [c["offer"]["id"] for c in first["results"]] == [c["offer"]["id"] for c in second["results"]]
