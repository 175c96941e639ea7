"""Every default and bound of the search, in one place.

The query builders, the request validation, the OpenAPI description and the README all read these
values; changing the search behaviour means changing this file (and the golden files of the unit tests,
which then show exactly what moved in the Elasticsearch bodies).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

# --- Where -------------------------------------------------------------------------------------
#: Adaptive radius: tried in this order until at least ``MIN_OFFERS_WITH_SLOTS`` offers have slots.
RADIUS_LADDER_KM: Final[tuple[float, ...]] = (5.0, 10.0, 20.0, 40.0, 80.0)
#: Offers with slots wanted before the adaptive radius stops growing; below it, /v1/search also
#: lists the practitioners and CPTS who accept patients beyond their displayed slots ("en sus").
MIN_OFFERS_WITH_SLOTS: Final[int] = 10
#: Bounds of an explicit ``radius_km``.
MIN_RADIUS_KM: Final[float] = 0.5
MAX_RADIUS_KM: Final[float] = 200.0
#: The adaptive-radius probe of one radius stops after this many slots (per shard); a lower bound of
#: distinct offers is enough to know that a radius suffices, and it bounds the probe's cost in dense
#: areas (a large radius around Paris would otherwise aggregate hundreds of thousands of slots).
PROBE_MAX_SLOTS: Final[int] = 1000
#: The radius a search ended with is remembered for the same place (cell of this many degrees) and
#: criteria; the next such search checks it with two queries (the radius below has too few offers,
#: this one enough) instead of probing the whole ladder. A wrong hint only costs the full probe.
RADIUS_HINT_CELL_DEG: Final[float] = 0.01
RADIUS_HINT_TTL_S: Final[float] = 600.0
RADIUS_HINT_ENTRIES: Final[int] = 50_000
#: Cardinality precision for the number of distinct offers (counts below it are exact).
CARDINALITY_PRECISION: Final[int] = 3000
#: The counts of a search started as a dense one stop after this many matching slots (``terminate_after``):
#: past it the page says "plus de" (places and slots counted so far), since nobody pages through more than
#: MAX_RESULT_WINDOW places. The count of places costs 0.16 µs per matching slot (25 ms of a core for a 5 km
#: Paris search nationally, 159,000 slots); bounded, at most 4 ms. A count stopped early is read as dense
#: whatever TWO_PASSES_FROM_SLOTS is (``SearchService._main_answer``).
COUNT_MAX_SLOTS: Final[int] = 25_000

# --- When --------------------------------------------------------------------------------------
#: Default window: now → now + 48 h (the SAS promise: a consultation within 48 hours).
DEFAULT_WINDOW: Final[timedelta] = timedelta(hours=48)
#: Longest window a caller may ask for (harvests cover 7 days).
MAX_WINDOW: Final[timedelta] = timedelta(days=8)
#: ``within`` shortcuts: hours after now.
WITHIN_BUCKETS_H: Final[dict[str, tuple[int, int]]] = {
    "0-4h": (0, 4),
    "4-8h": (4, 8),
    "8-12h": (8, 12),
    "12-24h": (12, 24),
    "24-48h": (24, 48),
    "48-72h": (48, 72),
}
#: Timezone used for naive datetimes given by callers and for the day of the tie-break rotation.
LOCAL_TIMEZONE: Final[str] = "Europe/Paris"

# --- What --------------------------------------------------------------------------------------
#: TRE_R38 codes that all mean "general practice": asking for any of them matches the three.
GENERAL_PRACTICE_CODES: Final[tuple[str, ...]] = ("SM54", "SM26", "SM53")
#: Labels understood as general practice besides the official TRE_R38 names (folded text).
GENERAL_PRACTICE_SYNONYMS: Final[tuple[str, ...]] = (
    "medecine generale", "medecin generaliste", "generaliste", "mg", "medecine generale polyvalente",
)
MODES: Final[tuple[str, ...]] = ("AMB", "HH", "VR")
KINDS: Final[tuple[str, ...]] = ("ps", "cpts", "sos", "centre", "msp")
SLOT_TYPES: Final[tuple[str, ...]] = ("PUBLIC", "PRO", "SNP", "CPTS")
#: Convention sectors (1, 2, 3 = non conventionné).
SECTORS: Final[tuple[str, ...]] = ("1", "2", "3")

# --- How many ----------------------------------------------------------------------------------
#: Earliest slots shown on each card.
SLOTS_PER_CARD: Final[int] = 3
MAX_SLOTS_PER_CARD: Final[int] = 20
PAGE_SIZE: Final[int] = 20
MAX_PAGE_SIZE: Final[int] = 100
#: Collapse pagination is from/size: deeper pages are refused (narrow the search instead).
MAX_RESULT_WINDOW: Final[int] = 1000
BEYOND_SIZE: Final[int] = 10
MAX_BEYOND_SIZE: Final[int] = 100
#: Radius of /v1/search/beyond when none is given.
BEYOND_RADIUS_KM: Final[float] = 20.0
#: Members listed on a CPTS card (GET /v1/cpts/{id}).
MAX_CPTS_MEMBERS: Final[int] = 500
#: Active unavailability declarations read per search (all of France; a few hundred in practice).
MAX_DECLARATIONS: Final[int] = 10000
#: Active unavailability declarations of the coming days are read at most this often (seconds) and
#: shared by the searches meanwhile: a declaration hides its practitioner at the next refresh of the
#: declarations index plus at most this delay.
DECLARATIONS_CACHE_S: Final[float] = 0.5
#: Span after now covered by the shared read (windows beyond it are read on their own).
DECLARATIONS_SPAN: Final[timedelta] = timedelta(days=9)

# --- Ranking (the formula is written in the README) ----------------------------------------------
SORTS: Final[tuple[str, ...]] = ("balanced", "earliest", "nearest")
DEFAULT_SORT: Final[str] = "balanced"
#: balanced = W_DISTANCE · D(distance) + W_TIME · T(start) + W_ROTATION · R(offer, day)
W_DISTANCE: Final[float] = 0.5
W_TIME: Final[float] = 0.5
#: The rotation only separates cards whose score is otherwise equal (or closer than this weight).
W_ROTATION: Final[float] = 0.0001
#: D: gauss decay of the distance; equal to 1 within the offset, 0.5 at offset + scale, where the
#: scale is a fraction of the radius applied (so that "near" means the same thing in Paris and in
#: the countryside), never below DISTANCE_MIN_SCALE_KM.
DISTANCE_OFFSET_KM: Final[float] = 1.0
DISTANCE_SCALE_FRACTION: Final[float] = 0.5
DISTANCE_MIN_SCALE_KM: Final[float] = 1.0
DISTANCE_DECAY: Final[float] = 0.5
#: T: gauss decay of the slot start after the window start; 1 in the first hour, 0.5 twelve hours later.
TIME_OFFSET: Final[timedelta] = timedelta(hours=1)
TIME_SCALE: Final[timedelta] = timedelta(hours=12)
TIME_DECAY: Final[float] = 0.5
#: Mean Earth radius used by Elasticsearch's arc distance (metres): distances shown by the API are
#: computed with the same formula so that they agree with the ranking.
EARTH_RADIUS_M: Final[float] = 6371008.7714

#: The balanced search in two passes (``search_api.query.search``, "Two passes"), when more than
#: TWO_PASSES_FROM_SLOTS slots match (fewer: one pass costs less than the extra round-trips). The first
#: pass scores the slots starting before FIRST_PASS_AFTER_EARLIEST past the earliest matching slot (never
#: less than FIRST_PASS_MIN after the window start); the second, only when a place starting later could
#: still reach the page, the rest of the window within the distance where it can. Measured on the
#: national dataset (README, "Search cost against the size of the country"): 20,000 gave API p95 99.8 ms
#: against 121.6 with 50,000, once the first pass rode with the counts (2026-12-02).
TWO_PASSES_FROM_SLOTS: Final[int] = 20_000
#: A balanced search whose density is not known yet (no radius hint: the first such search of its place cell
#: and criteria, which is most searches when the cells are 1 km wide) sends the counts, the earliest start and
#: the first pass in its first round-trip, as a dense one does, instead of the one-pass body: a city's first
#: search then scores three hours of slots instead of all of them (Paris at 5 km, 48 h: 159,000 slots scored,
#: 134 ms of Elasticsearch), while a small place pays one more round-trip (its second pass, or its one pass
#: when the first slot is hours away).
TWO_PASSES_WHEN_UNKNOWN: Final[bool] = True
FIRST_PASS_MIN: Final[timedelta] = timedelta(hours=3)
FIRST_PASS_AFTER_EARLIEST: Final[timedelta] = timedelta(hours=1)
#: Margin on the second pass's bound (scores are 32-bit floats in Elasticsearch) and on its radius (km).
SECOND_PASS_SCORE_MARGIN: Final[float] = 1e-4
SECOND_PASS_RADIUS_MARGIN_KM: Final[float] = 0.01

# --- Elasticsearch -------------------------------------------------------------------------------
#: Client-side timeout of one search round-trip; beyond it the API answers 504.
SEARCH_TIMEOUT_S: Final[float] = 3.0
