"""The platform's own agenda, for effecteurs without a connected vendor: publish slots or time ranges
(optionally with a maximum number of patients) and delete them.

They are stored as slot documents with ``source = "sas"`` next to the vendors' and searched exactly like
them. An effecteur manages the agenda of the offers carrying their own national id; an admin any offer.
An offer whose agenda is fed by a vendor (``sas.vendor``) cannot get manual slots: they would duplicate
the vendor's.

Bounds (settings ``SAS_AGENDA_*``): at most ``agenda_max_items`` items per call
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

from mappings.slots import SlotDoc
from sas_core.clock import utcnow
from sas_core.errors import BadRequest, Conflict, Forbidden, NotFound, TooManyRequests, Unprocessable
from sas_core.settings import Settings
from search_api.auth import Principal, Role
from search_api.executor import Executor
from search_api.schemas.agenda import AgendaItem, AgendaPublish, AgendaPublished, AgendaSlotOut
from search_api.validation import check_moment
from search_api.workflow.queries import agenda_slots_body, future_sas_slots_body

PAST_TOLERANCE = timedelta(minutes=5)


def own_offer(executor: Executor, principal: Principal, offer_id: str) -> dict:
    """The offer ``offer_id``, provided ``principal`` manages its agenda (its practitioner, or an admin)."""
    offers = executor.mget_sources(index="offers", ids=[offer_id])
    offer = offers.get(offer_id)
    if offer is None:
        raise NotFound(f"offer {offer_id!r} does not exist")
    if not principal.has_any(Role.ADMIN):
        if not principal.national_id or offer.get("national_id") != principal.national_id:
            raise Forbidden("an effecteur manages the agenda of their own offers only")
    return offer


def slot_out(source: dict) -> AgendaSlotOut:
    """The published form of a platform-agenda slot document."""
    return AgendaSlotOut(id=source["id"], offer_id=source["offer_id"], start=source["start"], end=source["end"],
                         capacity=source.get("capacity"), booked_count=source.get("booked_count", 0),
                         modes=source.get("modes", []), types=source.get("types", []), motive=source.get("motive"))


def slot_from_offer(*, offer: dict, item: AgendaItem, published_by: str) -> dict:
    """The slot document of one published item, denormalised from its offer like vendor slots are."""
    start = item.start.astimezone(timezone.utc)
    end = item.end.astimezone(timezone.utc)
    address = offer.get("address") or {}
    sas = offer.get("sas") or {}
    cpts = ([{"finess": sas["cpts_finess"], "name": sas.get("cpts_name"), "phone": None}]
            if sas.get("cpts_finess") else [])
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
        name_folded=offer.get("name_folded"), published_by=published_by, harvested_at=utcnow(),
    )
    return document.model_dump(mode="json")


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


class AgendaService:
    """Publishes, lists and deletes the platform-agenda slots of an offer (``/v1/agenda`` and the
    practitioner's page)."""

    def __init__(self, *, executor: Executor, settings: Settings) -> None:
        self.executor = executor
        self.settings = settings
        # One lock per offer publishing in this process (offers without a vendor: a bounded set); see ``publish``.
        self._offer_locks: dict[str, threading.Lock] = {}
        self._offer_locks_guard = threading.Lock()

    def _offer_lock(self, offer_id: str) -> threading.Lock:
        with self._offer_locks_guard:
            return self._offer_locks.setdefault(offer_id, threading.Lock())

    def publish(self, request: AgendaPublish, principal: Principal) -> AgendaPublished:
        now = utcnow()
        check_bounds(request.items, now=now, settings=self.settings)
        offer = own_offer(self.executor, principal, request.offer_id)
        vendor = (offer.get("sas") or {}).get("vendor")
        if vendor:
            raise Conflict(f"the agenda of this offer is fed by the vendor {vendor!r}: publish there instead")
        late = [i for i, item in enumerate(request.items) if item.end <= now - PAST_TOLERANCE]
        if late:
            raise BadRequest(f"items {late[:10]} are already over", details={"items": late})
        # Every write below refreshes the index, so the count sees all earlier calls; one offer's calls are
        # counted and written one at a time in this process (a parallel one is refused at once, not queued on
        # the thread pool), so parallel calls cannot all pass the count before any is written.
        lock = self._offer_lock(offer["id"])
        if not lock.acquire(blocking=False):
            raise TooManyRequests("slots of this offer are being published: send the next call when it is done",
                                  retry_after_s=1)
        try:
            held = int(self.executor.search(index="slots", body=future_sas_slots_body(offer_id=offer["id"], now=now))
                       ["hits"]["total"]["value"])
            if held + len(request.items) > self.settings.agenda_max_future_slots:
                raise Unprocessable(f"this offer already holds {held} future slots in the platform agenda; at most "
                                    f"{self.settings.agenda_max_future_slots}: delete some or publish later",
                                    details={"held": held, "max_future_slots": self.settings.agenda_max_future_slots})
            documents = [slot_from_offer(offer=offer, item=item, published_by=principal.sub) for item in request.items]
            # Read-your-writes: the slots index refreshes every 30 s on its own; the author's page and search show
            # these at once. One refresh per (bounded) call.
            self.executor.index_documents(index="slots", documents=documents, refresh="true")
        finally:
            lock.release()
        return AgendaPublished(created=[slot_out(d) for d in documents])

    def list_slots(self, principal: Principal, offer_id: str, start: datetime | None,
                   end: datetime | None) -> list[AgendaSlotOut]:
        # Bounded years first: 7 days after a date near 9999 does not exist (OverflowError, a 500).
        start = check_moment(start, name="from") if start else utcnow()
        end = check_moment(end, name="to") if end else start + timedelta(days=7)
        own_offer(self.executor, principal, offer_id)
        body = agenda_slots_body(offer_id=offer_id, start=_utc(start), end=_utc(end))
        hits = self.executor.search(index="slots", body=body)["hits"]["hits"]
        return [slot_out(hit["_source"]) for hit in hits]

    def delete_slot(self, slot_id: str, principal: Principal) -> None:
        found = self.executor.mget_sources(index="slots", ids=[slot_id])
        slot = found.get(slot_id)
        if slot is None or slot.get("source") != "sas":
            raise NotFound(f"no platform-agenda slot {slot_id!r}")
        if not principal.has_any(Role.ADMIN) and slot.get("practitioner_national_id") != principal.national_id:
            raise Forbidden("an effecteur deletes their own slots only")
        self.executor.delete_document(index="slots", doc_id=slot_id, refresh="true")


def _utc(moment: datetime) -> datetime:
    """A query parameter's moment without offset is read as UTC, as Elasticsearch reads such a date."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)
