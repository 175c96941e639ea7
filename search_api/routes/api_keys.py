"""Administration of integrator API keys (admin only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from sas_core.errors import BadRequest
from search_api.auth import Principal, Role
from search_api.deps import roles

router = APIRouter(prefix="/v1/admin/api-keys", tags=["administration"])
Admin = Annotated[Principal, Depends(roles(Role.ADMIN))]


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["LRM du SAS 47"])
    territories: list[str] = Field(min_length=1, examples=[["SAS-47"]])
    slot_types: list[str] = Field(default=[], examples=[["SNP"]],
                                  description="slot types granted beyond PUBLIC")


class ApiKeyOut(BaseModel):
    id: str
    name: str
    territories: list[str]
    slot_types: list[str]
    created_at: datetime
    active: bool
    revoked_at: datetime | None = None


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="the key itself: shown once, store it now")


def _out(doc) -> dict:
    return doc.model_dump(include=set(ApiKeyOut.model_fields))


@router.post("", status_code=201, response_model=ApiKeyCreated, summary="Create a key (shown once)")
def create_key(body: ApiKeyIn, request: Request, admin: Admin) -> ApiKeyCreated:
    try:
        raw, doc = request.app.state.api_keys.create(name=body.name, territories=body.territories,
                                                     slot_types=body.slot_types, created_by=admin.sub)
    except ValueError as exc:
        raise BadRequest(str(exc)) from exc
    return ApiKeyCreated(key=raw, **_out(doc))


@router.get("", response_model=list[ApiKeyOut], summary="List keys (never their secrets)")
def list_keys(request: Request, _: Admin) -> list[ApiKeyOut]:
    return [ApiKeyOut(**_out(doc)) for doc in request.app.state.api_keys.list()]


@router.delete("/{key_id}", response_model=ApiKeyOut, summary="Revoke a key")
def revoke_key(key_id: Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")], request: Request, _: Admin) -> ApiKeyOut:
    return ApiKeyOut(**_out(request.app.state.api_keys.revoke(key_id=key_id)))
