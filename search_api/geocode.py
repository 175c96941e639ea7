"""Where to search: ``lat``/``lon``, ``q`` (address, postcode or commune) or ``insee``.

``q`` and ``insee`` are placed with the directory's communes gazetteer (``connectors.geocoding``), the
same one that placed the practice places, so that a patient and a doctor in the same commune are
placed the same way. When ``q`` names a street (and number) before its commune and the national address
base is loaded (``addresses`` index), the point is that address (``address``) or street (``street``), the
way the directory load placed the practice places. The precision of the point is reported with every
distance: a commune centroid (``municipality``) or the mean of a postcode's communes (``postcode``) is
less exact than an address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from connectors.geocoding import Gazetteer, GeoResult, normalize_city
from connectors.reference import Commune, load_communes
from sas_core.errors import BadRequest
from sas_core.settings import Settings
from sas_core.text import fold
from search_api.query.model import Origin

if TYPE_CHECKING:
    from search_api.addresses import AddressSearch

_POSTCODE_CITY = re.compile(r"(?:^|[\s,])(\d{5})(?:\s+([^\d,][^,]*))?\s*$")
_POSTCODE_ANYWHERE = re.compile(r"(?:^|[\s,])(\d{5})(?=[\s,]|$)")
_INSEE = re.compile(r"^(\d{5}|2[AB]\d{3})$", re.IGNORECASE)


def origin_from_coordinates(lat: float, lon: float) -> Origin:
    """A point given by the caller."""
    if not (-90.0 <= lat <= 90.0) or not (-180.0 <= lon <= 180.0):
        raise BadRequest(f"lat/lon out of range: ({lat}, {lon}); lat must be within ±90 and lon within ±180")
    return Origin(lat=lat, lon=lon, precision="coordinates")


@dataclass
class PlaceResolver:
    """Places ``q`` and ``insee`` with the communes gazetteer, and a typed street at its address (``addresses``)."""

    gazetteer: Gazetteer
    #: The national address base (``search_api.addresses.AddressSearch``); None: communes only.
    addresses: AddressSearch | None = None

    @classmethod
    def from_communes(cls, communes: list[Commune], *, addresses: AddressSearch | None = None) -> PlaceResolver:
        return cls(Gazetteer(communes), addresses)

    @classmethod
    def from_settings(cls, settings: Settings, *, addresses: AddressSearch | None = None) -> PlaceResolver:
        """Load the communes table of ``settings.reference_data_dir`` (about 35,000 rows, once)."""
        return cls.from_communes(load_communes(settings.reference_data_dir), addresses=addresses)

    # -- INSEE --------------------------------------------------------------------------------------

    def by_insee(self, insee: str) -> Origin:
        code = insee.strip().upper()
        if not _INSEE.match(code):
            raise BadRequest(f"insee must be a 5-character INSEE commune code (e.g. 47001), got {insee!r}")
        commune = self.gazetteer.by_insee.get(code)
        if commune is None:
            raise BadRequest(f"unknown INSEE commune code {insee!r}")
        return self._commune_origin(commune)

    # -- Free text -----------------------------------------------------------------------------------

    def by_text(self, q: str) -> Origin:
        """``"47000"``, ``"Agen"``, ``"47000 Agen"``, ``"1 rue Mme Delmas, 47000 Agen"``, ``"Paris 15e"``."""
        text = " ".join(q.split())
        if not text:
            raise BadRequest("q is empty: give an address, a postcode or a commune")
        if len(text) > 200:
            raise BadRequest("q is too long (200 characters at most)")
        match = _POSTCODE_CITY.search(text) or _POSTCODE_ANYWHERE.search(text)
        if match:
            postcode = match.group(1)
            city = (match.group(2) or "").strip() if match.re is _POSTCODE_CITY else ""
            found = self.gazetteer.locate(postcode=postcode, city=city)
            if isinstance(found, GeoResult):
                street = text[:match.start()].strip(" ,") if match.re is _POSTCODE_CITY else ""
                at_address = self._at_address(found.insee, street) if street and found.insee else None
                return at_address or self._result_origin(found, fallback_label=text)
            # Not a postcode La Poste knows: maybe an INSEE code typed in q.
            if text == postcode and postcode in self.gazetteer.by_insee:
                return self._commune_origin(self.gazetteer.by_insee[postcode])
            raise BadRequest(f"unknown postcode {postcode!r} in q={q!r}")
        origin = self._by_name(text)
        if origin is None:
            raise BadRequest(f"cannot place q={q!r}: give a postcode, a commune name or coordinates")
        return origin

    def _by_name(self, text: str) -> Origin | None:
        """A commune name alone, or at the end of an address without postcode (longest match wins);
        homonyms resolve to the most populous commune (its name is in the answer's label)."""
        parts = [p.strip() for p in text.split(",") if p.strip()]
        candidates = [text, *reversed(parts)] if len(parts) > 1 else [text]
        for candidate in candidates:
            tokens = normalize_city(candidate).split()
            for start in range(len(tokens)):
                key = " ".join(tokens[start:])
                communes = self.gazetteer.by_name.get(key)
                if communes:
                    best = max(communes, key=lambda c: (c.population or 0, c.insee))
                    # What comes before the commune's name may be its street: "12 rue X, Agen".
                    if candidate is text:
                        # normalize_city drops numbers and "cedex": count the commune's words from the end.
                        words = fold(text).split()
                        street = " ".join(words[:-len(key.split())]) if start and len(words) > len(key.split()) else ""
                    else:
                        street = ", ".join(p for p in parts if p is not candidate)
                    return (self._at_address(best.insee, street) if street else None) or self._commune_origin(best)
        return None

    def _at_address(self, insee: str, street: str) -> Origin | None:
        """The address (or street) ``street`` of commune ``insee`` in the address base, if it has it."""
        if self.addresses is None or not street:
            return None
        found = self.addresses.locate(insee=insee, street_text=street)
        if found is None:
            return None
        src, precision = found
        loc = src["location"]
        return Origin(lat=loc["lat"], lon=loc["lon"], precision=precision, label=src.get("label"),
                      insee=src.get("insee") or insee, departement=self._departement(insee))

    def _departement(self, insee: str) -> str | None:
        commune = self.gazetteer.by_insee.get(insee)
        return commune.departement if commune else None

    # -- Helpers --------------------------------------------------------------------------------------

    @staticmethod
    def _commune_origin(commune: Commune) -> Origin:
        postcode = commune.postcodes[0] if commune.postcodes else ""
        return Origin(lat=commune.lat, lon=commune.lon, precision="municipality",
                      label=f"{postcode} {commune.name}".strip(), insee=commune.insee,
                      departement=commune.departement)

    @staticmethod
    def _result_origin(result: GeoResult, *, fallback_label: str) -> Origin:
        label = " ".join(p for p in (result.postcode, result.city) if p) or fallback_label
        return Origin(lat=result.lat, lon=result.lon, precision=result.precision,  # type: ignore[arg-type]
                      label=label, insee=result.insee, departement=result.departement)
