"""The web session: server-side, in the ``web_sessions`` index; the cookie holds only a random session id.

At login the bearer token (dev token or the identity provider's access token) is verified by the same
``TokenVerifier`` as the API, and its verified claims go into a session document (never the token itself);
the HttpOnly cookie carries the session id, signed. Every request reads the document by id (a real-time get:
a logout on one replica holds at once on all), so deleting it — logout — ends the session even for a copy
of the cookie. A session ends after ``SAS_WEB_SESSION_IDLE_S`` without a request, ``SAS_WEB_SESSION_MAX_S``
after login, or when its token expires, whichever comes first. The document carries the CSRF token every
form posts back; the login form has its own pre-session token (double-submit cookie).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated
from urllib.parse import quote

import jwt
from fastapi import Depends, Request
from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.datastructures import UploadFile

from mappings.web_sessions import WebSessionDoc
from sas_core.clock import utcnow
from sas_core.errors import ConfigurationError, SasError, TooManyRequests
from sas_core.settings import Settings
from search_api.auth import Principal, Role, dev_signing_key
from search_api.deps import authenticate_in_thread, bearer_of, client_address
from search_api.executor import Executor
from search_api.query.admin import expired_sessions_body

COOKIE = "sas_session"
#: The login form's pre-session CSRF token (double-submit: this cookie and the form's field must match).
LOGIN_CSRF_COOKIE = "sas_login_csrf"
LOGIN_CSRF_MAX_AGE_S = 3600
CSRF_FIELD = "csrf"
CSRF_HEADER = "X-CSRF-Token"
#: ``last_seen_at`` is written at most this often per session (a write per page view would double the cost
#: of a page); the idle limit is therefore honoured within this many seconds.
TOUCH_EVERY_S = 60
#: Expired session documents are deleted at a login at most this often per process, this many at a time.
SWEEP_EVERY_S = 300
SWEEP_BATCH = 500


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


class PageRateLimited(Exception):
    """The user spent the rate limit (the API's limiter, same key): a French 429 page with Retry-After."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(retry_after_s)
        self.retry_after_s = retry_after_s


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
        if len(secret) < 32:   # e.g. an empty variable in a compose file: a guessable key signs nothing
            raise ConfigurationError("SAS_WEB_SESSION_SECRET must have at least 32 characters")
    elif settings.auth_mode == "dev":
        secret = dev_signing_key(settings)
    else:
        raise ConfigurationError("the web interface needs SAS_WEB_SESSION_SECRET when SAS_AUTH_MODE=oidc")
    return URLSafeTimedSerializer(secret, salt="sas-web-session")


def cookie_secure(settings: Settings) -> bool:
    """``Secure`` on the web cookies: always in OIDC mode (production is HTTPS), else ``SAS_WEB_COOKIE_SECURE``."""
    return settings.web_cookie_secure or settings.auth_mode == "oidc"


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _principal(doc: WebSessionDoc) -> Principal:
    return Principal(sub=doc.sub, roles=frozenset(Role(r) for r in doc.roles if r in Role.__members__.values()),
                     territories=frozenset(doc.territories), national_id=doc.national_id, name=doc.name,
                     structure_id=doc.structure_id, slot_types=frozenset(doc.slot_types))


class SessionStore:
    """Sessions in the ``web_sessions`` index (through the executor); built once per app."""

    def __init__(self, *, executor: Executor, settings: Settings, clock=utcnow) -> None:
        self._executor = executor
        self._idle = timedelta(seconds=settings.web_session_idle_s)
        self._max = timedelta(seconds=settings.web_session_max_s)
        self._clock = clock
        self._next_sweep = 0.0
        self._sweep_lock = threading.Lock()

    def open(self, principal: Principal, *, token_expires_at: datetime | None) -> tuple[str, WebSessionDoc]:
        """A new session for ``principal``: returns the session id (for the cookie only) and the document."""
        self._sweep()
        now = self._clock()
        expires = now + self._max
        if token_expires_at is not None:
            expires = min(expires, token_expires_at)
        session_id = secrets.token_urlsafe(32)
        doc = WebSessionDoc(
            id=_digest(session_id), sub=principal.sub, roles=sorted(r.value for r in principal.roles),
            territories=sorted(principal.territories), national_id=principal.national_id, name=principal.name,
            structure_id=principal.structure_id, slot_types=sorted(principal.slot_types),
            csrf=secrets.token_urlsafe(24), created_at=now, last_seen_at=now, expires_at=expires)
        # No refresh: sessions are only ever read by id, and a get is real-time.
        self._executor.create_document(index="web_sessions", doc_id=doc.id, document=doc.model_dump(mode="json"))
        return session_id, doc

    def get(self, session_id: str) -> WebSessionDoc | None:
        """The live session of ``session_id``; ``None`` when unknown, logged out or expired (then deleted)."""
        doc_id = _digest(session_id)
        found = self._executor.get_document(index="web_sessions", doc_id=doc_id)
        if found is None:
            return None
        doc = WebSessionDoc.model_validate(found["_source"])
        now = self._clock()
        if now >= doc.expires_at or now - doc.last_seen_at >= self._idle:
            self._delete(doc_id)
            return None
        if (now - doc.last_seen_at).total_seconds() >= TOUCH_EVERY_S:
            if not self._executor.update_document(index="web_sessions", doc_id=doc_id,
                                                  fields={"last_seen_at": now.isoformat()}):
                return None       # logged out in the meantime
            doc = doc.model_copy(update={"last_seen_at": now})
        return doc

    def close(self, session_id: str) -> None:
        """Logout: the session is gone for every copy of its cookie."""
        self._delete(_digest(session_id))

    def _delete(self, doc_id: str) -> None:
        self._executor.delete_if_exists(index="web_sessions", doc_id=doc_id)

    def _sweep(self) -> None:
        """Delete expired documents (they would only take room: ``get`` refuses them anyway)."""
        with self._sweep_lock:
            if time.monotonic() < self._next_sweep:
                return
            self._next_sweep = time.monotonic() + SWEEP_EVERY_S
        now = self._clock()
        body = expired_sessions_body(now=now, idle=self._idle, size=SWEEP_BATCH)
        try:
            hits = self._executor.search(index="web_sessions", body=body)["hits"]["hits"]
            if hits:
                operations = [{"delete": {"_index": h["_index"], "_id": h["_id"]}} for h in hits]
                self._executor.bulk(operations=operations)
        except SasError:
            pass      # a failed clean-up must not refuse a login; the next one retries


def token_expiry(token: str) -> datetime | None:
    """The ``exp`` of a token already verified (read without checking again)."""
    exp = jwt.decode(token, options={"verify_signature": False}).get("exp")
    return datetime.fromtimestamp(float(exp), UTC) if isinstance(exp, (int, float)) else None


def open_session(request: Request, response, *, token: str) -> None:
    """Verify ``token`` like the API, open a session for its principal, set the cookie on ``response``.

    A session cookie the browser still had is closed first (no session fixation: the id is always new)."""
    state = request.app.state
    settings: Settings = state.settings
    principal = state.token_verifier.verify(token)   # a token the API would refuse makes no session
    previous = _cookie_session_id(request)
    if previous:
        state.web_sessions.close(previous)
    session_id, _ = state.web_sessions.open(principal, token_expires_at=token_expiry(token))
    response.set_cookie(COOKIE, serializer(settings).dumps(session_id), max_age=settings.web_session_max_s,
                        httponly=True, samesite="lax", secure=cookie_secure(settings), path="/")


def close_session(request: Request, response) -> None:
    session_id = _cookie_session_id(request)
    if session_id:
        request.app.state.web_sessions.close(session_id)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax",
                           secure=cookie_secure(request.app.state.settings))


def _cookie_session_id(request: Request) -> str | None:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    settings: Settings = request.app.state.settings
    try:
        session_id = serializer(settings).loads(raw, max_age=settings.web_session_max_s)
    except BadSignature:
        return None
    return session_id if isinstance(session_id, str) and session_id else None


def read_session(request: Request) -> WebSessionDoc | None:
    """The live session of the request's cookie (``None``: none, forged, logged out or expired)."""
    session_id = _cookie_session_id(request)
    return request.app.state.web_sessions.get(session_id) if session_id else None


def login_csrf(request: Request) -> str:
    """The login form's pre-session CSRF token: the browser's current one, or a fresh one."""
    current = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return current if 20 <= len(current) <= 100 else secrets.token_urlsafe(24)


def set_login_csrf(request: Request, response, token: str) -> None:
    response.set_cookie(LOGIN_CSRF_COOKIE, token, max_age=LOGIN_CSRF_MAX_AGE_S, httponly=True, samesite="strict",
                        secure=cookie_secure(request.app.state.settings), path="/login")


def login_csrf_matches(request: Request, sent: object) -> bool:
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    return bool(expected) and isinstance(sent, str) and secrets.compare_digest(sent.encode(), expected.encode())


def _next_url(request: Request) -> str:
    # An htmx request is a fragment: after login, go back to the full page the user was on.
    current = request.headers.get("HX-Current-URL")
    if current:
        return current
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


def current_user(request: Request) -> WebUser:
    """The signed-in user (``LoginRequired`` → 303 /login otherwise), rate limited like the API.

    Without a session cookie, API credentials (bearer token, integrator key) are accepted too, exactly as
    the JSON API checks them (401 when they are wrong): the same role rules then apply to pages and API.
    Such requests carry no ambient browser credential, so they need no CSRF token. Either way the API's
    limiter is charged under the principal's subject, the key ``deps.get_principal`` uses: a page view
    and an API call of the same user count against one budget (``PageRateLimited`` → a 429 page)."""
    state = request.app.state
    session = read_session(request)
    if session is None:
        authorization = request.headers.get("Authorization", "")
        api_key = request.headers.get("X-API-Key")
        if api_key or authorization:
            principal = authenticate_in_thread(state, api_key=api_key, bearer=bearer_of(authorization),
                                               address=client_address(request.scope))
            _charge(state, principal)
            return WebUser(principal=principal, csrf="", header_auth=True)
        raise LoginRequired(_next_url(request))
    principal = _principal(session)
    _charge(state, principal)
    return WebUser(principal=principal, csrf=session.csrf)


def _charge(state, principal: Principal) -> None:
    try:
        state.rate_limiter.check(principal.sub)
    except TooManyRequests as exc:
        raise PageRateLimited(exc.retry_after_s) from None


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
    sent: str | UploadFile | None = request.headers.get(CSRF_HEADER)
    if not sent:
        form = await request.form()
        sent = form.get(CSRF_FIELD)
    if not sent or not secrets.compare_digest(str(sent).encode(), user.csrf.encode()):
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
