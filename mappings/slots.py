"""Slot document: one free slot (or a time range of the platform's own agenda) at one practice place.

Vendor slots are written by the harvester (``indexer.harvest``); the platform's own agenda
(``source = "sas"``) by ``search_api.routes.agenda``. Both are searched the same way: search shows a
slot when ``visible_slot_filter`` holds.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from mappings.common import Doc, GeoPoint

SlotType = Literal["PUBLIC", "PRO", "SNP", "CPTS"]
SlotMode = Literal["AMB", "HH", "VR"]
SlotSearch = Literal["ps", "cpts", "sos", "agenda"]


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


class SlotPlace(Doc):
    """The place as the vendor describes it (display only; the offer carries the directory's view)."""

    name: str | None = None
    address: str | None = None         # one line: "1 rue Mme DELMAS, 47000 AGEN"
    phone: str | None = None
    vendor_location_id: str | None = None
    structure_id: str | None = None


class SlotDoc(Doc):
    id: str                            # "<vendor>:<resource id>" or "sas:<uuid>"
    source: Literal["vendor", "sas"]
    vendor: str | None = None
    vendor_slot_id: str | None = None
    use_case: SlotSearch | None = None   # the search that returned it (ps, cpts, sos) or agenda
    roster_key: str | None = None      # id asked for: national id, or SOS association SIRET
    practitioner_national_id: str | None = None
    national_id_check_ok: bool = True  # vendors send ids with bad check digits: flagged, kept
    practitioner_name: str | None = None
    offer_id: str
    offer_kind: str
    convention_sector: str | None = None   # copied from the offer: the search's `sector` filter
    start: datetime
    end: datetime
    date_range: DateRange
    duration_min: int | None = None
    types: list[SlotType] = []
    modes: list[SlotMode] = []
    motive: str | None = None
    specialties: list[str] = []
    specialty_texts: list[str] = []    # text-only specialties that match no TRE_R38 label
    bookable: bool = True              # ROUTINE; False for WALKIN
    booking_url: str | None = None
    capacity: int | None = None        # platform agenda time ranges: max patients
    booked_count: int = 0
    cpts: list[SlotCpts] = []
    sos: SlotSos | None = None
    place: SlotPlace | None = None
    location: GeoPoint | None = None
    departement: str | None = None
    territory: str | None = None
    name_folded: str | None = None
    hidden: bool = False               # taken through the platform: hidden until the vendor confirms
    #: End of the lease of a platform claim (redirect booking): past it, a harvest that still sees the
    #: slot free at the vendor shows it again; ``None`` = no lease (confirmed by INT_R03, or not claimed).
    claim_expires_at: datetime | None = None
    claimed_by: str | None = None      # the orientation holding the claim (cancelling it releases only its own)
    published_by: str | None = None    # platform agenda: who published it (account id)
    content_hash: str | None = None    # vendor slots: hash of the harvested content (skip unchanged)
    harvested_at: datetime | None = None   # when this content was written (first seen or last changed)
    stale_since: datetime | None = None    # first failed harvest since the slot was last confirmed


def visible_slot_filter(*, now: datetime, stale_after_s: int) -> list[dict]:
    """Elasticsearch filter clauses of the slots search may show at ``now``: not hidden, not over,
    and not stale for longer than ``stale_after_s`` (a vendor that fails keeps its slots for a while;
    they come back as soon as it answers again)."""
    stale_limit = (now - timedelta(seconds=stale_after_s)).isoformat()
    return [
        {"range": {"end": {"gt": now.isoformat()}}},
        {"bool": {"must_not": [{"term": {"hidden": True}}, {"range": {"stale_since": {"lte": stale_limit}}}]}},
    ]
