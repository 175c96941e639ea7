"""Where to search: ``lat``/``lon``, ``q`` (address, postcode or commune) or ``insee``.

``q`` and ``insee`` are placed with the directory's communes gazetteer (``connectors.geocoding``), the
same one that placed the practice places, so that a patient and a doctor in the same commune are
placed the same way. The precision of the point is reported with every distance: a commune centroid
(``municipality``) or the mean of a postcode's communes (``postcode``) is less exact than coordinates.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from connectors.geocoding import Gazetteer, GeoResult, normalize_city
from connectors.reference import Commune, load_communes
from sas_core.errors import BadRequest
from sas_core.settings import Settings
from search_api.query.model import Origin

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
    """Places ``q`` and ``insee`` at commune level with the communes gazetteer."""

    gazetteer: Gazetteer

    @classmethod
    def from_communes(cls, communes: list[Commune]) -> "PlaceResolver":
        return cls(Gazetteer(communes))

    @classmethod
    def from_settings(cls, settings: Settings) -> "PlaceResolver":
        """Load the communes table of ``settings.reference_data_dir`` (about 35,000 rows, once)."""
        return cls.from_communes(load_communes(settings.reference_data_dir))

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
                return self._result_origin(found, fallback_label=text)
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
                    return self._commune_origin(best)
        return None

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
