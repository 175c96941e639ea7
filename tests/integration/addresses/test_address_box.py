"""The operator's address box (issue 16, point 2b): numbered addresses and streets suggested as the
operator types, from the ``addresses`` index (accents folded in Python, prefixes served by the core's
``index_prefixes``), then the search centred on the picked address — not on its commune's centroid."""

from __future__ import annotations

import pytest

from tests.weblogin import post_login

pytestmark = pytest.mark.integration

HEADERS = {"territories": ["SAS-33", "SAS-47", "SAS-75"]}


@pytest.fixture(scope="module")
def bordeaux_address(es, demo_world) -> dict:
    """A numbered address of Bordeaux in the loaded base, on a street with several words."""
    hits = es.search(index=demo_world.alias("addresses"), size=500,
                     query={"bool": {"filter": [{"term": {"insee": "33063"}}, {"term": {"kind": "address"}}]}})
    for hit in hits["hits"]["hits"]:
        src = hit["_source"]
        if len(src["street"].split()) >= 3 and not src.get("rep"):
            return src
    raise AssertionError("no Bordeaux address in the generated base")


def suggest(api, token_for, q: str) -> list[dict]:
    answer = api.get("/v1/geocode/suggest", params={"q": q}, headers=token_for("osnp", **HEADERS))
    assert answer.status_code == 200, answer.text
    return answer.json()["suggestions"]


def test_typing_a_number_and_a_street_prefix_suggests_numbered_addresses(demo_api, token_for, bordeaux_address):
    a = bordeaux_address
    typed = f"{a['number']} {a['street'][:-2]}"                      # "134 Allée de la Mair"
    labels = [s["label"] for s in suggest(demo_api, token_for, typed)]
    assert a["label"] in labels, (typed, labels)
    # Accents and case do not matter (folded in Python: the minimal node has no asciifolding).
    from sas_core.text import fold

    assert a["label"] in [s["label"] for s in suggest(demo_api, token_for, fold(typed).upper())]
    # With the postcode typed too, still there; and every suggestion is a numbered address.
    found = suggest(demo_api, token_for, f"{a['number']} {a['street']} 330")
    assert a["label"] in [s["label"] for s in found]
    assert {s["kind"] for s in found} == {"address"}


def test_a_street_without_number_suggests_the_street(demo_api, token_for, bordeaux_address):
    a = bordeaux_address
    found = suggest(demo_api, token_for, f"{a['street']} bordea")
    streets = [s for s in found if s["kind"] == "street"]
    assert f"{a['street']} {a['postcode']} {a['city']}" in [s["label"] for s in streets], found
    # Communes still come first for a commune name.
    assert suggest(demo_api, token_for, "Bordea")[0]["kind"] == "municipality"


def test_session_suggestions_fragment_lists_addresses(demo_api, bordeaux_address):
    a = bordeaux_address
    demo_api.cookies.clear()
    assert post_login(demo_api, {"role": "osnp", "territories": "SAS-33",
                                         "next": "/app/recherche"}).status_code == 303
    fragment = demo_api.get("/app/suggestions", params={"q": f"{a['number']} {a['street'][:-2]}"})
    assert fragment.status_code == 200 and f'value="{a["label"]}"' in fragment.text.replace("&#39;", "'")


def test_search_is_centred_on_the_picked_address(demo_api, token_for, bordeaux_address):
    a = bordeaux_address
    headers = token_for("osnp", **HEADERS)
    for q in (a["label"], f"{a['number']} {a['street'].upper()}, {a['postcode']} BORDEAUX"):
        answer = demo_api.get("/v1/search", params={"q": q, "radius_km": 5}, headers=headers)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        origin = body["origin"]
        assert origin["precision"] == "address", (q, origin)
        assert (origin["lat"], origin["lon"]) == (a["location"]["lat"], a["location"]["lon"])
        precise = [c for c in body["results"] if c["distance_precision"] == "address"]
        assert precise, "no card measured address to address"
    # The card shows it as an exact distance, without the commune-centre caveat.
    demo_api.cookies.clear()
    post_login(demo_api, {"role": "osnp", "territories": "SAS-33", "next": "/app/recherche"})
    page = demo_api.get("/app/recherche", params={"q": a["label"]})
    assert page.status_code == 200
    assert 'title="Distance depuis l&#39;adresse"' in page.text or "title=\"Distance depuis l'adresse\"" in page.text


def test_a_number_the_base_lacks_is_placed_at_its_street_and_an_unknown_street_at_the_commune(
        demo_api, token_for, bordeaux_address):
    a = bordeaux_address
    headers = token_for("osnp", **HEADERS)
    street = demo_api.get("/v1/search", params={"q": f"8999 {a['street']}, 33000 Bordeaux", "radius_km": 5},
                          headers=headers).json()["origin"]
    assert street["precision"] == "street", street
    unknown = demo_api.get("/v1/search", params={"q": "3 impasse qui n'existe pas, 33000 Bordeaux", "radius_km": 5},
                           headers=headers).json()["origin"]
    assert unknown["precision"] == "municipality"
