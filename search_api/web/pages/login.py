"""Entry, sign-in (dev form, OIDC), sign-out, the public information pages and the static assets."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from itsdangerous import BadSignature
from starlette.concurrency import run_in_threadpool

from sas_core.errors import BadRequest
from search_api.auth import Role, issue_dev_token
from search_api.web import messages, oidc
from search_api.web.pages.common import safe_next
from search_api.web.render import STATIC_DIR, render
from search_api.web.session import (
    CSRF_FIELD,
    CSRF_HEADER,
    ROLE_LABELS,
    PageForbidden,
    close_session,
    cookie_secure,
    login_csrf,
    login_csrf_matches,
    open_session,
    read_session,
    serializer,
    set_login_csrf,
)

router = APIRouter(include_in_schema=False)


# --- Entry, login, logout -----------------------------------------------------------------------------------


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/app/recherche", status_code=303)


LOGIN_ROLES = [(r.value, ROLE_LABELS[r]) for r in Role if r not in (Role.VENDOR, Role.INTEGRATOR)]
FORM_EXPIRED = "Jeton de formulaire invalide : rechargez la page et recommencez."


def _login_form(request: Request, *, next_url: str, error: str | None = None, status_code: int = 200) -> Response:
    """The login page, with the pre-session CSRF token in its form and in a cookie (double submit)."""
    settings = request.app.state.settings
    token = login_csrf(request)
    response = render(request, "login.html", user=None, next=next_url, mode=settings.auth_mode, error=error,
                      roles=LOGIN_ROLES, login_csrf=token, status_code=status_code)
    set_login_csrf(request, response, token)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    return _login_form(request, next_url=safe_next(next))


@router.post("/login")
async def login_dev(request: Request) -> Response:
    """Dev mode: mint a dev token for the chosen role and territory (the form's CSRF token required: another
    site must not sign a browser in under an account of its choosing)."""
    settings = request.app.state.settings
    form = await request.form()
    next_url = safe_next(str(form.get("next") or ""))
    if settings.auth_mode != "dev":
        return RedirectResponse("/login/oidc?" + urlencode({"next": next_url}), status_code=303)
    if not login_csrf_matches(request, form.get(CSRF_FIELD)):
        return _login_form(request, next_url=next_url, error=FORM_EXPIRED, status_code=403)
    role = str(form.get("role") or "")
    territories = [t.strip().upper() for t in str(form.get("territories") or "").replace(",", " ").split() if t.strip()]
    try:
        token = issue_dev_token(settings=settings, roles=[role], territories=territories,
                                name=str(form.get("name") or "").strip() or None,
                                national_id=str(form.get("national_id") or "").strip() or None,
                                structure_id=str(form.get("structure_id") or "").strip() or None)
    except ValueError as exc:
        return _login_form(request, next_url=next_url, error=messages.french(exc), status_code=400)
    response = RedirectResponse(next_url, status_code=303)
    await run_in_threadpool(open_session, request, response, token=token)
    return response


# --- Public information pages: linked from every page's footer, no sign-in needed ---------------------------

LEGAL_PAGES = {"/mentions-legales": "legal_notice.html", "/donnees-personnelles": "personal_data.html",
               "/accessibilite": "accessibility.html"}


def _legal_page(template: str):
    def page(request: Request) -> Response:
        return render(request, template, user=None)
    return page


for _path, _template in LEGAL_PAGES.items():
    router.add_api_route(_path, _legal_page(_template), methods=["GET"], response_class=HTMLResponse)


def _callback_url(request: Request) -> str:
    # OIDC mode refuses to start without SAS_PUBLIC_BASE_URL (search_api/hosts.py): the redirect_uri sent to
    # the identity provider never comes from the request's Host header there.
    base = request.app.state.settings.public_base_url or str(request.base_url).rstrip("/")
    return base.rstrip("/") + "/login/callback"


@router.get("/static/{path:path}")
def static(path: str) -> Response:
    """The interface's own CSS/JS and the vendored assets (a route rather than a mount, so that it is listed
    and checked with every other route); nothing outside ``search_api/static`` is ever served."""


    target = (STATIC_DIR / path).resolve()
    if not target.is_relative_to(STATIC_DIR) or not target.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    # Assets change only with a release: let browsers keep them for an hour.
    return FileResponse(target, headers={"Cache-Control": "public, max-age=3600"})


@router.get("/login/oidc")
def login_oidc(request: Request, next: str | None = None) -> Response:
    """Production: send the browser to the identity provider (authorisation-code flow with PKCE)."""
    settings = request.app.state.settings
    if settings.auth_mode != "oidc":
        return RedirectResponse("/login?" + urlencode({"next": safe_next(next)}), status_code=303)
    auth = oidc.authorization_request(settings, redirect_uri=_callback_url(request))

    response = RedirectResponse(auth.url, status_code=303)
    pending = serializer(settings).dumps({"state": auth.state, "verifier": auth.verifier, "next": safe_next(next)})
    response.set_cookie("sas_oidc", pending, max_age=600, httponly=True, samesite="lax",
                        secure=cookie_secure(settings), path="/login")
    return response


@router.get("/login/callback")
def login_callback(request: Request, code: str | None = None, state: str | None = None,
                   error: str | None = None) -> Response:


    settings = request.app.state.settings
    if error:
        raise BadRequest(f"identity provider refused the login: {error[:80]}")
    try:
        pending = serializer(settings).loads(request.cookies.get("sas_oidc", ""), max_age=600)
    except BadSignature:
        raise BadRequest("login expired or started elsewhere: start again") from None
    if not code or not state or state != pending.get("state"):
        raise BadRequest("login state mismatch: start again")
    token = oidc.exchange_code(settings, code=code, verifier=pending["verifier"], redirect_uri=_callback_url(request))
    response = RedirectResponse(safe_next(pending.get("next")), status_code=303)
    response.delete_cookie("sas_oidc", path="/login")
    open_session(request, response, token=token)   # verifies the token as the API would
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """Close the session server-side (a copy of the cookie is then worth nothing) and drop the cookie.

    With a live session the form's CSRF token is required: another site must not sign users out."""
    session = await run_in_threadpool(read_session, request)
    if session is not None:
        sent = request.headers.get(CSRF_HEADER) or (await request.form()).get(CSRF_FIELD)
        if not isinstance(sent, str) or not secrets.compare_digest(sent.encode(), session.csrf.encode()):
            raise PageForbidden(FORM_EXPIRED)
    response = RedirectResponse("/login", status_code=303)
    await run_in_threadpool(close_session, request, response)
    return response
