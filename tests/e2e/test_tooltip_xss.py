"""Issue 15, point 12, in a real Chromium: a practice place whose name carries markup appears in the map's
tooltip as text (no element built from it, nothing run), and the card shows the same text."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import httpx
import pytest
from playwright.sync_api import expect

from mappings.common import GeoPoint
from mappings.offers import OfferAddress, OfferDoc, OfferSas
from mappings.registry import alias_name
from sas_core.text import fold
from tests.e2e.conftest import login

pytestmark = pytest.mark.integration

EVIL = 'Dr <img src=x onerror="document.body.dataset.pwned=1"> <b>Piège</b>'
NATIONAL_ID = "810009990123"


def test_offer_name_with_markup_is_text_in_the_map_tooltip(base_url, wf_settings, es, token_for, new_page):
    offer = OfferDoc(
        id="e2e-xss-offer", kind="ps", national_id=NATIONAL_ID, national_id_type="rpps", last_name="PIEGE",
        first_name="Dr", name=EVIL, name_folded=fold(EVIL), profession_code="10",
        # a specialty no other e2e offer has: the search below finds this place only
        specialties=["SM40"], specialty_labels=["Pédiatrie"],
        address=OfferAddress(line="5 cours de l'Intendance", postcode="33000", city="Bordeaux",
                             city_folded="bordeaux", text="5 cours de l'Intendance, 33000 Bordeaux"),
        departement="33", territory="SAS-33", location=GeoPoint(lat=44.8420, lon=-0.5760), phones=["+33556000099"],
        sas=OfferSas(participates=True), source="rpps",
    ).model_dump(mode="json")
    es.index(index=alias_name(wf_settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    start = (datetime.now(timezone.utc) + timedelta(hours=3)).replace(microsecond=0)
    published = httpx.post(f"{base_url}/v1/agenda/slots",
                           headers=token_for("effecteur", national_id=NATIONAL_ID, sub="e2e-xss-effecteur"),
                           json={"offer_id": offer["id"], "items": [{
                               "start": start.isoformat(), "end": (start + timedelta(minutes=20)).isoformat(),
                               "types": ["SNP"]}]}, timeout=30)
    assert published.status_code == 201, published.text

    page = new_page()
    login(page, base_url, role="regulator", name="Pauline Ricart")
    page.goto(f"{base_url}/app/recherche?q=33000+Bordeaux&specialite=SM40")
    card = page.locator("ol.cards > li.card").first
    expect(card.locator("h3")).to_contain_text("<img src=x onerror=")      # the card: escaped text
    # The search point (a circle) + this place (issue 17: a numbered divIcon marker, its number as text).
    markers = page.locator("#carte .leaflet-interactive")
    expect(markers).to_have_count(2)
    expect(page.locator("#carte .map-num")).to_have_text("1")
    for index in range(markers.count()):
        markers.nth(index).dispatch_event("mouseover")
    tooltips = page.locator(".leaflet-tooltip")
    expect(tooltips.filter(has_text="Piège")).to_have_count(1)
    tooltip = tooltips.filter(has_text="Piège")
    assert tooltip.inner_text().strip() == f"1. {EVIL}"                   # the markup, shown as typed
    assert tooltip.locator("img, b").count() == 0                          # no element built from the name
    assert page.locator("body").get_attribute("data-pwned") is None
