"""``GET /v1/geocode/suggest?q=``: suggestions for the address field (``search_api.suggestions``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from search_api.auth import Principal
from search_api.deps import roles
from search_api.params import SEARCH_ROLES
from search_api.services import ServicesDep

router = APIRouter(prefix="/v1/geocode", tags=["search"])


@router.get("/suggest",
            summary="Address, street and commune suggestions from the platform's own address base and gazetteer")
def suggest(services: ServicesDep,
            principal: Annotated[Principal, Depends(roles(*SEARCH_ROLES))],
            q: Annotated[str, Query(min_length=1, max_length=100)],
            limit: Annotated[int, Query(ge=1, le=20)] = 8) -> dict:
    return {"q": q, "suggestions": services.suggestions.suggest(q, limit=limit)}
