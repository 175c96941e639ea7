"""What one directory load holds while it runs (its summary, its geocoder, the ids it produced…)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from connectors.directory.nomenclatures import Specialties
from connectors.directory.participation import ParticipationTable
from connectors.directory.records import PracticeRecord
from connectors.geocoding import Geocoder, GeoFailure, GeoResult
from indexer.addresses import AddressLocator
from indexer.directory.summary import LoadSummary
from sas_core.settings import DirectorySettings


@dataclass
class SosPlace:
    offer_id: str
    record: PracticeRecord
    geo: GeoResult | GeoFailure
    members: set[str] = field(default_factory=set)


@dataclass
class DirectoryRun:
    settings: DirectorySettings
    summary: LoadSummary
    alias: str
    geocoder: Geocoder
    specialties: Specialties
    participation: ParticipationTable | None
    source_dates: dict[str, str | None]
    threshold: float
    min_lines: int
    seen: set[str] = field(default_factory=set)
    sos_places: dict[str, SosPlace] = field(default_factory=dict)
    finess_members: dict[str, set[str]] = field(default_factory=dict)
    cpts_names: dict[str, str] = field(default_factory=dict)
    validated: int = 0
    cpts_members: Counter | None = None
    #: National ids named by rejected lines: their offers are not deletion candidates in this load.
    protected: set[str] = field(default_factory=set)
    #: Structure technical ids named by rejected lines (their key may be the broken part): same.
    protected_places: set[str] = field(default_factory=set)
    #: Full loads: id → (content_hash, participation_hash, source) of every offer before the load.
    known: dict[str, tuple[str | None, str | None, str | None]] | None = None
    #: The national address base in the ``addresses`` index (None when it is empty or switched off).
    locator: AddressLocator | None = None

