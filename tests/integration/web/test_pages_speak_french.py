"""Issue 17, point 4: every message a page can show is French and says what to do.

Drives every page and form of the real app (real Elasticsearch) with bad input, as each role, and fails on
English or technical text in what the user reads (the words and patterns of ``search_api.web.messages``:
"error", "invalid", "must", pydantic's report, ``errors.pydantic.dev``, Python reprs, "None"…). The JSON API
keeps its English messages for integrators (checked at the end)."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from mappings.registry import alias_name
from search_api.app import create_app
from search_api.web.messages import technical_markers
from tests.integration.workflow.conftest import bordeaux_offer
from tests.weblogin import post_login

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def web(settings, es, indices):
    with TestClient(create_app(settings, es=es), follow_redirects=False) as client:
        yield client


class _Visible(HTMLParser):
    """The text a user reads: text nodes outside scripts and styles, and the attributes read aloud."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        # The element being skipped and how deep in elements of its name we are: a name or code the page
        # declares as not French — ``translate="no"`` (a vendor's identifier) or a ``<code lang="en">`` quotation
        # of a raw diagnostic after its French description (RGAA 8.7) — is data, not page text.
        self._skipping: list = []

    def handle_starttag(self, tag, attrs):
        values = dict(attrs)
        if self._skipping:
            if tag == self._skipping[0]:
                self._skipping[1] += 1
        elif values.get("translate") == "no" or (tag == "code" and (values.get("lang") or "").startswith("en")):
            self._skipping = [tag, 1]
            return
        if tag in ("script", "style"):
            self._hidden += 1
        if self._skipping:
            return
        for name, value in attrs:
            if name in ("aria-label", "title", "placeholder", "alt") and value:
                self.parts.append(value)

    def handle_endtag(self, tag):
        if self._skipping and tag == self._skipping[0]:
            self._skipping[1] -= 1
            if not self._skipping[1]:
                self._skipping = []
        if tag in ("script", "style") and self._hidden:
            self._hidden -= 1

    def handle_data(self, data):
        if not self._hidden and not self._skipping and data.strip():
            self.parts.append(data.strip())


def visible(page: str) -> str:
    parser = _Visible()
    parser.feed(page)
    return " ".join(parser.parts)


ALERT = re.compile(r'role="alert"[^>]*>(.*?)</', re.DOTALL)


def alerts(page: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", a)).strip() for a in ALERT.findall(page)]


def _around_markers(text: str) -> list[str]:
    """Each English or technical fragment with what surrounds it: the page is long, the culprit anywhere."""
    starts = [text.lower().find(marker.lower()) for marker in technical_markers(text)[:5]]
    return [text[max(0, start - 120):start + 120] for start in starts]


def read(web: TestClient, answer, *, what: str) -> str:
    """What the user reads after ``answer`` (a redirect is followed like a browser), checked: a 4xx or a
    200, never a 500, and French only."""
    if answer.status_code == 303:
        answer = web.get(answer.headers["location"])
    assert answer.status_code < 500, (what, answer.status_code, answer.text[:500])
    assert answer.headers["content-type"].startswith("text/html"), (what, answer.headers["content-type"],
                                                                      answer.text[:300])
    text = visible(answer.text)
    assert technical_markers(text) == [], (what, technical_markers(text), _around_markers(text))
    return answer.text


def sign_in(web: TestClient, role: str, **fields) -> str:
    web.cookies.clear()
    answer = post_login(web, {"role": role, "territories": fields.pop("territories", "SAS-33"),
                              "next": "/app/recherche", **fields})
    assert answer.status_code == 303, answer.text[:300]
    page = web.get({"effecteur": "/app/espace", "account_manager": "/app/comptes"}.get(role, "/app/recherche"))
    return page.text.split('data-csrf="', 1)[1].split('"', 1)[0]


def test_login_and_search_errors_are_french_with_closest_communes(web):
    web.cookies.clear()
    read(web, web.get("/login"), what="login page")
    for data, expected in (({"role": "regulator", "territories": "Gironde"}, "n'est pas un code de territoire"),
                           ({"role": "sorcier", "territories": "SAS-33"}, "Choisissez un rôle")):
        page = read(web, post_login(web, {**data, "next": "/app/recherche"}), what=f"login {data}")
        assert any(expected in a for a in alerts(page)), alerts(page)
    forged = web.post("/login", data={"role": "osnp", "territories": "SAS-33", "csrf": "forged"})
    assert forged.status_code == 403
    read(web, forged, what="login forged csrf")
    read(web, web.get("/login/callback", params={"error": "access_denied"}), what="oidc refused")
    read(web, web.get("/login/callback", params={"code": "x", "state": "y"}), what="oidc expired")

    sign_in(web, "osnp")
    # The misspelt commune of the issue: French, and the closest communes offered.
    for headers in ({}, {"HX-Request": "true"}):
        page = read(web, web.get("/app/recherche", params={"q": "Bordaux"}, headers=headers), what="q=Bordaux")
        (alert,) = [a for a in alerts(page) if "Bordaux" in a]
        assert "Communes proches : 33000 Bordeaux" in alert and "Saisissez" in alert, alert
    for params in ({"q": "99999"}, {"q": "xqzwv"}, {"q": "33000", "fenetre": "demain-soir"},
                   {"q": "33000", "page": "0"}, {"q": "33000", "page": "deux"},
                   {"q": "33000", "reservables": "peut-être"},
                   {"q": "33000", "secteur": "9", "modes": "XX", "kinds": "zz"}, {"q": "x" * 300},
                   {"origin": "fr.health.inconnu", "city": "Bordeaux"}):
        for headers in ({}, {"HX-Request": "true"}):
            page = read(web, web.get("/app/recherche", params=params, headers=headers), what=f"search {params}")
    read(web, web.get("/app/cpts/n-existe-pas"), what="unknown CPTS")
    read(web, web.get("/app/suggestions", params={"q": "Bord"}), what="suggestions")


def test_operator_actions_with_bad_input_answer_in_french(web, es, settings):
    here = {**bordeaux_offer(71, vendor=None), "id": "web-french-71"}
    elsewhere = {**bordeaux_offer(72, vendor=None), "id": "web-french-72", "territory": "SAS-47", "departement": "47"}
    for offer in (here, elsewhere):
        es.index(index=alias_name(settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    csrf = sign_in(web, "regulator")
    said = {}
    for path, data in (("/app/reserver", {"slot_id": "nowhere:slot-0"}), ("/app/reserver", {"slot_id": ""}),
                       ("/app/adresser", {"offer_id": "nowhere-at-all"}), ("/app/adresser", {"offer_id": here["id"]}),
                       ("/app/signaler", {"kind": "other", "offer_id": here["id"]}),
                       ("/app/signaler", {"kind": "bogus", "offer_id": here["id"]}),
                       ("/app/signaler", {"kind": "unavailable", "offer_id": elsewhere["id"]})):
        for headers in ({}, {"HX-Request": "true"}):
            # The confirmed step of the action (the first step only asks "Confirmer … ?").
            page = read(web, web.post(path, data={"csrf": csrf, "confirmer": "oui", **data}, headers=headers),
                        what=f"{path} {data}")
            assert alerts(page), (path, data, page[:500])
            said[(path, tuple(data.items()))] = alerts(page)[0]
    assert "Commentaire" in said[("/app/signaler", (("kind", "other"), ("offer_id", here["id"])))]
    assert "SAS-47" in said[("/app/signaler", (("kind", "unavailable"), ("offer_id", elsewhere["id"])))]
    assert "relancez la recherche" in said[("/app/reserver", (("slot_id", "nowhere:slot-0"),))]
    too_large = web.post("/app/signaler", data={"csrf": csrf, "kind": "other", "offer_id": here["id"],
                                                "comment": "x" * 40_000})
    assert too_large.status_code == 413 and "Revenez à la page précédente" in read(web, too_large, what="413")

    for path, params in (("/app/tableaux/orientations", {"du": "hier", "au": "2026-13-45"}),
                         ("/app/tableaux/orientations", {"statut": "perdu", "territoire": "SAS-99"}),
                         ("/app/tableaux/orientations", {"du": "2026-12-10", "au": "2026-12-01"}),
                         ("/app/tableaux/orientations", {"page": "0"}),
                         ("/app/tableaux/declarations", {"actives": "bof"}),
                         ("/app/tableaux/orientations.csv", {"du": "hier"})):
        read(web, web.get(path, params=params), what=f"{path} {params}")
    read(web, web.post("/app/tableaux/declarations/n-existe-pas/annuler", data={"csrf": csrf}), what="cancel report")

    sign_in(web, "admin")
    read(web, web.get("/app/tableaux/collecte", params={"jours": "0"}), what="harvest days")
    sign_in(web, "account_manager")
    read(web, web.get("/app/comptes", params={"bloques": "bof"}), what="accounts")


def test_practitioner_forms_with_bad_input_answer_in_french(web, es, settings):
    offer = {**bordeaux_offer(73, vendor=None), "id": "web-french-73"}
    es.index(index=alias_name(settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    csrf = sign_in(web, "effecteur", territories="", national_id=offer["national_id"], name=offer["name"])
    read(web, web.get("/app/espace"), what="practitioner page")
    today = datetime.now(timezone.utc).date()
    tomorrow, yesterday = (today + timedelta(days=1)).isoformat(), (today - timedelta(days=1)).isoformat()
    far = (today + timedelta(days=400)).isoformat()

    def post(path: str, data: dict) -> str:
        answer = web.post(path, data={"csrf": csrf, **data})
        assert answer.status_code == 303, (path, data, answer.status_code, answer.text[:300])
        error = parse_qs(urlsplit(answer.headers["location"]).query).get("erreur")
        assert error, (path, data, answer.headers["location"])
        page = read(web, answer, what=f"{path} {data}")
        assert error[0] in html.unescape(page)
        return error[0]

    slot = {"offer_id": offer["id"], "date": tomorrow, "debut": "10:00", "fin": "10:20"}
    assert "l'heure de fin doit suivre" in post("/app/espace/agenda", {**slot, "debut": "11:00", "fin": "10:00"})
    assert "Capacité : au plus 100" in post("/app/espace/agenda", {**slot, "capacite": "500"})
    assert "capacité est un nombre entier" in post("/app/espace/agenda", {**slot, "capacite": "beaucoup"})
    assert "déjà passé" in post("/app/espace/agenda", {**slot, "date": yesterday})
    post("/app/espace/agenda", {**slot, "date": far})
    post("/app/espace/agenda", {**slot, "date": "", "debut": "midi"})
    post("/app/espace/agenda", {**slot, "date": "9999-12-31", "debut": "23:00", "fin": "23:30"})
    post("/app/espace/agenda", {**slot, "offer_id": "pas-le-mien"})
    post("/app/espace/agenda", {**slot, "debut": "00:00", "fin": "23:00"})
    post("/app/espace/agenda/n-existe-pas/supprimer", {})

    assert "passée" in post("/app/espace/indisponibilites", {"offer_id": offer["id"], "du": yesterday, "au": yesterday})
    assert "fin" in post("/app/espace/indisponibilites", {"offer_id": offer["id"], "du": tomorrow, "au": yesterday})
    post("/app/espace/indisponibilites", {"offer_id": offer["id"], "du": "bientôt"})
    post("/app/espace/indisponibilites", {"offer_id": "pas-le-mien", "du": tomorrow, "au": tomorrow})
    post("/app/espace/indisponibilites/n-existe-pas/annuler", {})
    post("/app/espace/orientations/n-existe-pas/honoree", {})
    post("/app/espace/participation", {"offer_id": offer["id"], "participation": "cpts", "cpts_finess": "12"})
    post("/app/espace/participation", {"offer_id": offer["id"], "participation": "oui", "telephone": "appelez-moi"})


def test_the_json_api_keeps_its_messages_for_integrators(web, token_for):
    answer = web.get("/v1/search", params={"q": "Bordaux"}, headers=token_for("osnp", territories=["SAS-33"]))
    assert answer.status_code == 400 and answer.json()["message"].startswith("cannot place q=")
    assert web.get("/v1/search", params={"q": "33000", "page": "0"},
                   headers=token_for("osnp", territories=["SAS-33"])).headers["content-type"] == "application/json"


def test_a_replayed_booking_says_so_in_french(web, es, settings):
    """A double click (the same button's key twice) books once and says so, never a bare "replayed"."""
    offer = {**bordeaux_offer(74, vendor=None), "id": "web-french-74"}
    es.index(index=alias_name(settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    csrf = sign_in(web, "effecteur", territories="", national_id=offer["national_id"], name=offer["name"])
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    published = web.post("/app/espace/agenda", data={"csrf": csrf, "offer_id": offer["id"], "date": tomorrow,
                                                      "debut": "15:00", "fin": "15:20"})
    assert "message=" in published.headers["location"], published.headers["location"]
    page = web.get("/app/espace").text
    slot_id = html.unescape(page.split("/app/espace/agenda/", 1)[1].split("/supprimer", 1)[0])

    csrf = sign_in(web, "regulator")
    key = "cle-double-clic-0001"
    first = read(web, web.post("/app/reserver", data={"csrf": csrf, "slot_id": slot_id, "cle": key, "confirmer": "oui"},
                               headers={"HX-Request": "true"}), what="first booking")
    assert "Orientation enregistrée" in first and "déjà enregistrée" not in first
    again = read(web, web.post("/app/reserver", data={"csrf": csrf, "slot_id": slot_id, "cle": key, "confirmer": "oui"},
                               headers={"HX-Request": "true"}), what="replayed booking")
    assert "Cette orientation était déjà enregistrée" in again and "replayed" not in again


@pytest.mark.parametrize("role, paths", [
    ("regulator", ["/app/recherche", "/app/recherche?q=33000", "/app/tableaux/orientations",
                   "/app/tableaux/declarations", "/app/tableaux/declarations?actives=true", "/app/cpts/cpts-330012345",
                   "/app/espace", "/app/tableaux/collecte"]),
    ("admin", ["/app/tableaux/collecte", "/app/comptes", "/app/comptes?bloques=true"]),
    ("account_manager", ["/app/comptes", "/app/recherche"]),
    ("effecteur", ["/app/espace", "/app/recherche?q=Bordeaux"]),
])
def test_every_page_as_each_role_reads_french(web, es, settings, role, paths):
    """Each page as it normally shows (and the 403 page where the role has no access). The CPTS has no address
    in the directory: its page used to print Python's "None"."""
    from tests.integration.web.test_pages import directory_cpts

    directory_cpts(es, settings, "330012345", "CPTS Bordeaux Rive Gauche")
    sign_in(web, role, **({"national_id": "810000000009"} if role == "effecteur" else {}))
    for path in paths:
        read(web, web.get(path), what=f"{role} {path}")


def test_the_harvest_page_describes_vendor_failures_in_french(web, es, settings):
    """The harvest-health page showed a run's raw diagnostic ("6 of 6 batches failed…", an exception's text) and
    vendors' names read as English words ("acme-vendor"). Diagnostics are described in French; one no rule knows
    is quoted as is, marked as English; names are marked as not to be translated."""
    from tests.integration.web.test_ui_data import _run

    _run(es, settings.index_prefix, vendor="acme-vendor", status="failed", minutes_ago=1,
         errors=["batch 2: the server sent garbage (unexpected token at offset 17)"])
    _run(es, settings.index_prefix, vendor="acme-other-vendor", status="partial", minutes_ago=1,
         errors=["3 of 8 batches failed; their slots were kept and marked stale"])
    sign_in(web, "admin")
    text = read(web, web.get("/app/tableaux/collecte"), what="admin /app/tableaux/collecte")
    assert "3 lot(s) de requêtes sur 8 en échec" in text and "Erreur de collecte" in text
    page = web.get("/app/tableaux/collecte").text
    assert '<code lang="en">batch 2: the server sent garbage (unexpected token at offset 17)</code>' in page
    assert '<th scope="row" translate="no">acme-vendor</th>' in page


def test_names_typed_by_users_are_data_not_page_text(web, es, settings):
    """The fuzz test signs in with the family name "invalid request" (an example of the schema): the accounts
    page shows it as typed, in a cell marked not to be translated (a browser's translator must not turn a
    surname into a word either); the page's own words stay French."""
    account = {"id": "web-french-english-name", "family_name": "invalid request", "given_name": "backend_timeout",
               "email": "error@example.org", "territories": ["SAS-33"], "roles": ["regulator"], "active": True,
               "vendor_sync": []}
    es.index(index=alias_name(settings.index_prefix, "accounts"), id=account["id"], document=account, refresh=True)
    sign_in(web, "admin")
    page = read(web, web.get("/app/comptes"), what="admin /app/comptes with an English surname")
    assert '<td translate="no">invalid request</td>' in page and '<td translate="no">error@example.org</td>' in page
