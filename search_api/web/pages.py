"""HTML pages of the web interface (French), rendered on the server with Jinja2.

Pages call the same functions as the JSON API (search query builders, workflow services, the agenda
and dashboard route functions) in-process: the rules (roles, scopes, validation) live in one place.
htmx requests (``HX-Request``) get the page's fragment only, so results update without a reload.
"""

from __future__ import annotations

import dataclasses
import re
import secrets
import uuid
from datetime import datetime, time, timedelta, timezone
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from sas_core.errors import BadRequest, NotFound, SasError
from search_api.auth import Principal, Role, issue_dev_token
from search_api.validation import check_moment
from search_api.query import defaults
from search_api.query.model import BeyondQuery
from search_api.routes import agenda as agenda_routes
from search_api.routes import dashboards as dashboard_routes
from search_api.routes.contextual import contextual_call, contextual_results
from search_api.routes.orientations import filters_from
from search_api.routes.search import SearchContext, build_slot_query, get_context, resolve_window
from search_api.schemas.search import BeyondSearchOut, CptsCardOut, SearchOut
from search_api.web import format as fmt
from search_api.web import messages
from search_api.web import oidc
from search_api.web.render import render
from search_api.web.session import (CSRF_FIELD, CSRF_HEADER, ROLE_LABELS, PageForbidden, WebUser, check_csrf,
                                    close_session, cookie_secure, login_csrf, login_csrf_matches, open_session,
                                    page_roles, read_session, set_login_csrf)
from search_api.workflow import csv_export
from search_api.workflow.contextual import CONTEXTUAL_PARAMETERS
from search_api.workflow.declarations import PeriodIn, end_of_day
from search_api.workflow.queries import DeclarationFilters
from search_api.workflow.scope import orientation_scope_filter, scope_for
from search_api.workflow.wiring import Workflow, get_workflow

router = APIRouter(include_in_schema=False)

SEARCHERS = (Role.OSNP, Role.REGULATOR, Role.EFFECTEUR, Role.STRUCTURE_MANAGER, Role.ADMIN)
BOOKERS = (Role.REGULATOR, Role.OSNP, Role.ADMIN)
VIEWERS = (Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER, Role.ADMIN)
Searcher = Annotated[WebUser, Depends(page_roles(*SEARCHERS))]
Booker = Annotated[WebUser, Depends(page_roles(*BOOKERS))]
Viewer = Annotated[WebUser, Depends(page_roles(*VIEWERS))]
Admin = Annotated[WebUser, Depends(page_roles(Role.ADMIN))]
Practitioner = Annotated[WebUser, Depends(page_roles(Role.EFFECTEUR))]
Context = Annotated[SearchContext, Depends(get_context)]
WorkflowDep = Annotated[Workflow, Depends(get_workflow)]
Multi = Annotated[list[str] | None, Query()]

#: Time-window chips: value → label. Empty value: the search's default (now → 48 h).
WINDOW_CHIPS = [("", "48 prochaines heures"), ("aujourdhui", "Aujourd'hui"), ("prochains-jours", "Prochains jours"),
                ("0-4h", "Dans 0-4 h"), ("4-8h", "Dans 4-8 h"), ("8-12h", "Dans 8-12 h"), ("12-24h", "Dans 12-24 h"),
                ("24-48h", "Dans 24-48 h")]
COMMON_SPECIALTIES = ("SM54", "SM26", "SM53")
PAGE_SIZE = 25


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true"


def safe_next(value: str | None) -> str:
    """Only local paths (no open redirect)."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return "/app/recherche"


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


# --- Public information pages (issue 17, point 1): linked from every page's footer, no sign-in needed ----------

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
    from fastapi.responses import FileResponse

    from search_api.web.render import STATIC_DIR

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
    from search_api.web.session import serializer

    response = RedirectResponse(auth.url, status_code=303)
    pending = serializer(settings).dumps({"state": auth.state, "verifier": auth.verifier, "next": safe_next(next)})
    response.set_cookie("sas_oidc", pending, max_age=600, httponly=True, samesite="lax",
                        secure=cookie_secure(settings), path="/login")
    return response


@router.get("/login/callback")
def login_callback(request: Request, code: str | None = None, state: str | None = None,
                   error: str | None = None) -> Response:
    from itsdangerous import BadSignature

    from search_api.web.session import serializer

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


# --- Search ---------------------------------------------------------------------------------------------------


def window_bounds(chip: str, *, now: datetime) -> tuple[str | None, str | None, str | None]:
    """(from, to, within) of a time-window chip."""
    if chip == "aujourdhui":
        end = datetime.combine(now.astimezone(fmt.PARIS).date() + timedelta(days=1), time(0), tzinfo=fmt.PARIS)
        return None, end.isoformat(), None
    if chip == "prochains-jours":
        return None, (now + timedelta(days=7)).isoformat(), None
    if chip in defaults.WITHIN_BUCKETS_H:
        return None, None, chip
    if chip:
        raise BadRequest(f"fenêtre inconnue « {chip[:20]} » : choisissez une fenêtre dans la liste")
    return None, None, None


def _territory_choice(principal: Principal, requested: str | None) -> str | None:
    if requested and requested in principal.territories:
        return requested
    return sorted(principal.territories)[0] if len(principal.territories) == 1 else None


@router.get("/app/recherche", response_class=HTMLResponse)
def search_page(request: Request, user: Searcher, context: Context, q: str | None = None,
                specialite: Multi = None, fenetre: str = "", modes: Multi = None, kinds: Multi = None,
                secteur: Multi = None, types: Multi = None, reservables: bool = False, en_sus: bool = False,
                territoire: str | None = None, page: Annotated[int, Query(ge=1, le=20)] = 1) -> Response:
    principal = user.principal
    # INT_L01 contextual call: the regulation software's parameters pre-fill the search.
    contextual = None
    if any(k in request.query_params for k in CONTEXTUAL_PARAMETERS):
        try:
            contextual = contextual_call(context, request)
            picked = select_values(context, contextual.specialties)
        except SasError as exc:
            # Refused call (unknown origin, a place that cannot be read): nothing is searched, the operator
            # reads why in French; a full page answers 400, an htmx fragment 200 (htmx ignores 4xx bodies).
            return render(request, "search_results.html" if is_htmx(request) else "search.html", user=user,
                          state=_blank_state(), results=None, beyond=None, error=messages.french(exc), page=1,
                          chips=WINDOW_CHIPS, specialties=specialty_options(context), allowed_types=[],
                          can_book=False, query_string="", own_doctor=None, notices=[],
                          status_code=200 if is_htmx(request) else exc.status_code)
        q = q or contextual.q
        specialite = specialite or picked or None
        territoire = territoire or contextual.territory
    allowed_types = sorted(visibility_types(principal))
    chosen_types = [t for t in (types or []) if t in allowed_types]
    state = {"q": q or "", "specialite": specialite or [], "fenetre": fenetre, "modes": modes or [],
             "kinds": kinds or [], "secteur": secteur or [], "types": chosen_types, "reservables": reservables,
             "en_sus": en_sus, "territoire": _territory_choice(principal, territoire)}
    results = error = beyond = None
    if q:
        try:
            results, beyond = run_search(context, principal, state=state, contextual=contextual, page=page)
        except SasError as exc:
            error = _search_error(request, context, q, exc)
    notices = list(contextual.warnings) if contextual is not None and page == 1 else []
    notices += own_doctor_notices((results or {}).get("own_doctor"))
    template = "search_results.html" if is_htmx(request) else "search.html"
    return render(request, template, user=user, state=state, results=results, beyond=beyond, error=error,
                  page=page, chips=WINDOW_CHIPS, specialties=specialty_options(context),
                  allowed_types=allowed_types, can_book=user.has(*BOOKERS),
                  query_string=urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"]),
                  own_doctor=(results or {}).get("own_doctor") if results else None, notices=notices,
                  status_code=200)


def _search_error(request: Request, context: SearchContext, q: str, exc: SasError) -> str:
    """The search's error in French; a place the gazetteer cannot read offers the closest communes."""
    from search_api.web.suggest import _index

    text = messages.french(exc)
    if text != messages.PLACE_UNKNOWN:
        return text
    closest = _index(request, context).communes.closest(q, limit=4)
    if not closest:
        return text
    names = ", ".join(c["label"] for c in closest)
    return (f"Lieu « {' '.join(q.split())[:60]} » introuvable. Communes proches : {names}. "
            "Saisissez l'une d'elles, un code postal ou une adresse avec sa commune.")


def _blank_state() -> dict:
    return {"q": "", "specialite": [], "fenetre": "", "modes": [], "kinds": [], "secteur": [], "types": [],
            "reservables": False, "en_sus": False, "territoire": None}


def select_values(context: SearchContext, specialties: tuple[str, ...]) -> list[str]:
    """The contextual call's specialties as the page's select knows them: codes as given, a label as its
    code (general practice as the "all general practice" option), so that the operator's next search
    (a filter, a window) keeps the specialty the regulation software asked for."""
    from search_api.query.defaults import GENERAL_PRACTICE_CODES

    values: list[str] = []
    for value in specialties:
        if value.strip().upper() in context.specialties.labels:
            values.append(value.strip().upper())
            continue
        codes = context.specialties.resolve([value])
        if set(codes) == set(GENERAL_PRACTICE_CODES):
            values.append("médecine générale")
        else:
            values.extend(codes)
    return list(dict.fromkeys(values))


def own_doctor_notices(own: dict | None) -> list[str]:
    """What the operator is told about the patient's own doctor the regulation software named."""
    if not own:
        return []
    if not own.get("known"):
        return [("Le médecin traitant transmis n'est pas dans l'annuaire de la plateforme : les résultats suivent "
                 "l'ordre habituel.")]
    if not own.get("has_slots"):
        return [("Le médecin traitant du patient n'a pas de créneau disponible dans la fenêtre de recherche : les "
                 "résultats suivent l'ordre habituel.")]
    return [("Le médecin traitant du patient a des créneaux : sa fiche est affichée en premier, les autres résultats "
             "suivent l'ordre habituel.")]


def visibility_types(principal: Principal) -> frozenset[str]:
    from search_api.visibility import visibility_for

    return visibility_for(principal).types


def run_search(context: SearchContext, principal: Principal, *, state: dict, contextual, page: int
               ) -> tuple[dict, Any]:
    """The search of the page's parameters: ``(answer, beyond answer or None)``."""
    now = datetime.now(timezone.utc)
    start, end, within = window_bounds(state["fenetre"], now=now)
    if contextual is not None and page == 1 and not any(state[k] for k in ("modes", "kinds", "secteur", "types")):
        answer = contextual_results(context, principal, contextual, now=now, start=start, end=end)
    else:
        query = build_slot_query(
            context, principal, now=now, lat=None, lon=None, q=state["q"], insee=None, radius_km=None,
            specialty=state["specialite"] or None, start=start, end=end, within=within, modes=state["modes"],
            kinds=state["kinds"], sector=state["secteur"], bookable_only=state["reservables"], sort="balanced",
            page=page, size=10, slots=8, explain=False)
        if state["types"]:
            # Narrow the role's visibility to the chosen slot types (never widen it).
            visibility = dataclasses.replace(query.visibility, types=query.visibility.types & frozenset(state["types"]))
            query = dataclasses.replace(query, visibility=visibility)
        answer = context.service.search(query)
    own = answer.pop("own_doctor", None)
    # The contextual call marks the patient's own doctor's cards; the published card model has no such field.
    own_ids = {card["offer"]["id"] for card in answer["results"] if card.pop("own_doctor", False)}
    model = SearchOut.model_validate(answer)
    beyond = None
    if state["en_sus"]:
        window = resolve_window(now=now, start=start, end=end, within=within)
        beyond_query = BeyondQuery(origin=context.places.by_text(state["q"]), radius_km=defaults.BEYOND_RADIUS_KM,
                                   specialties=context.specialties.resolve(state["specialite"] or None),
                                   kinds=tuple(state["kinds"]), size=defaults.BEYOND_SIZE, now=now)
        beyond = BeyondSearchOut.model_validate(context.service.beyond(beyond_query, window=window))
    return {"model": model, "own_doctor": own, "own_ids": own_ids, "markers": markers(model)}, beyond


def markers(model: SearchOut) -> list[dict]:
    """Map markers: one per card with a location (the search point first)."""
    points = [{"lat": model.origin.lat, "lon": model.origin.lon, "label": model.origin.label or "Point de recherche",
               "origin": True}]
    for index, card in enumerate(model.results, start=1):
        if card.offer.location:
            points.append({"lat": card.offer.location.lat, "lon": card.offer.location.lon,
                           "label": f"{index}. {card.offer.name or ''}", "target": f"carte-{index}",
                           "number": index})   # issue 17, point 12: the marker shows its card's number
    return points


def specialty_options(context: SearchContext) -> list[tuple[str, str]]:
    from connectors.directory.nomenclatures import load_specialties

    cached = getattr(context, "_web_specialties", None)
    if cached is None:
        labels = load_specialties(context.settings.reference_data_dir).labels
        common = [(c, labels[c]) for c in COMMON_SPECIALTIES if c in labels]
        rest = sorted(((c, l) for c, l in labels.items() if c not in COMMON_SPECIALTIES), key=lambda cl: cl[1])
        cached = [("médecine générale", "Médecine générale (toutes)")] + common + rest
        object.__setattr__(context, "_web_specialties", cached)
    return cached


@router.get("/app/cpts/{cpts_id}", response_class=HTMLResponse)
def cpts_page(request: Request, cpts_id: str, user: Searcher, context: Context, q: str | None = None,
              specialite: Multi = None, fenetre: str = "", modes: Multi = None) -> Response:
    """A CPTS and its members in the context of the search the operator came from (issue 17, point 7):
    the search's window and modes, members nearest the search point first, a map, and the members of
    other specialties than the one searched apart; "Retour à la recherche" goes back to that search."""
    from search_api.query.model import Origin, SlotQuery
    from search_api.routes.cpts import sees_cpts_members
    from search_api.visibility import visibility_for

    now = datetime.now(timezone.utc)
    error = None
    try:
        origin = context.places.by_text(q) if q else None
        start, end, within = window_bounds(fenetre, now=now)
        wanted = context.specialties.resolve(specialite or None)
    except SasError as exc:
        # A search parameter that no longer reads (edited by hand): the members, unfiltered, and why.
        origin, start, end, within, wanted, error = None, None, None, None, (), exc.message
    if start is None and end is None and within is None:
        end = (now + timedelta(days=7)).isoformat()       # no window chosen: the coming week, as before
    query = SlotQuery(origin=origin or Origin(lat=0.0, lon=0.0),
                      window=resolve_window(now=now, start=start, end=end, within=within),
                      now=now, visibility=visibility_for(user.principal), slots_per_card=8,
                      modes=tuple(m for m in (modes or []) if m in defaults.MODES),
                      stale_after_s=context.settings.stale_after_s)
    answer = context.service.cpts(cpts_id, query, with_distances=origin is not None)
    if not sees_cpts_members(user.principal, answer.get("finess")):
        # Security (issue 7): a structure manager sees his own CPTS's members only, as on /v1/cpts.
        raise NotFound(f"no CPTS with id or FINESS {cpts_id!r}")
    card = CptsCardOut.model_validate(answer)
    members = sorted(card.members, key=lambda m: (m.distance_km is None, m.distance_km or 0.0))
    matching = [m for m in members if not wanted or set(m.offer.specialties) & set(wanted)]
    others = [m for m in members if wanted and not set(m.offer.specialties) & set(wanted)]
    search_query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"])
    return render(request, "cpts.html", user=user, card=card, q=q or "", can_book=user.has(*BOOKERS),
                  matching=matching, others=others, error=error, query_string=search_query,
                  specialty_names=[label for code, label in specialty_options(context) if code in (specialite or [])],
                  markers=cpts_markers(origin, matching + others),
                  state={"q": q or "", "territoire": _territory_choice(user.principal, None)})


def cpts_markers(origin, members: list) -> list[dict]:
    """Map markers of the CPTS page: the search point (when there is one), then the members in the page's
    numbering (the same ``carte-<n>`` targets as the cards)."""
    points = [{"lat": origin.lat, "lon": origin.lon, "label": origin.label or "Point de recherche", "origin": True}] \
        if origin is not None else []
    for index, member in enumerate(members, start=1):
        if member.offer.location:
            points.append({"lat": member.offer.location.lat, "lon": member.offer.location.lon,
                           "label": f"{index}. {member.offer.name or ''}", "target": f"carte-{index}"})
    return points


# --- Actions from the results: book, orient beyond slots, report -------------------------------------------------


def _identifier(form, name: str, label: str) -> str:
    """A slot or offer id from a form, checked as the JSON API checks it (3 to 300 characters)."""
    value = str(form.get(name) or "").strip()
    if not 3 <= len(value) <= 300:
        raise BadRequest(f"{label} manquant ou invalide : rechargez la page puis recommencez")
    return value


def _key(form) -> str:
    """The form's idempotency key (one per rendered button: a double click books once), else a fresh one."""
    value = str(form.get("cle") or "")
    return value if 8 <= len(value) <= 200 else uuid.uuid4().hex


def _action_answer(request: Request, user: WebUser, template: str, **values: Any) -> Response:
    if is_htmx(request):
        return render(request, template, user=user, **values)
    return render(request, "action_page.html", user=user, fragment=template, **values)


#: Booking warnings (``BookingResult.warnings``) as the operator reads them.
BOOKING_WARNINGS = {"replayed": "Cette orientation était déjà enregistrée (double clic ou page renvoyée) : "
                                "elle n'a été faite qu'une fois."}


def _french_warnings(result):
    warnings = [BOOKING_WARNINGS.get(w) or messages.french(w) for w in result.warnings or []]
    return dataclasses.replace(result, warnings=warnings)


@router.post("/app/reserver", response_class=HTMLResponse)
async def book(request: Request, user: Booker, workflow: WorkflowDep) -> Response:
    from search_api.workflow.booking import BookingRequest

    await check_csrf(request, user)
    form = await request.form()
    slot_id = str(form.get("slot_id") or "").strip()
    if not confirmed(form) and 3 <= len(slot_id) <= 300:
        # Issue 17, point 5: a click on a slot only asks; the booking is made by the "Confirmer" form this
        # answer carries (a plain form: the same two steps work without JavaScript).
        return _action_answer(request, user, "fragments/confirm_booking.html", slot_id=slot_id,
                              summary=str(form.get("libelle") or "")[:300], territory=str(form.get("territoire") or ""),
                              key=_key(form), target=_target(form), htmx=is_htmx(request))
    try:
        # Services block (Elasticsearch, vendors) and may run their own event loop: off the server's loop.
        result = await run_in_threadpool(workflow.booking.book, user.principal, BookingRequest(
            slot_id=_identifier(form, "slot_id", "créneau"), idempotency_key=_key(form),
            territory=str(form.get("territoire") or "") or None, mode="auto"))
    except SasError as exc:
        return _action_answer(request, user, "fragments/action_error.html", message=messages.french(exc))
    return _action_answer(request, user, "fragments/booked.html", result=_french_warnings(result), slot_id=slot_id)


def _target(form) -> str:
    """The id of the element an answer replaces (``reponse-3``), echoed by the confirmation form; anything else: none."""
    value = str(form.get("cible") or "")
    return value if re.fullmatch(r"[a-z0-9-]{1,40}", value) else ""


def confirmed(form) -> bool:
    """The second step of an irreversible action: its form carries ``confirmer=oui``."""
    return str(form.get("confirmer") or "") == "oui"


@router.post("/app/adresser", response_class=HTMLResponse)
async def orient_beyond(request: Request, user: Booker, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    form = await request.form()
    try:
        result = await run_in_threadpool(
            workflow.booking.book_beyond, user.principal, offer_id=_identifier(form, "offer_id", "professionnel"), idempotency_key=_key(form),
            territory=str(form.get("territoire") or "") or None, consultation_start=None)
    except SasError as exc:
        return _action_answer(request, user, "fragments/action_error.html", message=messages.french(exc))
    return _action_answer(request, user, "fragments/booked.html", result=_french_warnings(result))


@router.post("/app/signaler", response_class=HTMLResponse)
async def report(request: Request, user: Booker, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    form = await request.form()
    kind = str(form.get("kind") or "")
    try:
        if kind not in fmt.DECLARATION_LABELS:
            raise BadRequest("choisissez le motif du signalement")
        if kind == "unavailable" and not confirmed(form):
            # Issue 17, point 5: "unavailable" hides the practitioner for every operator until tonight: asked first.
            return _action_answer(request, user, "fragments/confirm_report.html", kind=kind,
                                  offer_id=_identifier(form, "offer_id", "professionnel"),
                                  comment=str(form.get("comment") or "")[:500], practitioner=str(form.get("nom") or "")[:200],
                                  target=_target(form), htmx=is_htmx(request))
        period = None
        if kind == "unavailable":
            from search_api.workflow.common import utcnow

            start = utcnow()
            period = PeriodIn(start, end_of_day(start))
        declaration = await run_in_threadpool(workflow.declarations.report, user.principal, kind=kind, offer_id=_identifier(form, "offer_id", "professionnel"),
                                                   period=period, comment=str(form.get("comment") or "")[:500] or None)
    except SasError as exc:
        return _action_answer(request, user, "fragments/action_error.html", message=messages.french(exc))
    return _action_answer(request, user, "fragments/reported.html", declaration=declaration)


# --- Dashboards -----------------------------------------------------------------------------------------------


def _orientation_filters(*, statut, territoire, du, au, periode):
    return filters_from(territory=[territoire] if territoire else None, from_=du or None,
                        to=(_day_after(au) if au and len(au) == 10 else au or None),
                        period="consultation" if periode == "consultation" else "created",
                        status=[statut] if statut else None, effecteur=None, category=None, source=None)


@router.get("/app/tableaux/orientations", response_class=HTMLResponse)
def orientations_page(request: Request, user: Viewer, workflow: WorkflowDep, context: Context,
                      statut: str | None = None,
                      territoire: str | None = None, du: str | None = None, au: str | None = None,
                      periode: str = "created", page: Annotated[int, Query(ge=1, le=400)] = 1,
                      message: str | None = None, erreur: str | None = None) -> Response:
    filters_state = {"statut": statut or "", "territoire": territoire or "", "du": du or "", "au": au or "",
                     "periode": periode}
    error, total, rows = None, 0, []
    try:
        filters = _orientation_filters(statut=statut, territoire=territoire, du=du, au=au, periode=periode)
        total, rows = workflow.orientations.list(scope_for(user.principal), filters, page=page, size=PAGE_SIZE)
    except SasError as exc:
        error = messages.french(exc)
    undelivered: dict[str, dict[str, int]] = {}
    if workflow.publisher.enabled and workflow.deliveries is not None and not error:
        # INT_L02 messages the regulation software has not acknowledged, per territory of the viewer's scope.
        restriction = orientation_scope_filter(scope_for(user.principal))
        undelivered = workflow.deliveries.undelivered(restriction=restriction)
    today = datetime.now(fmt.PARIS).date().isoformat()
    query = urlencode({k: v for k, v in filters_state.items() if v})
    template = "fragments/orientations_table.html" if is_htmx(request) else "orientations.html"
    return render(request, template, user=user, rows=rows, total=total, page=page, size=PAGE_SIZE,
                  undelivered=undelivered, message=message[:200] if message else None,
                  action_error=erreur[:300] if erreur else None, can_cancel=user.has(*CANCELLERS),
                  open_statuses=OPEN_STATUSES,
                  pages=max(1, -(-total // PAGE_SIZE)), f=filters_state, error=error, query=query,
                  statuses=fmt.STATUS_LABELS, today=today, territories=sorted(user.principal.territories),
                  # The labels the CSV export writes too (issue 17, point 11): without their "(SM)" suffix.
                  specialty_labels={c: context.specialties.label(c) or label for c, label in specialty_options(context)})


@router.get("/app/tableaux/orientations.csv")
def orientations_csv(user: Viewer, workflow: WorkflowDep, context: Context, statut: str | None = None,
                     territoire: str | None = None, du: str | None = None, au: str | None = None,
                     periode: str = "created") -> StreamingResponse:
    filters = _orientation_filters(statut=statut, territoire=territoire, du=du, au=au, periode=periode)
    docs = workflow.orientations.export(scope_for(user.principal), filters)
    # The screen's labels (issue 17, point 11): the table and the CSV read the same.
    return StreamingResponse(csv_export.stream(docs, specialty_label=context.specialties.label), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="orientations.csv"'})


# --- Cancelling from the tables (issue 17, point 5): a confirmation page, then a CSRF-checked POST ---------------

#: Who may cancel an orientation (the roles of ``POST /v1/orientations/{id}/cancel`` that see this table).
CANCELLERS = (Role.REGULATOR, Role.OSNP, Role.ADMIN)
Canceller = Annotated[WebUser, Depends(page_roles(*CANCELLERS))]
OPEN_STATUSES = ("oriented", "booked", "pending")
_ID_CHARS = frozenset("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-")


def _checked_id(value: str, *, what: str) -> str:
    """An orientation or declaration id as the API accepts it (8 to 64 letters, digits, ``_`` or ``-``)."""
    if not 8 <= len(value) <= 64 or not set(value) <= _ID_CHARS:
        raise BadRequest(f"identifiant {what} invalide : revenez au tableau et choisissez la ligne à annuler")
    return value


def _to_orientations(message: str | None = None, error: str | None = None) -> RedirectResponse:
    query = urlencode({k: v for k, v in (("message", message), ("erreur", error)) if v})
    return RedirectResponse("/app/tableaux/orientations" + (f"?{query}" if query else ""), status_code=303)


@router.get("/app/tableaux/orientations/{orientation_id}/annuler", response_class=HTMLResponse)
def confirm_cancel_orientation(request: Request, orientation_id: str, user: Canceller,
                               workflow: WorkflowDep, context: Context) -> Response:
    """The confirmation page of a cancel (works without JavaScript): what is cancelled, and the button."""
    try:
        document = workflow.orientations.get(_checked_id(orientation_id, what="d'orientation"),
                                             scope_for(user.principal))
    except SasError as exc:
        return _to_orientations(error=exc.message if exc.status_code != 404 else
                                "Orientation introuvable dans vos territoires : elle a pu être supprimée.")
    if document.get("status") not in OPEN_STATUSES:
        return _to_orientations(error=f"Cette orientation est « {fmt.STATUS_LABELS.get(document.get('status'), '')} » : "
                                      "elle ne peut plus être annulée.")
    specialty = (document.get("effecteur") or {}).get("specialty")
    return render(request, "confirm_cancel.html", user=user, kind="orientation", document=document,
                  specialty=context.specialties.label(specialty) if specialty else None,
                  action=f"/app/tableaux/orientations/{orientation_id}/annuler",
                  back="/app/tableaux/orientations")


@router.post("/app/tableaux/orientations/{orientation_id}/annuler")
async def cancel_orientation(request: Request, orientation_id: str, user: Canceller, workflow: WorkflowDep) -> Response:
    """Cancel as ``POST /v1/orientations/{id}/cancel`` does (same service, same rules: open orientations of
    the user's territories; the platform agenda's place or the vendor claim is given back)."""
    from search_api.routes.orientations import cancel as cancel_route

    await check_csrf(request, user)
    try:
        await run_in_threadpool(cancel_route, _checked_id(orientation_id, what="d'orientation"), workflow,
                                user.principal, None)
    except SasError as exc:
        if exc.status_code == 409:
            return _to_orientations(error="Cette orientation n'est plus en cours (honorée, non honorée ou déjà "
                                          "traitée) : elle ne peut plus être annulée.")
        if exc.status_code == 404:
            return _to_orientations(error="Orientation introuvable dans vos territoires : elle a pu être supprimée.")
        return _to_orientations(error=exc.message)
    return _to_orientations("Orientation annulée. Prévenez le professionnel si le patient ne viendra pas.")


@router.get("/app/tableaux/declarations/{declaration_id}/annuler", response_class=HTMLResponse)
def confirm_cancel_report(request: Request, declaration_id: str, user: Viewer, workflow: WorkflowDep) -> Response:
    target = "/app/tableaux/declarations?"
    try:
        found = workflow.store.get("declarations", _checked_id(declaration_id, what="de déclaration"))
    except SasError as exc:
        return RedirectResponse(target + urlencode({"erreur": exc.message}), status_code=303)
    principal = user.principal
    source = found.source if found is not None else {}
    # Shown only to who may cancel it (the service checks again on the POST).
    visible = found is not None and (principal.has_any(Role.ADMIN) or source.get("declared_by") == principal.sub or (
        principal.has_any(Role.REGULATOR, Role.OSNP) and source.get("declared_by_role") == "regulator"
        and source.get("territory") in principal.territories))
    if not visible:
        return RedirectResponse(target + urlencode({"erreur": "Signalement introuvable dans vos territoires."}),
                                status_code=303)
    if not source.get("active", True):
        return RedirectResponse(target + urlencode({"message": "Ce signalement est déjà annulé."}), status_code=303)
    return render(request, "confirm_cancel.html", user=user, kind="declaration", document=source, specialty=None,
                  action=f"/app/tableaux/declarations/{declaration_id}/annuler", back="/app/tableaux/declarations")


@router.get("/app/tableaux/declarations", response_class=HTMLResponse)
def declarations_page(request: Request, user: Viewer, workflow: WorkflowDep, actives: bool = False,
                      message: str | None = None, erreur: str | None = None) -> Response:
    filters = DeclarationFilters(active=True if actives else None)
    total, rows = workflow.declarations.list(scope_for(user.principal), filters, page=1, size=100)
    for row in rows:
        # A practitioner-wide unavailability spanning several territories lists them (issue 17, point 6).
        if isinstance(row.get("territory"), list):
            row["territory"] = ", ".join(row["territory"])
    regulators = [r for r in rows if r.get("declared_by_role") != "effecteur"]
    practitioners = [r for r in rows if r.get("declared_by_role") == "effecteur"]
    # Regulators and OSNP cancel the reports of their territories (the service checks each one).
    can_cancel = user.principal.has_any(Role.REGULATOR, Role.OSNP, Role.ADMIN)
    return render(request, "declarations.html", user=user, regulators=regulators, practitioners=practitioners,
                  total=total, actives=actives, now=datetime.now(timezone.utc), can_cancel=can_cancel,
                  message=message, error=erreur, report_max_hours=workflow.settings.report_max_hours,
                  role_labels=ROLE_LABELS)


@router.post("/app/tableaux/declarations/{declaration_id}/annuler")
async def cancel_report(request: Request, declaration_id: str, user: Viewer, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    target = "/app/tableaux/declarations?"
    try:
        await run_in_threadpool(workflow.declarations.cancel, user.principal, declaration_id)
    except SasError as exc:
        return RedirectResponse(target + urlencode({"erreur": messages.french(exc)}), status_code=303)
    return RedirectResponse(target + urlencode({"message": "Signalement annulé."}), status_code=303)


@router.get("/app/tableaux/collecte", response_class=HTMLResponse)
def harvest_page(request: Request, user: Admin, workflow: WorkflowDep,
                 jours: Annotated[int, Query(ge=1, le=90)] = 7) -> Response:
    health = dashboard_routes.harvest(user.principal, workflow, days=jours)
    # Vendors that are down first (issue 17, point 8): the administrator sees them without scrolling.
    vendors = sorted(health["vendors"], key=lambda v: (not v.get("down"), v["vendor"]))
    return render(request, "harvest.html", user=user, health=health, vendors=vendors, jours=jours,
                  served_help=fmt.SERVED_HELP)


# --- Regulator accounts (INT_R02) -----------------------------------------------------------------------------

AccountManager = Annotated[WebUser, Depends(page_roles(Role.ACCOUNT_MANAGER, Role.ADMIN))]
#: Per-vendor synchronisation states (``mappings/accounts.py``) as managers read them.
SYNC_LABELS = {"synced": "À jour", "failed": "Échec, nouvel essai à la prochaine connexion ou modification",
               "rejected": "Refusé par l’éditeur, renvoyé quand le compte sera modifié",
               "blocked": "Non transmis : compte incomplet"}


def missing_sentence(missing: list[str]) -> str:
    """``Non transmis aux éditeurs : il manque le prénom et l’adresse e-mail (…)`` for the accounts page."""
    from search_api.workflow.accounts import LABELS

    labels = [LABELS.get(m, m) for m in missing]
    listed = labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " et " + labels[-1]
    pronoun = "l’exige" if len(labels) == 1 else "les exige"
    return (f"Non transmis aux éditeurs : il manque {listed} (le profil FrPractitionerRegul {pronoun}). "
            "Le compte leur sera transmis dès qu’il sera complété.")


@router.get("/app/comptes", response_class=HTMLResponse)
def accounts_page(request: Request, user: AccountManager, workflow: WorkflowDep, bloques: bool = False) -> Response:
    accounts = workflow.accounts.list_managed(user.principal, blocked=bloques, size=200)
    return render(request, "accounts.html", user=user, accounts=accounts, bloques=bloques,
                  missing_sentence=missing_sentence, SYNC_LABELS=SYNC_LABELS)


# --- Practitioner space ---------------------------------------------------------------------------------------


def _my_offers(request: Request, principal: Principal) -> list[dict]:
    if not principal.national_id:
        return []
    executor = request.app.state.executor
    body = {"size": 20, "sort": [{"id": "asc"}], "query": {"term": {"national_id": principal.national_id}}}
    return [hit["_source"] for hit in executor.search(index="offers", body=body)["hits"]["hits"]]


@router.get("/app/espace", response_class=HTMLResponse)
def practitioner_page(request: Request, user: Practitioner, workflow: WorkflowDep, message: str | None = None,
                      erreur: str | None = None) -> Response:
    principal = user.principal
    executor = request.app.state.executor
    offers = _my_offers(request, principal)
    agendas = {}
    for offer in offers:
        if not (offer.get("sas") or {}).get("vendor"):
            agendas[offer["id"]] = agenda_routes.list_slots(principal, executor, offer["id"], None,
                                                            datetime.now(timezone.utc) + timedelta(days=8))
    _, orientations = workflow.orientations.list(
        scope_for(principal), filters_from(territory=None, from_=None, to=None, period="created", status=None,
                                           effecteur=None, category=None, source=None), page=1, size=50)
    _, unavailability = workflow.declarations.list(
        scope_for(principal), DeclarationFilters(kinds=("unavailable",), active=True,
                                                 national_id=principal.national_id), page=1, size=50)
    return render(request, "practitioner.html", user=user, offers=offers, agendas=agendas, orientations=orientations,
                  unavailability=unavailability, message=message, error=erreur,
                  today=datetime.now(fmt.PARIS).date().isoformat())


def _day_after(day: str) -> str:
    """``YYYY-MM-DD`` of the day after ``day`` (400, not 500, on an invalid or out-of-range date)."""
    try:
        moment = datetime.fromisoformat(day)
    except ValueError:
        raise BadRequest(f"date invalide « {day[:20]} » : saisissez-la au format JJ/MM/AAAA") from None
    return (check_moment(moment, name="la date") + timedelta(days=1)).date().isoformat()


def _back(message: str | None = None, error: str | None = None, anchor: str = "") -> RedirectResponse:
    query = urlencode({k: v for k, v in (("message", message), ("erreur", error)) if v})
    return RedirectResponse(f"/app/espace{'?' + query if query else ''}{anchor}", status_code=303)


@router.post("/app/espace/orientations/{orientation_id}/honoree")
async def honour(request: Request, orientation_id: str, user: Practitioner, workflow: WorkflowDep) -> Response:
    from search_api.routes.orientations import honour as honour_route

    await check_csrf(request, user)
    try:
        await run_in_threadpool(honour_route, orientation_id, workflow, user.principal)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#orientations")
    return _back("Consultation marquée comme honorée.", anchor="#orientations")


def _local_moment(day: str, hour: str) -> datetime:
    try:
        moment = datetime.combine(datetime.fromisoformat(day).date(), time.fromisoformat(hour), tzinfo=fmt.PARIS)
    except ValueError:
        raise BadRequest("date ou heure invalide : saisissez la date (JJ/MM/AAAA) et l'heure (HH:MM)") from None
    # Security (issue 7): bounded years, or adding a day to 9999-12-31 overflows (a 500).
    return check_moment(moment, name="la date")


#: Form labels of the agenda form's fields (``AgendaItem``), for the French validation messages.
SLOT_FIELDS = {"start": "Début", "end": "Fin", "capacity": "Capacité", "modes": "Modes de consultation",
               "types": "Publics", "motive": "Motif", "offer_id": "Lieu d'exercice", "items": "Créneau"}


@router.post("/app/espace/agenda")
async def publish_slot(request: Request, user: Practitioner) -> Response:
    await check_csrf(request, user)
    form = await request.form()
    try:
        day = str(form.get("date") or "")
        start, end = _local_moment(day, str(form.get("debut") or "")), _local_moment(day, str(form.get("fin") or ""))
        capacity = str(form.get("capacite") or "").strip()
        modes = [m for m in form.getlist("modes") if m in defaults.MODES] or ["AMB"]
        item = agenda_routes.AgendaItem(start=start, end=end, capacity=int(capacity) if capacity else None,
                                        modes=modes, types=["SNP"])
        await run_in_threadpool(agenda_routes.publish, agenda_routes.AgendaPublish(offer_id=str(form.get("offer_id") or ""), items=[item]),
                              user.principal, request.app.state.executor, request.app.state.settings)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#agenda")
    except ValidationError as exc:
        # A doctor reads which field to correct, in French (never pydantic's report).
        return _back(error=messages.validation_message(exc, labels=SLOT_FIELDS, subject="Créneau non publié"),
                     anchor="#agenda")
    except ValueError:
        return _back(error="Créneau non publié : la capacité est un nombre entier de patients (1 à 100).",
                     anchor="#agenda")
    return _back("Créneau publié : il apparaît dans la recherche.", anchor="#agenda")


@router.post("/app/espace/agenda/{slot_id}/supprimer")
async def delete_slot(request: Request, slot_id: str, user: Practitioner) -> Response:
    await check_csrf(request, user)
    try:
        await run_in_threadpool(agenda_routes.delete_slot, slot_id, user.principal, request.app.state.executor)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#agenda")
    return _back("Créneau supprimé.", anchor="#agenda")


@router.post("/app/espace/indisponibilites")
async def declare_unavailability(request: Request, user: Practitioner, workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    form = await request.form()
    try:
        start = _local_moment(str(form.get("du") or ""), "00:00")
        end = None if form.get("indefinie") else _local_moment(str(form.get("au") or ""), "00:00") + timedelta(days=1)
        await run_in_threadpool(
            workflow.declarations.declare_unavailability, user.principal, offer_id=str(form.get("offer_id") or "") or None, periods=[PeriodIn(start, end)],
            comment=str(form.get("comment") or "")[:500] or None)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#indisponibilites")
    return _back("Indisponibilité enregistrée.", anchor="#indisponibilites")


@router.post("/app/espace/indisponibilites/{declaration_id}/annuler")
async def cancel_unavailability(request: Request, declaration_id: str, user: Practitioner,
                                workflow: WorkflowDep) -> Response:
    await check_csrf(request, user)
    try:
        await run_in_threadpool(workflow.declarations.cancel, user.principal, declaration_id)
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#indisponibilites")
    return _back("Indisponibilité annulée.", anchor="#indisponibilites")


@router.post("/app/espace/participation")
async def participation(request: Request, user: Practitioner, workflow: WorkflowDep) -> Response:
    """Participation (individually or through a CPTS) and the phone for patients beyond displayed slots."""
    from search_api.workflow.store import Versioned  # noqa: F401  (type of ``current``)

    await check_csrf(request, user)
    form = await request.form()
    offer_id = str(form.get("offer_id") or "")
    try:
        if offer_id not in {o["id"] for o in await run_in_threadpool(_my_offers, request, user.principal)}:
            raise BadRequest("ce lieu d'exercice n'est pas le vôtre")
        current = await run_in_threadpool(workflow.store.get, "offers", offer_id)
        if current is None:
            raise BadRequest("lieu d'exercice inconnu")
        mode = str(form.get("participation") or "non")
        phone = " ".join(str(form.get("telephone") or "").split()) or None
        if phone and not all(c.isdigit() or c in "+ .()-" for c in phone):
            raise BadRequest("numéro de téléphone invalide : saisissez des chiffres, par exemple 05 56 12 34 56")
        accepts = bool(form.get("en_sus"))
        if accepts and not phone:
            raise BadRequest("donnez un numéro pour les patients en sus de vos disponibilités")
        cpts, cpts_name = None, None
        if mode == "cpts":
            # Security (issue 15, point 7): the CPTS must be one of the directory's, and its name is the
            # directory's (a typed name is ignored): no enrolment in a made-up CPTS.
            from sas_core.structure_ids import finess_bare
            from search_api.workflow.queries import FINESS_RE, cpts_offer_body

            cpts = finess_bare("".join(str(form.get("cpts_finess") or "").split()).upper())
            if not (cpts and FINESS_RE.match(cpts)):
                raise BadRequest("le numéro FINESS de la CPTS a 9 caractères (chiffres, ou 2A / 2B en Corse)")
            found = await run_in_threadpool(workflow.store.first, "offers", cpts_offer_body(finess=cpts))
            if found is None:
                raise BadRequest(f"aucune CPTS de numéro FINESS {cpts} dans l’annuaire")
            cpts_name = found.source.get("name") or (found.source.get("structure") or {}).get("name")
        sas = {"participates": mode != "non", "cpts_finess": cpts, "cpts_name": cpts_name,
               "accepts_beyond": accepts, "beyond_phone": phone}
        await run_in_threadpool(workflow.store.patch, "offers", current, {"sas": sas})
    except SasError as exc:
        return _back(error=messages.french(exc), anchor="#participation")
    return _back("Participation enregistrée.", anchor="#participation")


@router.get("/app/suggestions", response_class=HTMLResponse)
def suggestions(request: Request, user: Searcher, context: Context, q: str = "") -> Response:
    """``<option>`` elements of the address field's datalist (session-authenticated twin of /v1/geocode/suggest)."""
    from search_api.web.suggest import _index

    items = _index(request, context).suggest(q, limit=8) if q.strip() and len(q) <= 100 else []
    return render(request, "fragments/suggestions.html", user=user, items=items)
