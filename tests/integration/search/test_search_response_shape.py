"""``/v1/search`` and ``/v1/search/beyond`` answers are serialized as the service shaped them, without a
second validation (``shaped_response``): each answer must be exactly what its published model would
produce — it validates against the model (no extra field, right types) and the model's own
serialization of it is the same bytes (every field present, same order, same date-time and number
formats)."""

from __future__ import annotations

import json

import pytest

from search_api.schemas.search import BeyondSearchOut, SearchOut
from tests.integration.search.conftest import AGEN, offer, slot


def _same_as_model(model, raw: bytes) -> dict:
    body = json.loads(raw)
    reserialized = model.model_validate(body).model_dump_json(by_alias=True).encode()
    assert raw == reserialized
    return body


@pytest.fixture
def varied_world(clean, at):
    """Every kind of card: a full practitioner with a CPTS and beyond phone, a sector-2 practitioner
    with a teleconsultation and a walk-in slot, an SOS place with hours, and slots whose place the
    directory does not hold (card built from the slots)."""
    full = offer("ps-shape-full", name="Dr Anne MARTIN", national_id="810000000011", lat=AGEN["lat"] + 0.01,
                 lon=AGEN["lon"], line="3 rue Lamennais", phone="+33553000011", sector="1", accepts_beyond=True,
                 beyond_phone="+33553000099", cpts_finess="470000011", cpts_name="CPTS Agen")
    other = offer("ps-shape-other", name="Dr Paul DURAND", national_id="810000000022", lat=44.21,
                  lon=0.64, sector="2")
    sos = offer("sos-shape", name="SOS Médecins Agen", kind="sos", lat=44.19, lon=0.61, sos_hours="Mo-Su 20:00-24:00",
                geo_precision="street")
    unknown = offer("ps-shape-unknown", name="Dr Inconnu", national_id="810000000033", lat=44.2, lon=0.63)
    clean.put("offers", [full, other, sos])   # ``unknown`` stays out of the directory
    clean.put("slots", [
        slot("v:shape1", of=full, start=at(hours=1), types=("PUBLIC", "SNP"), modes=("AMB", "VR"),
             cpts=[{"finess": "470000011", "name": "CPTS Agen", "phone": "+33553000012"}],
             booking_url="https://exemple.com/rdv?x=1"),
        slot("v:shape2", of=full, start=at(hours=2, minutes=15), motive="Consultation"),
        slot("v:shape3", of=other, start=at(hours=3), modes=("VR",), capacity=2),
        slot("v:shape4", of=other, start=at(hours=4), bookable=False),
        slot("v:shape5", of=sos, start=at(hours=5), sos={"association_name": "SOS Médecins Agen",
                                                          "place_name": "Maison médicale de garde",
                                                          "place_phone": "+33553000013",
                                                          "opening_hours": "Mo-Su 20:00-24:00"}),
        slot("v:shape6", of=unknown, start=at(hours=6), booking_url=None, bookable=True),
    ])
    return clean


@pytest.mark.parametrize("params", [
    {"q": "47000 Agen", "specialty": "SM54"},
    {"q": "47000 Agen", "specialty": "SM54", "explain": "true", "slots": "5"},
    {"lat": "44.2028", "lon": "0.6256", "radius_km": "12.5", "sort": "nearest", "explain": "true"},
    {"insee": "47001", "sort": "earliest", "from": "2030-01-01T08:00:00", "to": "2030-01-02T08:00:00"},
])
def test_search_answer_is_byte_for_byte_its_model(search_api, token_for, varied_world, params):
    response = search_api.get("/v1/search", params=params, headers=token_for("osnp"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = _same_as_model(SearchOut, response.content)
    if "from" not in params:
        cards = {c["offer"]["id"]: c for c in body["results"]}
        assert {"ps-shape-full", "ps-shape-other", "sos-shape", "ps-shape-unknown"} <= set(cards)
        assert cards["ps-shape-unknown"]["offer"]["national_id"] is None      # built from its slots
        assert cards["sos-shape"]["sos"]["opening_hours"] == "Mo-Su 20:00-24:00"
        assert all(("explain" in c) for c in body["results"])
        assert all((c["explain"] is not None) == (params.get("explain") == "true") for c in body["results"])
    else:
        assert body["results"] == []      # nothing harvested that far ahead: beyond list instead
        assert [c["offer"]["id"] for c in body["beyond"]] == ["ps-shape-full"]


def test_beyond_answer_is_byte_for_byte_its_model(search_api, token_for, varied_world):
    response = search_api.get("/v1/search/beyond", params={"q": "47000 Agen", "radius_km": "7"},
                              headers=token_for("regulator"))
    assert response.status_code == 200, response.text
    body = _same_as_model(BeyondSearchOut, response.content)
    assert body["radius_km"] == 7.0 and [c["offer"]["id"] for c in body["results"]] == ["ps-shape-full"]
