"""Slot document: one free slot (or a time range of the platform's own agenda) at one practice place."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mappings.common import Doc, GeoPoint

SlotType = Literal["PUBLIC", "PRO", "SNP", "CPTS"]
SlotMode = Literal["AMB", "HH", "VR"]


class DateRange(Doc):
    gte: datetime
    lt: datetime


class SlotCpts(Doc):
    finess: str | None = None
    name: str | None = None
    phone: str | None = None


class SlotSos(Doc):
    association_siret: str | None = None
    association_name: str | None = None
    place_name: str | None = None
    place_phone: str | None = None
    opening_hours: str | None = None


class SlotDoc(Doc):
    id: str                            # "<vendor>:<resource id>" or "sas:<uuid>"
    source: Literal["vendor", "sas"]
    vendor: str | None = None
    vendor_slot_id: str | None = None
    practitioner_national_id: str | None = None
    national_id_check_ok: bool = True  # vendors send ids with bad check digits: flagged, kept
    offer_id: str
    offer_kind: str
    start: datetime
    end: datetime
    date_range: DateRange
    types: list[SlotType] = []
    modes: list[SlotMode] = []
    motive: str | None = None
    specialties: list[str] = []
    bookable: bool = True              # ROUTINE; False for WALKIN
    booking_url: str | None = None
    capacity: int | None = None        # platform agenda time ranges: max patients
    booked_count: int = 0
    cpts: list[SlotCpts] = []
    sos: SlotSos | None = None
    location: GeoPoint | None = None
    departement: str | None = None
    territory: str | None = None
    name_folded: str | None = None
    hidden: bool = False               # taken through the platform: hidden until the vendor confirms
    harvested_at: datetime | None = None
    stale_since: datetime | None = None
