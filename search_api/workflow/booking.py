"""Booking a slot for a patient, and orienting to a practitioner beyond his displayed slots.

Vendor slots (``source = "vendor"``):

1. the slot is claimed on the platform with compare-and-set (``hidden: true``, refreshed at once): two
   operators can never both proceed with one slot, and search stops showing it immediately;
2. the vendor is asked whether the slot is still free (a slot search for the practitioner over the
   slot's times, ``SAS_BOOKING_RECHECK_TIMEOUT_S`` = 2 s deadline, one attempt):
   - **gone** → the slot is deleted from the index and the answer is 409;
   - **free** → go on;
   - **no answer / error** → redirect mode goes on with the flag ``vendor_unverified`` (the vendor
     checks again on its own booking page); a proxied Appointment is **never** created without the
     vendor's confirmation: it falls back to redirect mode when the slot has a booking URL, otherwise
     the slot is released and the answer is 503;
3. redirect mode (the national default): the answer carries the vendor's booking URL with
   ``origin=sas``; the orientation is ``oriented`` until the vendor reports the appointment (INT_R03);
   appointment mode (vendors listed in ``SAS_BOOKING_APPOINTMENT_VENDORS``): the platform creates the
   Appointment at the vendor, with the patient's details when given (in memory only); ``booked``.

Slots of the platform's own agenda (``source = "sas"``): ``booked_count`` is incremented under
compare-and-set (``if_seq_no`` / ``if_primary_term``), retried on conflict, while ``booked_count <
capacity`` (1 for a plain slot); the slot is hidden when full. Of N concurrent bookings of a slot of
capacity C exactly C succeed.

Idempotency: the orientation id is derived from (caller, Idempotency-Key); a retry returns the stored
orientation; a retry arriving while the first attempt is still running gets 409 (lease in ``locks``).
Patient details are never stored, indexed or logged: they exist only in this request's memory.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from connectors.vendor_appointments import (
    AppointmentError,
    PatientDetails,
    appointment_resource,
    create_appointment,
)
from connectors.vendors.client import BreakerBoard, VendorClient, VendorError
from connectors.vendors.config import VendorConfig
from connectors.vendors.mapping import BundleError, BundleMapper
from connectors.vendors.queries import Search
from mappings.orientations import (
    OrientationDoc,
    OrientationEffecteur,
    OrientationRegulator,
    OrientationStructure,
    StatusChange,
)
from sas_core.clock import utcnow
from sas_core.errors import BackendUnavailable, BadGateway, BadRequest, Conflict, NotFound, SasError, Unprocessable
from sas_core.platform_ids import platform_uuid
from sas_core.settings import Settings
from sas_core.structure_ids import finess_wire, siret_wire
from search_api.auth import Principal
from search_api.workflow.accounts import trusted_identity
from search_api.workflow.common import (
    KIND_CATEGORY,
    acting_territory,
    category_for_slot,
    idempotent_id,
    with_origin_sas,
)
from search_api.workflow.orientations import OrientationService
from search_api.workflow.store import DocStore, Versioned

log = logging.getLogger(__name__)
MAX_CAS_ATTEMPTS = 200
PLATFORM_SYSTEM = "urn:oid:1.2.250.1.213.3.6"
RPPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"

Recheck = Literal["free", "gone", "unknown"]


@dataclass
class BookingRequest:
    slot_id: str
    idempotency_key: str
    territory: str | None = None
    mode: Literal["auto", "redirect", "appointment"] = "auto"
    patient: PatientDetails | None = None


@dataclass
class BookingResult:
    orientation: dict
    replayed: bool = False
    booking_url: str | None = None
    phone: str | None = None
    warnings: list[str] = field(default_factory=list)


def recheck_slot(vendor: VendorConfig, slot: dict, *, timeout_s: float) -> Recheck:
    """Ask the vendor whether this slot is still free, within ``timeout_s`` (one attempt)."""
    search: Search = slot["use_case"] if slot.get("use_case") in ("ps", "cpts", "sos") else "ps"
    key = slot.get("roster_key") or slot.get("practitioner_national_id")
    if not key or not slot.get("vendor_slot_id"):
        return "unknown"
    start = datetime.fromisoformat(str(slot["start"]).replace("Z", "+00:00"))
    end = datetime.fromisoformat(str(slot["end"]).replace("Z", "+00:00"))
    quick = vendor.model_copy(update={"timeout_s": timeout_s, "max_attempts": 1, "rate_limit_per_s": None,
                                      "max_pages": 5})

    async def ask() -> Recheck:
        async with VendorClient(quick, breakers=BreakerBoard()) as client:
            answer = await client.search(search, ids=[key], start=start, end=max(end, start + timedelta(minutes=1)))
        mapper = BundleMapper(vendor=vendor.name)
        for page in answer.pages:
            for record in mapper.map_bundle(page, search=search).records:
                if record.resource_id == slot["vendor_slot_id"]:
                    return "free"
        return "gone"

    try:
        return asyncio.run(asyncio.wait_for(ask(), timeout=timeout_s))
    except (TimeoutError, VendorError, BundleError) as exc:
        log.warning("slot re-check failed", extra={"vendor": vendor.name, "slot_id": slot.get("id"),
                                                   "reason": getattr(exc, "reason", type(exc).__name__)})
        return "unknown"


class BookingService:
    def __init__(self, *, store: DocStore, orientations: OrientationService, settings: Settings,
                 vendors: Callable[[], list[VendorConfig]], clock: Callable[[], datetime] = utcnow,
                 recheck: Callable[..., Recheck] = recheck_slot) -> None:
        self.store = store
        self.orientations = orientations
        self.settings = settings
        self.vendors = vendors
        self.clock = clock
        self.recheck = recheck

    # -- idempotency -----------------------------------------------------------------------------------

    def _replay(self, orientation_id: str, *, slot_id: str | None = None, offer_id: str | None = None):
        found = self.store.get("orientations", orientation_id)
        if found is None:
            return None
        source = found.source
        if (slot_id and source.get("slot_id") != slot_id) or (offer_id and source.get("offer_id") != offer_id):
            raise Unprocessable("this Idempotency-Key was already used for another booking")
        phone = None
        return BookingResult(orientation=source, replayed=True, booking_url=source.get("booking_url"), phone=phone,
                             warnings=["replayed"])

    def _lease(self, orientation_id: str) -> Callable[[], None]:
        """Hold the booking's key in ``locks`` for the time of the booking; returns the release."""
        lock_id = f"booking:{orientation_id}"
        holder = uuid.uuid4().hex
        now = self.clock()
        document = {"id": lock_id, "holder": holder, "acquired_at": now.isoformat(),
                    "expires_at": (now + timedelta(seconds=self.settings.booking_lease_s)).isoformat()}
        if not self.store.create("locks", lock_id, document, refresh=False):
            current = self.store.get("locks", lock_id)
            expired = current is not None and datetime.fromisoformat(
                current.source["expires_at"].replace("Z", "+00:00")) <= now
            if current is not None and not expired:
                raise Conflict("a booking with this Idempotency-Key is in progress; retry in a moment")
            if current is None or not self.store.replace("locks", current, document, refresh=False):
                raise Conflict("a booking with this Idempotency-Key is in progress; retry in a moment")

        def release() -> None:
            current = self.store.get("locks", lock_id)
            if current is not None and current.source.get("holder") == holder:
                self.store.delete("locks", lock_id, refresh=False)

        return release

    # -- who books ------------------------------------------------------------------------------------

    def _regulator(self, principal: Principal, territory: str | None) -> OrientationRegulator:
        account = self.store.get("accounts", principal.sub)
        # Security: an account pre-created under his subject by a manager of other
        # territories says nothing about him (its e-mail / national id would reach the vendor).
        src = trusted_identity(account.source if account is not None else None, principal)
        family, given = src.get("family_name"), src.get("given_name")
        name = principal.name or " ".join(p for p in (given, family) if p) or None
        return OrientationRegulator(id=principal.sub, platform_id=platform_uuid(principal.sub),
                                    national_id=principal.national_id or src.get("national_id"),
                                    name=name, family_name=family, given_name=given, email=src.get("email"),
                                    territory=territory)

    def _offer(self, offer_id: str | None) -> dict:
        if not offer_id:
            return {}
        found = self.store.get("offers", offer_id)
        return found.source if found is not None else {}

    @staticmethod
    def _effecteur(slot: dict, offer: dict) -> OrientationEffecteur:
        specialties = list(slot.get("specialties") or []) or list(offer.get("specialties") or [])
        return OrientationEffecteur(
            national_id=slot.get("practitioner_national_id") or offer.get("national_id"),
            name=offer.get("name") or slot.get("practitioner_name"),
            family_name=offer.get("last_name"), given_name=offer.get("first_name"),
            specialty=specialties[0] if specialties else None,
            profession_code=offer.get("profession_code"),
            territory=slot.get("territory") or offer.get("territory"),
        )

    @staticmethod
    def _structure(slot: dict, offer: dict) -> OrientationStructure:
        """The structure of the orientation, its id in the guide's wire form (``1`` + FINESS, ``3`` +
        SIRET) exactly once: the helpers are idempotent, so an id already prefixed (a slot harvested
        before the harvest kept the directory's form) is never prefixed twice."""
        structure = offer.get("structure") or {}
        if slot.get("sos"):
            sos = slot["sos"]
            return OrientationStructure(id=siret_wire(sos.get("association_siret")), name=sos.get("association_name"))
        if slot.get("cpts"):
            cpts = slot["cpts"][0]
            return OrientationStructure(id=finess_wire(cpts.get("finess")), name=cpts.get("name"))
        if structure.get("finess"):
            return OrientationStructure(id=finess_wire(structure["finess"]), name=structure.get("name"))
        if structure.get("siret"):
            return OrientationStructure(id=siret_wire(structure["siret"]), name=structure.get("name"))
        return OrientationStructure(name=structure.get("name"))

    # -- booking a slot -------------------------------------------------------------------------------

    def book(self, principal: Principal, request: BookingRequest) -> BookingResult:
        orientation_id = idempotent_id(principal.sub, request.idempotency_key)
        replay = self._replay(orientation_id, slot_id=request.slot_id)
        if replay is not None:
            return replay
        release = self._lease(orientation_id)
        try:
            replay = self._replay(orientation_id, slot_id=request.slot_id)   # finished while we waited
            if replay is not None:
                return replay
            slot = self.store.get("slots", request.slot_id)
            if slot is None:
                raise NotFound(f"slot {request.slot_id} not found: it may have been taken or removed; search again")
            self._check_slot(slot.source)
            territory = acting_territory(principal, requested=request.territory, fallback=slot.source.get("territory"))
            if slot.source.get("source") == "sas":
                return self._book_agenda(principal, request, orientation_id, territory)
            return self._book_vendor(principal, request, orientation_id, territory, slot)
        finally:
            release()

    def _check_slot(self, slot: dict) -> None:
        end = datetime.fromisoformat(str(slot["end"]).replace("Z", "+00:00"))
        if end <= self.clock():
            raise Conflict("this slot is over")
        if not slot.get("bookable", True):
            raise Conflict("this slot takes no appointment (walk-in): send the patient without booking")

    def _orientation(self, *, orientation_id: str, principal: Principal, territory: str | None, slot: dict,
                     offer: dict, source: str, mode: str, status: str, booking_url: str | None = None,
                     flags: list[str] | None = None, appointment: tuple[str | None, str | None] = (None, None)):
        now = self.clock()
        place = slot.get("place") or {}
        address = place.get("address") or (offer.get("address") or {}).get("text")
        return OrientationDoc(
            id=orientation_id, created_at=now, updated_at=now,
            consultation_start=slot.get("start"), consultation_end=slot.get("end"),
            regulator=self._regulator(principal, territory),
            effecteur=self._effecteur(slot, offer), structure=self._structure(slot, offer),
            offer_id=slot.get("offer_id"), slot_id=slot.get("id"),
            place_name=place.get("name") or (offer.get("structure") or {}).get("name"),
            place_address=address, territory=territory,
            category=category_for_slot(slot), source=source, booking_mode=mode, booking_url=booking_url,
            vendor=slot.get("vendor"), vendor_appointment_system=appointment[0],
            vendor_appointment_id=appointment[1], status=status,
            status_history=[StatusChange(status=status, at=now, by=principal.sub)], flags=flags or [],
        )

    def _book_agenda(self, principal: Principal, request: BookingRequest, orientation_id: str,
                     territory: str | None) -> BookingResult:
        claimed: Versioned | None = None
        for attempt in range(MAX_CAS_ATTEMPTS):
            current = self.store.get("slots", request.slot_id)
            if current is None:
                raise NotFound(f"slot {request.slot_id} not found")
            capacity = int(current.source.get("capacity") or 1)
            count = int(current.source.get("booked_count") or 0)
            if count >= capacity:
                raise Conflict("this slot is fully booked" if capacity > 1 else "this slot was just taken")
            fields = {"booked_count": count + 1}
            if count + 1 >= capacity:
                fields["hidden"] = True
            if self.store.patch("slots", current, fields, refresh=True):
                claimed = current
                break
            time.sleep(random.uniform(0, min(0.002 * (attempt + 1), 0.05)))   # spread the retries
        if claimed is None:
            raise Conflict("too many simultaneous bookings of this slot; retry")
        slot = claimed.source
        offer = self._offer(slot.get("offer_id"))
        try:
            doc = self._orientation(orientation_id=orientation_id, principal=principal, territory=territory,
                                    slot=slot, offer=offer, source="platform_agenda", mode="agenda", status="booked")
            document, _ = self.orientations.record(doc)
        except Exception:
            self.release_agenda_place(request.slot_id)    # give the place back: nothing was recorded
            raise
        phone = (slot.get("place") or {}).get("phone") or next(iter(offer.get("phones") or []), None)
        return BookingResult(orientation=document, phone=phone)

    def release_agenda_place(self, slot_id: str) -> None:
        """Give one place of an own-agenda slot back (cancellation, failed recording)."""
        for _ in range(MAX_CAS_ATTEMPTS):
            current = self.store.get("slots", slot_id)
            if current is None:
                return
            count = max(int(current.source.get("booked_count") or 0) - 1, 0)
            if self.store.patch("slots", current, {"booked_count": count, "hidden": False}, refresh=True):
                return
            time.sleep(random.uniform(0, 0.01))

    def _vendor(self, name: str | None) -> VendorConfig | None:
        for vendor in self.vendors():
            if vendor.name == name:
                return vendor
        return None

    def _book_vendor(self, principal: Principal, request: BookingRequest, orientation_id: str, territory: str | None,
                     current: Versioned) -> BookingResult:
        slot = current.source
        vendor, mode = self._vendor_and_mode(slot, request)
        self._claim(current, orientation_id)
        flags: list[str] = []
        warnings: list[str] = []
        try:
            mode = self._rechecked_mode(vendor, slot, mode, flags=flags, warnings=warnings)
            offer = self._offer(slot.get("offer_id"))
            if mode == "appointment":
                return self._proxied(principal, request, orientation_id, territory, slot, offer, vendor, flags,
                                     warnings)
            url = with_origin_sas(slot["booking_url"])
            doc = self._orientation(orientation_id=orientation_id, principal=principal, territory=territory, slot=slot,
                                    offer=offer, source="vendor", mode="redirect", status="oriented",
                                    booking_url=url, flags=flags)
            document, _ = self.orientations.record(doc)
            return BookingResult(orientation=document, booking_url=url, warnings=warnings)
        except Conflict:
            raise
        except _KeepHidden as exc:
            raise exc.error from None
        except Exception:
            # Nothing was booked: the slot goes back to search.
            self.store.patch_unconditional("slots", slot["id"], {"hidden": False, "claim_expires_at": None,
                                                                 "claimed_by": None}, refresh=True)
            raise

    def _vendor_and_mode(self, slot: dict, request: BookingRequest) -> tuple[VendorConfig | None, str]:
        """The slot's vendor and how to book there: ``appointment`` (the platform creates it, for the
        vendors of ``booking_appointment_vendors``) or ``redirect`` (the vendor's booking page)."""
        if slot.get("hidden"):
            raise Conflict("this slot was just taken through the platform")
        vendor = self._vendor(slot.get("vendor"))
        proxied_allowed = vendor is not None and vendor.name in self.settings.booking_appointment_vendors
        if request.mode == "appointment" and not proxied_allowed:
            raise Unprocessable(f"vendor {slot.get('vendor')} does not let the platform create appointments: "
                                "use redirect mode")
        mode = "appointment" if proxied_allowed and request.mode != "redirect" else "redirect"
        if mode == "redirect" and not slot.get("booking_url"):
            raise Unprocessable("this slot has no booking link at the vendor: call the practice")
        return vendor, mode

    def _claim(self, current: Versioned, orientation_id: str) -> None:
        """From here on, nobody else can proceed with this slot and search hides it. The claim is leased:
        without an INT_R03 report before ``claim_expires_at``, a harvest that still sees the slot free at
        the vendor shows it again (an abandoned redirect booking)."""
        lease_end = self.clock() + timedelta(seconds=self.settings.redirect_claim_lease_s)
        claim = {"hidden": True, "claim_expires_at": lease_end.isoformat(), "claimed_by": orientation_id}
        if not self.store.patch("slots", current, claim, refresh=True):
            raise Conflict("this slot was just taken by another operator")

    def _rechecked_mode(self, vendor: VendorConfig | None, slot: dict, mode: str, *, flags: list[str],
                        warnings: list[str]) -> str:
        """Ask the vendor whether the slot is still free: gone, it leaves search (409); no answer in time,
        the booking goes on flagged ``vendor_unverified``, as a redirect (the vendor's page checks it)."""
        verdict: Recheck = "unknown"
        if vendor is not None:
            verdict = self.recheck(vendor, slot, timeout_s=self.settings.booking_recheck_timeout_s)
        if verdict == "gone":
            self.store.delete("slots", slot["id"], refresh=True)
            raise Conflict("the vendor says this slot is no longer free; it was removed from search")
        if verdict == "unknown":
            flags.append("vendor_unverified")
            if mode == "appointment":
                if not slot.get("booking_url"):
                    raise BackendUnavailable("the vendor did not confirm the slot in time; retry", retry_after_s=2)
                mode = "redirect"
            warnings.append("the vendor did not confirm the slot in time: its booking page will check it")
        return mode

    def release_vendor_claim(self, orientation: dict) -> None:
        """A cancelled vendor orientation gives its slot back. Not linked to a vendor appointment (a
        redirect booking nobody reported): shown again at once. Linked (the vendor reported or created
        the appointment): the lease ends now, so the next harvest shows the slot only if the vendor
        lists it free again — the platform's cancellation does not prove the vendor's one."""
        slot_id = orientation.get("slot_id")
        if orientation.get("source") != "vendor" or not slot_id:
            return
        fields: dict[str, Any]
        if orientation.get("vendor_appointment_id"):
            fields = {"claim_expires_at": self.clock().isoformat()}
        else:
            fields = {"hidden": False, "claim_expires_at": None, "claimed_by": None}
        for _ in range(MAX_CAS_ATTEMPTS):
            current = self.store.get("slots", slot_id)
            # Another booking's claim (this one was released by a harvest, then the slot taken again)
            # is not this orientation's to give back.
            if current is None or current.source.get("claimed_by") not in (None, orientation.get("id")):
                return
            if self.store.patch("slots", current, fields, refresh=True):
                return

    def _proxied(self, principal, request, orientation_id, territory, slot, offer, vendor, flags, warnings):
        regulator = self._regulator(principal, territory)
        if regulator.national_id:
            op = (RPPS_SYSTEM, regulator.national_id, "IDNPS")
        else:
            op = (PLATFORM_SYSTEM, platform_uuid(principal.sub), "INTRN")
        resource = appointment_resource(
            vendor_slot_id=slot["vendor_slot_id"],
            start=datetime.fromisoformat(str(slot["start"]).replace("Z", "+00:00")),
            end=datetime.fromisoformat(str(slot["end"]).replace("Z", "+00:00")),
            national_id=slot.get("practitioner_national_id"), operator_system=op[0], operator_value=op[1],
            operator_type=op[2], patient=request.patient)
        try:
            outcome = create_appointment(vendor, resource, timeout_s=self.settings.booking_appointment_timeout_s)
        except AppointmentError as exc:
            if exc.reason == "timeout":
                # It may have been booked: keep the slot hidden; the vendor's report will tell (INT_R03).
                raise _KeepHidden(BadGateway("the vendor did not answer in time: the appointment may or may not "
                                             "exist; check at the vendor before booking again")) from None
            raise BadGateway(f"the vendor refused the appointment ({exc.reason})") from None
        finally:
            del resource          # the patient's details leave memory with the request
        if outcome.result == "gone":
            self.store.delete("slots", slot["id"], refresh=True)
            raise Conflict("the vendor says this slot is no longer free; it was removed from search")
        doc = self._orientation(orientation_id=orientation_id, principal=principal, territory=territory, slot=slot,
                                offer=offer, source="vendor", mode="appointment", status="booked", flags=flags,
                                appointment=(outcome.system, outcome.value))
        document, _ = self.orientations.record(doc)
        # The vendor confirmed the appointment: the claim is no longer leased (hidden until it goes).
        self.store.patch_unconditional("slots", slot["id"], {"claim_expires_at": None}, refresh=True)
        return BookingResult(orientation=document, warnings=warnings)

    # -- beyond displayed slots ------------------------------------------------------------------------

    def book_beyond(self, principal: Principal, *, offer_id: str, idempotency_key: str, territory: str | None,
                    consultation_start: datetime | None = None) -> BookingResult:
        """Record an orientation to a practitioner who accepts patients beyond his displayed slots."""
        orientation_id = idempotent_id(principal.sub, idempotency_key)
        replay = self._replay(orientation_id, offer_id=offer_id)
        if replay is not None:
            return replay
        offer = self._offer(offer_id)
        if not offer:
            raise NotFound(f"no practice place {offer_id}")
        sas = offer.get("sas") or {}
        if not sas.get("accepts_beyond"):
            raise Unprocessable("this practitioner does not accept patients beyond his displayed slots")
        if consultation_start is not None and consultation_start.tzinfo is None:
            raise BadRequest("consultation_start needs an offset (e.g. 2025-06-17T14:00:00+02:00)")
        acting = acting_territory(principal, requested=territory, fallback=offer.get("territory"))
        now = self.clock()
        pseudo_slot = {"offer_id": offer_id, "offer_kind": offer.get("kind"), "territory": offer.get("territory"),
                       "practitioner_national_id": offer.get("national_id"),
                       "specialties": offer.get("specialties") or []}
        doc = OrientationDoc(
            id=orientation_id, created_at=now, updated_at=now, consultation_start=consultation_start,
            regulator=self._regulator(principal, acting), effecteur=self._effecteur(pseudo_slot, offer),
            structure=self._structure({}, offer), offer_id=offer_id,
            place_name=(offer.get("structure") or {}).get("name"),
            place_address=(offer.get("address") or {}).get("text"), territory=acting,
            category=KIND_CATEGORY.get(offer.get("kind") or "ps", "PS"), source="beyond_slots", booking_mode="beyond",
            status="oriented", status_history=[StatusChange(status="oriented", at=now, by=principal.sub)],
        )
        document, created = self.orientations.record(doc)
        return BookingResult(orientation=document, replayed=not created, phone=sas.get("beyond_phone"))


class _KeepHidden(Exception):
    """An error after which the claimed slot must stay hidden (the vendor may have booked it)."""

    def __init__(self, error: SasError) -> None:
        super().__init__(error.message)
        self.error = error
