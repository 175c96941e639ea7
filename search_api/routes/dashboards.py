"""Dashboards API: Elasticsearch aggregations over orientations, participation, declarations and harvests."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query

from sas_core.errors import BadRequest
from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.validation import check_moment
from search_api.workflow import dashboards
from search_api.workflow.scope import scope_for
from search_api.workflow.wiring import Workflow, get_workflow

router = APIRouter(prefix="/v1/dashboards", tags=["dashboards"])
Viewer = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER, Role.ADMIN))]
WorkflowDep = Annotated[Workflow, Depends(get_workflow)]
PARIS = ZoneInfo("Europe/Paris")
MAX_DAYS = 400


def period(from_: str | None, to: str | None) -> tuple[datetime, datetime]:
    """[from, to) as aware instants; dates are Paris days, ``to`` inclusive when a date. Default: last 30 days."""
    def parse(value: str, *, end: bool) -> datetime:
        try:
            if len(value) == 10:
                # Bounded years first: the day after 9999-12-31 does not exist (OverflowError, a 500).
                day = check_moment(datetime.fromisoformat(value), name="from/to").date()
                day += timedelta(days=1) if end else timedelta()
                return datetime.combine(day, time(0), tzinfo=PARIS)
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"dates must be YYYY-MM-DD or ISO 8601, got {value[:40]!r}") from None
        check_moment(moment, name="from/to")
        return moment if moment.tzinfo else moment.replace(tzinfo=PARIS)

    today = datetime.now(PARIS).date()
    end = parse(to, end=True) if to else datetime.combine(today + timedelta(days=1), time(0), tzinfo=PARIS)
    start = parse(from_, end=False) if from_ else end - timedelta(days=30)
    if end <= start:
        raise BadRequest("'to' must be after 'from'")
    if end - start > timedelta(days=MAX_DAYS):
        raise BadRequest(f"at most {MAX_DAYS} days per dashboard")
    return start, end


From = Annotated[str | None, Query(alias="from", description="First day (YYYY-MM-DD) or instant")]
To = Annotated[str | None, Query(description="Last day included (YYYY-MM-DD) or end instant")]
Territory = Annotated[list[str] | None, Query(description="Territory code(s)")]


@router.get("/orientations", summary="Orientations per day, territory, status, category and source")
def orientations(principal: Viewer, workflow: WorkflowDep, from_: From = None, to: To = None,
                 territory: Territory = None) -> dict[str, Any]:
    start, end = period(from_, to)
    body = dashboards.orientations_body(scope_for(principal), start=start, end=end, territories=tuple(territory or ()))
    answer = workflow.store.search("orientations", body)
    return {"from": start, "to": end, **dashboards.shape_orientations(answer)}


@router.get("/participation", summary="Effecteurs taking part, per territory")
def participation(principal: Viewer, workflow: WorkflowDep, territory: Territory = None) -> dict[str, Any]:
    body = dashboards.participation_body(scope_for(principal), territories=tuple(territory or ()))
    return dashboards.shape_participation(workflow.store.search("offers", body))


@router.get("/declarations", summary="Declarations per kind and territory; who hides whom now",
            description="`hiding`: active unavailability declarations in force or to come, whenever filed (at most "
                        f"{dashboards.MAX_HIDING_ROWS}, newest first; `hiding_total` counts them all): author, "
                        "role(s) and territories, practitioner and place, territory, until when (null: indefinitely).")
def declarations(principal: Viewer, workflow: WorkflowDep, from_: From = None, to: To = None,
                 territory: Territory = None) -> dict[str, Any]:
    start, end = period(from_, to)
    scope, wanted = scope_for(principal), tuple(territory or ())
    body = dashboards.declarations_body(scope, start=start, end=end, territories=wanted)
    now = datetime.now(timezone.utc)
    hiding = workflow.store.search("declarations", dashboards.hiding_body(scope, now=now, territories=wanted))
    return {"from": start, "to": end, **dashboards.shape_declarations(workflow.store.search("declarations", body)),
            **dashboards.shape_hiding(hiding)}


@router.get("/harvest", summary="Per-vendor harvest health: last success, error rate, staleness, slots served")
def harvest(principal: Viewer, workflow: WorkflowDep,
            days: Annotated[int, Query(ge=1, le=90, description="Runs of the last N days")] = 7) -> dict[str, Any]:
    now = datetime.now(timezone.utc)
    stale_after = workflow.settings.stale_after_s
    runs = workflow.store.search("harvest_runs", dashboards.harvest_runs_body(since=now - timedelta(days=days)))
    slots = workflow.store.search("slots", dashboards.vendor_slots_body(now=now, stale_after_s=stale_after))
    return {"at": now, "days": days, "stale_after_s": stale_after,
            "vendors": dashboards.shape_vendor_health(runs, slots, now=now, stale_after_s=stale_after)}
