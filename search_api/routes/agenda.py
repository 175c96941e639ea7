"""The platform's own agenda, for effecteurs without a connected vendor: publish slots or time ranges
(optionally with a maximum number of patients) and delete them.

They are stored as slot documents with ``source = "sas"`` next to the vendors' and searched exactly like
them. An effecteur manages the agenda of the offers carrying their own national id; an admin any offer.
An offer whose agenda is fed by a vendor (``sas.vendor``) cannot get manual slots: they would duplicate
the vendor's.

Bounds (issue 15, point 14; settings ``SAS_AGENDA_*``): at most ``agenda_max_items`` items per call
(default 100), slots starting within ``agenda_horizon_days`` (default 90) from now, and at most
``agenda_max_future_slots`` (default 1000) future platform-agenda slots per offer (one call per offer
at a time in a process, so parallel calls cannot pass the count together); dates are bounded
years (``Moment``), so a date near 9999 is a 422, not an overflow. Each call still refreshes the slots
index once: the author's page lists the slots right after publishing and search shows them at once
(the index refreshes only every 30 s on its own); the bounds above keep that refresh cheap.
"""

from __future__ import annotations

import threading
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field, model_validator

from mappings.slots import SlotDoc
from sas_core.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unprocessable
from sas_core.settings import Settings
from search_api.auth import Principal, Role
from search_api.deps import ExecutorDep, SettingsDep, roles
from search_api.validation import Moment, check_moment

router = APIRouter(prefix="/v1/agenda", tags=["agenda"])
AgendaUser = Annotated[Principal, Depends(roles(Role.EFFECTEUR, Role.ADMIN))]

#: Hard ceiling of items per call (the schema's); ``Settings.agenda_max_items`` (default 100) is the rule.
MAX_ITEMS = 500
MAX_LENGTH = timedelta(hours=12)
PAST_TOLERANCE = timedelta(minutes=5)


class AgendaItem(BaseModel):
    """One slot (``capacity`` absent: one patient) or one time range taking up to ``capacity`` patients."""

    # Moment: bounded years, so that the UTC conversion of a date near 9999 cannot overflow (422, not 500).
    start: Moment = Field(description="ISO 8601 with offset, e.g. 2026-03-02T14:00:00+01:00")
    end: Moment
    capacity: int | None = Field(default=None, ge=1, le=100, description="time range: maximum number of patients")
    modes: list[Literal["AMB", "HH", "VR"]] = Field(default_factory=lambda: ["AMB"], min_length=1)
    types: list[Literal["PUBLIC", "PRO", "SNP", "CPTS"]] = Field(default_factory=lambda: ["SNP"], min_length=1)
    motive: str | None = Field(default=None, max_length=200)

    @model_validator(mode="after")
    def _check_times(self) -> "AgendaItem":
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("start and end need a UTC offset (e.g. +01:00 or Z)")
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.end - self.start > MAX_LENGTH:
            raise ValueError("a slot or time range lasts 12 hours at most")
        return self


class AgendaPublish(BaseModel):
    offer_id: str = Field(min_length=1, max_length=200)
    items: list[AgendaItem] = Field(min_length=1, max_length=MAX_ITEMS,
                                    description="At most SAS_AGENDA_MAX_ITEMS (default 100) per call")


class AgendaSlotOut(BaseModel):
    id: str
    offer_id: str
    start: datetime
    end: datetime
    capacity: int | None = None
    booked_count: int = 0
    modes: list[str]
    types: list[str]
    motive: str | None = None


class AgendaPublished(BaseModel):
    created: list[AgendaSlotOut]


def _own_offer(executor, principal: Principal, offer_id: str) -> dict:
    offers = executor.mget_sources(index="offers", ids=[offer_id])
    offer = offers.get(offer_id)
    if offer is None:
        raise NotFound(f"offer {offer_id!r} does not exist")
    if not principal.has_any(Role.ADMIN):
        if not principal.national_id or offer.get("national_id") != principal.national_id:
            raise Forbidden("an effecteur manages the agenda of their own offers only")
    return offer


def _out(source: dict) -> AgendaSlotOut:
    return AgendaSlotOut(id=source["id"], offer_id=source["offer_id"], start=source["start"], end=source["end"],
                         capacity=source.get("capacity"), booked_count=source.get("booked_count", 0),
                         modes=source.get("modes", []), types=source.get("types", []), motive=source.get("motive"))


def slot_from_offer(*, offer: dict, item: AgendaItem, published_by: str) -> dict:
    """The slot document of one published item, denormalised from its offer like vendor slots are."""
    start = item.start.astimezone(timezone.utc)
    end = item.end.astimezone(timezone.utc)
    address = offer.get("address") or {}
    sas = offer.get("sas") or {}
    cpts = [{"finess": sas["cpts_finess"], "name": sas.get("cpts_name"), "phone": None}] if sas.get("cpts_finess") else []
    document = SlotDoc(
        id=f"sas:{uuid.uuid4()}", source="sas", use_case="agenda", roster_key=offer.get("national_id"),
        practitioner_national_id=offer.get("national_id"), practitioner_name=offer.get("name"),
        offer_id=offer["id"], offer_kind=offer.get("kind") or "ps", start=start, end=end,
        date_range={"gte": start, "lt": end}, duration_min=int((end - start).total_seconds() // 60),
        types=item.types, modes=item.modes, motive=item.motive, specialties=offer.get("specialties") or [],
        bookable=True, capacity=item.capacity, booked_count=0, cpts=cpts,
        place={"name": offer.get("name"), "address": address.get("text") or address.get("line"),
               "phone": (offer.get("phones") or [None])[0]},
        location=offer.get("location"), departement=offer.get("departement"), territory=offer.get("territory"),
        convention_sector=offer.get("convention_sector"),
        name_folded=offer.get("name_folded"), published_by=published_by, harvested_at=datetime.now(timezone.utc),
    )
    return document.model_dump(mode="json")


#: One lock per offer publishing in this process (offers without a vendor: a bounded set); see ``publish``.
_offer_locks: dict[str, threading.Lock] = {}
_offer_locks_guard = threading.Lock()


def _offer_lock(offer_id: str) -> threading.Lock:
    with _offer_locks_guard:
        return _offer_locks.setdefault(offer_id, threading.Lock())


def future_sas_slots_body(*, offer_id: str, now: datetime) -> dict:
    """Count of the platform-agenda slots of ``offer_id`` not over at ``now`` (the per-offer cap)."""
    return {"size": 0, "track_total_hits": True, "query": {"bool": {"filter": [
        {"term": {"source": "sas"}}, {"term": {"offer_id": offer_id}}, {"range": {"end": {"gt": now.isoformat()}}}]}}}


def check_bounds(items: list[AgendaItem], *, now: datetime, settings: Settings) -> None:
    """``Unprocessable`` for a call over the per-call or horizon bounds (before anything is written)."""
    if len(items) > settings.agenda_max_items:
        raise Unprocessable(f"at most {settings.agenda_max_items} slots or time ranges per call, got {len(items)}: "
                            "publish in several calls", details={"max_items": settings.agenda_max_items})
    horizon = now + timedelta(days=settings.agenda_horizon_days)
    far = [i for i, item in enumerate(items) if item.start > horizon]
    if far:
        raise Unprocessable(f"items {far[:10]} start more than {settings.agenda_horizon_days} days ahead "
                            f"(after {horizon.date().isoformat()}): publish them later",
                            details={"items": far, "horizon_days": settings.agenda_horizon_days})


@router.post("/slots", status_code=201, response_model=AgendaPublished,
             summary="Publish slots or time ranges in the platform's own agenda",
             description="At most SAS_AGENDA_MAX_ITEMS items per call (100), each starting within "
                         "SAS_AGENDA_HORIZON_DAYS (90) days, and at most SAS_AGENDA_MAX_FUTURE_SLOTS (1000) future "
                         "slots per offer: 422 otherwise.")
def publish(body: AgendaPublish, principal: AgendaUser, executor: ExecutorDep,
            settings: SettingsDep) -> AgendaPublished:
    now = datetime.now(timezone.utc)
    check_bounds(body.items, now=now, settings=settings)
    offer = _own_offer(executor, principal, body.offer_id)
    vendor = (offer.get("sas") or {}).get("vendor")
    if vendor:
        raise Conflict(f"the agenda of this offer is fed by the vendor {vendor!r}: publish there instead")
    late = [i for i, item in enumerate(body.items) if item.end <= now - PAST_TOLERANCE]
    if late:
        raise BadRequest(f"items {late[:10]} are already over", details={"items": late})
    # Every write below refreshes the index, so the count sees all earlier calls; one offer's calls are
    # counted and written one at a time in this process (a parallel one is refused at once, not queued on
    # the thread pool), so parallel calls cannot all pass the count before any is written.
    lock = _offer_lock(offer["id"])
    if not lock.acquire(blocking=False):
        raise TooManyRequests("slots of this offer are being published: send the next call when it is done",
                              retry_after_s=1)
    try:
        held = int(executor.search(index="slots", body=future_sas_slots_body(offer_id=offer["id"], now=now))
                   ["hits"]["total"]["value"])
        if held + len(body.items) > settings.agenda_max_future_slots:
            raise Unprocessable(f"this offer already holds {held} future slots in the platform agenda; at most "
                                f"{settings.agenda_max_future_slots}: delete some or publish later",
                                details={"held": held, "max_future_slots": settings.agenda_max_future_slots})
        documents = [slot_from_offer(offer=offer, item=item, published_by=principal.sub) for item in body.items]
        # Read-your-writes: the slots index refreshes every 30 s on its own; the author's page and search show
        # these at once. One refresh per (bounded) call.
        executor.index_documents(index="slots", documents=documents, refresh="true")
    finally:
        lock.release()
    return AgendaPublished(created=[_out(d) for d in documents])


@router.get("/slots", response_model=list[AgendaSlotOut], summary="The platform-agenda slots of an offer")
def list_slots(
    principal: AgendaUser, executor: ExecutorDep,
    offer_id: Annotated[str, Query(min_length=1)],
    start: Annotated[datetime | None, Query(alias="from", description="default: now")] = None,
    end: Annotated[datetime | None, Query(alias="to", description="default: 7 days after from")] = None,
) -> list[AgendaSlotOut]:
    # Bounded years first: 7 days after a date near 9999 does not exist (OverflowError, a 500).
    start = check_moment(start, name="from") if start else datetime.now(timezone.utc)
    end = check_moment(end, name="to") if end else start + timedelta(days=7)
    _own_offer(executor, principal, offer_id)
    body = {"size": 1000, "sort": [{"start": "asc"}], "query": {"bool": {"filter": [
        {"term": {"source": "sas"}}, {"term": {"offer_id": offer_id}},
        {"range": {"end": {"gt": start.isoformat()}}}, {"range": {"start": {"lt": end.isoformat()}}}]}}}
    hits = executor.search(index="slots", body=body)["hits"]["hits"]
    return [_out(hit["_source"]) for hit in hits]


@router.delete("/slots/{slot_id}", status_code=204, response_class=Response,
               summary="Delete a slot or time range of the platform's own agenda")
def delete_slot(slot_id: str, principal: AgendaUser, executor: ExecutorDep) -> Response:
    found = executor.mget_sources(index="slots", ids=[slot_id])
    slot = found.get(slot_id)
    if slot is None or slot.get("source") != "sas":
        raise NotFound(f"no platform-agenda slot {slot_id!r}")
    if not principal.has_any(Role.ADMIN) and slot.get("practitioner_national_id") != principal.national_id:
        raise Forbidden("an effecteur deletes their own slots only")
    executor.delete_document(index="slots", doc_id=slot_id, refresh="true")
    return Response(status_code=204)
