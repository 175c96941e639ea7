"""Web sessions (issue 15, points 10, 4 and 11) on the real app and the real ``web_sessions`` index.

Attacks reproduced: a copy of the session cookie taken before logout; a cookie read for the bearer token
inside it; a session left idle or kept past its limits; a cross-site POST /login (login CSRF) or POST /logout;
a browser session used to search past the rate limit its bearer token has; a forged ``Host`` header; an OIDC
deployment without ``SAS_PUBLIC_BASE_URL``."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from mappings.registry import alias_name
from sas_core.errors import ConfigurationError
from search_api.app import create_app
from search_api.routes.fhir import create_fhir_app
from search_api.web.session import COOKIE, serializer
from tests.weblogin import login_csrf, post_login

REGULATOR = {"role": "regulator", "territories": "SAS-92", "name": "Camille Session", "next": "/app/recherche"}


@pytest.fixture()
def web(settings, es, indices):
    with TestClient(create_app(settings, es=es), follow_redirects=False) as client:
        yield client


def _sign_in(client: TestClient) -> str:
    answer = post_login(client, REGULATOR)
    assert answer.status_code == 303 and answer.headers["location"] == "/app/recherche", answer.text[:300]
    return client.cookies[COOKIE]


def _session_doc(es, settings, cookie: str) -> tuple[str, dict | None]:
    doc_id = hashlib.sha256(serializer(settings).loads(cookie).encode()).hexdigest()
    found = es.options(ignore_status=404).get(index=alias_name(settings.index_prefix, "web_sessions"), id=doc_id)
    return doc_id, (found.body.get("_source") if found.body.get("found") else None)


def _page_with(app, cookie: str):
    with TestClient(app, follow_redirects=False) as other:
        other.cookies.set(COOKIE, cookie)
        return other.get("/app/recherche")


def _csrf_of(page_html: str) -> str:
    return page_html.split('data-csrf="', 1)[1].split('"', 1)[0]


def test_logout_revokes_every_copy_of_the_cookie(web):
    stolen = _sign_in(web)
    assert _page_with(web.app, stolen).status_code == 200          # the copy works while the session lives
    page = web.get("/app/recherche")
    assert web.post("/logout", data={"csrf": _csrf_of(page.text)}).status_code == 303
    replay = _page_with(web.app, stolen)
    assert replay.status_code == 303 and replay.headers["location"].startswith("/login?next=")


def test_cookie_holds_an_opaque_session_id_and_the_index_no_token(web, es, settings):
    cookie = _sign_in(web)
    session_id = serializer(settings).loads(cookie)
    assert isinstance(session_id, str) and len(session_id) >= 40 and "." not in session_id   # not a JWT
    doc_id, doc = _session_doc(es, settings, cookie)
    assert doc is not None and doc["id"] == doc_id != session_id   # stored under a hash: the index gives no cookie
    assert "token" not in doc and not any(str(v).startswith("eyJ") for v in doc.values())
    assert doc["roles"] == ["regulator"] and doc["territories"] == ["SAS-92"] and doc["name"] == "Camille Session"
    # A cookie of the former kind (the bearer token inside, signed with the right key) opens nothing.
    from search_api.auth import issue_dev_token

    token = issue_dev_token(settings=settings, roles=["admin"], territories=[])
    legacy = serializer(settings).dumps({"token": token, "csrf": "x" * 32})
    assert _page_with(web.app, legacy).status_code == 303


def test_idle_and_absolute_expiry(web, es, settings):
    index = alias_name(settings.index_prefix, "web_sessions")
    now = datetime.now(UTC)
    idle = _sign_in(web)
    doc_id, doc = _session_doc(es, settings, idle)
    assert datetime.fromisoformat(doc["expires_at"]) <= now + timedelta(seconds=settings.web_session_max_s + 5)
    es.update(index=index, id=doc_id, doc={"last_seen_at": (now - timedelta(
        seconds=settings.web_session_idle_s + 1)).isoformat()}, refresh=True)
    assert web.get("/app/recherche").status_code == 303                 # idle too long: log in again
    assert _session_doc(es, settings, idle)[1] is None                  # and the document is gone

    web.cookies.clear()
    old = _sign_in(web)
    doc_id, _ = _session_doc(es, settings, old)
    assert web.get("/app/recherche").status_code == 200
    es.update(index=index, id=doc_id, doc={"expires_at": (now - timedelta(seconds=1)).isoformat()}, refresh=True)
    assert web.get("/app/recherche").status_code == 303                 # past the absolute limit


def test_session_ends_with_its_token(settings, es, indices):
    short = settings.model_copy(update={"token_ttl_s": 120})
    with TestClient(create_app(short, es=es), follow_redirects=False) as client:
        cookie = _sign_in(client)
        _, doc = _session_doc(es, settings, cookie)
        lifetime = datetime.fromisoformat(doc["expires_at"]) - datetime.fromisoformat(doc["created_at"])
        assert timedelta(seconds=110) <= lifetime <= timedelta(seconds=121)


def test_login_needs_the_forms_csrf_token(web):
    web.cookies.clear()
    forged = web.post("/login", data=REGULATOR)                             # a cross-site form: no token
    assert forged.status_code == 403 and "Jeton de formulaire invalide" in forged.text
    assert COOKIE not in forged.cookies
    token = login_csrf(web)
    with TestClient(web.app, follow_redirects=False) as attacker:           # a token of another browser
        stolen = login_csrf(attacker)
    assert stolen != token
    refused = web.post("/login", data={**REGULATOR, "csrf": stolen})
    assert refused.status_code == 403 and COOKIE not in refused.cookies
    assert web.post("/login", data={**REGULATOR, "csrf": token}).status_code == 303


def test_logout_needs_the_csrf_token(web):
    _sign_in(web)
    forged = web.post("/logout")                                            # a cross-site form
    assert forged.status_code == 403 and "Jeton de formulaire invalide" in forged.text
    assert web.get("/app/recherche").status_code == 200                     # still signed in
    assert web.post("/logout", data={"csrf": "forged"}).status_code == 403
    assert web.get("/app/recherche").status_code == 200


def test_cookie_flags(web, settings, es, indices):
    _sign_in(web)
    cookie_header = [v for k, v in web.get("/login").headers.multi_items() if k == "set-cookie"]
    assert any("sas_login_csrf=" in c and "HttpOnly" in c and "SameSite=strict" in c.replace("Strict", "strict")
               for c in cookie_header)
    secure = settings.model_copy(update={"web_cookie_secure": True})
    with TestClient(create_app(secure, es=es), base_url="https://testserver", follow_redirects=False) as client:
        answer = post_login(client, REGULATOR)
        session_cookie = [v for k, v in answer.headers.multi_items() if k == "set-cookie" and COOKIE in v]
        assert session_cookie and "Secure" in session_cookie[0] and "HttpOnly" in session_cookie[0]


def test_pages_share_the_api_rate_limit(settings, es, indices, token_for):
    limited = settings.model_copy(update={"rate_limit": "4/minute"})
    with TestClient(create_app(limited, es=es), follow_redirects=False) as client:
        cookie = _sign_in(client)
        statuses = [client.get("/app/recherche", params={"q": "92000"}).status_code for _ in range(5)]
        assert statuses == [200, 200, 200, 200, 429]
        refused = client.get("/app/recherche")
        assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1
        assert "Trop de requêtes" in refused.text and refused.headers["content-type"].startswith("text/html")
        fragment = client.get("/app/recherche", params={"q": "92000"}, headers={"HX-Request": "true"})
        assert fragment.status_code == 429 and "Trop de requêtes" in fragment.text and "<html" not in fragment.text
        # Same key as the API: the session's subject. Its bearer token is refused too, and the other way round.
        _, doc = _session_doc(es, settings, cookie)
        same_user = token_for("regulator", territories=["SAS-92"], sub=doc["sub"])
        assert client.get("/v1/me", headers=same_user).status_code == 429
        client.cookies.clear()
        other = token_for("regulator", territories=["SAS-92"], sub="pages-limit-other")
        assert [client.get("/v1/me", headers=other).status_code for _ in range(4)] == [200] * 4
        client.cookies.clear()
        with TestClient(client.app, follow_redirects=False) as browser:
            post_login(browser, REGULATOR)                       # a fresh session of another (random) subject
            assert browser.get("/app/recherche").status_code == 200
        page = client.get("/app/recherche", headers=other)       # the same bearer through a page: spent
        assert page.status_code == 429 and "Trop de requêtes" in page.text


def test_oidc_mode_needs_a_public_base_url(settings, es, indices):
    oidc = settings.model_copy(update={"auth_mode": "oidc", "oidc_issuer": "https://idp.test",
                                       "oidc_audience": "sas", "oidc_jwks_url": "https://idp.test/jwks",
                                       "web_session_secret": SecretStr("k" * 40), "oidc_client_id": "sas-web",
                                       "oidc_authorize_url": "https://idp.test/authorize",
                                       "oidc_token_url": "https://idp.test/token"})
    with pytest.raises(ConfigurationError, match="SAS_PUBLIC_BASE_URL"):
        create_app(oidc, es=es)
    with pytest.raises(ConfigurationError, match="https"):
        create_app(oidc.model_copy(update={"public_base_url": "http://sas.test"}), es=es)
    app = create_app(oidc.model_copy(update={"public_base_url": "https://sas.test"}), es=es)
    with TestClient(app, follow_redirects=False) as client:
        start = client.get("/login/oidc", headers={"Host": "evil.example"}, params={"next": "/app/recherche"})
    assert start.status_code == 303 and ("redirect_uri=https%3A%2F%2Fsas.test%2Flogin%2Fcallback"
                                         in start.headers["location"])
    assert "evil.example" not in start.headers["location"]


def test_allowed_hosts_refuse_a_forged_host(settings, es, indices):
    strict = settings.model_copy(update={"allowed_hosts": ["sas.test", "*.sas.test"]})
    with TestClient(create_app(strict, es=es), base_url="http://sas.test", follow_redirects=False) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/login", headers={"Host": "api.sas.test"}).status_code == 200
        forged = client.get("/login", headers={"Host": "evil.example"})
        assert forged.status_code == 400 and forged.headers["X-Content-Type-Options"] == "nosniff"
    # The mutual-TLS listener builds its FHIR Location from the Host header: the same list applies.
    with TestClient(create_fhir_app(strict, es=es), base_url="http://sas.test") as listener:
        assert listener.get("/fhir/metadata", headers={"Host": "evil.example"}).status_code == 400
        assert listener.get("/fhir/metadata").status_code != 400


def test_expired_sessions_are_swept_at_a_login(settings, es, indices):
    index = alias_name(settings.index_prefix, "web_sessions")
    past = datetime.now(UTC) - timedelta(days=2)
    stale = {"id": "0" * 64, "sub": "sweep-test", "roles": ["osnp"], "territories": ["SAS-92"], "csrf": "c" * 32,
             "created_at": past.isoformat(), "last_seen_at": past.isoformat(),
             "expires_at": (past + timedelta(hours=1)).isoformat()}
    es.index(index=index, id=stale["id"], document=stale, refresh=True)
    with TestClient(create_app(settings, es=es), follow_redirects=False) as client:   # a fresh store sweeps at once
        _sign_in(client)
    assert not es.exists(index=index, id=stale["id"])
