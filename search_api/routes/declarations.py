"""Declarations: effecteurs' unavailability, regulators' reports; listing and cancelling.

An active unavailability removes the practitioner (at the place, or everywhere) from search at once
(written with ``refresh="wait_for"``; the search reads active declarations on every request).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from sas_core.clock import utcnow
from sas_core.errors import BadRequest
from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.services import WorkflowDep
from search_api.validation import Moment
from search_api.workflow.declarations import MAX_PERIODS_PER_PLACE, PeriodIn, end_of_day
from search_api.workflow.queries import MAX_PAGE_SIZE, MAX_RESULT_WINDOW, DeclarationFilters
from search_api.workflow.scope import scope_for

router = APIRouter(prefix="/v1/declarations", tags=["declarations"])


class PeriodModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Moment: bounded years (a date near 9999 overflows in the period arithmetic: 422, not 500).
    start: Moment = Field(examples=["2025-07-14T00:00:00+02:00"])
    end: Moment | None = Field(None, description="Absent: unavailable indefinitely from start")


class UnavailabilityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    offer_id: str | None = Field(None, description="The place; absent: every place of yours")
    periods: list[PeriodModel] = Field(min_length=1, max_length=MAX_PERIODS_PER_PLACE)
    comment: str | None = Field(None, max_length=500)


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["unavailable", "wrong_specialty", "other"]
    offer_id: str = Field(min_length=3, max_length=300, description="The practitioner's place concerned")
    start: Moment | None = Field(None, description="unavailable: from (default now)")
    end: Moment | None = Field(None, description="unavailable: until (default end of today)")
    comment: str | None = Field(None, max_length=500, description="About the practitioner only, never the patient")


class DeclarationPage(BaseModel):
    total: int
    page: int
    size: int
    results: list[dict[str, Any]]


@router.post("/unavailability", status_code=201, summary="An effecteur declares himself unavailable")
def declare_unavailability(body: UnavailabilityIn, workflow: WorkflowDep,
                           principal: Annotated[Principal, Depends(roles(Role.EFFECTEUR, Role.ADMIN))]) -> dict:
    return workflow.declarations.declare_unavailability(
        principal, offer_id=body.offer_id, periods=[PeriodIn(p.start, p.end) for p in body.periods],
        comment=body.comment)


@router.post("/reports", status_code=201,
             summary="A regulator reports a problem about a practitioner at a place of his territories",
             description="Filed under the offer's territory (its SAS sees and may cancel it); a place of another "
                         "territory: 403. 'unavailable' ends at most SAS_REPORT_MAX_HOURS (72 h) from now (422 "
                         "otherwise); at most SAS_REPORTS_PER_HOUR (30) reports per author and hour (429).")
def report(body: ReportIn, workflow: WorkflowDep,
           principal: Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ADMIN))]) -> dict:
    period = None
    if body.start or body.end:
        start = body.start or utcnow()
        period = PeriodIn(start, body.end or end_of_day(start))
    return workflow.declarations.report(principal, kind=body.kind, offer_id=body.offer_id, period=period,
                                        comment=body.comment)


@router.get("", response_model=DeclarationPage, summary="Declarations within your scope, newest first")
def list_declarations(
    workflow: WorkflowDep,
    principal: Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.ACCOUNT_MANAGER, Role.EFFECTEUR,
                                                  Role.ADMIN))],
    kind: Annotated[list[Literal["unavailable", "wrong_specialty", "other"]] | None, Query()] = None,
    active: Annotated[bool | None, Query(description="Default: active ones only")] = True,
    national_id: Annotated[str | None, Query(max_length=20)] = None,
    offer_id: Annotated[str | None, Query(max_length=300)] = None,
    territory: Annotated[list[str] | None, Query()] = None,
    page: Annotated[int, Query(ge=1, le=100)] = 1,
    size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 50,
) -> DeclarationPage:
    if page * size > MAX_RESULT_WINDOW:
        # Checked here rather than left to Elasticsearch, whose refusal would name its internals.
        raise BadRequest(f"page × size may not exceed {MAX_RESULT_WINDOW}: narrow the filters (kind, territory, "
                         "offer_id, national_id, active)")
    filters = DeclarationFilters(kinds=tuple(kind or ()), active=active, national_id=national_id, offer_id=offer_id,
                                 territories=tuple(territory or ()))
    total, results = workflow.declarations.list(scope_for(principal), filters, page=page, size=size)
    return DeclarationPage(total=total, page=page, size=size, results=results)


@router.delete("/{declaration_id}", summary="Cancel a declaration (its author, the practitioner, the regulators of "
                                           "the offer's territory for reports, an admin)")
def cancel_declaration(declaration_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")], workflow: WorkflowDep,
                       principal: Annotated[Principal, Depends(roles(Role.REGULATOR, Role.OSNP, Role.EFFECTEUR,
                                                                     Role.ADMIN))]) -> dict:
    return workflow.declarations.cancel(principal, declaration_id)
