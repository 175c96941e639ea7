"""Validated, resolved search requests: what the pure query builders take as input.

The HTTP layer turns query parameters into these values (geocoding ``q``, resolving specialty labels,
computing the window from ``within``); the builders never see raw user input, never read a clock and
never read a file, so that the same request always gives the same Elasticsearch body.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from search_api.query import defaults
from search_api.visibility import SlotVisibility

Precision = Literal["coordinates", "address", "street", "municipality", "postcode"]
#: From the most to the least exact: a distance is as exact as the coarser of its two ends.
PRECISION_ORDER: tuple[str, ...] = ("coordinates", "address", "street", "municipality", "postcode")
_PRECISION_RANK = {p: i for i, p in enumerate(PRECISION_ORDER)}


def coarser(a: str | None, b: str | None) -> str | None:
    """The less exact of two geocoding precisions (unknown counts as least exact)."""
    if a is None or b is None:
        return None
    return a if _PRECISION_RANK.get(a, 99) >= _PRECISION_RANK.get(b, 99) else b


@dataclass(frozen=True)
class Origin:
    """The point searched around, and how it was obtained."""

    lat: float
    lon: float
    precision: Precision = "coordinates"
    label: str | None = None
    insee: str | None = None
    departement: str | None = None

    def as_geo(self) -> dict[str, float]:
        return {"lat": self.lat, "lon": self.lon}


@dataclass(frozen=True)
class Window:
    """Slots starting in ``[start, end)`` (time ranges of the platform agenda: overlapping it)."""

    start: datetime
    end: datetime


@dataclass(frozen=True)
class PartialExclusion:
    """An unavailability that covers only part of the window: slots overlapping it are hidden."""

    national_id: str | None
    offer_id: str | None
    start: datetime
    end: datetime | None


@dataclass(frozen=True)
class Exclusions:
    """Who is unavailable during the window (from active unavailability declarations)."""

    national_ids: frozenset[str] = frozenset()
    offer_ids: frozenset[str] = frozenset()
    partial: tuple[PartialExclusion, ...] = ()

    @property
    def empty(self) -> bool:
        return not (self.national_ids or self.offer_ids or self.partial)


NO_EXCLUSIONS = Exclusions()

Sort = Literal["balanced", "earliest", "nearest"]


@dataclass(frozen=True)
class SlotQuery:
    """One search of free slots, fully resolved."""

    origin: Origin
    window: Window
    #: Clock of the request (stale cut-off, rotation day); the window may start later than this.
    now: datetime
    visibility: SlotVisibility
    radius_km: float | None = None              # None: adaptive
    specialties: tuple[str, ...] = ()           # TRE_R38 codes, already expanded (SM54 → SM54, SM26, SM53)
    modes: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    sectors: tuple[str, ...] = ()
    bookable_only: bool = False
    sort: Sort = "balanced"
    page: int = 1
    size: int = defaults.PAGE_SIZE
    slots_per_card: int = defaults.SLOTS_PER_CARD
    explain: bool = False
    stale_after_s: int = 15 * 60
    offer_ids: tuple[str, ...] = field(default=())   # restrict to these offers (CPTS card)

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size


@dataclass(frozen=True)
class BeyondQuery:
    """Practitioners and CPTS near a point who accept patients beyond their displayed slots."""

    origin: Origin
    radius_km: float
    specialties: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    size: int = defaults.BEYOND_SIZE
    now: datetime | None = None
