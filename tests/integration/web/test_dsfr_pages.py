"""Issue 17, points 1 and 5 through the real app (real Elasticsearch): the DSFR layout and its public
information pages, the assets it needs served under the page CSP, and the confirmation steps of the two
irreversible actions (a booking, a "professionnel indisponible" report), both plain forms (no JavaScript)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from search_api.app import create_app
from tests.integration.web.test_pages import sign_in

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def web(settings, es, indices):
    with TestClient(create_app(settings, es=es), follow_redirects=False) as client:
        yield client


def _csrf(client: TestClient) -> str:
    return client.get("/app/recherche").text.split('data-csrf="', 1)[1].split('"', 1)[0]


@pytest.mark.parametrize("path, heading", [("/mentions-legales", "Mentions légales"),
                                           ("/donnees-personnelles", "Données personnelles"),
                                           ("/accessibilite", "Déclaration d'accessibilité")])
def test_information_pages_are_public_and_linked_from_every_footer(web, path, heading):
    web.cookies.clear()
    page = web.get(path)
    assert page.status_code == 200 and f"<h1>{heading}</h1>" in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    login = web.get("/login")
    for link in ("/mentions-legales", "/donnees-personnelles", "/accessibilite"):
        assert f'href="{link}"' in login.text


def test_the_accessibility_statement_is_honest(web):
    page = web.get("/accessibilite").text
    # No RGAA audit has been made: the only status the rules allow is "non conforme", in the footer too.
    assert "est non conforme avec le référentiel général d'amélioration de l'accessibilité" in page
    assert "Accessibilité : non conforme" in page and "partiellement conforme</a>" not in page


def test_layout_is_dsfr_and_its_assets_are_served(web):
    sign_in(web, "regulator")
    page = web.get("/app/recherche").text
    assert '<p class="fr-logo">République<br>Française</p>' in page
    assert "fr-header__service-title" in page and "Service d'accès aux soins" in page
    assert 'href="#resultats">Aller aux résultats</a>' in page           # skip link to the results
    for asset, kind in (("/static/vendor/dsfr/dsfr.min.css", "text/css"),
                        ("/static/vendor/dsfr/dsfr.module.min.js", "javascript"),
                        ("/static/vendor/dsfr/fonts/Marianne-Regular.woff2", "font/woff2"),
                        ("/static/vendor/dsfr/icons/system/fr--info-fill.svg", "image/svg")):
        assert asset in page or kind != "text/css" or False
        answer = web.get(asset)
        assert answer.status_code == 200 and kind in answer.headers["content-type"], asset


def test_a_slot_click_only_asks_for_confirmation(web, es, settings):
    sign_in(web, "regulator")
    csrf = _csrf(web)
    first = web.post("/app/reserver", data={"slot_id": "nowhere:slot-0", "csrf": csrf, "cle": "k" * 20,
                                            "libelle": "mardi 01/12 à 14h10 chez <b>Dr X</b>", "cible": "reponse-3"})
    assert first.status_code == 200
    assert "Confirmer la réservation" in first.text and 'name="confirmer" value="oui"' in first.text
    assert 'name="cle" value="kkkkkkkkkkkkkkkkkkkk"' in first.text    # the same idempotency key on the second step
    assert "&lt;b&gt;Dr X&lt;/b&gt;" in first.text                         # echoed text stays text
    assert 'role="alert"' not in first.text and "Orientation enregistrée" not in first.text
    # The second step is the booking itself (here an unknown slot: a clear message).
    second = web.post("/app/reserver", data={"slot_id": "nowhere:slot-0", "csrf": csrf, "confirmer": "oui"},
                      headers={"HX-Request": "true"})
    assert second.status_code == 200 and 'role="alert"' in second.text
    # A forged target is not echoed into the confirmation form's hx-target.
    forged = web.post("/app/reserver", data={"slot_id": "nowhere:slot-0", "csrf": csrf, "cible": "x\" onclick=\"a"},
                      headers={"HX-Request": "true"})
    assert "hx-target" not in forged.text.split("<form", 1)[1].split(">", 1)[0]


def test_unavailable_report_asks_for_confirmation(web, es, settings):
    sign_in(web, "osnp")
    csrf = _csrf(web)
    ask = web.post("/app/signaler", data={"csrf": csrf, "offer_id": "nowhere:offer-1", "kind": "unavailable",
                                          "comment": "absent", "nom": "Dr Y"}, headers={"HX-Request": "true"})
    assert ask.status_code == 200 and "Confirmer l'indisponibilité" in ask.text
    assert "Dr Y sera retiré de la recherche pour tous les opérateurs" in ask.text
    assert 'name="confirmer" value="oui"' in ask.text and "Signalement enregistré" not in ask.text
    declarations = es.search(index=f"{settings.index_prefix}-*", query={"term": {"offer_id": "nowhere:offer-1"}},
                             size=0, ignore_unavailable=True, allow_no_indices=True)
    assert declarations["hits"]["total"]["value"] == 0                      # nothing was recorded yet
