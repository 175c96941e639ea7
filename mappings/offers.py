"""Offer document: one practice place (a practitioner at an address, a CPTS, an SOS place, a centre)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from mappings.common import Doc, GeoPoint

OfferKind = Literal["ps", "cpts", "sos", "centre", "msp"]
GeoPrecision = Literal["address", "street", "municipality", "postcode"]


class OfferAddress(Doc):
    line: str | None = None            # "12 bis rue de la Paix"
    complement: str | None = None
    postcode: str | None = None
    city: str | None = None
    city_folded: str | None = None
    insee: str | None = None
    cedex: str | None = None           # "14000 CAEN CEDEX" as written in the source
    text: str | None = None            # one-line display address


class OfferStructure(Doc):
    technical_id: str | None = None    # RPPS "Identifiant technique de la structure"
    name: str | None = None
    name_folded: str | None = None
    siret: str | None = None
    siren: str | None = None
    finess: str | None = None
    finess_ej: str | None = None
    sector_code: str | None = None     # SA07, SA08, SA05…
    sector_label: str | None = None


class OfferSas(Doc):
    participates: bool = False
    cpts_finess: str | None = None     # participates through this CPTS
    cpts_name: str | None = None
    accepts_beyond: bool = False       # accepts patients beyond displayed slots ("en sus")
    beyond_phone: str | None = None
    vendor: str | None = None          # connected scheduling vendor, if any


class OfferSos(Doc):
    association_siret: str | None = None
    association_name: str | None = None
    opening_hours: str | None = None   # human-readable, e.g. "lun-ven 20:00-24:00; sam-dim 08:00-24:00"


class OfferDoc(Doc):
    id: str
    kind: OfferKind
    national_id: str | None = None     # "8"+RPPS or "0"+ADELI
    national_id_type: Literal["rpps", "adeli"] | None = None
    civility: str | None = None
    last_name: str | None = None
    first_name: str | None = None
    last_name_folded: str | None = None    # accent-folded copies for matching (no asciifolding in ES)
    first_name_folded: str | None = None
    name: str                          # display name (practitioner or structure)
    name_folded: str
    profession_code: str | None = None
    profession_label: str | None = None
    specialties: list[str] = []        # TRE_R38 codes
    specialty_labels: list[str] = []
    exercise_mode: str | None = None   # L libéral, S salarié, B bénévole
    address: OfferAddress = OfferAddress()
    departement: str | None = None
    territory: str | None = None       # SAS-47
    location: GeoPoint | None = None
    geo_precision: GeoPrecision | None = None
    geo_source: Literal["gazetteer", "ban", "finess", "addresses"] | None = None  # addresses: the BAN file index
    phones: list[str] = []
    structure: OfferStructure = OfferStructure()
    convention_sector: str | None = None   # "1", "2", "3" (non conventionné) when known
    sas: OfferSas = OfferSas()
    sos: OfferSos | None = None
    member_count: int | None = None    # CPTS / centres: participating members
    source: Literal["rpps", "finess", "annuaire_fhir", "vendor", "sas"]
    source_updated_at: datetime | None = None
    #: Fingerprints written by the directory load (unchanged offers are skipped): the directory fields,
    #: and the SAS participation fields (``sas``, ``convention_sector``) when a participation file was loaded.
    content_hash: str | None = None
    participation_hash: str | None = None
