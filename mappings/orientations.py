"""Orientation document: a patient sent to a practitioner. Never any patient identity."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mappings.common import Doc

OrientationStatus = Literal["booked", "fulfilled", "noshow", "cancelled", "pending", "oriented"]


class OrientationRegulator(Doc):
    id: str | None = None
    name: str | None = None
    territory: str | None = None


class OrientationEffecteur(Doc):
    national_id: str | None = None
    name: str | None = None
    specialty: str | None = None


class StatusChange(Doc):
    status: OrientationStatus
    at: datetime
    by: str | None = None


class OrientationDoc(Doc):
    id: str
    created_at: datetime
    updated_at: datetime
    consultation_start: datetime | None = None
    consultation_end: datetime | None = None
    regulator: OrientationRegulator = OrientationRegulator()
    effecteur: OrientationEffecteur = OrientationEffecteur()
    offer_id: str | None = None
    slot_id: str | None = None
    place_address: str | None = None
    territory: str | None = None
    category: Literal["PS", "CPTS", "SOS", "MSP", "CDS", "PDM"]
    source: Literal["vendor", "platform_agenda", "beyond_slots"]
    vendor: str | None = None
    vendor_appointment_system: str | None = None
    vendor_appointment_id: str | None = None
    status: OrientationStatus
    status_history: list[StatusChange] = []
