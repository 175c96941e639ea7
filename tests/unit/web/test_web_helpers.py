"""Web interface helpers without network or Elasticsearch: French formatting, commune suggestions,
session cookie, local-only redirects, OIDC authorisation URL and code exchange (against a local HTTP
server playing the identity provider's token endpoint)."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from itsdangerous import BadSignature
from pydantic import SecretStr

from connectors.reference import Commune
from sas_core.errors import BackendUnavailable, BadRequest, ConfigurationError
from sas_core.settings import Settings
from search_api.suggestions import SuggestionIndex
from search_api.web import format as fmt
from search_api.web import oidc
from search_api.web.pages.common import safe_next, window_bounds
from search_api.web.session import serializer


def test_french_dates_times_and_phones():
    winter = datetime(2024, 2, 16, 6, 30, tzinfo=timezone.utc)      # 07h30 in Paris (UTC+1)
    summer = datetime(2024, 7, 14, 6, 30, tzinfo=timezone.utc)      # 08h30 in Paris (UTC+2)
    assert fmt.fr_date(winter) == "16/02/2024" and fmt.fr_time(winter) == "07h30"
    assert fmt.fr_time(summer) == "08h30"
    assert fmt.fr_time("2024-02-16T23:30:00Z") == "00h30" and fmt.fr_date("2024-02-16T23:30:00Z") == "17/02/2024"
    assert fmt.fr_phone("+33556000000") == "05 56 00 00 00"
    assert fmt.fr_phone("0556112233") == "05 56 11 22 33"
    assert fmt.fr_phone("15") == "15"
    assert fmt.km(0.42) == "420 m" and fmt.km(2.34) == "2,3 km" and fmt.km(None) == ""


def test_slots_grouped_by_paris_day():
    today = date(2024, 11, 4)
    slots = [{"start": "2024-11-04T22:30:00Z"}, {"start": "2024-11-04T08:00:00Z"}, {"start": "2024-11-06T08:00:00Z"}]
    groups = fmt.by_day(slots, today=today)
    # 22:30 UTC on the 4th is 23:30 in Paris: still the 4th... and 08:00 UTC is the 4th too.
    assert [label for label, _ in groups] == ["Aujourd'hui", "mer. 6 nov."]
    assert len(groups[0][1]) == 2
    assert fmt.by_day([{"start": "2024-11-04T23:30:00Z"}], today=today)[0][0] == "Demain"


def _communes():
    return [Commune("33063", "Bordeaux", "33", "75", ("33000", "33100", "33200", "33300", "33800"), 44.85, -0.58,
                    260958),
            Commune("33039", "Bègles", "33", "75", ("33130",), 44.80, -0.55, 30642),
            Commune("33069", "Le Bouscat", "33", "75", ("33110",), 44.86, -0.60, 23930),
            Commune("47001", "Agen", "47", "75", ("47000",), 44.20, 0.62, 32485),
            Commune("01001", "L'Abergement-Clémenciat", "01", "84", ("01400",), 46.15, 4.93, 779)]


def test_suggestions_by_postcode_and_name_prefix():
    index = SuggestionIndex(_communes())
    labels = [s["label"] for s in index.suggest("3300", limit=8)]
    assert labels[0] == "33000 Bordeaux"
    assert "33130 Bègles" not in labels                    # 33130 does not start with 3300
    assert [s["label"] for s in index.suggest("bord", limit=8)] == ["33000 Bordeaux"]
    assert [s["label"] for s in index.suggest("BEG", limit=8)] == ["33130 Bègles"]      # accents and case folded
    assert [s["label"] for s in index.suggest("l'aberg", limit=8)] == ["01400 L'Abergement-Clémenciat"]
    # Several communes share a prefix: the most populous first.
    assert [s["label"] for s in index.suggest("331", limit=8)] == ["33100 Bordeaux", "33130 Bègles", "33110 Le Bouscat"]
    assert len(index.suggest("33", limit=2)) == 2
    assert index.suggest("zzz", limit=8) == [] and index.suggest("  ", limit=8) == []
    assert index.suggest("bordeaux", limit=8)[0]["insee"] == "33063"


def test_redirects_after_login_stay_on_the_platform():
    assert safe_next("/app/tableaux/orientations?statut=booked") == "/app/tableaux/orientations?statut=booked"
    for hostile in ("https://evil.example/", "//evil.example/x", "/\\evil.example", "", None):
        assert safe_next(hostile) == "/app/recherche"


def test_window_chips():
    now = datetime(2024, 11, 4, 15, 0, tzinfo=timezone.utc)
    start, end, within = window_bounds("aujourdhui", now=now)
    assert start is None and within is None and end == "2024-11-05T00:00:00+01:00"
    assert window_bounds("0-4h", now=now) == (None, None, "0-4h")
    assert window_bounds("", now=now) == (None, None, None)
    assert window_bounds("prochains-jours", now=now)[1] == "2024-11-11T15:00:00+00:00"
    with pytest.raises(BadRequest):
        window_bounds("demain-soir", now=now)


def test_session_cookie_is_signed(tmp_path):
    # The cookie holds a session id only (the session lives in the web_sessions index), signed.
    settings = Settings(cache_dir=tmp_path, web_session_secret=SecretStr("s" * 32))
    value = serializer(settings).dumps("a-session-id")
    assert serializer(settings).loads(value) == "a-session-id"
    other = Settings(cache_dir=tmp_path, web_session_secret=SecretStr("t" * 32))
    with pytest.raises(BadSignature):
        serializer(other).loads(value)
    with pytest.raises(ConfigurationError):
        serializer(Settings(cache_dir=tmp_path, auth_mode="oidc"))


def _oidc_settings(**overrides) -> Settings:
    values = dict(oidc_client_id="sas-web", oidc_client_secret=SecretStr("client-secret"),
                  oidc_authorize_url="https://idp.example/authorize?tenant=sas",
                  oidc_token_url="http://127.0.0.1:9/token")
    values.update(overrides)
    return Settings(**values)


def test_authorization_url_carries_state_and_pkce():
    request = oidc.authorization_request(_oidc_settings(), redirect_uri="https://sas.example/login/callback")
    parts = urlsplit(request.url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert parts.netloc == "idp.example" and params["tenant"] == "sas"
    assert params["response_type"] == "code" and params["client_id"] == "sas-web"
    assert params["redirect_uri"] == "https://sas.example/login/callback"
    assert params["state"] == request.state and len(request.state) >= 32
    expected = base64.urlsafe_b64encode(hashlib.sha256(request.verifier.encode()).digest()).rstrip(b"=").decode()
    assert params["code_challenge"] == expected and params["code_challenge_method"] == "S256"
    assert "client-secret" not in request.url
    with pytest.raises(ConfigurationError, match="SAS_OIDC_TOKEN_URL"):
        oidc.authorization_request(_oidc_settings(oidc_token_url=None), redirect_uri="x")


class _TokenEndpoint(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        length = int(self.headers.get("Content-Length", 0))
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        _TokenEndpoint.received.append(form)
        if form.get("code") == "good" and form.get("code_verifier") == "verifier-1":
            status, body = 200, {"access_token": "the-access-token", "token_type": "Bearer", "expires_in": 300}
        elif form.get("code") == "boom":
            status, body = 502, {"error": "temporarily_unavailable"}
        else:
            status, body = 400, {"error": "invalid_grant"}
        payload = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def token_endpoint():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _TokenEndpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _TokenEndpoint.received.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}/token"
    server.shutdown()


def test_code_exchange_against_a_local_token_endpoint(token_endpoint):
    settings = _oidc_settings(oidc_token_url=token_endpoint)
    token = oidc.exchange_code(settings, code="good", verifier="verifier-1", redirect_uri="https://sas.example/cb")
    assert token == "the-access-token"
    sent = _TokenEndpoint.received[-1]
    assert sent["grant_type"] == "authorization_code" and sent["client_secret"] == "client-secret"
    assert sent["redirect_uri"] == "https://sas.example/cb" and sent["client_id"] == "sas-web"
    with pytest.raises(BadRequest, match="invalid_grant"):
        oidc.exchange_code(settings, code="bad", verifier="verifier-1", redirect_uri="x")
    with pytest.raises(BackendUnavailable):
        oidc.exchange_code(settings, code="boom", verifier="verifier-1", redirect_uri="x")
    with pytest.raises(BackendUnavailable):
        oidc.exchange_code(_oidc_settings(oidc_token_url="http://127.0.0.1:9/token"), code="good",
                           verifier="verifier-1", redirect_uri="x")
