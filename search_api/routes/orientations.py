"""Orientations: list (filters, paging), CSV export, one orientation, honour, cancel.

A regulator / OSNP / account manager sees the orientations of his territories; an effecteur his own
(token ``national_id``); a structure manager those made through his structure (token ``structure_id``);
an administrator all of them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from sas_core.errors import BadRequest
from search_api.audit import AuditLog, get_audit
from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.validation import check_moment
from search_api.workflow import csv_export
from search_api.workflow.orientations import require_effecteur_of
from search_api.workflow.queries import MAX_PAGE_SIZE, MAX_RESULT_WINDOW, OrientationFilters
from search_api.workflow.scope import scope_for
from search_api.routes.search import Context as SearchContextDep
from search_api.workflow.wiring import Workflow, get_workflow

router = APIRouter(prefix="/v1/orientations", tags=["orientations"])
Reader = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER, Role.EFFECTEUR,
                                            Role.STRUCTURE_MANAGER, Role.ADMIN))]
WorkflowDep = Annotated[Workflow, Depends(get_workflow)]
#: Every read (one, a page, an export) is recorded in the audit log: who saw which orientations.
AuditDep = Annotated[AuditLog, Depends(get_audit)]
OrientationId = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[0-9a-zA-Z_-]+$")]
STATUSES = ("oriented", "booked", "pending", "fulfilled", "noshow", "cancelled")
CATEGORIES = ("PS", "CPTS", "SOS", "MSP", "CDS", "PDM")
SOURCES = ("vendor", "platform_agenda", "beyond_slots")


def _values(raw: list[str] | None, *, allowed: tuple[str, ...], name: str, upper: bool = False) -> tuple[str, ...]:
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


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} must be an ISO 8601 date or date-time, got {value[:40]!r}") from None
    check_moment(moment, name=name)
    if moment.tzinfo is None:
        from zoneinfo import ZoneInfo

        moment = moment.replace(tzinfo=ZoneInfo("Europe/Paris"))
    return moment


def filters_from(*, territory, from_, to, period, status, effecteur, category, source) -> OrientationFilters:
    start, end = _moment(from_, "from"), _moment(to, "to")
    if start and end and end <= start:
        raise BadRequest("'to' must be after 'from'")
    return OrientationFilters(
        territories=_values(territory, allowed=(), name="territory"),
        start=start, end=end,
        period_field="consultation_start" if period == "consultation" else "created_at",
        statuses=_values(status, allowed=STATUSES, name="status"),
        effecteur=effecteur, categories=_values(category, allowed=CATEGORIES, name="category", upper=True),
        sources=_values(source, allowed=SOURCES, name="source"),
    )


Territory = Annotated[list[str] | None, Query(description="Territory code(s), e.g. SAS-47")]
From = Annotated[str | None, Query(alias="from", description="Period start (ISO 8601; local time when no offset)")]
To = Annotated[str | None, Query(description="Period end, excluded")]
Period = Annotated[Literal["created", "consultation"], Query(description="Which date the period applies to")]
Status = Annotated[list[str] | None, Query(description=f"Status(es) among {list(STATUSES)}")]
Effecteur = Annotated[str | None, Query(description="Practitioner national id", max_length=20)]
Category = Annotated[list[str] | None, Query(description=f"Category(ies) among {list(CATEGORIES)}")]
Source = Annotated[list[str] | None, Query(description=f"Source(s) among {list(SOURCES)}")]


class OrientationPage(BaseModel):
    total: int
    page: int
    size: int
    results: list[dict[str, Any]]


@router.get("", response_model=OrientationPage, summary="Orientations within your scope, newest first")
def list_orientations(principal: Reader, workflow: WorkflowDep, territory: Territory = None, from_: From = None,
                      to: To = None, period: Period = "created", status: Status = None, effecteur: Effecteur = None,
                      category: Category = None, source: Source = None,
                      page: Annotated[int, Query(ge=1)] = 1,
                      size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50) -> OrientationPage:
    if page * size > MAX_RESULT_WINDOW:
        raise BadRequest(f"page × size may not exceed {MAX_RESULT_WINDOW}: narrow the filters or use the CSV export")
    filters = filters_from(territory=territory, from_=from_, to=to, period=period, status=status,
                           effecteur=effecteur, category=category, source=source)
    # audited by the service (list pages and exports are, whoever calls: API or web pages)
    total, results = workflow.orientations.list(scope_for(principal), filters, page=page, size=size)
    return OrientationPage(total=total, page=page, size=size, results=results)


@router.get("/export.csv", summary="CSV export (UTF-8 with BOM, ';' separator) of the filtered orientations",
            response_class=StreamingResponse)
def export_orientations(principal: Reader, workflow: WorkflowDep, context: SearchContextDep, territory: Territory = None, from_: From = None,
                        to: To = None, period: Period = "created", status: Status = None,
                        effecteur: Effecteur = None, category: Category = None,
                        source: Source = None) -> StreamingResponse:
    filters = filters_from(territory=territory, from_=from_, to=to, period=period, status=status,
                           effecteur=effecteur, category=category, source=source)
    docs = workflow.orientations.export(scope_for(principal), filters)  # audited by the service
    # Worded as the web table (issue 17, point 11): one CSV, whichever door it is downloaded from.
    return StreamingResponse(csv_export.stream(docs, specialty_label=context.specialties.label), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="orientations.csv"'})


@router.get("/{orientation_id}", summary="One orientation (within your scope)")
def get_orientation(orientation_id: OrientationId, principal: Reader, workflow: WorkflowDep, audit: AuditDep) -> dict:
    document = workflow.orientations.get(orientation_id, scope_for(principal))
    audit.record(principal=principal, action="view", orientation_ids=[orientation_id])
    return document


@router.post("/{orientation_id}/honoured", summary="The effecteur confirms that the consultation took place")
def honour(orientation_id: OrientationId, workflow: WorkflowDep,
           principal: Annotated[Principal, Depends(roles(Role.EFFECTEUR, Role.ADMIN))]) -> dict:
    scope = scope_for(principal)
    require_effecteur_of(scope, workflow.orientations.get(orientation_id, scope))
    return workflow.orientations.honour(orientation_id, scope=scope, by=principal.sub)


class CancelIn(BaseModel):
    reason: str | None = Field(None, max_length=40, pattern=r"^[a-z_]+$",
                               description="A reason code (never free text about the patient)",
                               examples=["patient_declined", "effecteur_unavailable", "duplicate"])


@router.post("/{orientation_id}/cancel", summary="Cancel an orientation (own-agenda places are given back)")
def cancel(orientation_id: OrientationId, workflow: WorkflowDep,
           principal: Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.EFFECTEUR, Role.ADMIN))],
           body: CancelIn | None = None) -> dict:
    scope = scope_for(principal)

    def give_back(document: dict) -> None:
        if document.get("source") == "platform_agenda" and document.get("slot_id"):
            workflow.booking.release_agenda_place(document["slot_id"])
        else:
            workflow.booking.release_vendor_claim(document)

    return workflow.orientations.cancel(orientation_id, scope=scope, by=principal.sub,
                                        reason=body.reason if body else None, on_cancel=give_back)
