"""``GET /v1/search`` and ``GET /v1/search/beyond``: the neutral search of free slots near a point.

This module turns query parameters into a resolved ``SlotQuery`` (clear 400s for anything wrong) and
hands it to the search service; it builds no Elasticsearch body itself.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from sas_core.clock import utcnow
from sas_core.metrics import SEARCH_RESULTS
from search_api.params import (
    Insee,
    Kinds,
    Lat,
    Lon,
    Q,
    SearchPrincipal,
    Specialty,
    build_slot_query,
    check_radius,
    enum_values,
    resolve_origin,
    resolve_window,
)
from search_api.query import defaults
from search_api.query.model import BeyondQuery
from search_api.responses import shaped_response
from search_api.schemas.search import BeyondSearchOut, SearchOut
from search_api.services import SearchContextDep
from search_api.shedding import admit_search

# Every search route is admitted under the process-wide concurrency limit (503 + Retry-After past it).
router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(admit_search)])


@router.get(
    "/search",
    response_model=SearchOut,
    response_model_by_alias=True,
    summary="Free slots near a point, one card per practice place, ranked neutrally",
    description=(
        "Where: `lat`+`lon`, or `q`, or `insee`. Without `radius_km` the radius grows along "
        f"{list(defaults.RADIUS_LADDER_KM)} km until {defaults.MIN_OFFERS_WITH_SLOTS} places have slots; when "
        "fewer are found, `beyond` lists those accepting patients beyond their displayed slots. When: `from`/`to` "
        f"(default now → now + {int(defaults.DEFAULT_WINDOW.total_seconds() // 3600)} h) or `within`. "
        "Sort `balanced` (default; formula in the README and in `explain`), `earliest`, `nearest`; ties are broken "
        "by a per-day rotation. Slot types shown depend on the caller's role."
    ),
)
def search(
    principal: SearchPrincipal,
    context: SearchContextDep,
    lat: Lat = None,
    lon: Lon = None,
    q: Q = None,
    insee: Insee = None,
    radius_km: Annotated[float | None, Query(description="Fixed radius (km); adaptive when absent")] = None,
    specialty: Specialty = None,
    from_: Annotated[str | None, Query(alias="from", description="Window start (ISO 8601; default now)",
                                       examples=["2025-11-05T08:00:00+01:00"])] = None,
    to: Annotated[str | None, Query(description="Window end (ISO 8601; default from + 48 h)")] = None,
    within: Annotated[str | None, Query(description=f"Shortcut window after now: {list(defaults.WITHIN_BUCKETS_H)}",
                                        examples=["0-4h"])] = None,
    modes: Annotated[list[str] | None,
                     Query(description="AMB (office), HH (home visit), VR (teleconsultation)")] = None,
    kinds: Kinds = None,
    sector: Annotated[list[str] | None, Query(description="Convention sector(s): 1, 2, 3")] = None,
    bookable_only: Annotated[bool, Query(description="Only slots that can be booked (no walk-in)")] = False,
    sort: Annotated[str, Query(description=f"One of {list(defaults.SORTS)}")] = defaults.DEFAULT_SORT,
    page: Annotated[int, Query(ge=1, description="Page number, from 1")] = 1,
    size: Annotated[int, Query(ge=1, le=defaults.MAX_PAGE_SIZE, description="Cards per page")] = defaults.PAGE_SIZE,
    slots: Annotated[int, Query(ge=1, le=defaults.MAX_SLOTS_PER_CARD,
                                description="Earliest slots shown per card")] = defaults.SLOTS_PER_CARD,
    explain: Annotated[bool, Query(description="Add each card's ranking components")] = False,
) -> Any:
    now = utcnow()
    query = build_slot_query(
        context, principal, now=now, lat=lat, lon=lon, q=q, insee=insee, radius_km=radius_km, specialty=specialty,
        start=from_, end=to, within=within, modes=modes, kinds=kinds, sector=sector, bookable_only=bookable_only,
        sort=sort, page=page, size=size, slots=slots, explain=explain,
    )
    result = context.service.search(query)
    SEARCH_RESULTS.labels("search").observe(result["total"])
    return shaped_response(result)


@router.get(
    "/search/beyond",
    response_model=BeyondSearchOut,
    summary="Practitioners and CPTS near a point who accept patients beyond their displayed slots (en sus)",
    description="Nearest first (ties: per-day rotation), with the direct phone number they gave for such patients. "
                "Practitioners declared unavailable during the window are left out.",
)
def beyond(
    principal: SearchPrincipal,
    context: SearchContextDep,
    lat: Lat = None,
    lon: Lon = None,
    q: Q = None,
    insee: Insee = None,
    radius_km: Annotated[float | None, Query(description=f"Radius (km), default {defaults.BEYOND_RADIUS_KM:g}")] = None,
    specialty: Specialty = None,
    kinds: Kinds = None,
    from_: Annotated[str | None, Query(alias="from", description="Window start for unavailabilities")] = None,
    to: Annotated[str | None, Query(description="Window end for unavailabilities")] = None,
    size: Annotated[int, Query(ge=1, le=defaults.MAX_BEYOND_SIZE)] = defaults.BEYOND_SIZE,
) -> Any:
    now = utcnow()
    window = resolve_window(now=now, start=from_, end=to, within=None)
    query = BeyondQuery(
        origin=resolve_origin(context, lat=lat, lon=lon, q=q, insee=insee),
        radius_km=check_radius(radius_km) or defaults.BEYOND_RADIUS_KM,
        specialties=context.specialties.resolve(specialty),
        kinds=enum_values(kinds, allowed=defaults.KINDS, name="kinds", upper=False),
        size=size,
        now=now,
    )
    result = context.service.beyond(query, window=window)
    SEARCH_RESULTS.labels("beyond").observe(result["total"])
    return shaped_response(result)
