"""Orientation document: a patient sent to a practitioner. Never any patient identity.

One document per orientation, whatever the way it was made: a vendor slot booked through the vendor's
page (``booking_mode = "redirect"``) or created at the vendor by the platform (``"appointment"``), a
slot of the platform's own agenda (``"agenda"``), or a practitioner who accepts patients beyond his
displayed slots (``"beyond"``). Vendors then report what happened through INT_R03 (``status``).

Statuses: ``oriented`` (the regulator was sent to the vendor's booking page, or to a practitioner beyond
his slots: not confirmed yet), ``booked``, ``pending`` (SOS Médecins: the doctor is not known yet),
``fulfilled`` (honoured), ``noshow``, ``cancelled``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mappings.common import Doc

OrientationStatus = Literal["booked", "fulfilled", "noshow", "cancelled", "pending", "oriented"]
#: PS individual practitioner, CPTS, SOS Médecins, MSP (maison de santé), CDS (centre de santé),
#: PDM (place de marché: a marketplace vendor).
OrientationCategory = Literal["PS", "CPTS", "SOS", "MSP", "CDS", "PDM"]
OrientationSource = Literal["vendor", "platform_agenda", "beyond_slots"]
BookingMode = Literal["redirect", "appointment", "agenda", "beyond", "reported"]


class OrientationRegulator(Doc):
    """Who oriented the patient (a regulator / OSNP account: staff, never the patient)."""

    id: str | None = None              # platform account id (token subject)
    platform_id: str | None = None     # its INTRN identifier at vendors (a UUID), what INT_R03 reports name
    national_id: str | None = None
    name: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    email: str | None = None
    territory: str | None = None       # the SAS on whose behalf the orientation was made


class OrientationEffecteur(Doc):
    national_id: str | None = None
    name: str | None = None
    family_name: str | None = None
    given_name: str | None = None
    specialty: str | None = None       # TRE_R38 code
    profession_code: str | None = None  # TRE_G15 code (10: médecin)
    territory: str | None = None       # the SAS territory of the practice place


class OrientationStructure(Doc):
    id: str | None = None              # national structure id with prefix (1 + FINESS, 3 + SIRET)
    name: str | None = None


#: INT_L02 delivery of the latest message about an orientation: ``held`` (not sent: its time is not
#: known yet), ``queued`` (waiting for the Hub), ``published`` (the Hub took it: AMQP confirm),
#: ``acknowledged`` (the regulation software's final acknowledgement), ``refused`` (an error from the
#: Hub or the regulation software, with its code and reason).
LrmDeliveryState = Literal["held", "queued", "published", "acknowledged", "refused"]


class LrmDelivery(Doc):
    state: LrmDeliveryState
    announced: bool = False            # a CreateAppointment was sent once: later messages are updates
    distribution_id: str | None = None  # EDXL distributionID of the latest message
    method: str | None = None          # CreateAppointment / UpdateAppointment
    code: str | None = None            # why held (start_unknown...), or the error code (300, 409, UNROUTABLE)
    reason: str | None = None          # the error's statusString and cause
    by: str | None = None              # who acknowledged or refused (fr.health.samu330, fr.health.hub)
    updated_at: datetime


class StatusChange(Doc):
    status: OrientationStatus
    at: datetime
    by: str | None = None              # account id, "vendor:<name>", or "system"


class OrientationDoc(Doc):
    id: str
    created_at: datetime
    updated_at: datetime
    consultation_start: datetime | None = None
    consultation_end: datetime | None = None
    regulator: OrientationRegulator = OrientationRegulator()
    effecteur: OrientationEffecteur = OrientationEffecteur()
    structure: OrientationStructure = OrientationStructure()
    offer_id: str | None = None
    slot_id: str | None = None
    place_name: str | None = None
    place_address: str | None = None
    territory: str | None = None       # = regulator.territory: what territory filters and dashboards use
    category: OrientationCategory
    source: OrientationSource
    booking_mode: BookingMode | None = None
    booking_url: str | None = None     # the vendor's agenda URL with origin=sas (redirect mode)
    vendor: str | None = None
    vendor_appointment_system: str | None = None
    vendor_appointment_id: str | None = None
    status: OrientationStatus
    status_history: list[StatusChange] = []
    #: Facts worth showing: "vendor_unverified" (the vendor could not confirm the slot in time),
    #: "unmatched_report" (reported by a vendor without a platform booking to match), ...
    flags: list[str] = []
    cancellation_reason: str | None = None
    lrm_delivery: LrmDelivery | None = None
