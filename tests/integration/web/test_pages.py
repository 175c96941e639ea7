"""Web pages through the real app (real Elasticsearch, guarded prefix): sessions and roles, CSRF, the CSV
export, suggestions, the contextual-call pre-fill, and the OIDC login end to end against a local
identity provider (token endpoint + JWKS served over HTTP)."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient
from pydantic import SecretStr

from search_api.app import create_app
from tests.weblogin import post_login

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def web(settings, es, indices):
    with TestClient(create_app(settings, es=es), follow_redirects=False) as client:
        yield client


def sign_in(client: TestClient, role: str, **fields) -> TestClient:
    client.cookies.clear()
    answer = post_login(client, {"role": role, "territories": fields.pop("territories", "SAS-33"),
                                 "next": "/app/recherche", **fields})
    assert answer.status_code == 303 and answer.headers["location"] == "/app/recherche"
    assert "sas_session" in answer.cookies or client.cookies.get("sas_session")
    return client


@pytest.mark.parametrize("path", ["/app/recherche", "/app/tableaux/orientations", "/app/tableaux/declarations",
                                  "/app/tableaux/collecte", "/app/espace", "/app/tableaux/orientations.csv"])
def test_pages_need_a_session(web, path):
    web.cookies.clear()
    answer = web.get(path + "?x=1")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=" + (path + "?x=1").replace("/", "%2F").replace(
        "?", "%3F").replace("=", "%3D")
    # htmx fragments ask for a full-page redirect instead.
    answer = web.get(path, headers={"HX-Request": "true"})
    assert answer.status_code == 204 and answer.headers["HX-Redirect"].startswith("/login?next=")


def test_root_and_login_page(web):
    assert web.get("/").headers["location"] == "/app/recherche"
    page = web.get("/login")
    assert page.status_code == 200 and "Connexion" in page.text and 'name="role"' in page.text
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    bad = post_login(web, {"role": "regulator", "territories": "Gironde"})
    assert bad.status_code == 400 and "n&#39;est pas un code de territoire" in bad.text   # French on pages (issue 17)
    hostile = post_login(web, {"role": "osnp", "territories": "SAS-33", "next": "//evil.example/"})
    assert hostile.headers["location"] == "/app/recherche"


def test_wrong_role_gets_403(web):
    sign_in(web, "effecteur", national_id="810000000009")
    for path in ("/app/tableaux/orientations", "/app/tableaux/collecte"):
        answer = web.get(path)
        assert answer.status_code == 403 and "Accès refusé" in answer.text
    sign_in(web, "regulator")
    assert web.get("/app/espace").status_code == 403
    assert web.get("/app/tableaux/collecte").status_code == 403
    assert web.get("/app/tableaux/orientations").status_code == 200


def test_forms_need_the_csrf_token(web):
    sign_in(web, "regulator")
    refused = web.post("/app/reserver", data={"slot_id": "x:y", "csrf": "forged"})
    assert refused.status_code == 403 and "Jeton de formulaire invalide" in refused.text
    page = web.get("/app/recherche")
    csrf = page.text.split('data-csrf="', 1)[1].split('"', 1)[0]
    answer = web.post("/app/reserver", data={"slot_id": "nowhere:slot-0", "csrf": csrf, "confirmer": "oui"},
                      headers={"HX-Request": "true"})   # issue 17: the booking is the confirmed second step
    assert answer.status_code == 200 and 'role="alert"' in answer.text       # unknown slot: a clear message


def test_search_page_errors_and_prefill(web):
    sign_in(web, "osnp")
    unknown = web.get("/app/recherche", params={"q": "99999"}, headers={"HX-Request": "true"})
    assert (unknown.status_code == 200 and "Le code postal 99999 n&#39;existe pas" in unknown.text
            and "<html" not in unknown.text)
    # INT_L01 parameters pre-fill the address field.
    prefilled = web.get("/app/recherche", params={"adresse": "8 place Gambetta", "code_postal": "33000",
                                                 "ville": "Bordeaux", "specialite": "SM54"})
    assert prefilled.status_code == 200
    assert ('value="8 place Gambetta, 33000 Bordeaux"' in prefilled.text
            or 'value="8 place Gambetta 33000 Bordeaux"' in prefilled.text)
    assert 'value="SM54" selected' in prefilled.text
    assert "Résultats pour la zone" in prefilled.text


LRM_CALL = {"origin": "fr.health.samu330", "streetnumber": "8", "streetname": "place Gambetta", "inseecode": "33063",
            "specialty": "urn:oid:1.2.250.1.213.2.28|SM54", "practitioner": "urn:oid:1.2.250.1.71.4.2.1|810000000018"}


def test_contextual_call_with_the_national_parameter_names_prefills_the_page(web):
    sign_in(web, "osnp", territories="SAS-33 SAS-47")
    page = web.get("/app/recherche", params=LRM_CALL)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    # The address field: street from streetnumber + streetname, postcode and commune from the INSEE code.
    assert 'value="8 place Gambetta, 33000 Bordeaux"' in page.text
    assert 'value="SM54" selected' in page.text                     # the coded specialty, in the select
    assert "<option selected>SAS-33</option>" in page.text           # booking for the calling SAMU's SAS
    assert "Résultats pour la zone « 33000 Bordeaux »" in page.text
    # The own doctor is not in this directory: the operator is told, the results keep their order.
    assert 'id="appel-contextuel"' in page.text and "n&#39;est pas dans l&#39;annuaire" in page.text

    # A label resolves to the select's option; an unidentifiable doctor and a missing one are said.
    label = web.get("/app/recherche", params={**LRM_CALL, "specialty": "Pédiatrie",
                                               "practitioner": "urn:oid:1.2.250.1.213.3.6|b6e39355"})
    assert label.status_code == 200 and 'value="SM40" selected' in label.text
    assert "n&#39;a pas pu être identifié" in label.text
    bare = web.get("/app/recherche", params={"origin": "fr.health.samu330", "city": "Bordeaux"})
    assert bare.status_code == 200 and 'value="Bordeaux"' in bare.text
    assert "n&#39;a pas transmis de médecin traitant" in bare.text and "médecine générale" in bare.text
    assert 'value="SM54" selected' in bare.text                      # the national platform's default

    # An unknown SAMU: a French refusal on the page (not JSON), nothing searched.
    refused = web.get("/app/recherche", params={**LRM_CALL, "origin": "fr.health.samu990"})
    assert refused.status_code == 400 and refused.headers["content-type"].startswith("text/html")
    assert "Origine inconnue" in refused.text and 'role="alert"' in refused.text
    assert "Résultats pour la zone" not in refused.text and "Gambetta" not in refused.text
    fragment = web.get("/app/recherche", params={**LRM_CALL, "origin": "fr.health.samu990"},
                       headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "Origine inconnue" in fragment.text and "<html" not in fragment.text
    incomplete = web.get("/app/recherche", params={"origin": "fr.health.samu330", "streetnumber": "8",
                                                   "inseecode": "33063"})
    assert incomplete.status_code == 400 and "streetname" in incomplete.text


def test_suggestions_html_and_json(web, token_for):
    sign_in(web, "osnp")
    fragment = web.get("/app/suggestions", params={"q": "4700"})
    assert fragment.status_code == 200 and '<option value="47000 Agen">' in fragment.text
    web.cookies.clear()
    assert web.get("/v1/geocode/suggest", params={"q": "agen"}).status_code == 401
    answer = web.get("/v1/geocode/suggest", params={"q": "agen"}, headers=token_for("osnp", territories=["SAS-47"]))
    assert answer.status_code == 200
    assert (answer.json()["suggestions"][0]["label"] == "47000 Agen"
            and answer.json()["suggestions"][0]["insee"] == "47001")
    assert web.get("/v1/geocode/suggest", params={"q": ""}, headers=token_for("osnp")).status_code == 422


def test_csv_export_of_the_dashboard(web):
    sign_in(web, "regulator")
    answer = web.get("/app/tableaux/orientations.csv", params={"statut": "booked"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert answer.content.startswith(b"\xef\xbb\xbf")                      # BOM for spreadsheet software
    bad = web.get("/app/tableaux/orientations", params={"statut": "perdu"})
    assert bad.status_code == 200 and "Valeur de filtre inconnue" in bad.text


# --- OIDC authorisation-code flow against a local identity provider -------------------------------------------


class _IdP(BaseHTTPRequestHandler):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    issuer = ""
    codes: dict[str, str] = {}

    def _json(self, status: int, body: dict) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self):  # noqa: N802
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        self._json(200, {"keys": [{**jwk, "kid": "k1", "use": "sig", "alg": "RS256"}]})

    def do_POST(self):  # noqa: N802
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode()).items()}
        if form.get("code") not in self.codes or form.get("client_secret") != "web-secret":
            return self._json(400, {"error": "invalid_grant"})
        now = int(time.time())
        token = jwt.encode({"iss": self.issuer, "aud": "sas-platform", "sub": "psc-123", "iat": now, "exp": now + 600,
                            "roles": ["regulator"], "territories": ["SAS-33"], "name": "Jeanne OIDC"},
                           self.key, algorithm="RS256", headers={"kid": "k1"})
        self._json(200, {"access_token": token, "token_type": "Bearer"})

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def idp():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _IdP)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    _IdP.issuer = base
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield base
    server.shutdown()


def test_oidc_login_end_to_end(settings, es, indices, idp):
    oidc_settings = settings.model_copy(update={
        "auth_mode": "oidc", "oidc_issuer": idp, "oidc_audience": "sas-platform", "oidc_jwks_url": f"{idp}/jwks",
        "oidc_client_id": "sas-web", "oidc_client_secret": SecretStr("web-secret"),
        "oidc_authorize_url": f"{idp}/authorize", "oidc_token_url": f"{idp}/token",
        "web_session_secret": SecretStr("x" * 40), "public_base_url": "https://sas.example"})
    # https: the session cookie is Secure in OIDC mode, a client on http would not send it back.
    with TestClient(create_app(oidc_settings, es=es), base_url="https://testserver", follow_redirects=False) as client:
        assert "fournisseur d'identité" in client.get("/login").text
        start = client.get("/login/oidc", params={"next": "/app/tableaux/orientations"})
        assert start.status_code == 303
        location = urlsplit(start.headers["location"])
        params = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert f"{location.scheme}://{location.netloc}{location.path}" == f"{idp}/authorize"
        assert params["redirect_uri"] == "https://sas.example/login/callback"
        # A wrong state is refused; the identity provider sends the browser back with a code.
        assert client.get("/login/callback", params={"code": "c1", "state": "forged"}).status_code == 400
        _IdP.codes["c1"] = params["state"]
        refused = client.get("/login/callback", params={"code": "unknown", "state": params["state"]})
        assert refused.status_code == 400 and "a refusé le code de connexion" in refused.text
        done = client.get("/login/callback", params={"code": "c1", "state": params["state"]})
        assert done.status_code == 303 and done.headers["location"] == "/app/tableaux/orientations"
        # OIDC mode: the session cookie is Secure and HttpOnly (issue 15, point 10).
        session_cookie = [v for k, v in done.headers.multi_items() if k == "set-cookie" and "sas_session=" in v]
        assert session_cookie and "Secure" in session_cookie[0] and "HttpOnly" in session_cookie[0]
        page = client.get("/app/tableaux/orientations")
        assert page.status_code == 200 and "Jeanne OIDC" in page.text
        # The dev login form does not exist in OIDC mode.
        assert client.post("/login", data={"role": "admin"}).headers["location"].startswith("/login/oidc")


# --- Practitioner space through forms ---------------------------------------------------------------------------


def _csrf(page_html: str) -> str:
    return page_html.split('data-csrf="', 1)[1].split('"', 1)[0]


def directory_cpts(es, settings, finess: str, name: str) -> dict:
    """A CPTS of the directory (``cpts-<FINESS>``, as the FINESS load writes it)."""
    from mappings.offers import OfferDoc, OfferStructure
    from mappings.registry import alias_name
    from sas_core.text import fold

    offer = OfferDoc(id=f"cpts-{finess}", kind="cpts", name=name, name_folded=fold(name), departement="33",
                     territory="SAS-33", structure=OfferStructure(name=name, finess=finess),
                     source="finess").model_dump(mode="json")
    es.index(index=alias_name(settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    return offer


def test_practitioner_cannot_enrol_in_a_made_up_cpts(web, es, settings):
    """Security (issue 15, point 7): the CPTS must exist in the directory, and the membership shows the
    directory's name, never a typed one (before: any 9 digits and any name were stored)."""
    from urllib.parse import unquote_plus

    from mappings.registry import alias_name
    from tests.integration.workflow.conftest import bordeaux_offer

    offer = {**bordeaux_offer(41, vendor=None), "id": "web-practitioner-41"}
    es.index(index=alias_name(settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    sign_in(web, "effecteur", territories="", national_id=offer["national_id"], name=offer["name"])
    csrf = _csrf(web.get("/app/espace").text)
    before = es.get(index=alias_name(settings.index_prefix, "offers"), id=offer["id"])["_source"]["sas"]

    made_up = web.post("/app/espace/participation", data={
        "csrf": csrf, "offer_id": offer["id"], "participation": "cpts", "cpts_finess": "339999998",
        "cpts_name": "CPTS Imaginaire"})
    assert made_up.status_code == 303
    assert "Aucune CPTS de numéro FINESS 339999998 dans l’annuaire" in unquote_plus(made_up.headers["location"])
    assert es.get(index=alias_name(settings.index_prefix, "offers"), id=offer["id"])["_source"]["sas"] == before
    # An MSP's FINESS is not a CPTS either.
    msp = {**directory_cpts(es, settings, "330077771", "MSP Bastide"), "kind": "msp", "id": "msp-330077771"}
    es.index(index=alias_name(settings.index_prefix, "offers"), id=msp["id"], document=msp, refresh=True)
    es.delete(index=alias_name(settings.index_prefix, "offers"), id="cpts-330077771", refresh=True)
    not_cpts = web.post("/app/espace/participation", data={
        "csrf": csrf, "offer_id": offer["id"], "participation": "cpts", "cpts_finess": "330077771"})
    assert "erreur=" in not_cpts.headers["location"]

    # A real CPTS (given in the guide's wire form 1 + FINESS, too): the directory's name, whatever was typed.
    directory_cpts(es, settings, "330055552", "CPTS Bordeaux Bastide")
    for typed in ("330055552", "1330055552"):
        done = web.post("/app/espace/participation", data={
            "csrf": csrf, "offer_id": offer["id"], "participation": "cpts", "cpts_finess": typed,
            "cpts_name": "=HYPERLINK(\"http://evil\")"})
        assert "message=" in done.headers["location"], done.headers["location"]
        sas = es.get(index=alias_name(settings.index_prefix, "offers"), id=offer["id"])["_source"]["sas"]
        assert (sas["participates"], sas["cpts_finess"], sas["cpts_name"]) == (
            True, "330055552", "CPTS Bordeaux Bastide")
    assert "CPTS de l’annuaire : CPTS Bordeaux Bastide" in web.get("/app/espace").text


def test_practitioner_participation_phone_and_unavailability(web, es, settings):
    from mappings.registry import alias_name
    from tests.integration.workflow.conftest import bordeaux_offer

    offer = {**bordeaux_offer(40, vendor=None), "id": "web-practitioner-40"}
    es.index(index=alias_name(settings.index_prefix, "offers"), id=offer["id"], document=offer, refresh=True)
    sign_in(web, "effecteur", territories="", national_id=offer["national_id"], name=offer["name"])
    page = web.get("/app/espace")
    assert page.status_code == 200 and offer["address"]["text"] in page.text
    csrf = _csrf(page.text)

    bad = web.post("/app/espace/participation", data={"csrf": csrf, "offer_id": offer["id"], "participation": "cpts",
                                                       "cpts_finess": "12"})
    assert bad.status_code == 303 and "erreur=" in bad.headers["location"]
    directory_cpts(es, settings, "330012345", "CPTS Bordeaux Rive Gauche")   # the CPTS is the directory's (issue 15)
    done = web.post("/app/espace/participation", data={
        "csrf": csrf, "offer_id": offer["id"], "participation": "cpts", "cpts_finess": "330012345",
        "cpts_name": "CPTS Bordeaux Rive Gauche", "en_sus": "1", "telephone": "05 56 12 34 56"})
    assert done.status_code == 303 and "message=" in done.headers["location"]
    sas = es.get(index=alias_name(settings.index_prefix, "offers"), id=offer["id"])["_source"]["sas"]
    assert sas == {**sas, "participates": True, "cpts_finess": "330012345", "cpts_name": "CPTS Bordeaux Rive Gauche",
                   "accepts_beyond": True, "beyond_phone": "05 56 12 34 56"}
    # Someone else's place is refused.
    other = web.post("/app/espace/participation",
                     data={"csrf": csrf, "offer_id": "wf-medilib-0", "participation": "non"})
    assert "erreur=" in other.headers["location"]

    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).date().isoformat()
    declared = web.post("/app/espace/indisponibilites", data={"csrf": csrf, "offer_id": offer["id"], "du": tomorrow,
                                                               "au": tomorrow})
    assert declared.status_code == 303 and "message=" in declared.headers["location"], declared.headers["location"]
    page = web.get("/app/espace")
    # One day entered "Au (inclus)" the same day reads as that day (issue 17, point 11), not "au <next day>".
    assert f"Le {tomorrow[8:10]}/{tomorrow[5:7]}/{tomorrow[:4]}" in page.text
    declaration_id = page.text.split("/app/espace/indisponibilites/", 1)[1].split("/annuler", 1)[0]
    cancelled = web.post(f"/app/espace/indisponibilites/{declaration_id}/annuler", data={"csrf": csrf})
    assert "message=" in cancelled.headers["location"]
    assert "Aucune indisponibilité en cours." in web.get("/app/espace").text
    # Forms without the session's CSRF token change nothing.
    forged = web.post("/app/espace/participation", data={"csrf": "x", "offer_id": offer["id"], "participation": "non"})
    assert forged.status_code == 403
    assert es.get(index=alias_name(settings.index_prefix, "offers"), id=offer["id"])["_source"]["sas"]["participates"]
