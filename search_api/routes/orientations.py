"""Orientations: list (filters, paging), CSV export, one orientation, honour, cancel.

A regulator / OSNP / account manager sees the orientations of his territories; an effecteur his own
(token ``national_id``); a structure manager those made through his structure (token ``structure_id``);
an administrator all of them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from sas_core.errors import BadRequest
from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.params import CATEGORIES, SOURCES, STATUSES, filters_from
from search_api.services import AuditDep, SearchContextDep, WorkflowDep
from search_api.workflow import csv_export
from search_api.workflow.queries import MAX_PAGE_SIZE, MAX_RESULT_WINDOW
from search_api.workflow.scope import scope_for

router = APIRouter(prefix="/v1/orientations", tags=["orientations"])
Reader = Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER, Role.EFFECTEUR,
                                            Role.STRUCTURE_MANAGER, Role.ADMIN))]
# Every read (one, a page, an export) is recorded in the audit log (``AuditDep``): who saw which orientations.
OrientationId = Annotated[str, Path(min_length=8, max_length=64, pattern=r"^[0-9a-zA-Z_-]+$")]
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
def export_orientations(principal: Reader, workflow: WorkflowDep, context: SearchContextDep,
                        territory: Territory = None, from_: From = None, to: To = None,
                        period: Period = "created", status: Status = None,
                        effecteur: Effecteur = None, category: Category = None,
                        source: Source = None) -> StreamingResponse:
    filters = filters_from(territory=territory, from_=from_, to=to, period=period, status=status,
                           effecteur=effecteur, category=category, source=source)
    docs = workflow.orientations.export(scope_for(principal), filters)  # audited by the service
    # Worded as the web table: one CSV, whichever door it is downloaded from.
    return StreamingResponse(csv_export.stream(docs, specialty_label=context.specialties.label),
                             media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": 'attachment; filename="orientations.csv"'})


@router.get("/{orientation_id}", summary="One orientation (within your scope)")
def get_orientation(orientation_id: OrientationId, principal: Reader, workflow: WorkflowDep, audit: AuditDep) -> dict:
    document = workflow.orientations.get(orientation_id, scope_for(principal))
    audit.record(principal=principal, action="view", orientation_ids=[orientation_id])
    return document


@router.post("/{orientation_id}/honoured", summary="The effecteur confirms that the consultation took place")
def honour(orientation_id: OrientationId, workflow: WorkflowDep,
           principal: Annotated[Principal, Depends(roles(Role.EFFECTEUR, Role.ADMIN))]) -> dict:
    return workflow.honour(orientation_id, principal)


class CancelIn(BaseModel):
    reason: str | None = Field(None, max_length=40, pattern=r"^[a-z_]+$",
                               description="A reason code (never free text about the patient)",
                               examples=["patient_declined", "effecteur_unavailable", "duplicate"])


@router.post("/{orientation_id}/cancel", summary="Cancel an orientation (own-agenda places are given back)")
def cancel(orientation_id: OrientationId, workflow: WorkflowDep,
           principal: Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.EFFECTEUR, Role.ADMIN))],
           body: CancelIn | None = None) -> dict:
    return workflow.cancel(orientation_id, principal, reason=body.reason if body else None)
