"""Vendor-only places: an offer for a place the directory does not know, geocoded once."""

from __future__ import annotations

import hashlib
import logging
from typing import Any, Literal

from connectors.vendors.mapping import SlotRecord
from mappings.offers import OfferAddress, OfferDoc, OfferSas, OfferSos
from sas_core.clock import utcnow
from sas_core.settings import GeocoderSettings
from sas_core.territories import territory_for_departement
from sas_core.text import fold

log = logging.getLogger(__name__)


class PlaceMaker:
    """Vendor-only places: an offer for a place the directory does not know, geocoded once."""

    def __init__(self, *, vendor: str, geocoder: Any | None) -> None:
        self.vendor = vendor
        self.geocoder = geocoder
        self.pending: list[dict] = []

    def make(self, record: SlotRecord) -> dict:
        place = record.place
        key = "|".join([record.search == "sos" and record.roster_key or record.practitioner_national_id or "",
                        place.postcode or "", fold(place.city), fold(place.line), fold(place.name)])
        offer_id = f"vendor-{self.vendor}-{hashlib.blake2b(key.encode(), digest_size=8).hexdigest()}"
        location = departement = insee = precision = None
        geo = self._geocode(place.line, place.postcode, place.city)
        if geo is not None:
            location = {"lat": geo.lat, "lon": geo.lon}
            departement, insee, precision = geo.departement, geo.insee, geo.precision
        elif place.postcode:
            departement = _departement_of_postcode(place.postcode)
        town = " ".join(x for x in (place.postcode, place.city) if x)
        address = OfferAddress(
            line=place.line, postcode=place.postcode, city=place.city, city_folded=fold(place.city) or None,
            insee=insee, text=", ".join(p for p in (place.line, town) if p) or None,
        )
        if record.search == "sos":
            sos = record.sos or {}
            name = place.name or sos.get("association_name") or "SOS Médecins"
            offer = OfferDoc(
                id=offer_id, kind="sos", name=name, name_folded=fold(name), address=address,
                departement=departement, territory=territory_for_departement(departement) if departement else None,
                location=location, geo_precision=precision, phones=[p for p in [place.phone] if p],
                sos=OfferSos(association_siret=sos.get("association_siret"),
                             association_name=sos.get("association_name"), opening_hours=sos.get("opening_hours")),
                sas=OfferSas(participates=True, vendor=self.vendor), source="vendor", source_updated_at=utcnow(),
            )
        else:
            national_id = record.practitioner_national_id or ""
            display = " ".join(p for p in (record.practitioner_given, (record.practitioner_family or "").upper()) if p)
            name = display or national_id
            offer = OfferDoc(
                id=offer_id, kind="ps", national_id=national_id,
                national_id_type=_national_id_type(national_id),
                last_name=record.practitioner_family, first_name=record.practitioner_given, name=name,
                name_folded=fold(name), specialties=list(record.specialties), address=address,
                departement=departement, territory=territory_for_departement(departement) if departement else None,
                location=location, geo_precision=precision, phones=[p for p in [place.phone] if p],
                sas=OfferSas(participates=True, vendor=self.vendor), source="vendor", source_updated_at=utcnow(),
            )
        document = offer.model_dump(mode="json")
        self.pending.append(document)
        return document

    def _geocode(self, line: str | None, postcode: str | None, city: str | None):
        if self.geocoder is None:
            return None
        from connectors.directory.records import Address
        from connectors.geocoding import GeoFailure

        try:
            result = self.geocoder.geocode(Address(street=line or "", postcode=postcode or "", city=city or ""))
        except Exception as exc:  # noqa: BLE001 - a geocoder failure must not stop the harvest
            log.warning("geocoding %s %s failed: %s", postcode, city, exc)
            return None
        return None if isinstance(result, GeoFailure) else result


def _national_id_type(national_id: str) -> Literal["rpps", "adeli"] | None:
    """RPPS numbers start with 8, ADELI numbers with 0."""
    return "rpps" if national_id.startswith("8") else "adeli" if national_id.startswith("0") else None


def _departement_of_postcode(postcode: str) -> str | None:
    try:
        from connectors.geocoding import departements_of_postcode

        options = departements_of_postcode(postcode)
        return options[0] if len(options) == 1 else None
    except (ImportError, ValueError, IndexError):
        return None


def build_geocoder(settings: GeocoderSettings):
    """The directory's geocoder (communes gazetteer, BAN when configured); ``None`` without reference data."""
    try:
        from connectors.geocoding import build_geocoder as build
        from connectors.reference import load_communes

        communes = load_communes(settings.reference_data_dir)
    except Exception as exc:  # noqa: BLE001 - missing reference data: places are created without a point
        log.warning("no geocoder for vendor-only places (%s): they will have no location", exc)
        return None
    return build(communes=communes, ban_url=settings.geocoder_ban_url, ban_timeout_s=settings.geocoder_ban_timeout_s,
                 ban_cache_path=settings.geocoder_cache_path or settings.cache_dir / "geocode-ban.sqlite",
                 ban_min_score=settings.geocoder_ban_min_score)

