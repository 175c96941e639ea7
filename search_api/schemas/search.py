"""Response models of the search API (``/v1/search``, ``/v1/search/beyond``, ``/v1/cpts/{id}``).

Integrators depend on these shapes: fields are only ever added, never renamed or removed.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.config import JsonDict

Precision = Literal["coordinates", "address", "street", "municipality", "postcode"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class GeoPointOut(_Out):
    lat: float
    lon: float


class CptsOut(_Out):
    """A CPTS (territorial community of practitioners) through which a slot is offered."""

    finess: str | None = None
    name: str | None = None
    phone: str | None = None


class SosOut(_Out):
    """An SOS Médecins fixed consultation place."""

    association_name: str | None = None
    place_name: str | None = None
    place_phone: str | None = None
    opening_hours: str | None = Field(None, description="Opening hours of the place, as the vendor gives them")


class OfferOut(_Out):
    """A practice place: a practitioner at an address, a CPTS, an SOS place, a health centre."""

    id: str
    kind: Literal["ps", "cpts", "sos", "centre", "msp"] | str
    national_id: str | None = Field(None, description="RPPS prefixed with 8, or ADELI prefixed with 0")
    name: str | None = None
    profession: str | None = None
    specialties: list[str] = Field(default_factory=list, description="TRE_R38 codes")
    specialty_labels: list[str] = Field(default_factory=list)
    address: str | None = None
    postcode: str | None = None
    city: str | None = None
    location: GeoPointOut | None = None
    geo_precision: Precision | None = Field(None, description="How exactly the place was geocoded")
    phone: str | None = None
    convention_sector: str | None = None
    territory: str | None = None


class SlotOut(_Out):
    id: str
    start: datetime
    end: datetime
    modes: list[str] = Field(default_factory=list, description="AMB office, HH home visit, VR teleconsultation")
    types: list[str] = Field(default_factory=list, description="PUBLIC, PRO, SNP, CPTS (TRE_R314)")
    bookable: bool = Field(description="False for walk-in consultations (no appointment)")
    booking_url: str | None = Field(None, description="The vendor's booking page, with origin=sas")
    motive: str | None = None
    source: str | None = Field(None, description="vendor: harvested; sas: the platform's own agenda")
    vendor: str | None = None
    capacity: int | None = Field(None, description="Time ranges of the platform agenda: patients accepted")


class ExplainOut(_Out):
    """Why a card is where it is (``explain=true``)."""

    sort: str
    score: float | None = Field(None, description="Elasticsearch score of the card's best slot")
    distance_km: float
    distance_score: float = Field(description="D: gauss decay of the distance")
    time_score: float = Field(description="T: gauss decay of the best slot's start after the window start")
    rotation: float | None = Field(None, description="R: the day's tie-break rotation value of the offer")
    best_slot_start: datetime | None = None
    formula: str


class BeyondOut(_Out):
    """The offer accepts patients beyond its displayed slots ("en sus"), reachable at this number."""

    phone: str | None = None


class CardOut(_Out):
    offer: OfferOut
    distance_km: float | None = Field(None, description="Great-circle distance from the search point")
    distance_precision: Precision | None = Field(
        None, description="The coarser of the search point's and the place's geocoding precision"
    )
    slots: list[SlotOut] = Field(default_factory=list, description="The earliest matching slots")
    slot_count: int = Field(0, description="Matching slots of this offer in the window")
    cpts: list[CptsOut] = Field(default_factory=list)
    sos: SosOut | None = None
    beyond: BeyondOut | None = None
    explain: ExplainOut | None = None


class BeyondCardOut(_Out):
    offer: OfferOut
    distance_km: float | None = None
    distance_precision: Precision | None = None
    phone: str | None = Field(None, description="Direct number for patients beyond displayed slots")
    cpts: list[CptsOut] = Field(default_factory=list)


class OriginOut(_Out):
    lat: float
    lon: float
    precision: Precision
    label: str | None = None
    insee: str | None = None


class WindowOut(_Out):
    start: datetime = Field(alias="from", serialization_alias="from")
    end: datetime = Field(alias="to", serialization_alias="to")

    model_config = ConfigDict(extra="forbid", populate_by_name=True)


_EXAMPLE: JsonDict = {
    "total": 12,
    "total_slots": 41,
    "total_relation": "eq",
    "radius_km": 20.0,
    "radius_adaptive": True,
    "origin": {"lat": 44.20281, "lon": 0.62558, "precision": "municipality", "label": "47000 Agen",
               "insee": "47001"},
    "window": {"from": "2025-11-05T08:00:00+01:00", "to": "2025-11-07T08:00:00+01:00"},
    "sort": "balanced",
    "page": 1,
    "size": 20,
    "results": [
        {
            "offer": {
                "id": "ps-810100050075-1810004421", "kind": "ps", "national_id": "810100050075",
                "name": "Dr Sébastien THOMAS", "specialties": ["SM54"],
                "specialty_labels": ["Médecine générale"], "address": "1 rue Mme Delmas, 47000 AGEN",
                "postcode": "47000", "city": "AGEN", "location": {"lat": 44.2, "lon": 0.62},
                "geo_precision": "address", "phone": "+33553000000",
            },
            "distance_km": 1.3,
            "distance_precision": "municipality",
            "slots": [
                {"id": "editeur-a:1636102800", "start": "2025-11-05T10:00:00+01:00",
                 "end": "2025-11-05T10:30:00+01:00", "modes": ["AMB", "VR"], "types": ["PUBLIC"],
                 "bookable": True, "booking_url": "https://exemple.com/rdv/com/?origin=sas",
                 "motive": "Visite de contrôle", "source": "vendor", "vendor": "editeur-a"},
            ],
            "slot_count": 1,
            "cpts": [],
        }
    ],
    "beyond": [],
}


class SearchOut(_Out):
    """One card per practice place with visible free slots, ranked neutrally."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [_EXAMPLE]})

    total: int = Field(description="Practice places with matching slots within the radius")
    total_slots: int = Field(0, description="Matching slots within the radius")
    total_relation: Literal["eq", "gte"] = Field(
        "eq", description="`eq`: both totals are exact; `gte`: counting stopped early (a search matching tens of "
                          "thousands of slots) and they are lower bounds — at least that many")
    radius_km: float = Field(description="Radius applied (given, or chosen by the adaptive radius)")
    radius_adaptive: bool = False
    origin: OriginOut
    window: WindowOut
    sort: str
    page: int
    size: int
    results: list[CardOut]
    beyond: list[BeyondCardOut] = Field(
        default_factory=list,
        description="When fewer than the wanted number of places have slots: practitioners and CPTS near the "
                    "point who accept patients beyond their displayed slots",
    )


class BeyondSearchOut(_Out):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "total": 1, "radius_km": 20.0,
        "origin": {"lat": 44.20281, "lon": 0.62558, "precision": "municipality", "label": "47000 Agen"},
        "results": [{"offer": {"id": "ps-810002673899-1810004421", "kind": "ps", "national_id": "810002673899",
                               "name": "Dr Guillaume MARCEL", "specialties": ["SM54"]},
                     "distance_km": 0.4, "distance_precision": "municipality", "phone": "+33658913859",
                     "cpts": []}],
    }]})

    total: int
    radius_km: float
    origin: OriginOut
    results: list[BeyondCardOut]


class CptsMemberOut(_Out):
    offer: OfferOut
    distance_km: float | None = None
    slots: list[SlotOut] = Field(default_factory=list)
    slot_count: int = 0
    beyond: BeyondOut | None = None


class CptsCardOut(_Out):
    """A CPTS with its contact number and every participating practitioner with their slots."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "cpts": {"id": "cpts-920032532", "kind": "cpts", "name": "CPTS Suresnes", "phone": "+33100000000",
                 "address": "101 avenue Henri Barbusse, 92140 Clamart"},
        "finess": "920032532",
        "window": {"from": "2025-11-05T08:00:00+01:00", "to": "2025-11-07T08:00:00+01:00"},
        "members": [{"offer": {"id": "ps-810002909371-x", "kind": "ps", "national_id": "810002909371",
                               "name": "Dr Pierre FORET"},
                     "slots": [], "slot_count": 0}],
        "cpts_slots": [],
    }]})

    cpts: OfferOut
    finess: str | None = None
    beyond: BeyondOut | None = None
    window: WindowOut
    members: list[CptsMemberOut]
    cpts_slots: list[SlotOut] = Field(default_factory=list, description="Slots published by the CPTS itself")
