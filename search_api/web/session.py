"""The web session: a signed, HttpOnly cookie holding the bearer token obtained at login.

The token inside is verified on every request by the same ``TokenVerifier`` as the API, so a page sees
exactly the principal the API would. The cookie also carries a CSRF token that every form posts back.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from sas_core.errors import ConfigurationError, SasError
from sas_core.settings import Settings
from search_api.auth import Principal, Role, dev_signing_key

COOKIE = "sas_session"
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"


class LoginRequired(Exception):
    """No valid session: the page answers 303 to the login page (``next`` = where the user was going)."""

    def __init__(self, next_url: str) -> None:
        super().__init__(next_url)
        self.next_url = next_url


class PageForbidden(Exception):
    """A signed-in user without the role a page needs: a 403 page."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class WebUser:
    principal: Principal
    csrf: str
    header_auth: bool = False

    def has(self, *roles: Role) -> bool:
        return self.principal.has_any(*roles)


def serializer(settings: Settings) -> URLSafeTimedSerializer:
    """The cookie signer: ``SAS_WEB_SESSION_SECRET``, or the dev signing key in dev mode."""
    if settings.web_session_secret is not None:
        secret = settings.web_session_secret.get_secret_value()
    elif settings.auth_mode == "dev":
        secret = dev_signing_key(settings)
    else:
        raise ConfigurationError("the web interface needs SAS_WEB_SESSION_SECRET when SAS_AUTH_MODE=oidc")
    return URLSafeTimedSerializer(secret, salt="sas-web-session")


def session_cookie(settings: Settings, *, token: str) -> tuple[str, str]:
    """The cookie value for ``token`` and its fresh CSRF token."""
    csrf = secrets.token_urlsafe(24)
    return serializer(settings).dumps({"token": token, "csrf": csrf}), csrf


def set_session(response, settings: Settings, *, token: str) -> None:
    value, _ = session_cookie(settings, token=token)
    response.set_cookie(COOKIE, value, max_age=settings.token_ttl_s, httponly=True, samesite="lax",
                        secure=settings.web_cookie_secure, path="/")


def read_session(request: Request) -> dict | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    settings: Settings = request.app.state.settings
    try:
        data = serializer(settings).loads(raw, max_age=settings.token_ttl_s)
    except BadSignature:
        return None
    return data if isinstance(data, dict) and data.get("token") and data.get("csrf") else None


def _next_url(request: Request) -> str:
    # An htmx request is a fragment: after login, go back to the full page the user was on.
    current = request.headers.get("HX-Current-URL")
    if current:
        return current
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def current_user(request: Request) -> WebUser:
    """The signed-in user (``LoginRequired`` → 303 /login otherwise).

    Without a session cookie, API credentials (bearer token, integrator key) are accepted too, exactly as
    the JSON API checks them (401 when they are wrong): the same role rules then apply to pages and API.
    Such requests carry no ambient browser credential, so they need no CSRF token."""
    data = read_session(request)
    if data is None:
        authorization = request.headers.get("Authorization", "")
        api_key = request.headers.get("X-API-Key")
        state = request.app.state
        if api_key or authorization:
            principal = _header_principal(state, api_key=api_key, authorization=authorization)
            state.rate_limiter.check(principal.sub)
            return WebUser(principal=principal, csrf="", header_auth=True)
        raise LoginRequired(_next_url(request))
    return _session_user(request, data)


def _header_principal(state, *, api_key: str | None, authorization: str) -> Principal:
    from sas_core.errors import Unauthenticated

    if api_key:
        return state.api_keys.verify(api_key)
    if authorization.lower().startswith("bearer ") and authorization[7:].strip():
        return state.token_verifier.verify(authorization[7:].strip())
    raise Unauthenticated("missing bearer token or API key")


def _session_user(request: Request, data: dict) -> WebUser:
    """The user of a valid session cookie; an expired or revoked token inside means logging in again."""
    try:
        principal = request.app.state.token_verifier.verify(data["token"])
    except SasError:
        raise LoginRequired(_next_url(request)) from None
    return WebUser(principal=principal, csrf=data["csrf"])


def page_roles(*allowed: Role):
    """Dependency factory: the signed-in user, provided he has one of ``allowed`` (403 page otherwise)."""

    def dependency(user: Annotated[WebUser, Depends(current_user)]) -> WebUser:
        if allowed and not user.has(*allowed):
            raise PageForbidden("Cette page est réservée aux rôles : "
                                + ", ".join(ROLE_LABELS.get(r, r.value) for r in allowed))
        return user

    return dependency


async def check_csrf(request: Request, user: WebUser) -> None:
    """Forms post back the session's CSRF token (field or header); a mismatch is a 403."""
    if user.header_auth:
        return
    sent = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()
        sent = form.get(CSRF_FIELD)
    if not sent or not secrets.compare_digest(str(sent), user.csrf):
        raise PageForbidden("Jeton de formulaire invalide : rechargez la page et recommencez.")


def login_location(next_url: str) -> str:
    return "/login?next=" + quote(next_url, safe="")


ROLE_LABELS = {
    Role.OSNP: "Opérateur de soins non programmés (OSNP)",
    Role.REGULATOR: "Régulateur",
    Role.EFFECTEUR: "Effecteur",
    Role.STRUCTURE_MANAGER: "Gestionnaire de structure",
    Role.ACCOUNT_MANAGER: "Gestionnaire de comptes",
    Role.ADMIN: "Administrateur",
    Role.INTEGRATOR: "Intégrateur",
    Role.VENDOR: "Éditeur",
}
