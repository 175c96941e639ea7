"""End to end in a real browser: search → book → dashboard; a report (declaration); a practitioner
publishing a slot in the platform agenda that then appears in the regulator's search."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import login

pytestmark = pytest.mark.integration
PARIS = ZoneInfo("Europe/Paris")


def search_bordeaux(page) -> None:
    address = page.get_by_label("Adresse du patient")
    address.fill("3300")
    # Suggestions come from the platform's own gazetteer (datalist filled by htmx).
    expect(page.locator("#suggestions-adresse option[value='33000 Bordeaux']")).to_have_count(1)
    address.fill("33000 Bordeaux")
    url_before = page.url
    page.get_by_role("button", name="Rechercher").click()
    expect(page.get_by_role("heading", name=re.compile("Résultats pour la zone"))).to_be_visible()
    # Results came as a fragment: the page was not reloaded, the URL was pushed.
    assert page.evaluate("window.performance.getEntriesByType('navigation').length") == 1
    assert page.url != url_before and "q=33000" in page.url
    assert_accessible(page, "search results")


def book(page, card, slot) -> None:
    """Issue 17, point 5: a slot click asks; "Confirmer la réservation" books."""
    slot.click()
    card.get_by_role("button", name="Confirmer la réservation").click()


def test_search_book_and_see_orientation(base_url, new_page, shoot, wf_offers):
    page = new_page()
    login(page, base_url, role="regulator", name="Pauline Ricart")
    expect(page.get_by_label("Spécialité")).to_be_visible()
    search_bordeaux(page)
    cards = page.locator("ol.cards > li.card")
    expect(cards.first).to_be_visible()
    assert cards.count() >= 5
    assert page.locator("#carte.leaflet-container").count() == 1          # the map was drawn
    assert page.locator("#carte .leaflet-interactive").count() >= 6        # search point + practice places
    shoot(page, "01-search-desktop")

    card = cards.first
    practitioner = card.locator("h3").inner_text().split(" ", 1)[1].strip()
    first_slot = card.locator("button.slot").first
    slot_label = first_slot.get_attribute("aria-label")
    book(page, card, first_slot)
    expect(card.get_by_text("Orientation enregistrée")).to_be_visible()
    assert_accessible(page, "booked")
    shoot(page, "02-booked")

    page.get_by_role("link", name="Orientations", exact=True).click()
    table = page.locator("table.data")
    row = table.locator("tbody tr", has_text=practitioner).first
    expect(row).to_be_visible()
    expect(row).to_contain_text("SAS-33")
    expect(row).to_contain_text(re.compile("Orientée|Confirmé|En attente"))
    export = page.get_by_role("link", name="Exporter en CSV").get_attribute("href")
    assert export.startswith("/app/tableaux/orientations.csv")
    assert_accessible(page, "orientations")
    shoot(page, "03-dashboard-orientations")
    assert slot_label and practitioner in slot_label

    # A contextual call (INT_L01 parameters) opens the search pre-filled, the patient's own doctor first.
    own = wf_offers["medilib"][2]
    page.goto(f"{base_url}/app/recherche?adresse=12+rue+Sainte-Catherine&code_postal=33000&ville=Bordeaux"
              f"&specialite=SM54&medecin_traitant={own['national_id']}")
    assert page.get_by_label("Adresse du patient").input_value().endswith("33000 Bordeaux")
    first = page.locator("ol.cards > li.card").first
    expect(first.locator(".own-doctor")).to_have_text("Médecin traitant du patient")
    expect(first.locator("h3")).to_contain_text(own["name"])

    phone = new_page(390, 844)
    login(phone, base_url, role="osnp", name="Opérateur Mobile")
    search_bordeaux(phone)
    expect(phone.locator("ol.cards > li.card").first).to_be_visible()
    # No horizontal scrolling at phone width.
    assert phone.evaluate("document.documentElement.scrollWidth") <= 390 + 1
    assert_accessible(phone, "search results, phone")
    shoot(phone, "04-search-phone")


def test_contextual_call_from_regulation_software(base_url, new_page, shoot, wf_offers):
    """The regulation software opens the platform with the national platform's parameter names: the operator
    signs in and lands on the pre-filled search, the patient's own doctor first and said so."""
    own = wf_offers["medilib"][2]
    call = urlencode({"origin": "fr.health.samu330", "streetnumber": "12", "streetname": "rue Sainte-Catherine",
                      "inseecode": "33063", "specialty": "urn:oid:1.2.250.1.213.2.28|SM54",
                      "practitioner": f"urn:oid:1.2.250.1.71.4.2.1|{own['national_id']}"})
    page = new_page()
    page.goto(f"{base_url}/app/recherche?{call}")
    assert "/login" in page.url, page.url     # no session yet: the login keeps where the call was going
    page.get_by_label("Rôle").select_option("osnp")
    page.get_by_label("Territoire(s) SAS").fill("SAS-33")
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(re.compile(r"/app/recherche\?.*inseecode=33063"))
    expect(page.get_by_label("Adresse du patient")).to_have_value("12 rue Sainte-Catherine, 33000 Bordeaux")
    expect(page.get_by_label("Spécialité")).to_have_value("SM54")
    expect(page.locator("#appel-contextuel")).to_contain_text("sa fiche est affichée en premier")
    first = page.locator("ol.cards > li.card").first
    expect(first.locator(".own-doctor")).to_have_text("Médecin traitant du patient")
    expect(first.locator("h3")).to_contain_text(own["name"])
    assert_accessible(page, "contextual call")
    shoot(page, "05-contextual-call")


UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
  .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.textContent || '').trim())
  .map(e => e.outerHTML.slice(0, 120))"""


def test_report_a_practitioner(base_url, new_page, shoot):
    page = new_page()
    login(page, base_url, role="osnp", name="Claude Monnez")
    # Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Aller au contenu"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "contenu"
    search_bordeaux(page)
    assert page.evaluate(UNLABELLED) == []          # every control has a label or an accessible name
    # A slot can be reached and activated from the keyboard alone.
    page.locator("button.slot").first.focus()
    assert page.evaluate("document.activeElement.classList.contains('slot')")
    card = page.locator("ol.cards > li.card").nth(1)
    practitioner = card.locator("h3").inner_text().split(" ", 1)[1].strip()
    card.get_by_text("Signaler").click()
    card.get_by_label("Motif").select_option("wrong_specialty")
    card.get_by_label("Commentaire (jamais de données patient)").fill("Pédiatre, pas généraliste")
    card.get_by_role("button", name="Envoyer le signalement").click()
    expect(card.get_by_text("Signalement enregistré")).to_be_visible()
    assert_accessible(page, "reported")

    page.get_by_role("link", name="Déclarations", exact=True).click()
    row = page.locator("table.data").first.locator("tbody tr", has_text="Mauvaise spécialité").first
    expect(row).to_contain_text(practitioner)
    expect(row).to_contain_text("Claude Monnez")
    assert_accessible(page, "declarations")
    shoot(page, "05-declarations")


def test_practitioner_publishes_a_slot_seen_in_search(base_url, new_page, shoot, wf_offers):
    offer = next(o for o in wf_offers["agenda"] if not o["sas"]["accepts_beyond"])
    tomorrow = (datetime.now(PARIS) + timedelta(days=1)).date()
    page = new_page()
    login(page, base_url, role="effecteur", territories="", name=offer["name"], national_id=offer["national_id"],
          next_path="/app/espace")
    agenda = page.locator("#agenda")
    agenda.get_by_label("Date").fill(tomorrow.isoformat())
    agenda.get_by_label("Début").fill("06:05")
    agenda.get_by_label("Fin").fill("06:25")
    agenda.get_by_role("button", name="Publier le créneau").click()
    expect(page.get_by_text("Créneau publié")).to_be_visible()
    expect(page.locator("#agenda ul.agenda li", has_text="06h05")).to_have_count(1)
    shoot(page, "06-practitioner-agenda")

    regulator = new_page()
    login(regulator, base_url, role="regulator", name="Pauline Ricart")
    search_bordeaux(regulator)
    slot = regulator.locator(f"button.slot[aria-label*='06h05'][aria-label*='{offer['name']}']")
    expect(slot).to_have_count(1)
    shoot(regulator, "07-published-slot-in-search")

    # The regulator books it; the practitioner sees the orientation and confirms the consultation.
    # The card by its id: the booked slot leaves it, so a "has=slot" locator would no longer match it.
    card = regulator.locator("#" + regulator.locator("ol.cards > li.card", has=slot).get_attribute("id"))
    book(regulator, card, slot)
    expect(card.get_by_text("Orientation enregistrée")).to_be_visible()
    page.reload()
    row = page.locator("#orientations tbody tr", has_text="06h05")
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Marquer honorée").click()
    expect(page.get_by_text("Consultation marquée comme honorée.")).to_be_visible()
    expect(page.locator("#orientations tbody tr", has_text="06h05")).to_contain_text("Honoré")
    assert_accessible(page, "practitioner space")
    shoot(page, "08-practitioner-honoured")
