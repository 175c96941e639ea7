"""In a real browser, on the generated demo world (issue 16): the operator types a number and the start of
a street, picks the suggested address, and the search is centred there — cards with distinct distances
measured address to address, and as many distinct markers on the map."""

from __future__ import annotations

import re

import pytest
import uvicorn
from playwright.sync_api import expect

from bench.common import free_port
from tests.e2e.conftest import login

# The generated demo world (BAN files + directory + harvest) of the address tests, reused as it is.
from tests.integration.addresses.conftest import demo_world  # noqa: F401
from tests.integration.workflow.conftest import ServerThread

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def demo_url(demo_world, es):  # noqa: F811 - the imported fixture
    from search_api.app import create_app

    port = free_port()
    config = uvicorn.Config(create_app(demo_world.settings, es=es), host="127.0.0.1", port=port, log_level="warning")
    with ServerThread(config):
        yield f"http://127.0.0.1:{port}"


def test_pick_a_suggested_address_and_search_around_it(demo_url, demo_world, es, new_page, shoot):  # noqa: F811
    hits = es.search(index=demo_world.alias("addresses"), size=500,
                     query={"bool": {"filter": [{"term": {"insee": "33063"}}, {"term": {"kind": "address"}}]}})
    address = next(h["_source"] for h in hits["hits"]["hits"]
                   if len(h["_source"]["street"].split()) >= 3 and not h["_source"].get("rep"))
    page = new_page()
    login(page, demo_url, role="regulator", territories="SAS-33", name="Pauline Ricart")
    box = page.get_by_label("Adresse du patient")
    box.press_sequentially(f"{address['number']} {address['street'][:-3].lower()}", delay=20)
    option = page.locator(f"#suggestions-adresse option[value=\"{address['label']}\"]")
    expect(option).to_have_count(1)
    box.fill(address["label"])
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", name=re.compile("Résultats pour"))).to_be_visible()
    cards = page.locator("ol.cards > li.card")
    expect(cards.first).to_be_visible()
    distances = [d.strip() for d in page.locator("ol.cards > li.card .distance").all_inner_texts()]
    assert len(distances) >= 5 and len(set(distances)) >= 0.7 * len(distances), distances
    # Measured from the address: no "centre de la commune" caveat on cards placed at theirs.
    assert any("centre de la commune" not in d for d in distances)
    markers = page.locator("#carte .leaflet-interactive")
    assert markers.count() >= 6
    shoot(page, "addresses-01-search-at-address")
