"""``/v1/agenda``: the platform's own agenda, for effecteurs without a connected vendor (the rules and
bounds: ``search_api.workflow.agenda``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from search_api.auth import Principal, Role
from search_api.deps import roles
from search_api.schemas.agenda import AgendaPublish, AgendaPublished, AgendaSlotOut
from search_api.services import ServicesDep

router = APIRouter(prefix="/v1/agenda", tags=["agenda"])
AgendaUser = Annotated[Principal, Depends(roles(Role.EFFECTEUR, Role.ADMIN))]


@router.post("/slots", status_code=201, response_model=AgendaPublished,
             summary="Publish slots or time ranges in the platform's own agenda",
             description="At most SAS_AGENDA_MAX_ITEMS items per call (100), each starting within "
                         "SAS_AGENDA_HORIZON_DAYS (90) days, and at most SAS_AGENDA_MAX_FUTURE_SLOTS (1000) future "
                         "slots per offer: 422 otherwise.")
def publish(body: AgendaPublish, principal: AgendaUser, services: ServicesDep) -> AgendaPublished:
    return services.agenda.publish(body, principal)


@router.get("/slots", response_model=list[AgendaSlotOut], summary="The platform-agenda slots of an offer")
def list_slots(
    principal: AgendaUser, services: ServicesDep,
    offer_id: Annotated[str, Query(min_length=1)],
    start: Annotated[datetime | None, Query(alias="from", description="default: now")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="default: 7 days after from")] = None,
) -> list[AgendaSlotOut]:
    return services.agenda.list_slots(principal, offer_id, start, end)


@router.delete("/slots/{slot_id}", status_code=204, response_class=Response,
               summary="Delete a slot or time range of the platform's own agenda")
def delete_slot(slot_id: str, principal: AgendaUser, services: ServicesDep) -> Response:
    services.agenda.delete_slot(slot_id, principal)
    return Response(status_code=204)
