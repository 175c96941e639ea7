"""``GET /v1/search`` and ``GET /v1/search/beyond``: the neutral search of free slots near a point.

This module turns query parameters into a resolved ``SlotQuery`` (clear 400s for anything wrong) and
hands it to the search service; it builds no Elasticsearch body itself.
"""

from __future__ import annotations

import gc
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from sas_core.errors import BadRequest
from sas_core.metrics import SEARCH_RESULTS
from sas_core.settings import Settings
from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.geocode import PlaceResolver, origin_from_coordinates
from search_api.query import defaults
from search_api.query.model import BeyondQuery, Origin, SlotQuery, Window
from search_api.schemas.search import BeyondSearchOut, SearchOut
from search_api.search_service import SearchService
from search_api.shedding import admit_search
from search_api.specialties import SpecialtyResolver
from search_api.validation import check_moment
from search_api.visibility import visibility_for

# Every search route is admitted under the process-wide concurrency limit (503 + Retry-After past it).
router = APIRouter(prefix="/v1", tags=["search"], dependencies=[Depends(admit_search)])

#: Who may search (everyone of the regulation chain, practitioners, CPTS coordinators, integrators).
SEARCH_ROLES = (Role.OSNP, Role.REGULATOR, Role.EFFECTEUR, Role.STRUCTURE_MANAGER, Role.INTEGRATOR, Role.ADMIN)
SearchPrincipal = Annotated[Principal, Depends(roles(*SEARCH_ROLES))]
_LOCAL = ZoneInfo(defaults.LOCAL_TIMEZONE)


# --- Per-app context, built on first use (the communes table takes half a second to load) -------------------


@dataclass
class SearchContext:
    places: PlaceResolver
    specialties: SpecialtyResolver
    service: SearchService
    settings: Settings


_context_lock = threading.Lock()


async def get_context(request: Request) -> SearchContext:
    """The app's search context (gazetteer, TRE_R38 resolver, service), created once.

    ``async``: read on the event loop (no thread hop per request); built once in the thread pool."""
    context = getattr(request.app.state, "search_context", None)
    if context is None:
        context = await run_in_threadpool(_build_context, request.app)
    return context


def _build_context(app: Any) -> SearchContext:
    with _context_lock:
        context = getattr(app.state, "search_context", None)
        if context is None:
            from connectors.directory.nomenclatures import load_specialties
            from search_api.addresses import AddressSearch

            settings: Settings = app.state.settings
            specialties = SpecialtyResolver(load_specialties(settings.reference_data_dir).labels)
            context = SearchContext(
                # Issue 16: typed addresses placed with the national address base when it is loaded.
                places=PlaceResolver.from_settings(settings, addresses=AddressSearch(app.state.executor)),
                specialties=specialties,
                # Issue 17 (10): cards name every specialty of their slots and of the directory.
                service=SearchService(executor=app.state.executor, report_max_hours=settings.report_max_hours,
                                      specialty_label=specialties.label),
                settings=settings,
            )
            app.state.search_context = context
            # The gazetteer and code lists are tens of thousands of long-lived objects: moved out of
            # the collector's generations, so that full collections stay short (tail latency).
            gc.freeze()
            # A search allocates a few thousand short-lived objects (decoded answers): collect the
            # young generation less often than every 700 allocations.
            gc.set_threshold(20_000, 20, 20)
    return context


Context = Annotated[SearchContext, Depends(get_context)]


def shaped_response(result: dict[str, Any]) -> Response:
    """An answer the search service already shaped field for field as its published model (same keys,
    order and types: ``tests/integration/search/test_search_response_shape.py`` checks it byte for byte
    against the model's own serialization), serialized as is by orjson (same number formats as the
    model; ``Z`` for UTC date-times, as the model writes them) without validating it again: validation
    cost more than the rest of the answer's shaping."""
    return Response(content=orjson.dumps(result, option=orjson.OPT_UTC_Z), media_type="application/json")


def contract_response(model: type[BaseModel], result: dict[str, Any]) -> Response:
    """The answer validated against its published model, serialized by pydantic-core in one step
    (FastAPI's generic path would validate, convert to Python, then serialize with the json module)."""
    return Response(content=model.model_validate(result).model_dump_json(by_alias=True),
                    media_type="application/json")


# --- Parameter resolution (pure apart from the clock passed in) -----------------------------------------------


def split_values(raw: list[str] | None) -> list[str]:
    """``modes=AMB&modes=VR`` and ``modes=AMB,VR`` alike."""
    values: list[str] = []
    for item in raw or []:
        values.extend(v.strip() for v in item.split(",") if v.strip())
    return values


def enum_values(raw: list[str] | None, *, allowed: tuple[str, ...], name: str, upper: bool) -> tuple[str, ...]:
    values = [v.upper() if upper else v.lower() for v in split_values(raw)]
    unknown = [v for v in values if v not in allowed]
    if unknown:
        raise BadRequest(f"unknown {name} {unknown}: allowed values are {list(allowed)}")
    return tuple(dict.fromkeys(values))


def parse_moment(value: str, *, name: str) -> datetime:
    """ISO 8601 date-time; without offset it is French local time."""
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise BadRequest(f"{name} must be an ISO 8601 date-time (e.g. 2025-11-05T14:00:00+01:00), got {value!r}") from exc
    # Bounded years: a date near 9999 would overflow when the default window is added (500).
    check_moment(moment, name=name)
    return moment.replace(tzinfo=_LOCAL) if moment.tzinfo is None else moment


def resolve_window(*, now: datetime, start: str | None, end: str | None, within: str | None) -> Window:
    """``from``/``to`` (default now → now + 48 h) or ``within``; a window never starts in the past."""
    if within is not None:
        if start is not None or end is not None:
            raise BadRequest("give either within or from/to, not both")
        bucket = defaults.WITHIN_BUCKETS_H.get(within.strip().lower())
        if bucket is None:
            raise BadRequest(f"unknown within {within!r}: allowed values are {list(defaults.WITHIN_BUCKETS_H)}")
        return Window(start=now + timedelta(hours=bucket[0]), end=now + timedelta(hours=bucket[1]))
    window_start = parse_moment(start, name="from") if start else now
    window_end = parse_moment(end, name="to") if end else window_start + defaults.DEFAULT_WINDOW
    if window_end <= now:
        raise BadRequest("the window is entirely in the past: free slots are searched from now on")
    if window_end <= window_start:
        raise BadRequest(f"from ({window_start.isoformat()}) must be before to ({window_end.isoformat()})")
    window_start = max(window_start, now)
    if window_end - window_start > defaults.MAX_WINDOW:
        raise BadRequest(f"the window may not exceed {defaults.MAX_WINDOW.days} days")
    return Window(start=window_start, end=window_end)


def resolve_origin(context: SearchContext, *, lat: float | None, lon: float | None, q: str | None,
                   insee: str | None) -> Origin:
    """Exactly one of lat+lon, q, insee."""
    given = [name for name, present in (("lat/lon", lat is not None or lon is not None), ("q", q is not None),
                                        ("insee", insee is not None)) if present]
    if not given:
        raise BadRequest("say where to search: lat and lon, or q (address, postcode or commune), or insee")
    if len(given) > 1:
        raise BadRequest(f"give only one of lat/lon, q, insee (got {', '.join(given)})")
    if q is not None:
        return context.places.by_text(q)
    if insee is not None:
        return context.places.by_insee(insee)
    if lat is None or lon is None:
        raise BadRequest("lat and lon go together")
    return origin_from_coordinates(lat, lon)


def check_radius(radius_km: float | None) -> float | None:
    if radius_km is not None and not (defaults.MIN_RADIUS_KM <= radius_km <= defaults.MAX_RADIUS_KM):
        raise BadRequest(
            f"radius_km must be between {defaults.MIN_RADIUS_KM:g} and {defaults.MAX_RADIUS_KM:g} (got {radius_km:g})"
        )
    return radius_km


# --- Shared query parameters ---------------------------------------------------------------------------------

Lat = Annotated[float | None, Query(description="Latitude of the search point (WGS84), with lon", examples=[44.2028])]
Lon = Annotated[float | None, Query(description="Longitude of the search point (WGS84), with lat", examples=[0.6256])]
Q = Annotated[str | None, Query(description="Address, postcode or commune, geocoded by the platform",
                                examples=["47000 Agen"], max_length=200)]
Insee = Annotated[str | None, Query(description="INSEE commune code", examples=["47001"], max_length=5)]
Specialty = Annotated[list[str] | None, Query(
    description="TRE_R38 code(s) or label(s), comma-separated or repeated; general practice (SM54, SM26, SM53 or "
                "'médecine générale') matches the three general-practice codes", examples=["SM54"])]
Kinds = Annotated[list[str] | None, Query(description=f"Offer kinds among {list(defaults.KINDS)}")]


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
    context: Context,
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
    modes: Annotated[list[str] | None, Query(description="AMB (office), HH (home visit), VR (teleconsultation)")] = None,
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
    now = datetime.now(timezone.utc)
    query = build_slot_query(
        context, principal, now=now, lat=lat, lon=lon, q=q, insee=insee, radius_km=radius_km, specialty=specialty,
        start=from_, end=to, within=within, modes=modes, kinds=kinds, sector=sector, bookable_only=bookable_only,
        sort=sort, page=page, size=size, slots=slots, explain=explain,
    )
    result = context.service.search(query)
    SEARCH_RESULTS.labels("search").observe(result["total"])
    return shaped_response(result)


def build_slot_query(context: SearchContext, principal: Principal, *, now: datetime, lat: float | None,
                     lon: float | None, q: str | None, insee: str | None, radius_km: float | None,
                     specialty: list[str] | None, start: str | None, end: str | None, within: str | None,
                     modes: list[str] | None, kinds: list[str] | None, sector: list[str] | None,
                     bookable_only: bool, sort: str, page: int, size: int, slots: int,
                     explain: bool) -> SlotQuery:
    """Validate and resolve every search parameter (400 with a clear message otherwise)."""
    sort = sort.strip().lower()
    if sort not in defaults.SORTS:
        raise BadRequest(f"unknown sort {sort!r}: allowed values are {list(defaults.SORTS)}")
    if page * size > defaults.MAX_RESULT_WINDOW:
        raise BadRequest(f"page × size may not exceed {defaults.MAX_RESULT_WINDOW}: narrow the search instead")
    window = resolve_window(now=now, start=start, end=end, within=within)
    return SlotQuery(
        origin=resolve_origin(context, lat=lat, lon=lon, q=q, insee=insee),
        window=window,
        now=now,
        visibility=visibility_for(principal),
        radius_km=check_radius(radius_km),
        specialties=context.specialties.resolve(specialty),
        modes=enum_values(modes, allowed=defaults.MODES, name="modes", upper=True),
        kinds=enum_values(kinds, allowed=defaults.KINDS, name="kinds", upper=False),
        sectors=enum_values(sector, allowed=defaults.SECTORS, name="sector", upper=True),
        bookable_only=bookable_only,
        sort=sort,  # type: ignore[arg-type]
        page=page,
        size=size,
        slots_per_card=slots,
        explain=explain,
        stale_after_s=context.settings.stale_after_s,
    )


@router.get(
    "/search/beyond",
    response_model=BeyondSearchOut,
    summary="Practitioners and CPTS near a point who accept patients beyond their displayed slots (en sus)",
    description="Nearest first (ties: per-day rotation), with the direct phone number they gave for such patients. "
                "Practitioners declared unavailable during the window are left out.",
)
def beyond(
    principal: SearchPrincipal,
    context: Context,
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
    now = datetime.now(timezone.utc)
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
