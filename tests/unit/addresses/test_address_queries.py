"""Pure parts of the address box and the card distance (issue 16, points 2b and 4)."""

from __future__ import annotations

import pytest

from search_api.addresses import split_number
from search_api.query.addresses import locate_body, numbers_body, suggest_body


def test_suggest_body_folds_and_prefix_matches_streets_only():
    body = suggest_body("Rue Sainte-Cathé", limit=6)
    assert body["size"] == 6
    assert body["query"]["bool"]["must"] == [
        {"match_bool_prefix": {"suggest": {"query": "rue sainte cathe", "operator": "and"}}}]
    assert body["query"]["bool"]["filter"] == [{"term": {"kind": "street"}}]
    assert suggest_body("r", limit=6) is None and suggest_body("rue x", limit=0) is None


def test_numbers_and_locate_bodies_use_the_match_keys():
    assert numbers_body([]) is None and locate_body(address_key="", street_key="") is None
    body = numbers_body(["33063|rue sainte catherine|12"])
    assert {"terms": {"address_key": ["33063|rue sainte catherine|12"]}} in body["query"]["bool"]["filter"]
    should = locate_body(address_key="k|1", street_key="k")["query"]["bool"]["should"]
    assert [c["bool"]["filter"][1]["term"]["kind"] for c in should] == ["address", "street"]


@pytest.mark.parametrize(("typed", "expected"), [
    ("12 bis rue de la Paix", ("12", "bis", "rue de la paix")),
    ("12 Boulevard Victor Hugo", ("12", "", "boulevard victor hugo")),
    ("12b rue X", ("12", "b", "rue x")),
    ("rue de la Paix", ("", "", "rue de la paix")),
])
def test_split_number(typed, expected):
    assert split_number(typed) == expected


@pytest.mark.parametrize(("km", "precision", "shown", "approx"), [
    (0.35, "address", "(350 m)", False),
    (2.4, "street", "(2,4 km)", False),
    (2.4, "municipality", "(≈ 2 km, centre de la commune)", True),
    (0.2, "municipality", "(&lt; 1 km, centre de la commune)", True),
    (3.6, "postcode", "(≈ 4 km, centre du code postal)", True),
])
def test_card_distance_says_how_exact_it_is(km, precision, shown, approx):
    from search_api.web.render import templates

    macro = templates.env.get_template("fragments/distance.html").module.distance
    text = str(macro(km, precision))
    assert shown in text
    assert ('class="distance approx"' in text) is approx
