"""Issue 17, points 1 and 2, for the account manager's, the admin's and the practitioner's screens and the CPTS
page, in Chromium on desktop (1366×900) and phone (390×844): DSFR tables with captions, badges, buttons and
alerts, and axe-core with 0 violations under the real Content-Security-Policy on every page visited.
Screenshots: tests/e2e/artifacts/2x-*.png."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.axe import assert_accessible
from tests.e2e.conftest import login
from tests.e2e.test_browser import book, search_bordeaux

pytestmark = pytest.mark.integration
VIEWPORTS = {"desktop": (1366, 900), "phone": (390, 844)}


def _dsfr_tables(page, count: int) -> None:
    """Each table of the page is a DSFR table with a caption (RGAA 5.4: a data table has a title)."""
    tables = page.locator("main table")
    expect(tables).to_have_count(count)
    for i in range(count):
        table = tables.nth(i)
        assert table.locator("xpath=ancestor::div[contains(concat(' ', @class, ' '), ' fr-table ')]").count() >= 1
        assert table.locator("caption").inner_text().strip()


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_account_manager_journey(base_url, new_page, shoot, viewport):
    page = new_page(*VIEWPORTS[viewport])
    login(page, base_url, role="account_manager", name=f"Gestionnaire {viewport}", next_path="/app/comptes")
    expect(page.get_by_role("heading", level=1)).to_have_text("Comptes régulateurs")
    _dsfr_tables(page, 1)
    assert_accessible(page, "comptes")
    shoot(page, f"20-manager-accounts-{viewport}")
    page.locator("main").get_by_role("link", name="Voir seulement les comptes non transmis").click()
    expect(page).to_have_url(re.compile(r"bloques=true"))
    assert_accessible(page, "comptes non transmis")

    page.goto(f"{base_url}/app/tableaux/orientations")
    expect(page.get_by_role("heading", level=1)).to_have_text("Orientations")
    statut = page.get_by_label("Statut")
    expect(statut).to_have_class(re.compile(r"\bfr-select\b"))
    expect(page.get_by_role("button", name="Filtrer")).to_have_class(re.compile(r"\bfr-btn\b"))
    assert page.locator("table.data caption").count() == 1
    assert_accessible(page, "orientations")
    shoot(page, f"21-manager-orientations-{viewport}")
    statut.select_option("cancelled")                               # htmx swaps the table
    expect(page).to_have_url(re.compile(r"statut=cancelled"))
    # read out, not shown (the h1 says it)
    expect(page.locator("#tableau table.data caption")).to_have_text("Orientations")
    assert_accessible(page, "orientations, filtered")

    page.goto(f"{base_url}/app/tableaux/declarations")
    expect(page.get_by_role("heading", level=1)).to_have_text("Déclarations")
    _dsfr_tables(page, 2)
    assert_accessible(page, "declarations")
    shoot(page, f"22-manager-declarations-{viewport}")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_admin_harvest_journey(base_url, new_page, shoot, viewport):
    page = new_page(*VIEWPORTS[viewport])
    login(page, base_url, role="admin", name=f"Admin {viewport}", next_path="/app/tableaux/collecte")
    expect(page.get_by_role("heading", level=1)).to_have_text("Santé de la collecte par éditeur")
    _dsfr_tables(page, 1)
    rows = page.locator("main table tbody tr")
    assert rows.count() >= 1
    assert_accessible(page, "collecte")
    shoot(page, f"23-admin-harvest-{viewport}")
    page.goto(f"{base_url}/app/comptes")
    expect(page.get_by_role("heading", level=1)).to_have_text("Comptes régulateurs")
    assert_accessible(page, "comptes (admin)")


@pytest.fixture(scope="module")
def agen_cpts(es, wf_settings, base_url):
    """A CPTS in Agen and three members (one of another specialty), written to the e2e directory and slots
    indices: far from Bordeaux, so the other journeys' results are unchanged."""
    from datetime import UTC, datetime, timedelta

    from elasticsearch import helpers

    from mappings.registry import alias_name
    from tests.integration.search.conftest import AGEN, offer, slot

    finess = "470088888"
    cpts = offer(f"e2e-cpts-{finess}", name="CPTS Agen Confluent", kind="cpts", lat=AGEN["lat"], lon=AGEN["lon"],
                 finess=finess, specialties=(), phone="+33553000001")
    members = [offer(f"e2e-cpts-m{i}", name=name, national_id=f"81000000880{i}", lat=AGEN["lat"] + i / 500,
                     lon=AGEN["lon"], specialties=specialties, cpts_finess=finess, cpts_name="CPTS Agen Confluent")
               for i, (name, specialties) in enumerate((("Dr Anne AGENAISE", ("SM54",)), ("Dr Paul PRUNEAU", ("SM54",)),
                                                        ("Dr Nadia NEURO", ("SM32",))), start=1)]
    soon = datetime.now(UTC) + timedelta(hours=2)
    slots = [slot(f"e2e-cpts:s{i}", of=m, start=soon + timedelta(minutes=30 * i)) for i, m in enumerate(members)]
    helpers.bulk(es, ({"_index": alias_name(wf_settings.index_prefix, "offers"), "_id": o["id"], "_source": o}
                      for o in [cpts, *members]), refresh=True)
    helpers.bulk(es, ({"_index": alias_name(wf_settings.index_prefix, "slots"), "_id": s["id"], "_source": s}
                      for s in slots), refresh=True)
    return finess


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_cpts_page(base_url, new_page, shoot, viewport, agen_cpts):
    page = new_page(*VIEWPORTS[viewport])
    login(page, base_url, role="regulator", territories="SAS-33 SAS-47", name=f"CPTS {viewport}")
    page.goto(f"{base_url}/app/cpts/{agen_cpts}?specialite=SM54&fenetre=0-4h")
    expect(page.get_by_role("heading", level=1)).to_have_text("CPTS Agen Confluent")
    back = page.get_by_role("link", name="Retour à la recherche")
    expect(back).to_have_class(re.compile(r"\bfr-link\b"))
    assert "specialite=SM54" in back.get_attribute("href")
    expect(page.locator("main ol.cards > li.card")).to_have_count(3)
    expect(page.locator("#autres-specialites")).to_be_visible()
    expect(page.locator(".cpts-tag")).to_have_class(re.compile(r"\bfr-tag\b|\bfr-badge\b"))
    expect(page.locator("#carte-cpts .leaflet-interactive")).to_have_count(3)       # every member on the map
    expect(page.locator("#carte-cpts-sans-fond")).to_contain_text("aucun serveur de tuiles n'est configuré")
    first_card = page.locator("main ol.cards > li.card").first.bounding_box()
    # phone: list first
    assert first_card["y"] < page.locator("#carte-cpts").bounding_box()["y"] or viewport == "desktop"
    assert_accessible(page, "cpts")
    shoot(page, f"24-cpts-{viewport}")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_cancel_confirmation(base_url, new_page, shoot, viewport):
    page = new_page(*VIEWPORTS[viewport])
    login(page, base_url, role="regulator", name=f"Annulation {viewport}")
    search_bordeaux(page)
    card = page.locator("ol.cards > li.card").last      # the last card: the other journeys' cards keep their slots
    book(page, card, card.locator("button.slot").first)
    expect(card.get_by_text("Orientation enregistrée")).to_be_visible()
    page.goto(f"{base_url}/app/tableaux/orientations")
    page.locator("#tableau a[href$='/annuler']").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Annuler cette orientation ?")
    expect(page.get_by_role("button", name="Confirmer l'annulation")).to_have_class(re.compile(r"\bfr-btn\b"))
    assert_accessible(page, "confirm cancel")
    shoot(page, f"25-confirm-cancel-{viewport}")
    page.get_by_role("button", name="Confirmer l'annulation").click()
    expect(page.locator(".fr-alert--success")).to_be_visible()
    assert_accessible(page, "orientation cancelled")
    shoot(page, f"26-cancelled-{viewport}")


@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_practitioner_space(base_url, new_page, shoot, viewport, wf_offers):
    from datetime import date, timedelta

    offer = wf_offers["agenda"][1]
    page = new_page(*VIEWPORTS[viewport])
    login(page, base_url, role="effecteur", territories="", name=offer["name"], national_id=offer["national_id"],
          next_path="/app/espace")
    expect(page.get_by_role("heading", level=1)).to_have_text("Mon espace effecteur")
    _dsfr_tables(page, 1)
    expect(page.locator("#agenda").get_by_label("Date")).to_have_class(re.compile(r"\bfr-input\b"))
    expect(page.get_by_role("button", name="Publier le créneau")).to_have_class(re.compile(r"\bfr-btn\b"))
    assert_accessible(page, "espace")
    shoot(page, f"27-practitioner-space-{viewport}")
    # A period that ends before it starts is refused in a DSFR alert, nothing stored.
    form = page.locator("#indisponibilites form").last
    form.get_by_label("Du", exact=True).fill((date.today() + timedelta(days=3)).isoformat())
    form.get_by_label("Au (inclus)").fill((date.today() + timedelta(days=1)).isoformat())
    form.get_by_role("button", name="Déclarer l'indisponibilité").click()
    expect(page.locator(".fr-alert--error")).to_be_visible()
    expect(page.locator("#indisponibilites li", has_text="Aucune indisponibilité en cours.")).to_have_count(1)
    assert_accessible(page, "espace, refused period")
    shoot(page, f"28-practitioner-refused-{viewport}")
