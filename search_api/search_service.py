"""The search, from a resolved query to the cards: the only code that sequences Elasticsearch requests.

Round-trips of one ``/v1/search`` (all through the executor):

1. active unavailability declarations of the coming days (→ exclusions); this small read is shared by
   the searches of the same half second, so a declaration takes effect at the next refresh of the
   declarations index plus at most half a second (and one read);
2. the adaptive radius and the search at that radius:
   - when the same search (same place cell and criteria) recently ended at radius R: one multi-search
     checking it exactly — a probe of the radius below R (too few offers) and the search at R (enough);
   - otherwise, or when the check fails: one multi-search with the search at the first radius and a
     bounded probe of each larger radius, then, if the first radius is too small, the search at the
     first radius with enough offers (or the largest);
   a fixed ``radius_km`` is a single search;
   "the search" is one body (filters, scores, collapse, counts) for a search known to match few slots (its
   radius hint says at most ``two_passes_from_slots`` the last time) or sorted on a field — otherwise, for a
   balanced search known dense or not known yet (``two_passes_when_unknown``), the counts, the earliest start
   and the first scoring pass as it is when a slot starts early enough, then, when needed, the first pass from
   the earliest start and a second pass over the rest of the window, or for few slots one pass over the whole
   of it (``search_api.query.search``, "Two passes"): the same page for a fraction of the slots scored;
3. one multi-search for the page: the earliest slots of its cards (``terms`` + ``top_hits``), their
   offers (by id), and, when fewer than ``MIN_OFFERS_WITH_SLOTS`` places have slots, the offers
   accepting patients beyond their displayed slots.

Bodies come from ``search_api.query`` (pure); this module only reads answers and shapes cards.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from sas_core.clock import utcnow
from sas_core.errors import NotFound
from search_api.executor import Executor
from search_api.query import defaults
from search_api.query import search as bodies
from search_api.query.model import BeyondQuery, Exclusions, Origin, SlotQuery, Window, coarser

_LOCAL = ZoneInfo(defaults.LOCAL_TIMEZONE)
#: Offer fields a card shows (sub-fields named one by one: answers stay small, decoding stays cheap).
OFFER_FIELDS = [
    "id", "kind", "national_id", "name", "profession_label", "specialties", "specialty_labels", "address.text",
    "address.line", "address.postcode", "address.city", "location", "geo_precision", "phones", "convention_sector",
    "territory", "sas.accepts_beyond", "sas.beyond_phone", "sas.cpts_finess", "sas.cpts_name",
    "sos.association_name", "sos.opening_hours",
]
#: What the search reads of Elasticsearch's answers (``filter_path``): smaller answers, less to decode.
_ANSWER_PARTS = ("hits.total", "hits.hits._source", "hits.hits.sort", "aggregations.offers.value",
                 "aggregations.cards.buckets.key", "aggregations.cards.buckets.doc_count",
                 "aggregations.cards.buckets.slots.hits.hits._source", "terminated_early", "timed_out",
                 "_shards.failed", "_shards.total", "_shards.failures", "error", "status")
MSEARCH_FILTER = ",".join(f"responses.{part}" for part in _ANSWER_PARTS)
SEARCH_FILTER = ",".join(_ANSWER_PARTS)
FORMULA = (
    f"balanced = {defaults.W_DISTANCE}·D + {defaults.W_TIME}·T + {defaults.W_ROTATION}·R; "
    f"D = gauss(distance, offset {defaults.DISTANCE_OFFSET_KM:g} km, scale max({defaults.DISTANCE_MIN_SCALE_KM:g} km, "
    f"{defaults.DISTANCE_SCALE_FRACTION:g}·radius), decay {defaults.DISTANCE_DECAY:g}); "
    f"T = gauss(start − window start, offset {defaults.TIME_OFFSET.total_seconds() / 3600:g} h, "
    f"scale {defaults.TIME_SCALE.total_seconds() / 3600:g} h, decay {defaults.TIME_DECAY:g}); "
    "R = random_score(seed = day, field = offer_id)"
)


def with_origin_sas(url: str | None) -> str | None:
    """The vendor booking URL with ``origin=sas`` (added to an existing query string, replacing an
    existing ``origin``; the fragment is kept)."""
    if not url:
        return None
    url = url.strip()
    # Fast paths (most vendor URLs): no query string, or one without ``origin``; no fragment.
    if "#" not in url and "origin=" not in url:
        if "?" not in url:
            return url + "?origin=sas"
        return url + ("origin=sas" if url.endswith(("?", "&")) else "&origin=sas")
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "origin"]
    query.append(("origin", "sas"))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _local(text: str | None) -> str | None:
    """A date from Elasticsearch, shown in French local time (offset included)."""
    if not text:
        return None
    return _local_of(text)


@lru_cache(maxsize=65_536)
def _local_of(text: str) -> str:
    # Slots start on a few thousand distinct instants (quarter hours of the coming days): a search's
    # hundred conversions are mostly already known.
    return bodies.parse_datetime(text).astimezone(_LOCAL).isoformat()


def offers_count(answer: dict) -> int:
    return int(answer.get("aggregations", {}).get("offers", {}).get("value", 0))


class SearchService:
    """Runs searches through the executor (the only thing here that talks to Elasticsearch)."""

    def __init__(self, *, executor: Executor, report_max_hours: int,
                 timeout_s: float = defaults.SEARCH_TIMEOUT_S,
                 specialty_label: Callable[[str], str | None] | None = None,
                 two_passes_from_slots: int | None = None, two_passes_when_unknown: bool | None = None,
                 count_max_slots: int | None = None) -> None:
        self.executor = executor
        #: A balanced search matching more slots than this is ranked in two passes (None: the default).
        self.two_passes_from_slots = (defaults.TWO_PASSES_FROM_SLOTS if two_passes_from_slots is None
                                      else two_passes_from_slots)
        #: A balanced search with no radius hint starts as a dense one (None: the default).
        self.two_passes_when_unknown = (defaults.TWO_PASSES_WHEN_UNKNOWN if two_passes_when_unknown is None
                                        else two_passes_when_unknown)
        #: The counts of a two-pass search stop after this many slots (None: the default; 0: exact counts).
        self.count_max_slots = defaults.COUNT_MAX_SLOTS if count_max_slots is None else count_max_slots
        #: TRE_R38 code → label (without its "(SM)" suffix), for the specialties a card shows.
        self.specialty_label = specialty_label
        self.report_max_hours = report_max_hours
        self.timeout_s = timeout_s
        self._declarations: tuple[float, Window, list[dict]] | None = None
        self._declarations_lock = threading.Lock()
        self._declarations_forgotten_at = float("-inf")
        #: hint key → (radius the search ended with, slots it matched there, when).
        self._hints: OrderedDict[tuple, tuple[float, int, float]] = OrderedDict()
        self._hints_lock = threading.Lock()

    # --- Exclusions ----------------------------------------------------------------------------------

    def exclusions(self, window: Window) -> Exclusions:
        """Who is declared unavailable during ``window``.

        The active declarations of the coming ``DECLARATIONS_SPAN`` are read once and shared by the
        searches of the next ``DECLARATIONS_CACHE_S`` seconds (one small read per half second instead
        of one per search); a window reaching beyond that span is read on its own. While one search
        re-reads them, concurrent searches use the previous read rather than queue behind it (it is
        then at most ``DECLARATIONS_CACHE_S`` plus one read old)."""
        _, span, hits = self._shared_declarations()
        if window.end > span.end:
            answer = self.executor.search_checked(
                index="declarations", body=bodies.declarations_body(window, report_max_hours=self.report_max_hours),
                timeout_s=self.timeout_s)
            hits = answer["hits"]["hits"]
        return bodies.exclusions_from(hits, window)

    def forget_declarations(self) -> None:
        """A declaration was written or withdrawn through this process (after its refresh): reads that
        started before now are not used again; the next search reads anew, and concurrent ones wait for
        that read rather than use the previous one (what this process accepted, its searches honour)."""
        self._declarations_forgotten_at = time.monotonic()

    def _shared_declarations(self) -> tuple[float, Window, list[dict]]:
        cached = self._declarations
        if self._usable(cached):
            return cached  # type: ignore[return-value]
        # Expired: one search re-reads; the others keep the previous read meanwhile. Nothing read yet, or
        # a declaration accepted here since: everyone waits for the read.
        stale_allowed = cached is not None and cached[0] >= self._declarations_forgotten_at
        if not self._declarations_lock.acquire(blocking=not stale_allowed):
            return cached  # type: ignore[return-value]
        try:
            cached = self._declarations
            if not self._usable(cached):
                started = time.monotonic()   # the read's age counts from its start: it sees what was refreshed then
                now = utcnow()
                span = Window(start=now, end=now + defaults.DECLARATIONS_SPAN)
                answer = self.executor.search_checked(index="declarations", body=bodies.declarations_body(
                    span, report_max_hours=self.report_max_hours),
                                                      timeout_s=self.timeout_s)
                cached = self._declarations = (started, span, answer["hits"]["hits"])
            return cached  # type: ignore[return-value]
        finally:
            self._declarations_lock.release()

    def _usable(self, cached: tuple[float, Window, list[dict]] | None) -> bool:
        return (cached is not None and cached[0] >= self._declarations_forgotten_at
                and time.monotonic() - cached[0] <= defaults.DECLARATIONS_CACHE_S)

    # --- /v1/search ---------------------------------------------------------------------------------------

    def search(self, query: SlotQuery, *, with_beyond: bool = True) -> dict[str, Any]:
        """Cards of ``query`` (see module doc for the round-trips)."""
        exclusions = self.exclusions(query.window)
        main, radius = (self._with_hint(query, exclusions) if query.radius_km is None else None) or \
            self._probe_ladder(query, exclusions)
        wants_beyond = with_beyond and offers_count(main) < defaults.MIN_OFFERS_WITH_SLOTS
        beyond_query = BeyondQuery(origin=query.origin, radius_km=radius, specialties=query.specialties,
                                   kinds=tuple(k for k in query.kinds if k in ("ps", "cpts")), now=query.now)
        hits = _hits(main)
        ids = [h["_source"]["offer_id"] for h in hits]
        slots_by_offer, offers, beyond_answer = self._page_details(
            query, ids, exclusions,
            beyond=bodies.beyond_body(beyond_query, exclusions=exclusions) if wants_beyond else None)
        cards = [self._card(hit, offers.get(hit["_source"]["offer_id"]),
                            slots_by_offer.get(hit["_source"]["offer_id"], ([], [], 0)), query=query, radius_km=radius)
                 for hit in hits]
        beyond = self._beyond_cards(beyond_answer, origin=query.origin) if beyond_answer else []
        return {
            "total": offers_count(main),
            "total_slots": total_slots(main),
            # Counting stopped early (a dense search): both totals are lower bounds.
            "total_relation": "gte" if main.get("terminated_early") else "eq",
            "radius_km": float(radius),
            "radius_adaptive": query.radius_km is None,
            "origin": _origin_out(query.origin),
            "window": {"from": query.window.start, "to": query.window.end},
            "sort": query.sort,
            "page": query.page,
            "size": query.size,
            "results": cards,
            "beyond": beyond,
        }

    def _probe_ladder(self, query: SlotQuery, exclusions: Exclusions) -> tuple[dict, float]:
        """The search at the first radius with, in the same round-trip, a bounded probe of each larger
        radius of the ladder; then, when the first radius has too few offers, the search at the
        chosen one. Returns the search answer and the radius."""
        radii = bodies.probe_radii(query)
        first = radii[0]
        # How many slots match here is not known yet: started as a dense search (its counts tell, and a sparse
        # one is finished in one more round-trip), or in one pass when so configured, unless every balanced
        # search is to be ranked in two passes (a threshold of 0).
        unknown_is_dense = self.two_passes_when_unknown or self.two_passes_from_slots <= 0
        searches = self._main_searches(query, first, exclusions, dense=unknown_is_dense)
        mains = len(searches)
        searches += [("slots", bodies.probe_body(query, radius_km=r, exclusions=exclusions)) for r in radii[1:]]
        answers = self.executor.msearch(searches=searches, timeout_s=self.timeout_s, filter_path=MSEARCH_FILTER)
        main_answers = answers[:mains]
        counts = [(offers_count(main_answers[0]), False)] + [
            (offers_count(a), bool(a.get("terminated_early"))) for a in answers[mains:]
        ]
        radius = bodies.choose_radius(radii, counts)
        if radius != first:
            main_answers = self.executor.msearch(searches=self._main_searches(query, radius, exclusions,
                                                                              dense=unknown_is_dense),
                                                 timeout_s=self.timeout_s, filter_path=MSEARCH_FILTER)
        main = self._main_answer(query, radius, exclusions, main_answers)
        if query.radius_km is None:
            self._remember_radius(query, radius, total_slots(main))
        return main, radius

    def _with_hint(self, query: SlotQuery, exclusions: Exclusions) -> tuple[dict, float] | None:
        """Adaptive radius from the radius the same search ended with lately, checked exactly in one
        round-trip: the radius below the hint has too few offers (probe) and the hint enough (the
        search itself, unless it is the largest). ``None`` when there is no hint or it no longer holds."""
        ladder = defaults.RADIUS_LADDER_KM
        remembered = self._radius_hint(query)
        if remembered is None or remembered[0] not in ladder:
            return None
        hint, slots_there = remembered
        step = ladder.index(hint)
        searches: list[tuple[str, dict]] = []
        if step > 0:
            searches.append(("slots", bodies.probe_body(query, radius_km=ladder[step - 1], exclusions=exclusions)))
        mains = self._main_searches(query, hint, exclusions, dense=slots_there > self.two_passes_from_slots)
        searches += mains
        answers = self.executor.msearch(searches=searches, timeout_s=self.timeout_s, filter_path=MSEARCH_FILTER)
        main_answers = answers[-len(mains):]
        # The ladder stops at the first radius with enough offers (a probe stopped early counts as
        # enough, as in ``choose_radius``): the radius below must still fall short.
        below_too_few = step == 0 or not (offers_count(answers[0]) >= defaults.MIN_OFFERS_WITH_SLOTS
                                          or answers[0].get("terminated_early"))
        enough_here = offers_count(main_answers[0]) >= defaults.MIN_OFFERS_WITH_SLOTS or hint == ladder[-1]
        if below_too_few and enough_here:
            main = self._main_answer(query, hint, exclusions, main_answers)
            self._remember_radius(query, hint, total_slots(main))
            return main, hint
        return None

    # -- the search at a radius: one pass, or two (balanced) --

    def _main_searches(self, query: SlotQuery, radius: float, exclusions: Exclusions, *,
                       dense: bool) -> list[tuple[str, dict]]:
        """What the first round-trip asks of the search at ``radius`` (its first answer carries the
        counts): the one-pass search, or — for a balanced search that may match many slots (``dense``: more
        than ``two_passes_from_slots`` the last time, or not known yet) — the counts, the earliest start and
        the first pass over ``speculative_first_part`` of the two-pass one."""
        if not (dense and bodies.two_passes(query)):
            return [("slots", bodies.slot_search_body(query, radius_km=radius, exclusions=exclusions))]
        # The first pass as it is whenever a slot starts early enough (by day, nearly always), sent beside the
        # counts instead of after them: a round-trip saved; at night it finds next to nothing, so costs little.
        return [("slots", bodies.counts_body(query, radius_km=radius, exclusions=exclusions,
                                             max_slots=self.count_max_slots)),
                ("slots", bodies.earliest_body(query, radius_km=radius, exclusions=exclusions)),
                ("slots", bodies.pass_body(query, radius_km=radius, exclusions=exclusions,
                                           part=bodies.speculative_first_part(query), size=query.offset + query.size))]

    def _main_answer(self, query: SlotQuery, radius: float, exclusions: Exclusions,
                     answers: list[dict]) -> dict:
        """The search's answer (counts and the page's hits) from the answers to ``_main_searches``:
        as it is for one pass; for two, the passes run here (``search_api.query.search``, "Two passes")."""
        if len(answers) == 1:
            return answers[0]
        counts, earliest_answer, speculative = answers
        earliest_hits = _hits(earliest_answer)
        if not earliest_hits:
            return counts                                  # nothing matches: no page to rank
        k = query.offset + query.size
        speculative_end = bodies.speculative_first_part(query).end
        split = bodies.first_pass_end(query, bodies.parse_datetime(str(earliest_hits[0]["sort"][0])))
        sparse = not counts.get("terminated_early") and total_slots(counts) <= self.two_passes_from_slots
        if sparse and split != speculative_end:
            # Fewer slots than expected and the pass sent with the counts is not the first pass: one pass over
            # the whole window scores them all for less than a first and a second pass (one round-trip each).
            # When it is, the second pass (at most one round-trip, over fewer slots) finishes the search.
            split = query.window.end

        def scored(part: Window, within_km: float | None = None) -> list[dict]:
            body = bodies.pass_body(query, radius_km=radius, exclusions=exclusions, part=part, size=k,
                                    within_km=within_km)
            return _hits(self.executor.msearch(searches=[("slots", body)], timeout_s=self.timeout_s,
                                               filter_path=MSEARCH_FILTER)[0])

        first = (_hits(speculative) if split == speculative_end
                 else scored(Window(start=query.window.start, end=split)))
        kth = bodies.pass_score(first[k - 1]) if len(first) >= k else None
        within = bodies.second_pass_radius_km(kth, radius_km=radius, query=query, first_pass_end=split)
        second = scored(Window(start=split, end=query.window.end), within) if within is not None else []
        page = bodies.merge_passes(first, second, offset=query.offset, size=query.size)
        return {**counts, "hits": {**counts.get("hits", {}), "hits": page}}

    # -- radius hints (in memory, per API process) --

    def _hint_key(self, query: SlotQuery) -> tuple:
        cell = defaults.RADIUS_HINT_CELL_DEG
        span_h = round((query.window.end - query.window.start).total_seconds() / 3600)
        lead_h = round((query.window.start - query.now).total_seconds() / 3600)
        return (round(query.origin.lat / cell), round(query.origin.lon / cell), query.specialties, query.modes,
                query.kinds, query.sectors, query.bookable_only, query.visibility, span_h, lead_h)

    def _radius_hint(self, query: SlotQuery) -> tuple[float, int] | None:
        """(radius, slots matched there) the same search ended with lately, if any."""
        key = self._hint_key(query)
        with self._hints_lock:
            entry = self._hints.get(key)
            if entry is None or time.monotonic() - entry[2] > defaults.RADIUS_HINT_TTL_S:
                return None
            self._hints.move_to_end(key)
            return entry[0], entry[1]

    def _remember_radius(self, query: SlotQuery, radius: float, slots: int) -> None:
        key = self._hint_key(query)
        with self._hints_lock:
            self._hints[key] = (radius, slots, time.monotonic())
            self._hints.move_to_end(key)
            while len(self._hints) > defaults.RADIUS_HINT_ENTRIES:
                self._hints.popitem(last=False)

    # --- /v1/search/beyond ------------------------------------------------------------------------------

    def beyond(self, query: BeyondQuery, *, window: Window) -> dict[str, Any]:
        """Offers near the point accepting patients beyond their displayed slots, nearest first."""
        exclusions = self.exclusions(window)
        answer = self.executor.search_checked(index="offers", body=bodies.beyond_body(query, exclusions=exclusions),
                                              timeout_s=self.timeout_s, filter_path=SEARCH_FILTER)
        return {
            "total": int(answer.get("hits", {}).get("total", {}).get("value", 0)),
            "radius_km": float(query.radius_km),
            "origin": _origin_out(query.origin),
            "results": self._beyond_cards(answer, origin=query.origin),
        }

    # --- /v1/cpts/{id} -------------------------------------------------------------------------------------

    def cpts(self, identifier: str, query: SlotQuery, *, with_distances: bool = True) -> dict[str, Any]:
        """A CPTS card (by offer id or FINESS) with all its participating members and their slots."""
        found = self.executor.search_checked(index="offers", body=bodies.cpts_lookup_body(identifier),
                                             timeout_s=self.timeout_s)["hits"]["hits"]
        if not found:
            raise NotFound(f"no CPTS with id or FINESS {identifier!r}")
        cpts_offer = found[0]["_source"]
        finess = (cpts_offer.get("structure") or {}).get("finess")
        exclusions = self.exclusions(query.window)
        members: dict[str, dict] = {}
        slot_only_ids: list[str] = []
        if finess:
            members_answer, via_slots = self.executor.msearch(
                searches=[
                    ("offers", bodies.cpts_members_body(finess, exclude_offer_id=cpts_offer["id"])),
                    ("slots", bodies.cpts_slot_offers_body(query, finess=finess, exclusions=exclusions)),
                ],
                timeout_s=self.timeout_s,
            )
            members = {h["_source"]["id"]: h["_source"] for h in members_answer["hits"]["hits"]}
            slot_only_ids = [b["key"] for b in via_slots["aggregations"]["offers"]["buckets"]
                             if b["key"] not in members and b["key"] != cpts_offer["id"]]
        if slot_only_ids:
            members.update(self.executor.mget_sources(index="offers", ids=slot_only_ids, source=OFFER_FIELDS,
                                                      timeout_s=self.timeout_s))
        # Unavailable members are not shown at all (same rule as the search).
        members = {i: o for i, o in members.items() if not _excluded(o, exclusions)}
        wanted = [cpts_offer["id"], *members]
        answer = self.executor.search_checked(
            index="slots", body=bodies.card_slots_body(query, offer_ids=wanted, exclusions=exclusions),
            timeout_s=self.timeout_s)
        slots_by_offer = _slots_by_offer(answer)
        member_cards: list[dict[str, Any]] = []
        for offer_id, offer in members.items():
            slots, sources, slot_count = slots_by_offer.get(offer_id, ([], [], 0))
            member_out = _offer_out(offer)
            self._with_slot_specialties(member_out, sources)
            member_cards.append({
                "offer": member_out,
                "distance_km": _distance(query.origin, offer.get("location")) if with_distances else None,
                "slots": slots,
                "slot_count": slot_count,
                "beyond": _beyond_info(offer),
                "_first": slots[0]["start"] if slots else None,
            })
        # Members with slots first (earliest first), then by name.
        member_cards.sort(key=lambda c: (c["_first"] is None, c["_first"] or "", (c["offer"]["name"] or "").lower()))
        for card in member_cards:
            del card["_first"]
        own_slots = slots_by_offer.get(cpts_offer["id"], ([], [], 0))[0]
        return {
            "cpts": _offer_out(cpts_offer),
            "finess": finess,
            "beyond": _beyond_info(cpts_offer),
            "window": {"from": query.window.start, "to": query.window.end},
            "members": member_cards,
            "cpts_slots": own_slots,
        }

    # --- Cards ----------------------------------------------------------------------------------------------

    def _page_details(self, query: SlotQuery, ids: list[str], exclusions: Exclusions, *, beyond: dict | None = None,
                      ) -> tuple[dict[str, tuple[list, list, int]], dict[str, dict], dict | None]:
        """Earliest slots (shaped, raw sources, count) and offer of each card of the page, and the
        "beyond displayed slots" offers when asked, in one round-trip."""
        searches: list[tuple[str, dict]] = []
        if ids:
            searches.append(("slots", bodies.card_slots_body(query, offer_ids=ids, exclusions=exclusions)))
            searches.append(("offers", bodies.offers_by_ids_body(ids, fields=OFFER_FIELDS)))
        if beyond is not None:
            searches.append(("offers", beyond))
        if not searches:
            return {}, {}, None
        answers = self.executor.msearch(searches=searches, timeout_s=self.timeout_s, filter_path=MSEARCH_FILTER)
        beyond_answer = answers.pop() if beyond is not None else None
        if not ids:
            return {}, {}, beyond_answer
        slots_answer, offers_answer = answers
        offers = {h["_source"]["id"]: h["_source"] for h in _hits(offers_answer)}
        return _slots_by_offer(slots_answer), offers, beyond_answer

    def _card(self, hit: dict, offer: dict | None, details: tuple[list, list, int], *, query: SlotQuery,
              radius_km: float) -> dict:
        source = hit["_source"]
        slots, inner_sources, slot_count = details
        location = source.get("location") or (offer or {}).get("location")
        distance = _distance(query.origin, location)
        offer_out = _offer_out(offer) if offer else _offer_from_slot(source, inner_sources)
        self._with_slot_specialties(offer_out, inner_sources)
        card: dict[str, Any] = {
            "offer": offer_out,
            "distance_km": distance,
            "distance_precision": coarser(query.origin.precision, offer_out.get("geo_precision")),
            "slots": slots,
            "slot_count": slot_count,
            "cpts": _cpts_of(inner_sources, offer),
            "sos": _sos_of(inner_sources, offer),
            "beyond": _beyond_info(offer) if offer else None,
            "explain": _explain(hit, query=query, radius_km=radius_km, location=location) if query.explain else None,
        }
        return card

    def _with_slot_specialties(self, offer_out: dict, slot_sources: list[dict]) -> None:
        """The card's specialties: those of its shown slots (what the search matched: a pneumologist's
        general-practice slot) first, then the directory's; labels from TRE_R38 for every code, so that a
        place created from one vendor slot (no labels of its own) or a directory label with its "(SM)"
        suffix reads the same everywhere."""
        codes = list(dict.fromkeys(
            [code for source in slot_sources for code in source.get("specialties") or []] + offer_out["specialties"]))
        if codes == offer_out["specialties"] and (self.specialty_label is None or not codes):
            return
        # Not strict: a directory document with fewer labels than codes leaves the rest to TRE_R38 or the
        # code itself (below) rather than failing the whole search.
        directory = dict(zip(offer_out["specialties"], offer_out["specialty_labels"], strict=False))
        labels = []
        for code in codes:
            label = (self.specialty_label(code) if self.specialty_label else None) or directory.get(code) or code
            if label not in labels:
                labels.append(label)
        offer_out["specialties"], offer_out["specialty_labels"] = codes, labels

    def _beyond_cards(self, answer: dict, *, origin: Origin) -> list[dict]:
        cards = []
        for hit in _hits(answer):
            offer = hit["_source"]
            out = _offer_out(offer)
            sas = offer.get("sas") or {}
            cards.append({
                "offer": out,
                "distance_km": _distance(origin, offer.get("location")),
                "distance_precision": coarser(origin.precision, out.get("geo_precision")),
                "phone": sas.get("beyond_phone") or out.get("phone"),
                "cpts": [{"finess": sas["cpts_finess"], "name": sas.get("cpts_name"), "phone": None}]
                if sas.get("cpts_finess") else [],
            })
        return cards


# --- Shaping helpers (pure) -----------------------------------------------------------------------------------


def total_slots(answer: dict) -> int:
    """The slots a search answer counted (``hits.total``)."""
    return int(answer.get("hits", {}).get("total", {}).get("value", 0))


def _hits(answer: dict) -> list[dict]:
    """The hits of an answer (``filter_path`` leaves no ``hits`` key at all when there are none)."""
    return answer.get("hits", {}).get("hits", [])


def _slots_by_offer(answer: dict) -> dict[str, tuple[list[dict], list[dict], int]]:
    """offer id → (slots shaped for the card, their raw sources, matching slots of the offer)."""
    out: dict[str, tuple[list[dict], list[dict], int]] = {}
    for bucket in answer.get("aggregations", {}).get("cards", {}).get("buckets", []):
        sources = [h["_source"] for h in bucket["slots"]["hits"]["hits"]]
        out[bucket["key"]] = ([_slot_out(s) for s in sources], sources, int(bucket["doc_count"]))
    return out


def _origin_out(origin: Origin) -> dict:
    return {"lat": float(origin.lat), "lon": float(origin.lon), "precision": origin.precision, "label": origin.label,
            "insee": origin.insee}


def _distance(origin: Origin | None, location: dict | None) -> float | None:
    if origin is None or not location:
        return None
    return round(bodies.arc_distance_km(origin.lat, origin.lon, location["lat"], location["lon"]), 2)


def _point(location: dict | None) -> dict | None:
    """A stored geo_point as the answer's ``{"lat", "lon"}`` floats (the model's types), or ``None``."""
    return {"lat": float(location["lat"]), "lon": float(location["lon"])} if location else None


def _offer_out(offer: dict) -> dict:
    address = offer.get("address") or {}
    phones = offer.get("phones") or []
    location = offer.get("location")
    text = address.get("text") or ", ".join(
        p for p in (address.get("line"), " ".join(x for x in (address.get("postcode"), address.get("city")) if x)) if p
    ) or None
    return {
        "id": offer["id"],
        "kind": offer.get("kind"),
        "national_id": offer.get("national_id"),
        "name": offer.get("name"),
        "profession": offer.get("profession_label"),
        "specialties": offer.get("specialties") or [],
        "specialty_labels": offer.get("specialty_labels") or [],
        "address": text,
        "postcode": address.get("postcode"),
        "city": address.get("city"),
        "location": _point(location),
        "geo_precision": offer.get("geo_precision"),
        "phone": phones[0] if phones else None,
        "convention_sector": offer.get("convention_sector"),
        "territory": offer.get("territory"),
    }


def _offer_from_slot(source: dict, slot_sources: list[dict]) -> dict:
    """A minimal offer from what the slots say when the directory does not (yet) hold the place: the
    card is still shown, never lost."""
    place = next((s.get("place") for s in slot_sources if s.get("place")), None) or {}
    location = source.get("location")
    # Every field of ``OfferOut``, in its order (the answer is serialized as built: see ``shaped_response``).
    return {"id": source["offer_id"], "kind": source.get("offer_kind") or "ps", "national_id": None,
            "name": place.get("name"), "profession": None, "specialties": [], "specialty_labels": [],
            "address": place.get("address"), "postcode": None, "city": None,
            "location": _point(location),
            "geo_precision": None, "phone": place.get("phone"), "convention_sector": None, "territory": None}


def _slot_out(source: dict) -> dict:
    bookable = bool(source.get("bookable", True))
    return {
        "id": source["id"],
        "start": _local(source["start"]),
        "end": _local(source["end"]),
        "modes": source.get("modes") or [],
        "types": source.get("types") or [],
        "bookable": bookable,
        "booking_url": with_origin_sas(source.get("booking_url")) if bookable else None,
        "motive": source.get("motive"),
        "source": source.get("source"),
        "vendor": source.get("vendor"),
        "capacity": source.get("capacity"),
    }


def _cpts_of(slot_sources: list[dict], offer: dict | None) -> list[dict]:
    """The CPTS of the card: those its slots are offered through, then the one the place belongs to."""
    seen: dict[str, dict] = {}
    for source in slot_sources:
        for cpts in source.get("cpts") or []:
            key = cpts.get("finess") or cpts.get("name") or ""
            if key and key not in seen:
                seen[key] = {"finess": cpts.get("finess"), "name": cpts.get("name"), "phone": cpts.get("phone")}
    sas = (offer or {}).get("sas") or {}
    if sas.get("cpts_finess") and sas["cpts_finess"] not in seen:
        seen[sas["cpts_finess"]] = {"finess": sas["cpts_finess"], "name": sas.get("cpts_name"), "phone": None}
    return list(seen.values())


def _sos_of(slot_sources: list[dict], offer: dict | None) -> dict | None:
    for source in slot_sources:
        sos = source.get("sos")
        if sos:
            return {"association_name": sos.get("association_name"), "place_name": sos.get("place_name"),
                    "place_phone": sos.get("place_phone"), "opening_hours": sos.get("opening_hours")}
    sos = (offer or {}).get("sos")
    if sos:
        return {"association_name": sos.get("association_name"), "place_name": None, "place_phone": None,
                "opening_hours": sos.get("opening_hours")}
    return None


def _beyond_info(offer: dict) -> dict | None:
    sas = offer.get("sas") or {}
    if not sas.get("accepts_beyond"):
        return None
    phones = offer.get("phones") or []
    return {"phone": sas.get("beyond_phone") or (phones[0] if phones else None)}


def _excluded(offer: dict, exclusions: Exclusions) -> bool:
    national_id, offer_id = offer.get("national_id"), offer.get("id")
    if national_id and national_id in exclusions.national_ids or offer_id in exclusions.offer_ids:
        return True
    return any((p.national_id and p.national_id == national_id) or (p.offer_id and p.offer_id == offer_id)
               for p in exclusions.partial)


def _explain(hit: dict, *, query: SlotQuery, radius_km: float, location: dict | None) -> dict:
    source = hit["_source"]
    start = bodies.parse_datetime(source["start"])
    distance = bodies.arc_distance_km(query.origin.lat, query.origin.lon, location["lat"], location["lon"]) \
        if location else 0.0
    components = bodies.score_components(distance_km=distance, start=start, window=query.window, radius_km=radius_km)
    # The score is the first sort value in balanced, the second (after start or distance) otherwise.
    score = _sort_score(hit, query.sort)
    rotation: float | None
    if query.sort == "balanced":
        rotation = None
        if score is not None:
            rest = (score - defaults.W_DISTANCE * components["distance_score"]
                    - defaults.W_TIME * components["time_score"])
            rotation = min(1.0, max(0.0, rest / defaults.W_ROTATION))
    else:
        rotation = score
    return {
        "sort": query.sort,
        "score": score if query.sort == "balanced" else None,
        "distance_km": round(distance, 3),
        "distance_score": round(components["distance_score"], 6),
        "time_score": round(components["time_score"], 6),
        "rotation": None if rotation is None else round(rotation, 4),
        "best_slot_start": _local(source["start"]),
        "formula": FORMULA,
    }


def _sort_score(hit: dict, sort: str) -> float | None:
    """The ``_score`` value from the hit's sort values (first for balanced, second otherwise)."""
    values = hit.get("sort") or []
    index = 0 if sort == "balanced" else 1
    return float(values[index]) if len(values) > index and isinstance(values[index], (int, float)) else None
