"""Dashboards API: Elasticsearch aggregations over orientations, participation, declarations and harvests."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.params import dashboard_period
from search_api.services import ServicesDep
from search_api.workflow import dashboards

router = APIRouter(prefix="/v1/dashboards", tags=["dashboards"])
Viewer = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER, Role.ADMIN))]


From = Annotated[str | None, Query(alias="from", description="First day (YYYY-MM-DD) or instant")]
To = Annotated[str | None, Query(description="Last day included (YYYY-MM-DD) or end instant")]
Territory = Annotated[list[str] | None, Query(description="Territory code(s)")]


@router.get("/orientations", summary="Orientations per day, territory, status, category and source")
def orientations(principal: Viewer, services: ServicesDep, from_: From = None, to: To = None,
                 territory: Territory = None) -> dict[str, Any]:
    start, end = dashboard_period(from_, to)
    return services.dashboards.orientations(principal, start=start, end=end, territories=tuple(territory or ()))


@router.get("/participation", summary="Effecteurs taking part, per territory")
def participation(principal: Viewer, services: ServicesDep, territory: Territory = None) -> dict[str, Any]:
    return services.dashboards.participation(principal, territories=tuple(territory or ()))


@router.get("/declarations", summary="Declarations per kind and territory; who hides whom now",
            description="`hiding`: active unavailability declarations in force or to come, whenever filed (at most "
                        f"{dashboards.MAX_HIDING_ROWS}, newest first; `hiding_total` counts them all): author, "
                        "role(s) and territories, practitioner and place, territory, until when (null: indefinitely).")
def declarations(principal: Viewer, services: ServicesDep, from_: From = None, to: To = None,
                 territory: Territory = None) -> dict[str, Any]:
    start, end = dashboard_period(from_, to)
    return services.dashboards.declarations(principal, start=start, end=end, territories=tuple(territory or ()))


@router.get("/harvest", summary="Per-vendor harvest health: last success, error rate, staleness, slots served")
def harvest(principal: Viewer, services: ServicesDep,
            days: Annotated[int, Query(ge=1, le=90, description="Runs of the last N days")] = 7) -> dict[str, Any]:
    return services.dashboards.harvest(days=days)
