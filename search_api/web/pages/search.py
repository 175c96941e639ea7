"""The operator's search page (pre-filled by the INT_L01 contextual call) and the address suggestions."""

from __future__ import annotations

import dataclasses
import math
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from sas_core.clock import utcnow
from sas_core.errors import SasError
from search_api.auth import Principal
from search_api.contextual_search import contextual_results
from search_api.params import build_slot_query, contextual_call, resolve_window
from search_api.query import defaults
from search_api.query.defaults import GENERAL_PRACTICE_CODES
from search_api.query.model import BeyondQuery
from search_api.schemas.search import BeyondSearchOut, SearchOut
from search_api.services import SearchContext, ServicesDep
from search_api.visibility import visibility_for
from search_api.web import messages
from search_api.web.pages.common import (
    BOOKERS,
    WINDOW_CHIPS,
    Context,
    Multi,
    Searcher,
    is_htmx,
    specialty_options,
    territory_choice,
    window_bounds,
)
from search_api.web.render import render
from search_api.workflow.contextual import CONTEXTUAL_PARAMETERS

router = APIRouter(include_in_schema=False)


# --- Search ---------------------------------------------------------------------------------------------------


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
             "en_sus": en_sus, "territoire": territory_choice(principal, territoire)}
    results = error = beyond = None
    if q:
        try:
            results, beyond = run_search(context, principal, state=state, contextual=contextual, page=page)
        except SasError as exc:
            error = _search_error(request, q, exc)
    notices = list(contextual.warnings) if contextual is not None and page == 1 else []
    notices += own_doctor_notices((results or {}).get("own_doctor"))
    template = "search_results.html" if is_htmx(request) else "search.html"
    return render(request, template, user=user, state=state, results=results, beyond=beyond, error=error,
                  page=page, chips=WINDOW_CHIPS, specialties=specialty_options(context),
                  allowed_types=allowed_types, can_book=user.has(*BOOKERS),
                  query_string=urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "page"]),
                  own_doctor=(results or {}).get("own_doctor") if results else None, notices=notices,
                  status_code=200)


def _search_error(request: Request, q: str, exc: SasError) -> str:
    """The search's error in French; a place the gazetteer cannot read offers the closest communes."""
    text = messages.french(exc)
    if text != messages.PLACE_UNKNOWN:
        return text
    closest = request.app.state.services.suggestions.communes.closest(q, limit=4)
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

    return visibility_for(principal).types


def run_search(context: SearchContext, principal: Principal, *, state: dict, contextual, page: int
               ) -> tuple[dict, Any]:
    """The search of the page's parameters: ``(answer, beyond answer or None)``."""
    now = utcnow()
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
    return {"model": model, "own_doctor": own, "own_ids": own_ids, "markers": markers(model),
            "last_page": last_page(model)}, beyond


def last_page(model: SearchOut) -> int:
    """The last page the pager offers: as many as the places counted (a lower bound when counting stopped
    early: never an empty page), at most the pages the search can reach (``MAX_RESULT_WINDOW`` places)."""
    return max(1, min(math.ceil(model.total / model.size), defaults.MAX_RESULT_WINDOW // model.size))


def markers(model: SearchOut) -> list[dict]:
    """Map markers: one per card with a location (the search point first)."""
    points = [{"lat": model.origin.lat, "lon": model.origin.lon, "label": model.origin.label or "Point de recherche",
               "origin": True}]
    for index, card in enumerate(model.results, start=1):
        if card.offer.location:
            points.append({"lat": card.offer.location.lat, "lon": card.offer.location.lon,
                           "label": f"{index}. {card.offer.name or ''}", "target": f"carte-{index}",
                           "number": index})   # the marker shows its card's number
    return points


@router.get("/app/suggestions", response_class=HTMLResponse)
def suggestions(request: Request, user: Searcher, services: ServicesDep, q: str = "") -> Response:
    """``<option>`` elements of the address field's datalist (session-authenticated twin of /v1/geocode/suggest)."""
    items = services.suggestions.suggest(q, limit=8) if q.strip() and len(q) <= 100 else []
    return render(request, "fragments/suggestions.html", user=user, items=items)
