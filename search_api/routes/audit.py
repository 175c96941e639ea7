"""``GET /v1/admin/audit``: who viewed or exported orientations (administrators only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel

from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.services import AuditDep

router = APIRouter(prefix="/v1/admin/audit", tags=["administration"])
Admin = Annotated[Principal, Depends(roles(Role.ADMIN))]


class AuditPage(BaseModel):
    total: int
    results: list[dict[str, Any]]


@router.get("", response_model=AuditPage, summary="Audit of orientation reads and exports, newest first")
def audit_log(
    _: Admin, audit: AuditDep,
    actor: Annotated[str | None, Query(max_length=200, description="Token subject or API key id")] = None,
    action: Annotated[Literal["view", "list", "export"] | None, Query()] = None,
    orientation_id: Annotated[str | None, Query(max_length=64, description="Records naming this orientation")] = None,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> AuditPage:
    total, results = audit.search(actor=actor, action=action, orientation_id=orientation_id, size=size)
    return AuditPage(total=total, results=results)
