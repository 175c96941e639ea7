"""Who am I: the identity the platform sees in the caller's token."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

from search_api.deps import CurrentPrincipal

router = APIRouter(prefix="/v1", tags=["identity"])


class MeOut(BaseModel):
    sub: str
    roles: list[str]
    territories: list[str]
    national_id: str | None = None
    name: str | None = None


@router.get("/me", response_model=MeOut, summary="The authenticated caller's identity and rights")
def me(principal: CurrentPrincipal) -> MeOut:
    return MeOut(
        sub=principal.sub,
        roles=sorted(principal.roles),
        territories=sorted(principal.territories),
        national_id=principal.national_id,
        name=principal.name,
    )
