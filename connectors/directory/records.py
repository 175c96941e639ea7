"""Normalised records the directory connectors yield, whatever the source format.

A connector yields a stream of ``PracticeRecord`` / ``StructureRecord`` mixed with ``Rejection`` (a line
that is not loaded, with its reason) and ``Remark`` (a line that is loaded but has something worth
counting, e.g. an unknown specialty code). Nothing is dropped silently: every line read ends up in a
record, a rejection, or is merged into a record (several savoir-faire lines of one practice place).
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: Words of the "Indice répétition voie" codes.
REPETITIONS = {"B": "bis", "T": "ter", "Q": "quater", "C": "quinquies"}


@dataclass(slots=True)
class Address:
    """A French postal address split the way the national files split it."""

    number: str = ""
    repetition: str = ""        # B, T, Q… (RPPS code) or already a word
    street_type: str = ""       # label ("Rue") or code ("RUE") when no label
    street: str = ""            # "DE LA PAIX"
    complement: str = ""        # recipient / geographic complements, joined
    distribution: str = ""      # "Mention distribution" (BP, lieu-dit)
    cedex_line: str = ""        # "Bureau cedex": "14000 CAEN" or "14052 CAEN CEDEX"
    postcode: str = ""
    insee: str = ""
    city: str = ""
    country: str = ""

    def street_line(self) -> str:
        """``12 bis Rue DE LA PAIX`` (empty when there is no street)."""
        repetition = REPETITIONS.get(self.repetition.upper(), self.repetition.lower()) if self.repetition else ""
        parts = [self.number, repetition, self.street_type, self.street]
        return " ".join(p for p in parts if p).strip()

    def has_location_hint(self) -> bool:
        """Whether anything here can place the address on a map (postcode, INSEE code, city, cedex line)."""
        return bool(self.postcode or self.insee or self.city or self.cedex_line)

    def one_line(self) -> str:
        """Display form: ``12 bis Rue DE LA PAIX, 14000 CAEN``."""
        town = self.cedex_line or " ".join(p for p in (self.postcode, self.city) if p)
        return ", ".join(p for p in (self.street_line(), self.distribution, town) if p)


@dataclass(slots=True)
class PracticeRecord:
    """One professional at one practice place (several savoir-faire lines already merged)."""

    source: str                         # rpps | annuaire_fhir
    line_no: int
    id_type: str                        # rpps | adeli
    raw_id: str
    national_id: str                    # 8+RPPS or 0+ADELI
    last_name: str
    first_name: str
    civility: str = ""                  # exercise civility label ("Docteur") or civility label
    profession_code: str = ""
    profession_label: str = ""
    specialties: list[tuple[str, str]] = field(default_factory=list)   # TRE_R38 (code, label)
    exercise_mode: str = ""             # L / S / B
    technical_id: str = ""              # "Identifiant technique de la structure"
    structure_name: str = ""            # "Raison sociale site"
    enseigne: str = ""
    siret: str = ""
    siren: str = ""
    finess: str = ""
    finess_ej: str = ""
    sector_code: str = ""
    sector_label: str = ""
    departement: str = ""               # "Code Département (structure)"
    address: Address = field(default_factory=Address)
    phones: list[str] = field(default_factory=list)
    updated: str = ""                   # last update of the source record (FHIR meta.lastUpdated), if any

    def place_key(self) -> str:
        """What identifies the practice place of this record within the professional's lines."""
        if self.technical_id:
            return self.technical_id
        a = self.address
        return "|".join((a.number, a.repetition, a.street, a.postcode, a.insee, a.city, a.cedex_line))


@dataclass(slots=True)
class StructureRecord:
    """A FINESS establishment the SAS shows (CPTS, maison de santé, centre de santé)."""

    source: str                         # finess
    line_no: int
    finess: str
    finess_ej: str
    kind: str                           # cpts | msp | centre
    category_code: str
    category_label: str
    name: str
    long_name: str = ""
    siret: str = ""
    departement: str = ""
    address: Address = field(default_factory=Address)
    phones: list[str] = field(default_factory=list)
    updated: str = ""                   # datemaj
    lat: float | None = None            # from the geolocalisation line, already in WGS84
    lon: float | None = None
    geo_source: str = ""


@dataclass(slots=True, frozen=True)
class Rejection:
    """A line that is not loaded."""

    reason: str
    line_no: int
    detail: str = ""
    #: National id (``8``+RPPS / ``0``+ADELI) the line names, when its key columns still read: the loader
    #: then keeps that professional's offers instead of deleting them as gone from the file.
    key: str = ""
    #: Its structure technical id, when the line has the right columns (so the column is where it should be).
    place: str = ""


@dataclass(slots=True, frozen=True)
class Remark:
    """Something counted about a line that is loaded anyway."""

    reason: str
    line_no: int
    detail: str = ""
