"""A CPTS and its members, in the context of the search the operator came from."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sas_core.clock import utcnow
from sas_core.errors import NotFound, SasError
from search_api.params import resolve_window
from search_api.query import defaults
from search_api.query.model import Origin, SlotQuery
from search_api.schemas.search import CptsCardOut
from search_api.visibility import sees_cpts_members, visibility_for
from search_api.web.pages.common import (
    BOOKERS,
    Context,
    Multi,
    Searcher,
    specialty_options,
    territory_choice,
    window_bounds,
)
from search_api.web.render import render

router = APIRouter(include_in_schema=False)


@router.get("/app/cpts/{cpts_id}", response_class=HTMLResponse)
def cpts_page(request: Request, cpts_id: str, user: Searcher, context: Context, q: str | None = None,
              specialite: Multi = None, fenetre: str = "", modes: Multi = None) -> Response:
    """A CPTS and its members in the context of the search the operator came from:
    the search's window and modes, members nearest the search point first, a map, and the members of
    other specialties than the one searched apart; "Retour à la recherche" goes back to that search."""

    now = utcnow()
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
        # Security: a structure manager sees his own CPTS's members only, as on /v1/cpts.
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
                  state={"q": q or "", "territoire": territory_choice(user.principal, None)})


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
