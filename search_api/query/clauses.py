"""Elasticsearch query clauses as pure functions.

Each function returns one clause (a dict) or ``None`` when the criterion does not restrict anything
(no modes asked → no modes clause), so that a body is assembled by filtering out the ``None``. No client,
no clock, no I/O: the same arguments always give the same clause, which the golden-file tests pin.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sas_core.clock import iso
from search_api.query.model import Exclusions, Origin, Window
from search_api.visibility import SlotVisibility


def km(value: float) -> str:
    """A distance as Elasticsearch reads it (``"12.5km"``)."""
    return f"{round(value, 3):g}km"


# --- Filters shared by slots and offers ------------------------------------------------------------


def within_radius(origin: Origin, radius_km: float, *, field: str = "location") -> dict:
    """Documents whose point lies within ``radius_km`` of the origin (great-circle distance)."""
    return {"geo_distance": {"distance": km(radius_km), "distance_type": "arc", field: origin.as_geo()}}


def terms(field: str, values: tuple[str, ...] | list[str] | frozenset[str]) -> dict | None:
    """``field`` is one of ``values``; ``None`` when no value restricts it."""
    if not values:
        return None
    return {"terms": {field: sorted(set(values))}}


# --- Slot filters -------------------------------------------------------------------------------------


def slot_window(window: Window) -> dict:
    """Slots starting in the window, or platform time ranges (``capacity`` set) overlapping it.

    A vendor slot that has already started cannot be booked any more; a time range of the platform
    agenda ("je reçois de 14 h à 18 h") can, until it ends.
    """
    start, end = iso(window.start), iso(window.end)
    return {
        "bool": {
            "should": [
                {"range": {"start": {"gte": start, "lt": end}}},
                {
                    "bool": {
                        "filter": [
                            {"exists": {"field": "capacity"}},
                            {"range": {"date_range": {"gte": start, "lt": end, "relation": "intersects"}}},
                        ]
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def visible_types(visibility: SlotVisibility) -> dict | None:
    """Slot types the caller may see; ``None`` for callers who see every type."""
    if visibility.sees_everything:
        return None
    allowed: list[dict] = []
    if visibility.types:
        allowed.append({"terms": {"types": sorted(visibility.types)}})
    if visibility.cpts_finess and "CPTS" not in visibility.types:
        allowed.append(
            {"bool": {"filter": [{"term": {"types": "CPTS"}},
                                 {"terms": {"cpts.finess": sorted(visibility.cpts_finess)}}]}}
        )
    if not allowed:
        # No type at all: match nothing rather than everything.
        return {"bool": {"must_not": {"match_all": {}}}}
    if len(allowed) == 1:
        return allowed[0]
    return {"bool": {"should": allowed, "minimum_should_match": 1}}


def slot_modes(modes: tuple[str, ...]) -> dict | None:
    """Slots offering at least one of the consultation modes (AMB, HH, VR)."""
    return terms("modes", modes)


def slot_kinds(kinds: tuple[str, ...]) -> dict | None:
    """Slots of offers of these kinds (ps, cpts, sos, centre, msp)."""
    return terms("offer_kind", kinds)


def slot_specialties(codes: tuple[str, ...]) -> dict | None:
    """Slots for one of these TRE_R38 specialties."""
    return terms("specialties", codes)


def slot_sectors(sectors: tuple[str, ...]) -> dict | None:
    """Slots of practitioners of these convention sectors (1, 2, 3)."""
    return terms("convention_sector", sectors)


def bookable(only: bool) -> dict | None:
    """Only slots that can be booked (``ROUTINE``, not walk-in) when asked."""
    return {"term": {"bookable": True}} if only else None


def fresh(now: datetime, stale_after_s: int) -> dict:
    """Slots not marked stale, or marked stale less than ``stale_after_s`` ago.

    The harvester marks a vendor's slots ``stale_since`` when it cannot refresh them; they stay visible
    for a grace period (a short vendor outage must not empty the search) and then disappear.
    """
    cutoff = iso(now - timedelta(seconds=stale_after_s))
    return {
        "bool": {
            "should": [
                {"bool": {"must_not": {"exists": {"field": "stale_since"}}}},
                {"range": {"stale_since": {"gt": cutoff}}},
            ],
            "minimum_should_match": 1,
        }
    }


def restrict_offers(offer_ids: tuple[str, ...]) -> dict | None:
    """Only the slots of these offers (the members of a CPTS)."""
    return terms("offer_id", offer_ids)


# --- Exclusions (must_not) ----------------------------------------------------------------------------


def hidden_slots() -> dict:
    """Slots taken through the platform and hidden until the vendor confirms (for ``must_not``)."""
    return {"term": {"hidden": True}}


def unavailable_slots(exclusions: Exclusions) -> list[dict]:
    """``must_not`` clauses hiding the slots of practitioners / places declared unavailable.

    A declaration that covers the whole window hides every slot of the practitioner (or place); one
    that covers part of it hides only the slots overlapping its period.
    """
    clauses: list[dict] = []
    if exclusions.national_ids:
        clauses.append({"terms": {"practitioner_national_id": sorted(exclusions.national_ids)}})
    if exclusions.offer_ids:
        clauses.append({"terms": {"offer_id": sorted(exclusions.offer_ids)}})
    for part in sorted(exclusions.partial, key=lambda p: (p.national_id or "", p.offer_id or "", p.start)):
        who = (
            {"term": {"practitioner_national_id": part.national_id}}
            if part.national_id
            else {"term": {"offer_id": part.offer_id}}
        )
        period: dict = {"gte": iso(part.start), "relation": "intersects"}
        if part.end is not None:
            period["lt"] = iso(part.end)
        clauses.append({"bool": {"filter": [who, {"range": {"date_range": period}}]}})
    return clauses


def unavailable_offers(exclusions: Exclusions) -> list[dict]:
    """``must_not`` clauses on the offers index: any unavailability during the window hides the offer."""
    national_ids = set(exclusions.national_ids) | {p.national_id for p in exclusions.partial if p.national_id}
    offer_ids = set(exclusions.offer_ids) | {p.offer_id for p in exclusions.partial if p.offer_id and not p.national_id}
    clauses: list[dict] = []
    if national_ids:
        clauses.append({"terms": {"national_id": sorted(national_ids)}})
    if offer_ids:
        clauses.append({"terms": {"id": sorted(offer_ids)}})
    return clauses


# --- Offer filters (beyond displayed slots, CPTS members) ------------------------------------------------


def accepts_beyond() -> dict:
    """Offers that accept patients beyond their displayed slots ("en sus")."""
    return {"term": {"sas.accepts_beyond": True}}


def offer_specialties(codes: tuple[str, ...]) -> dict | None:
    """Offers practising one of these specialties; CPTS (which list none: they are multi-professional)
    always qualify."""
    if not codes:
        return None
    return {
        "bool": {
            "should": [
                {"terms": {"specialties": sorted(set(codes))}},
                {"bool": {"filter": [{"term": {"kind": "cpts"}}], "must_not": [{"exists": {"field": "specialties"}}]}},
            ],
            "minimum_should_match": 1,
        }
    }


def offer_kinds(kinds: tuple[str, ...]) -> dict | None:
    return terms("kind", kinds)
