"""Request parameters turned into the platform's typed queries and filters (clear 400s for anything wrong),
shared by the JSON routes and the web pages: windows, origins, enumerations, the search's ``SlotQuery``,
the orientation list's filters, the INT_L01 contextual call. Pure apart from the clock passed in and
the reference tables of the search context.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request

from sas_core.clock import utcnow
from sas_core.errors import BadRequest
from sas_core.territories import known_samu_ids
from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.geocode import origin_from_coordinates
from search_api.query import defaults
from search_api.query.model import Origin, SlotQuery, Window
from search_api.services import SearchContext
from search_api.validation import check_moment
from search_api.visibility import visibility_for
from search_api.workflow.contextual import ContextualCall, contextual_parameters, parse_contextual
from search_api.workflow.queries import OrientationFilters

#: Who may search (everyone of the regulation chain, practitioners, CPTS coordinators, integrators).
SEARCH_ROLES = (Role.OSNP, Role.REGULATOR, Role.EFFECTEUR, Role.STRUCTURE_MANAGER, Role.INTEGRATOR, Role.ADMIN)
SearchPrincipal = Annotated[Principal, Depends(roles(*SEARCH_ROLES))]
_LOCAL = ZoneInfo(defaults.LOCAL_TIMEZONE)


# --- The search ---------------------------------------------------------------------------------------------


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
        raise BadRequest(
            f"{name} must be an ISO 8601 date-time (e.g. 2025-11-05T14:00:00+01:00), got {value!r}") from exc
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


# --- The orientation list -----------------------------------------------------------------------------------

STATUSES = ("oriented", "booked", "pending", "fulfilled", "noshow", "cancelled")
CATEGORIES = ("PS", "CPTS", "SOS", "MSP", "CDS", "PDM")
SOURCES = ("vendor", "platform_agenda", "beyond_slots")


def listed_values(raw: list[str] | None, *, allowed: tuple[str, ...], name: str,
                  upper: bool = False) -> tuple[str, ...]:
    values: list[str] = []
    for item in raw or []:
        for part in item.split(","):
            part = part.strip()
            if part:
                values.append(part.upper() if upper else part.lower() if name != "territory" else part)
    unknown = [v for v in values if allowed and v not in allowed]
    if unknown:
        raise BadRequest(f"unknown {name} {unknown}: allowed values are {list(allowed)}")
    return tuple(dict.fromkeys(values))


def local_moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or date-time, got {value[:40]!r}") from None
    check_moment(moment, name=name)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=_LOCAL)
    return moment


def filters_from(*, territory, from_, to, period, status, effecteur, category, source) -> OrientationFilters:
    start, end = local_moment(from_, "from"), local_moment(to, "to")
    if start and end and end <= start:
        raise BadRequest("'to' must be after 'from'")
    return OrientationFilters(
        territories=listed_values(territory, allowed=(), name="territory"),
        start=start, end=end,
        period_field="consultation_start" if period == "consultation" else "created_at",
        statuses=listed_values(status, allowed=STATUSES, name="status"),
        effecteur=effecteur, categories=listed_values(category, allowed=CATEGORIES, name="category", upper=True),
        sources=listed_values(source, allowed=SOURCES, name="source"),
    )


# --- The INT_L01 contextual call -------------------------------------------------------------------------------


def accepted_origins(context: SearchContext) -> dict[str, str]:
    """The SAMU ids accepted as ``origin`` → territory: ``SAS_CONTEXTUAL_ORIGINS`` when set (ids of
    départements the platform knows), else every département's SAMU."""
    known = known_samu_ids()
    chosen = context.settings.contextual_origins
    if not chosen:
        return known
    return {samu: territory for samu, territory in known.items() if samu in set(chosen)}


def contextual_call(context: SearchContext, request: Request) -> ContextualCall:
    """The request's INT_L01 parameters checked against the gazetteer, TRE_R38 and the known SAMU."""
    return parse_contextual(contextual_parameters(request.query_params.multi_items()),
                            communes=context.places.gazetteer.by_insee, specialties=context.specialties,
                            origins=accepted_origins(context))


# --- The dashboards' period -----------------------------------------------------------------------------------

#: Longest period of one dashboard.
MAX_DASHBOARD_DAYS = 400


def dashboard_period(from_: str | None, to: str | None) -> tuple[datetime, datetime]:
    """[from, to) as aware instants; dates are Paris days, ``to`` inclusive when a date. Default: last 30 days."""
    def parse(value: str, *, end: bool) -> datetime:
        try:
            if len(value) == 10:
                # Bounded years first: the day after 9999-12-31 does not exist (OverflowError, a 500).
                day = check_moment(datetime.fromisoformat(value), name="from/to").date()
                day += timedelta(days=1) if end else timedelta()
                return datetime.combine(day, time(0), tzinfo=_LOCAL)
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"dates must be YYYY-MM-DD or ISO 8601, got {value[:40]!r}") from None
        check_moment(moment, name="from/to")
        return moment if moment.tzinfo else moment.replace(tzinfo=_LOCAL)

    today = utcnow().astimezone(_LOCAL).date()
    end = parse(to, end=True) if to else datetime.combine(today + timedelta(days=1), time(0), tzinfo=_LOCAL)
    start = parse(from_, end=False) if from_ else end - timedelta(days=30)
    if end <= start:
        raise BadRequest("'to' must be after 'from'")
    if end - start > timedelta(days=MAX_DASHBOARD_DAYS):
        raise BadRequest(f"at most {MAX_DASHBOARD_DAYS} days per dashboard")
    return start, end
