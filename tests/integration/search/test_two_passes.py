"""The balanced search in two passes gives exactly the page of the one-pass search (same places, same order,
same counts), on real Elasticsearch, whichever way its bound falls: no second pass, a second pass within a
smaller distance, or over the whole radius."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import timedelta

import pytest

from indexer.lifecycle import drop_prefix, setup_indices
from mappings.registry import alias_name
from search_api.executor import Executor
from search_api.query import search as bodies
from search_api.query.model import Origin, SlotQuery, Window
from search_api.search_service import MSEARCH_FILTER, SearchService
from search_api.visibility import SlotVisibility
from tests.integration.search.conftest import AGEN, SearchWorld, offer, slot

EVERYTHING = SlotVisibility(types=frozenset({"PUBLIC", "PRO", "SNP", "CPTS"}))
#: km north and east of Agen town hall, per degree.
KM_LAT, KM_LON = 1 / 111.2, 1 / 79.8


@pytest.fixture
def town(clean, at):
    """140 places around Agen: a dense centre (40 within 1 km, most with a slot in the first hour) and a
    spread to 18 km; their slots over the next 48 hours, some starting late, a few platform time ranges
    (``capacity``) that began before now."""
    rng = random.Random(20261202)
    offers, slots = [], []
    for i in range(140):
        dense = i < 40
        distance = rng.uniform(0.0, 1.0) if dense else rng.uniform(1.0, 18.0)
        angle = rng.uniform(0, 6.283)
        lat = AGEN["lat"] + distance * math.sin(angle) * KM_LAT
        lon = AGEN["lon"] + distance * math.cos(angle) * KM_LON
        place = offer(f"tp-{i:03d}", name=f"Dr {i}", lat=lat, lon=lon)
        offers.append(place)
        first_h = rng.uniform(0.05, 1.0) if dense and i % 4 else rng.uniform(0.05, 46.0)
        for j in range(rng.randint(1, 8)):
            start = at(minutes=int((first_h + j * rng.uniform(0.5, 5.0)) * 60))
            if start < at(hours=48):
                slots.append(slot(f"tp-{i:03d}-{j}", of=place, start=start))
        if i % 23 == 0:                          # a time range of the platform agenda, begun an hour ago
            slots.append(slot(f"tp-{i:03d}-range", of=place, start=at(hours=-1), minutes=300, capacity=3))
    clean.put("offers", offers)
    clean.put("slots", slots)
    return clean


def _query(at, *, lat: float, lon: float, size: int, page: int = 1, window_h: int = 48, lead_h: int = 0):
    now = at()
    return SlotQuery(origin=Origin(lat=lat, lon=lon), window=Window(start=now + timedelta(hours=lead_h),
                                                                     end=now + timedelta(hours=lead_h + window_h)),
                     now=now, visibility=EVERYTHING, radius_km=20.0, specialties=("SM54", "SM26", "SM53"),
                     size=size, page=page)


def _one_pass(executor: Executor, query: SlotQuery, exclusions, radius_km: float = 20.0) -> dict:
    """The answer of the one-pass search body at ``radius_km`` (the reference)."""
    return executor.msearch(searches=[("slots", bodies.slot_search_body(
        query, radius_km=radius_km, exclusions=exclusions))], filter_path=MSEARCH_FILTER)[0]


def _branch(executor: Executor, query: SlotQuery, exclusions) -> str:
    """Which way the bound falls for ``query`` (computed from the pure functions, independently)."""
    answers = executor.msearch(searches=[("slots", bodies.earliest_body(query, radius_km=20.0,
                                                                        exclusions=exclusions))],
                               filter_path=MSEARCH_FILTER)
    earliest = bodies.parse_datetime(str(answers[0]["hits"]["hits"][0]["sort"][0]))
    split = bodies.first_pass_end(query, earliest)
    k = query.offset + query.size
    first = executor.msearch(searches=[("slots", bodies.pass_body(
        query, radius_km=20.0, exclusions=exclusions, part=Window(start=query.window.start, end=split),
        size=k))], filter_path=MSEARCH_FILTER)[0].get("hits", {}).get("hits", [])
    kth = float(first[k - 1]["sort"][0]) if len(first) >= k else None
    within = bodies.second_pass_radius_km(kth, radius_km=20.0, query=query, first_pass_end=split)
    return "none" if within is None else ("whole radius" if within >= 20.0 else "within a smaller distance")


@pytest.mark.parametrize(("two_passes_from_slots", "when_unknown"),
                         [(0, False), (10_000_000, True), (10_000_000, False)],
                         ids=["two passes", "started dense, few slots", "one pass"])
def test_two_passes_give_the_one_pass_page(town, search_settings, es, at, two_passes_from_slots, when_unknown):
    executor = Executor(es=es, prefix=search_settings.index_prefix)
    # Every search in two passes (the town's few hundred slots are below the production threshold); every search
    # started as a dense one and finished as a sparse one (the second pass after the pass sent with the counts, or
    # one pass over the window); or one pass only.
    service = SearchService(executor=executor, report_max_hours=72, two_passes_from_slots=two_passes_from_slots,
                            two_passes_when_unknown=when_unknown)
    rng = random.Random(7)
    branches: dict[str, int] = {}
    cases = [(AGEN["lat"], AGEN["lon"], 5, 1), (AGEN["lat"], AGEN["lon"], 20, 1), (AGEN["lat"], AGEN["lon"], 20, 3),
             (AGEN["lat"], AGEN["lon"], 60, 1), (AGEN["lat"] + 5 * KM_LAT, AGEN["lon"], 10, 1)]
    cases += [(AGEN["lat"] + rng.uniform(-8, 8) * KM_LAT, AGEN["lon"] + rng.uniform(-8, 8) * KM_LON,
               rng.choice((5, 10, 20, 40)), rng.choice((1, 1, 2))) for _ in range(15)]
    for lat, lon, size, page in cases:
        query = _query(at, lat=lat, lon=lon, size=size, page=page)
        exclusions = service.exclusions(query.window)
        one_pass = _one_pass(executor, query, exclusions)
        answer = service.search(query, with_beyond=False)
        expected = [h["_source"]["offer_id"] for h in one_pass.get("hits", {}).get("hits", [])]
        got = [card["offer"]["id"] for card in answer["results"]]
        assert got == expected, (lat, lon, size, page)
        assert answer["total"] == one_pass["aggregations"]["offers"]["value"]
        assert answer["total_slots"] == one_pass["hits"]["total"]["value"]
        branch = _branch(executor, query, exclusions)
        branches[branch] = branches.get(branch, 0) + 1
    # Every way the bound can fall was exercised (the places are laid out for it: a dense centre, a spread).
    assert set(branches) == {"none", "within a smaller distance", "whole radius"}, branches


def test_a_window_starting_later_and_an_empty_one(town, search_settings, es, at):
    executor = Executor(es=es, prefix=search_settings.index_prefix)
    service = SearchService(executor=executor, report_max_hours=72, two_passes_from_slots=0)
    for lead_h, window_h in ((6, 24), (30, 12), (60, 6)):
        query = _query(at, lat=AGEN["lat"], lon=AGEN["lon"], size=20, lead_h=lead_h, window_h=window_h)
        exclusions = service.exclusions(query.window)
        one_pass = _one_pass(executor, query, exclusions)
        answer = service.search(query, with_beyond=False)
        assert [c["offer"]["id"] for c in answer["results"]] == \
            [h["_source"]["offer_id"] for h in one_pass.get("hits", {}).get("hits", [])], (lead_h, window_h)
        assert answer["total"] == one_pass["aggregations"]["offers"]["value"]
    # 60 h ahead, nothing is harvested: no page, no error.
    assert answer["results"] == [] and answer["total"] == 0
    assert es.count(index=alias_name(search_settings.index_prefix, "slots"))["count"] > 300


def test_an_adaptive_search_seen_dense_is_ranked_in_two_passes_next_time(town, search_settings, es, at):
    """The first search of a place does not know how many slots match (one pass, when not started as a dense
    one); the radius hint remembers it, and the next such search, over the threshold, is ranked in two passes:
    the same page."""
    executor = Executor(es=es, prefix=search_settings.index_prefix)
    service = SearchService(executor=executor, report_max_hours=72, two_passes_from_slots=50,
                            two_passes_when_unknown=False)
    query = replace(_query(at, lat=AGEN["lat"], lon=AGEN["lon"], size=10), radius_km=None)
    first = service.search(query, with_beyond=False)
    remembered = service._radius_hint(query)
    assert remembered is not None and remembered[0] == first["radius_km"] and remembered[1] > 50, remembered
    second = service.search(query, with_beyond=False)
    exclusions = service.exclusions(query.window)
    one_pass = _one_pass(executor, query, exclusions, radius_km=first["radius_km"])
    expected = [h["_source"]["offer_id"] for h in one_pass["hits"]["hits"]]
    assert [c["offer"]["id"] for c in first["results"]] == expected
    assert [c["offer"]["id"] for c in second["results"]] == expected
    assert second["total"] == first["total"] and second["total_slots"] == first["total_slots"]


class _RoundTrips(Executor):
    """The real executor, counting its multi-search round-trips (and keeping the bodies of the first)."""

    round_trips = 0
    first_bodies: list[dict] | None = None

    def msearch(self, **kwargs):
        self.round_trips += 1
        if self.first_bodies is None:
            self.first_bodies = [body for _, body in kwargs["searches"]]
        return super().msearch(**kwargs)


@pytest.mark.parametrize("two_passes_from_slots", [50, 10_000_000], ids=["dense", "sparse"])
def test_a_place_searched_for_the_first_time_starts_as_a_dense_search(town, search_settings, es, at,
                                                                        two_passes_from_slots):
    """No radius hint yet (the place's first search): the first round-trip carries the counts, the earliest
    start and the first pass, not the one-pass body; dense or not (the counts tell), the page is the one-pass
    search's, in at most one more round-trip before the page's details."""
    executor = _RoundTrips(es=es, prefix=search_settings.index_prefix)
    service = SearchService(executor=executor, report_max_hours=72, two_passes_from_slots=two_passes_from_slots)
    query = replace(_query(at, lat=AGEN["lat"], lon=AGEN["lon"], size=10), radius_km=None)
    assert service._radius_hint(query) is None
    answer = service.search(query, with_beyond=False)
    first = executor.first_bodies or []
    assert first[0]["size"] == 0 and "aggs" in first[0] and "function_score" not in first[0]["query"]   # counts
    assert first[1]["size"] == 1 and first[1]["sort"][0] == {"start": {"order": "asc",
                                                                      "format": "strict_date_optional_time"}}
    assert "function_score" in first[2]["query"] and "aggs" not in first[2]                            # a pass
    assert 2 <= executor.round_trips <= 3 + (answer["radius_km"] != 5.0), executor.round_trips
    exclusions = service.exclusions(query.window)
    one_pass = _one_pass(executor, query, exclusions, radius_km=answer["radius_km"])
    assert [c["offer"]["id"] for c in answer["results"]] == [h["_source"]["offer_id"] for h in one_pass["hits"]["hits"]]
    assert answer["total"] == one_pass["aggregations"]["offers"]["value"]
    assert answer["total_slots"] == one_pass["hits"]["total"]["value"]


def test_the_first_pass_rides_with_the_counts_when_a_slot_starts_early(town, search_settings, es, at):
    """When a slot starts early in the window (by day, nearly always), the first pass is the one sent beside
    the counts: the search and its page take two round-trips; when the earliest slot is hours away (at
    night), that pass is run again from it, and the page is still the one-pass search's."""
    executor = _RoundTrips(es=es, prefix=search_settings.index_prefix)
    service = SearchService(executor=executor, report_max_hours=72, two_passes_from_slots=0)
    early = _query(at, lat=AGEN["lat"], lon=AGEN["lon"], size=5)
    exclusions = service.exclusions(early.window)
    assert _branch(executor, early, exclusions) == "none"        # the dense centre fills the page at once
    executor.round_trips = 0
    answer = service.search(early, with_beyond=False)
    assert executor.round_trips == 2                             # counts + earliest + first pass, then the page
    one_pass = _one_pass(executor, early, exclusions)
    assert [c["offer"]["id"] for c in answer["results"]] == [h["_source"]["offer_id"] for h in one_pass["hits"]["hits"]]

    # Only the places whose first slot is more than three hours away: the pass sent with the counts is not
    # the first pass (it started too early to hold them), which then runs on its own.
    firsts: dict[str, str] = {}
    for hit in es.search(index=alias_name(search_settings.index_prefix, "slots"), size=2000,
                         source=["offer_id", "start"])["hits"]["hits"]:
        offer_id, start = hit["_source"]["offer_id"], hit["_source"]["start"]
        firsts[offer_id] = min(firsts.get(offer_id, start), start)
    cutoff = early.window.start + timedelta(hours=3)
    late_ids = tuple(sorted(o for o, s in firsts.items() if bodies.parse_datetime(s) > cutoff))
    assert len(late_ids) >= 8, len(late_ids)
    for size in (1, 3, 5, 10):
        late = replace(_query(at, lat=AGEN["lat"], lon=AGEN["lon"], size=size), offer_ids=late_ids)
        second_pass = _branch(executor, late, exclusions) != "none"
        executor.round_trips = 0
        answer = service.search(late, with_beyond=False)
        assert executor.round_trips == 3 + second_pass, size      # + the first pass from the earliest start
        one_pass = _one_pass(executor, late, exclusions)
        expected = [h["_source"]["offer_id"] for h in one_pass["hits"]["hits"]]
        assert len(expected) == size and [c["offer"]["id"] for c in answer["results"]] == expected, size


def test_a_search_builds_no_global_ordinals_of_offer_ids(town, search_settings, es, at):
    """Nothing a search asks reads the global ordinals of ``offer_id`` (the cards' ``terms`` keys its buckets
    by the page's ids, ``execution_hint: map``; the count of places reads segment ordinals): Elasticsearch
    rebuilds them after every refresh that changed slots (every 30 s while harvests write), in the next such
    query's time. Its field-data statistics list the global ordinals an index holds; the town is copied, its
    slots in two segments, into indices of their own that no earlier search has read."""
    town_slots = alias_name(search_settings.index_prefix, "slots")
    slots = [hit["_source"] for hit in es.search(index=town_slots, size=2000)["hits"]["hits"]]
    offers = [hit["_source"] for hit in es.search(index=alias_name(search_settings.index_prefix, "offers"),
                                                  size=500)["hits"]["hits"]]
    assert len(slots) > 300 and len(offers) == 140
    base = search_settings.index_prefix
    prefixes = {name: f"{base}go{i}" for i, name in enumerate(("searched", "default execution"))}
    for prefix in prefixes.values():
        setup_indices(es, prefix=prefix)
        copy = SearchWorld(es, prefix)
        copy.put("offers", offers)
        copy.put("slots", slots[: len(slots) // 2])
        copy.put("slots", slots[len(slots) // 2:])

    def held(prefix: str) -> dict:
        stats = es.indices.stats(index=alias_name(prefix, "slots"), metric="fielddata", fields="offer_id")
        return stats["_all"]["total"]["fielddata"].get("global_ordinals", {}).get("fields", {})

    try:
        searched = prefixes["searched"]
        for two_passes_from_slots in (10_000_000, 0):           # one pass, then two (counts, passes)
            service = SearchService(executor=Executor(es=es, prefix=searched), report_max_hours=72,
                                    two_passes_from_slots=two_passes_from_slots, two_passes_when_unknown=False)
            query = _query(at, lat=AGEN["lat"], lon=AGEN["lon"], size=20)
            answer = service.search(query, with_beyond=False)
            assert len(answer["results"]) == 20 and all(card["slots"] for card in answer["results"])
            assert answer["total"] > 20
        assert "offer_id" not in held(searched)
        # The cards' query with the default execution builds them (what the statistics show otherwise).
        body = bodies.card_slots_body(query, offer_ids=[card["offer"]["id"] for card in answer["results"]],
                                      exclusions=service.exclusions(query.window))
        del body["aggs"]["cards"]["terms"]["execution_hint"]
        es.search(index=alias_name(prefixes["default execution"], "slots"), body=body, request_cache=False)
        assert "offer_id" in held(prefixes["default execution"])
    finally:
        for prefix in prefixes.values():
            drop_prefix(es, prefix=prefix)


def test_the_counts_of_a_dense_search_stop_early_and_say_so(town, search_settings, es, at):
    """Counting stops after ``count_max_slots`` matching slots: both totals are then lower bounds
    (``total_relation`` ``gte``), the page is still the one-pass search's; a search counted to the end says
    ``eq``, with the exact totals."""
    executor = Executor(es=es, prefix=search_settings.index_prefix)
    query = _query(at, lat=AGEN["lat"], lon=AGEN["lon"], size=10)
    bounded = SearchService(executor=executor, report_max_hours=72, two_passes_from_slots=20, count_max_slots=60)
    exclusions = bounded.exclusions(query.window)
    one_pass = _one_pass(executor, query, exclusions)
    exact_places, exact_slots = one_pass["aggregations"]["offers"]["value"], one_pass["hits"]["total"]["value"]
    assert exact_slots > 60
    answer = bounded.search(query, with_beyond=False)
    assert answer["total_relation"] == "gte"
    assert answer["total_slots"] == 60 and 0 < answer["total"] < exact_places
    assert [c["offer"]["id"] for c in answer["results"]] == [h["_source"]["offer_id"] for h in one_pass["hits"]["hits"]]
    for service in (SearchService(executor=executor, report_max_hours=72, two_passes_from_slots=20, count_max_slots=0),
                    SearchService(executor=executor, report_max_hours=72, two_passes_from_slots=20,
                                  count_max_slots=exact_slots + 1)):
        answer = service.search(query, with_beyond=False)
        assert (answer["total_relation"], answer["total"], answer["total_slots"]) == ("eq", exact_places, exact_slots)
