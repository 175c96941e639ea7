"""Assembling the Elasticsearch bodies of the search from the pure clauses.

Bodies built here:

- ``declarations_body``: active unavailability declarations overlapping the window (→ exclusions);
- ``slot_search_body``: the search itself, on the ``slots`` alias: filters, neutral ranking
  (``function_score`` with gauss decays), ``collapse`` on ``offer_id`` (one card per place) and the
  number of distinct offers;
- ``card_slots_body``: the earliest slots of the cards of one page (``terms`` on ``offer_id`` with
  ``top_hits``): one small query for the whole page, where ``collapse.inner_hits`` would run one more
  search per card (measured ten times dearer);
- ``offers_by_ids_body``: the offers of the cards;
- ``probe_body``: how many distinct offers have slots within a radius (adaptive radius);
- ``counts_body`` / ``earliest_body`` / ``pass_body``: the balanced search in two passes (below);
- ``beyond_body``: offers accepting patients beyond their displayed slots, nearest first;
- ``cpts_lookup_body`` / ``cpts_members_body``: a CPTS card and its participating members.

The ranking formula (README, "Ranking"):

    balanced = W_DISTANCE · D + W_TIME · T + W_ROTATION · R
    D = gauss(distance; offset DISTANCE_OFFSET_KM, scale max(DISTANCE_MIN_SCALE_KM,
              DISTANCE_SCALE_FRACTION · radius), decay DISTANCE_DECAY)
    T = gauss(start − window start; offset TIME_OFFSET, scale TIME_SCALE, decay TIME_DECAY)
    R = Elasticsearch ``random_score`` seeded with the day (Europe/Paris) over ``offer_id``

A card's score is its best slot's score. ``earliest`` sorts on the earliest slot, ``nearest`` on the
distance; both then break ties with R. Nothing commercial or participation-related enters a score.

Two passes (balanced): D and R are the same for every slot of a place and T only falls as the start moves
away from the window start, so a place's score is that of its earliest slot in the window. Scoring every
matching slot (60,000 to 160,000 for a city at national density) is what a search cost; instead:

1. ``counts_body`` (how many slots and places match: no scoring) and ``earliest_body`` (the earliest
   matching start, one document through the sort optimisation), and beside them the first pass over
   ``speculative_first_part``, which is the first part of step 2 whenever a slot starts early enough (by
   day, nearly always; at night it scores next to nothing and step 2 runs on its own);
2. ``pass_body`` over the first part of the window, up to ``first_pass_end`` (the earliest start plus
   ``FIRST_PASS_AFTER_EARLIEST``): the best ``k = offset + size`` places among its slots;
3. a place whose first slot is later scores at most ``W_DISTANCE·D + W_TIME·T(end of the first part) +
   W_ROTATION``; ``second_pass_radius_km`` gives the distance within which that can still beat the
   k-th place of the first pass (``None``: nowhere, the page is exact), and ``pass_body`` scores the rest
   of the window within it;
4. ``merge_passes``: each place's best hit, ordered as the one-pass search orders them.

The page is the one the single pass would give (same scores, same order): the top ``k`` of all places is
within the top ``k`` of the first pass and the top ``k`` of the second.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo

from search_api.query import clauses, defaults
from search_api.query.model import BeyondQuery, Exclusions, Origin, PartialExclusion, SlotQuery, Window

#: Slot fields returned for each slot of a card.
SLOT_CARD_FIELDS: tuple[str, ...] = (
    "id", "start", "end", "modes", "types", "bookable", "booking_url", "motive", "source", "vendor", "capacity",
    "cpts", "sos", "specialties",
)
#: Fields of the collapsed (representative) slot: enough to place and explain the card.
CARD_HIT_FIELDS: tuple[str, ...] = ("offer_id", "offer_kind", "start", "location")


# --- Ranking ----------------------------------------------------------------------------------------------


def rotation_seed(now: datetime) -> int:
    """Seed of the tie-break rotation: the day in Europe/Paris as ``YYYYMMDD`` (changes at local midnight)."""
    local = now.astimezone(ZoneInfo(defaults.LOCAL_TIMEZONE))
    return int(local.strftime("%Y%m%d"))


def distance_scale_km(radius_km: float) -> float:
    """Scale of the distance decay for a given radius applied."""
    return max(defaults.DISTANCE_MIN_SCALE_KM, defaults.DISTANCE_SCALE_FRACTION * radius_km)


def _duration(seconds: float) -> str:
    """A duration as Elasticsearch reads it (whole minutes: ``"720m"``)."""
    return f"{int(round(seconds / 60))}m"


def rotation_function(now: datetime, *, weight: float, field: str = "offer_id") -> dict:
    """R: a pseudo-random value per offer, fixed for the day (Elasticsearch ``random_score`` over the
    offer id's doc values with the day as seed): deterministic, the same for every caller, and
    different each day so that no place is always first among equals."""
    return {"random_score": {"seed": rotation_seed(now), "field": field}, "weight": weight}


def balanced_functions(origin: Origin, window: Window, *, radius_km: float, now: datetime) -> list[dict]:
    """The three scoring functions of the ``balanced`` sort."""
    return [
        {
            "gauss": {
                "location": {
                    "origin": origin.as_geo(),
                    "offset": clauses.km(defaults.DISTANCE_OFFSET_KM),
                    "scale": clauses.km(distance_scale_km(radius_km)),
                    "decay": defaults.DISTANCE_DECAY,
                }
            },
            "weight": defaults.W_DISTANCE,
        },
        {
            "gauss": {
                "start": {
                    "origin": clauses.iso(window.start),
                    "offset": _duration(defaults.TIME_OFFSET.total_seconds()),
                    "scale": _duration(defaults.TIME_SCALE.total_seconds()),
                    "decay": defaults.TIME_DECAY,
                }
            },
            "weight": defaults.W_TIME,
        },
        rotation_function(now, weight=defaults.W_ROTATION),
    ]


def gauss(value: float, *, offset: float, scale: float, decay: float) -> float:
    """Elasticsearch's gauss decay, in Python (for ``explain``): 1 within ``offset``, ``decay`` at
    ``offset + scale``."""
    sigma2 = -(scale**2) / (2.0 * math.log(decay))
    excess = max(0.0, abs(value) - offset)
    return math.exp(-(excess**2) / (2.0 * sigma2))


def arc_distance_km(a_lat: float, a_lon: float, b_lat: float, b_lon: float) -> float:
    """Great-circle distance with Elasticsearch's arc formula and Earth radius (kilometres)."""
    phi1, phi2 = math.radians(a_lat), math.radians(b_lat)
    dphi = phi2 - phi1
    dlmb = math.radians(b_lon - a_lon)
    h = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * defaults.EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h))) / 1000.0


def score_components(*, distance_km: float, start: datetime, window: Window, radius_km: float) -> dict[str, float]:
    """D and T of the balanced formula for one slot (the rotation is read from Elasticsearch's score)."""
    d = gauss(distance_km, offset=defaults.DISTANCE_OFFSET_KM, scale=distance_scale_km(radius_km),
              decay=defaults.DISTANCE_DECAY)
    hours = (start - window.start).total_seconds() / 3600.0
    t = gauss(hours, offset=defaults.TIME_OFFSET.total_seconds() / 3600.0,
              scale=defaults.TIME_SCALE.total_seconds() / 3600.0, decay=defaults.TIME_DECAY)
    return {"distance_score": d, "time_score": t}


# --- Slots --------------------------------------------------------------------------------------------------


def slot_filters(query: SlotQuery, *, radius_km: float | None, exclusions: Exclusions,
                 extra: tuple[dict, ...] = ()) -> dict:
    """The ``bool`` of every filter of a slot search (no scoring); no distance filter when
    ``radius_km`` is ``None`` (the slots of given offers, wherever they are)."""
    shared_filters, must_not = _shared_clauses(query, exclusions)
    distance = [clauses.within_radius(query.origin, radius_km)] if radius_km is not None else []
    return {"bool": {"filter": [*distance, *shared_filters, *extra], "must_not": list(must_not)}}


@lru_cache(maxsize=256)
def _shared_clauses(query: SlotQuery, exclusions: Exclusions) -> tuple[tuple[dict, ...], tuple[dict, ...]]:
    """The clauses every body of one search shares (built once for the search and its probes; the
    dicts are never mutated afterwards)."""
    filters = [
        clauses.slot_window(query.window),
        clauses.visible_types(query.visibility),
        clauses.slot_specialties(query.specialties),
        clauses.slot_modes(query.modes),
        clauses.slot_kinds(query.kinds),
        clauses.slot_sectors(query.sectors),
        clauses.bookable(query.bookable_only),
        clauses.fresh(query.now, query.stale_after_s),
        clauses.restrict_offers(query.offer_ids),
    ]
    must_not = [clauses.hidden_slots(), *clauses.unavailable_slots(exclusions)]
    return tuple(f for f in filters if f is not None), tuple(must_not)


def _offer_count_agg() -> dict:
    # Segment ordinals: the default execution reads the global ordinals of offer_id, rebuilt after every refresh
    # that changed slots (every 30 s while harvests write) in the next search's time; per segment it costs the
    # same (national dataset, Rennes at 5 km: 21 against 20 ms for the search, 10 against 11 ms for the counts).
    return {"offers": {"cardinality": {"field": "offer_id", "precision_threshold": defaults.CARDINALITY_PRECISION,
                                       "execution_hint": "segment_ordinals"}}}


def slot_search_body(query: SlotQuery, *, radius_km: float, exclusions: Exclusions,
                     scoring_window: Window | None = None, scoring_radius_km: float | None = None) -> dict:
    """The search: one hit per offer (collapse), ranked per ``query.sort``, with its earliest slots.
    ``scoring_window`` / ``scoring_radius_km``: the window whose start the time decay counts from and the
    radius the distance decay scales with, when this body searches only part of them (a pass of the
    two-pass search): the scores are then those of the whole search."""
    filtered = slot_filters(query, radius_km=radius_km, exclusions=exclusions)
    rotation_tiebreak = [{"_score": "desc"}, {"offer_id": "asc"}]
    if query.sort == "balanced":
        functions = balanced_functions(query.origin, scoring_window or query.window,
                                       radius_km=scoring_radius_km or radius_km, now=query.now)
        sort: list = rotation_tiebreak
    else:
        # Only the rotation is scored: it breaks ties of the primary sort key.
        functions = [rotation_function(query.now, weight=1.0)]
        if query.sort == "earliest":
            sort = [{"start": "asc"}, *rotation_tiebreak]
        else:
            sort = [
                {"_geo_distance": {"location": query.origin.as_geo(), "order": "asc", "unit": "km",
                                   "distance_type": "arc"}},
                *rotation_tiebreak,
            ]
    return {
        "size": query.size,
        "from": query.offset,
        "track_total_hits": True,
        "query": {"function_score": {"query": filtered, "functions": functions, "score_mode": "sum",
                                     "boost_mode": "replace"}},
        "sort": sort,
        "collapse": {"field": "offer_id"},
        "_source": list(CARD_HIT_FIELDS),
        "aggs": _offer_count_agg(),
    }


# --- Two passes (balanced) ------------------------------------------------------------------------------


def two_passes(query: SlotQuery) -> bool:
    """Whether ``query`` is searched in two passes: the balanced sort (the others sort on a field)."""
    return query.sort == "balanced"


def counts_body(query: SlotQuery, *, radius_km: float, exclusions: Exclusions,
                max_slots: int | None = defaults.COUNT_MAX_SLOTS) -> dict:
    """How many slots match and at how many places (``hits.total``, ``aggregations.offers``): no scoring.
    Counting stops after ``max_slots`` matching slots (per shard; the answer then says ``terminated_early``
    and both counts are lower bounds); ``None``: exact counts."""
    body = {
        "size": 0,
        "track_total_hits": True,
        "query": slot_filters(query, radius_km=radius_km, exclusions=exclusions),
        "aggs": _offer_count_agg(),
    }
    if max_slots:
        body["terminate_after"] = max_slots
    return body


def earliest_body(query: SlotQuery, *, radius_km: float, exclusions: Exclusions) -> dict:
    """The earliest matching start (its sort value): one document, found without visiting the others."""
    return {
        "size": 1,
        "track_total_hits": False,
        "_source": False,
        "query": slot_filters(query, radius_km=radius_km, exclusions=exclusions),
        "sort": [{"start": {"order": "asc", "format": "strict_date_optional_time"}}],
    }


def first_pass_end(query: SlotQuery, earliest: datetime | None) -> datetime:
    """End of the first pass: ``FIRST_PASS_AFTER_EARLIEST`` past the earliest start, at least
    ``FIRST_PASS_MIN`` after the window start, at most the window end."""
    window = query.window
    at_least = window.start + defaults.FIRST_PASS_MIN
    end = max(at_least, (earliest or window.start) + defaults.FIRST_PASS_AFTER_EARLIEST)
    return min(end, window.end)


def speculative_first_part(query: SlotQuery) -> Window:
    """The first part of the window as ``first_pass_end`` gives it whenever a slot starts within
    ``FIRST_PASS_MIN - FIRST_PASS_AFTER_EARLIEST`` of the window start: it can be scored before the earliest
    start is known, in the same round-trip as the counts."""
    window = query.window
    return Window(start=window.start, end=first_pass_end(query, window.start))


def pass_body(query: SlotQuery, *, radius_km: float, exclusions: Exclusions, part: Window, size: int,
              within_km: float | None = None) -> dict:
    """The best ``size`` places among the slots of ``part`` of the window (within ``within_km`` of the
    origin, default the radius), scored as the one-pass search at ``radius_km`` scores them; no counts."""
    scored = slot_search_body(replace(query, window=part, page=1, size=size), radius_km=within_km or radius_km,
                              exclusions=exclusions, scoring_window=query.window, scoring_radius_km=radius_km)
    scored.pop("aggs")
    scored["track_total_hits"] = False
    return scored


def second_pass_radius_km(kth_score: float | None, *, radius_km: float, query: SlotQuery,
                          first_pass_end: datetime) -> float | None:
    """The distance within which a place whose slots all start at or after ``first_pass_end`` could
    still score at least ``kth_score`` (the k-th place of the first pass; ``None``: fewer than k places,
    anywhere in the radius); ``None`` when nowhere (no second pass needed)."""
    if first_pass_end >= query.window.end:
        return None
    if kth_score is None:
        return radius_km
    hours = (first_pass_end - query.window.start).total_seconds() / 3600.0
    t_max = gauss(hours, offset=defaults.TIME_OFFSET.total_seconds() / 3600.0,
                  scale=defaults.TIME_SCALE.total_seconds() / 3600.0, decay=defaults.TIME_DECAY)
    needed = kth_score - defaults.SECOND_PASS_SCORE_MARGIN - defaults.W_ROTATION - defaults.W_TIME * t_max
    d_min = needed / defaults.W_DISTANCE
    if d_min > 1.0:
        return None
    if d_min <= 0.0:
        return radius_km
    scale = distance_scale_km(radius_km)
    sigma2 = -(scale ** 2) / (2.0 * math.log(defaults.DISTANCE_DECAY))
    within = defaults.DISTANCE_OFFSET_KM + math.sqrt(-2.0 * sigma2 * math.log(d_min))
    return min(radius_km, within + defaults.SECOND_PASS_RADIUS_MARGIN_KM)


def merge_passes(first: list[dict], second: list[dict], *, offset: int, size: int) -> list[dict]:
    """Each place's best hit of both passes, ordered as the one-pass search (score, then offer id), the
    page ``[offset, offset + size)``."""
    best: dict[str, dict] = {}
    for hit in (*first, *second):
        offer_id = hit["_source"]["offer_id"]
        kept = best.get(offer_id)
        if kept is None or pass_score(hit) > pass_score(kept):
            best[offer_id] = hit
    ordered = sorted(best.values(), key=lambda h: (-pass_score(h), h["_source"]["offer_id"]))
    return ordered[offset:offset + size]


def pass_score(hit: dict) -> float:
    """A pass's hit score (its first sort value)."""
    return float(hit["sort"][0])


def probe_body(query: SlotQuery, *, radius_km: float, exclusions: Exclusions) -> dict:
    """How many distinct offers have visible slots within ``radius_km`` (a lower bound once the
    probe stops after ``PROBE_MAX_SLOTS`` slots: enough to know a radius suffices)."""
    return {
        "size": 0,
        "track_total_hits": False,
        "terminate_after": defaults.PROBE_MAX_SLOTS,
        "query": slot_filters(query, radius_km=radius_km, exclusions=exclusions),
        "aggs": _offer_count_agg(),
    }


def probe_radii(query: SlotQuery) -> tuple[float, ...]:
    """Radii to try: the caller's radius alone, else the adaptive ladder."""
    return (query.radius_km,) if query.radius_km is not None else defaults.RADIUS_LADDER_KM


def choose_radius(radii: tuple[float, ...], counts: list[tuple[int, bool]]) -> float:
    """The first radius whose probe found enough offers (count, terminated early), else the largest.

    A probe stopped early saw ``PROBE_MAX_SLOTS`` slots in the window: plenty, so it counts as enough.
    """
    for radius, (count, terminated) in zip(radii, counts, strict=True):
        if count >= defaults.MIN_OFFERS_WITH_SLOTS or terminated:
            return radius
    return radii[-1]


def parse_datetime(text: str) -> datetime:
    """An ISO 8601 date-time as Elasticsearch returns it (``Z``, an offset, or none: UTC, as
    Elasticsearch reads it)."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


# --- Declarations -----------------------------------------------------------------------------------------


def declarations_body(window: Window, *, report_max_hours: int) -> dict:
    """Active unavailability declarations with a period overlapping the window (or without period:
    unavailable from now on).

    A regulator's report may hide a practitioner ``report_max_hours`` at most from its filing (the
    workflow refuses a later end); a report filed longer ago than that before the window — one filed
    before the cap existed, with an end in 2199 — hides nothing any more, whatever period it names."""
    start, end = clauses.iso(window.start), clauses.iso(window.end)
    expired_report = {"bool": {"filter": [
        {"term": {"declared_by_role": "regulator"}},
        {"range": {"created_at": {"lt": clauses.iso(window.start - timedelta(hours=report_max_hours))}}}]}}
    overlapping = {
        "nested": {
            "path": "periods",
            "query": {
                "bool": {
                    "filter": [{"range": {"periods.start": {"lt": end}}}],
                    "should": [
                        {"bool": {"must_not": {"exists": {"field": "periods.end"}}}},
                        {"range": {"periods.end": {"gt": start}}},
                    ],
                    "minimum_should_match": 1,
                }
            },
        }
    }
    without_period = {
        "bool": {"must_not": {"nested": {"path": "periods", "query": {"exists": {"field": "periods.start"}}}}}}
    return {
        "size": defaults.MAX_DECLARATIONS,
        "_source": ["id", "national_id", "offer_id", "periods"],
        "query": {
            "bool": {
                "filter": [
                    {"term": {"kind": "unavailable"}},
                    {"term": {"active": True}},
                    {"bool": {"should": [overlapping, without_period], "minimum_should_match": 1}},
                ],
                "must_not": [{"exists": {"field": "cancelled_at"}}, expired_report],
            }
        },
    }


def exclusions_from(hits: list[dict], window: Window) -> Exclusions:
    """Turn declaration hits into exclusions: whole-window ones by id, partial ones with their period."""
    national_ids: set[str] = set()
    offer_ids: set[str] = set()
    partial: list[PartialExclusion] = []
    for hit in hits:
        source = hit.get("_source", hit)
        national_id, offer_id = source.get("national_id"), source.get("offer_id")
        if not national_id and not offer_id:
            continue
        periods = source.get("periods") or [{"start": None, "end": None}]
        for period in periods:
            start = parse_datetime(period["start"]) if period.get("start") else None
            end = parse_datetime(period["end"]) if period.get("end") else None
            if start is not None and start >= window.end or end is not None and end <= window.start:
                continue  # this period of a multi-period declaration is outside the window
            covers = (start is None or start <= window.start) and (end is None or end >= window.end)
            if covers:
                (national_ids if national_id else offer_ids).add(national_id or offer_id)
            else:
                partial.append(PartialExclusion(national_id=national_id, offer_id=None if national_id else offer_id,
                                                start=start or window.start, end=end))
    return Exclusions(national_ids=frozenset(national_ids), offer_ids=frozenset(offer_ids), partial=tuple(partial))


# --- Beyond displayed slots ("en sus") ----------------------------------------------------------------------


def beyond_body(query: BeyondQuery, *, exclusions: Exclusions) -> dict:
    """Offers accepting extra patients within the radius, nearest first, ties broken by the rotation."""
    filters = [
        clauses.accepts_beyond(),
        clauses.within_radius(query.origin, query.radius_km),
        clauses.offer_specialties(query.specialties),
        clauses.offer_kinds(query.kinds),
    ]
    functions = [rotation_function(query.now, weight=1.0, field="id")] if query.now is not None else []
    inner = {"bool": {"filter": [f for f in filters if f is not None],
                      "must_not": clauses.unavailable_offers(exclusions)}}
    body_query = (
        {"function_score": {"query": inner, "functions": functions, "boost_mode": "replace"}} if functions else inner
    )
    return {
        "size": query.size,
        "track_total_hits": True,
        "query": body_query,
        "sort": [
            {"_geo_distance": {"location": query.origin.as_geo(), "order": "asc", "unit": "km",
                               "distance_type": "arc"}},
            {"_score": "desc"},
            {"id": "asc"},
        ],
    }


# --- CPTS -----------------------------------------------------------------------------------------------------


def cpts_lookup_body(identifier: str) -> dict:
    """The CPTS offer named by its offer id or its FINESS."""
    return {
        "size": 1,
        "query": {
            "bool": {
                "filter": [{"term": {"kind": "cpts"}}],
                "should": [{"term": {"id": identifier}}, {"term": {"structure.finess": identifier}}],
                "minimum_should_match": 1,
            }
        },
    }


def cpts_members_body(finess: str, *, exclude_offer_id: str | None = None) -> dict:
    """Offers taking part in the SAS through this CPTS, by name."""
    body: dict = {
        "size": defaults.MAX_CPTS_MEMBERS,
        "query": {"bool": {"filter": [{"term": {"sas.cpts_finess": finess}}]}},
        "sort": [{"name_folded.raw": "asc"}, {"id": "asc"}],
    }
    if exclude_offer_id:
        body["query"]["bool"]["must_not"] = [{"term": {"id": exclude_offer_id}}]
    return body


def cpts_slot_offers_body(query: SlotQuery, *, finess: str, exclusions: Exclusions) -> dict:
    """Offers that have visible slots offered through this CPTS (members known only from their slots)."""
    filtered = slot_filters(query, radius_km=None, exclusions=exclusions,
                            extra=({"term": {"cpts.finess": finess}},))
    return {
        "size": 0,
        "query": filtered,
        "aggs": {"offers": {"terms": {"field": "offer_id", "size": defaults.MAX_CPTS_MEMBERS}}},
    }


def card_slots_body(query: SlotQuery, *, offer_ids: list[str] | tuple[str, ...], exclusions: Exclusions) -> dict:
    """The earliest ``query.slots_per_card`` visible slots of each given offer, and how many it has,
    under the same filters as the search (the distance filter aside: an offer's slots share its place)."""
    restricted = replace(query, offer_ids=tuple(dict.fromkeys(offer_ids)))
    return {
        "size": 0,
        "track_total_hits": False,
        "query": slot_filters(restricted, radius_km=None, exclusions=exclusions),
        "aggs": {
            "cards": {
                # "map": buckets keyed by the page's few ids as read; the default global ordinals of offer_id
                # are rebuilt after every refresh that changed slots (every 30 s while harvests write): at 1x the
                # first cards query after a refresh took 17-39 ms, the next one 4-12 ms.
                "terms": {"field": "offer_id", "size": max(1, len(restricted.offer_ids)), "execution_hint": "map"},
                "aggs": {
                    "slots": {
                        "top_hits": {
                            "size": query.slots_per_card,
                            "sort": [{"start": "asc"}, {"id": "asc"}],
                            "_source": list(SLOT_CARD_FIELDS),
                        }
                    }
                },
            }
        },
    }


def offers_by_ids_body(offer_ids: list[str] | tuple[str, ...], *, fields: list[str]) -> dict:
    """The offers of the cards (a search by ids, so that it shares the cards' multi-search round-trip)."""
    unique = list(dict.fromkeys(offer_ids))
    return {"size": len(unique), "query": {"ids": {"values": unique}}, "_source": fields}
