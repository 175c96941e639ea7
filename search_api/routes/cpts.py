"""``GET /v1/cpts/{id}``: a CPTS card with every participating practitioner and their slots."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from sas_core.clock import utcnow
from sas_core.errors import BadRequest, NotFound
from search_api.params import SearchPrincipal, enum_values, resolve_origin, resolve_window
from search_api.query import defaults
from search_api.query.model import Origin, SlotQuery
from search_api.responses import contract_response
from search_api.schemas.search import CptsCardOut
from search_api.services import SearchContextDep
from search_api.visibility import sees_cpts_members, visibility_for

router = APIRouter(prefix="/v1", tags=["search"])


@router.get(
    "/cpts/{cpts_id}",
    response_model=CptsCardOut,
    response_model_by_alias=True,
    summary="A CPTS, its contact number, and all its participating practitioners with their slots",
    description=(
        "`cpts_id` is the CPTS offer id or its FINESS number. Members are the practice places declared as taking "
        "part through the CPTS, plus those whose slots are offered through it; unavailable members are left out. "
        "Slot types follow the caller's role, as in /v1/search. Give a point (lat/lon, q or insee) to get distances."
    ),
)
def cpts_card(
    principal: SearchPrincipal,
    context: SearchContextDep,
    cpts_id: Annotated[str, Path(min_length=1, max_length=80, description="CPTS offer id or FINESS")],
    lat: Annotated[float | None, Query()] = None,
    lon: Annotated[float | None, Query()] = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    insee: Annotated[str | None, Query(max_length=5)] = None,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: Annotated[str | None, Query()] = None,
    within: Annotated[str | None, Query()] = None,
    modes: Annotated[list[str] | None, Query()] = None,
    bookable_only: Annotated[bool, Query()] = False,
    slots: Annotated[int, Query(ge=1, le=defaults.MAX_SLOTS_PER_CARD)] = defaults.SLOTS_PER_CARD,
) -> Any:
    now = utcnow()
    origin: Origin | None = None
    if any(v is not None for v in (lat, lon, q, insee)):
        origin = resolve_origin(context, lat=lat, lon=lon, q=q, insee=insee)
    if not cpts_id.strip():
        raise BadRequest("cpts_id is empty")
    query = SlotQuery(
        # Without a point, distances are not computed; the origin is then a placeholder never shown.
        origin=origin or Origin(lat=0.0, lon=0.0),
        window=resolve_window(now=now, start=from_, end=to, within=within),
        now=now,
        visibility=visibility_for(principal),
        modes=enum_values(modes, allowed=defaults.MODES, name="modes", upper=True),
        bookable_only=bookable_only,
        slots_per_card=slots,
        stale_after_s=context.settings.stale_after_s,
    )
    card = context.service.cpts(cpts_id.strip(), query, with_distances=origin is not None)
    if not sees_cpts_members(principal, card.get("finess")):
        # Same answer as an unknown CPTS: a structure manager does not learn which other CPTS exist.
        raise NotFound(f"no CPTS with id or FINESS {cpts_id.strip()!r}")
    return contract_response(CptsCardOut, card)
