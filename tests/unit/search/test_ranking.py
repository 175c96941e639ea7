"""Neutral ranking: what may influence a score, the formula's maths, the rotation, the radius choice."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
from geopy.distance import great_circle

from search_api.query import defaults
from search_api.query import search as bodies
from search_api.query.model import Exclusions
from tests.unit.search.test_golden_bodies import AGEN, NOW, WINDOW, _osnp_query

#: Fields that carry commercial or participation information: never in a score, never a sort key.
COMMERCIAL_OR_PARTICIPATION = {
    "vendor", "source", "convention_sector", "sas", "sas.participates", "sas.vendor", "sas.accepts_beyond",
    "sas.cpts_finess", "structure", "booking_url", "capacity", "booked_count", "member_count", "national_id_check_ok",
    "harvested_at", "published_by",
}


def _fields_in(node) -> set[str]:
    """Every field name a scoring function or sort clause refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("gauss", "linear", "exp", "field_value_factor"):
                found.update(value.keys() if key != "field_value_factor" else [value["field"]])
            elif key == "random_score":
                found.add(value.get("field", "_seq_no"))
            elif key == "field":
                found.add(value)
            found |= _fields_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= _fields_in(item)
    return found


@pytest.mark.parametrize("sort", defaults.SORTS)
def test_scores_and_sorts_use_only_distance_time_and_the_rotation(sort):
    body = bodies.slot_search_body(_osnp_query(sort=sort), radius_km=10.0, exclusions=Exclusions())
    functions = body["query"]["function_score"]["functions"]
    sort_fields = {next(iter(s)) for s in body["sort"]}
    used = _fields_in(functions) | sort_fields
    assert used <= {"location", "start", "offer_id", "_score", "_geo_distance"}
    assert not used & COMMERCIAL_OR_PARTICIPATION
    # Every function carries an explicit weight: nothing is boosted implicitly.
    assert all("weight" in f for f in functions)
    # The query part only filters: its own relevance score is thrown away.
    assert body["query"]["function_score"]["boost_mode"] == "replace"
    # Deterministic last resort: the offer id.
    assert body["sort"][-1] == {"offer_id": "asc"}


def test_beyond_ranking_is_distance_then_rotation():
    body = bodies.beyond_body(bodies.BeyondQuery(origin=AGEN, radius_km=20.0, now=NOW), exclusions=Exclusions())
    assert [next(iter(s)) for s in body["sort"]] == ["_geo_distance", "_score", "id"]
    assert _fields_in(body["query"]["function_score"]["functions"]) == {"id"}


def test_weights_of_the_documented_formula():
    functions = bodies.balanced_functions(AGEN, WINDOW, radius_km=10.0, now=NOW)
    assert [f["weight"] for f in functions] == [defaults.W_DISTANCE, defaults.W_TIME, defaults.W_ROTATION]
    assert defaults.W_DISTANCE + defaults.W_TIME == 1.0
    # The rotation can reorder only cards that are otherwise (almost exactly) tied.
    assert defaults.W_ROTATION <= 1e-3


def test_distance_scale_follows_the_radius():
    assert bodies.distance_scale_km(40.0) == 20.0
    assert bodies.distance_scale_km(1.0) == defaults.DISTANCE_MIN_SCALE_KM
    gauss = bodies.balanced_functions(AGEN, WINDOW, radius_km=40.0, now=NOW)[0]["gauss"]["location"]
    assert gauss["scale"] == "20km" and gauss["offset"] == "1km"


def test_gauss_matches_the_elasticsearch_definition():
    assert bodies.gauss(0.5, offset=1.0, scale=5.0, decay=0.5) == 1.0
    assert bodies.gauss(6.0, offset=1.0, scale=5.0, decay=0.5) == pytest.approx(0.5)
    assert bodies.gauss(-6.0, offset=1.0, scale=5.0, decay=0.5) == pytest.approx(0.5)
    assert bodies.gauss(11.0, offset=1.0, scale=5.0, decay=0.5) == pytest.approx(0.0625)


def test_time_component_of_a_slot_thirteen_hours_later_is_one_half():
    start = WINDOW.start + defaults.TIME_OFFSET + defaults.TIME_SCALE
    parts = bodies.score_components(distance_km=0.0, start=start, window=WINDOW, radius_km=10.0)
    assert parts["time_score"] == pytest.approx(defaults.TIME_DECAY)
    assert parts["distance_score"] == 1.0


def test_arc_distance_agrees_with_geopy():
    paris, agen = (48.86263, 2.33629), (AGEN.lat, AGEN.lon)
    assert bodies.arc_distance_km(*paris, *agen) == pytest.approx(great_circle(paris, agen).km, rel=1e-4)


def test_rotation_seed_is_the_paris_day():
    late_evening = datetime(2025, 11, 5, 22, 59, tzinfo=timezone.utc)   # 23:59 in Paris
    after_midnight = datetime(2025, 11, 5, 23, 1, tzinfo=timezone.utc)  # 00:01 the next day in Paris
    assert bodies.rotation_seed(late_evening) == 20251105
    assert bodies.rotation_seed(after_midnight) == 20251106
    morning = bodies.slot_search_body(_osnp_query(now=datetime(2025, 11, 5, 6, 0, tzinfo=timezone.utc)),
                                      radius_km=5.0, exclusions=Exclusions())
    evening = bodies.slot_search_body(_osnp_query(now=datetime(2025, 11, 5, 20, 0, tzinfo=timezone.utc)),
                                      radius_km=5.0, exclusions=Exclusions())
    seeds = [[f["random_score"]["seed"] for f in b["query"]["function_score"]["functions"] if "random_score" in f]
             for b in (morning, evening)]
    assert seeds[0] == seeds[1] == [20251105]


def test_choose_radius():
    ladder = defaults.RADIUS_LADDER_KM
    enough = defaults.MIN_OFFERS_WITH_SLOTS
    assert bodies.choose_radius(ladder, [(enough, False)] + [(enough, False)] * 4) == ladder[0]
    assert bodies.choose_radius(ladder, [(1, False), (3, False), (enough, False), (50, False),
                                         (90, False)]) == ladder[2]
    assert bodies.choose_radius(ladder, [(0, False)] * 5) == ladder[-1]
    # A probe that stopped early saw PROBE_MAX_SLOTS slots: enough.
    assert bodies.choose_radius(ladder, [(2, False), (4, True), (99, False), (99, False), (99, False)]) == ladder[1]
    assert bodies.probe_radii(_osnp_query(radius_km=7.5)) == (7.5,)
    assert bodies.probe_radii(_osnp_query()) == ladder


def test_exclusions_from_declarations():
    start, end = WINDOW.start, WINDOW.end
    hits = [
        {"_source": {"national_id": "8A", "periods": [{"start": "2025-01-01T00:00:00Z"}]}},            # since long ago
        {"_source": {"offer_id": "ps-B", "periods": []}},                                               # no period
        {"_source": {"national_id": "8C", "periods": [{"start": (start + timedelta(hours=5)).isoformat(),
                                                       "end": (start + timedelta(hours=9)).isoformat()}]}},
        {"_source": {"national_id": "8D", "periods": [{"start": "2020-01-01T00:00:00Z", "end": "2020-02-01T00:00:00Z"},
                                                      {"start": (end - timedelta(hours=1)).isoformat()}]}},
        {"_source": {"periods": [{"start": "2025-01-01T00:00:00Z"}]}},                                  # names no one
        {"_source": {"offer_id": "ps-E", "periods": [{"start": "2025-01-01T00:00:00",
                                                      "end": (end + timedelta(days=1)).isoformat()}]}},
    ]
    exclusions = bodies.exclusions_from(hits, WINDOW)
    assert exclusions.national_ids == {"8A"}
    assert exclusions.offer_ids == {"ps-B", "ps-E"}
    partial = {(p.national_id, p.start, p.end) for p in exclusions.partial}
    assert partial == {("8C", start + timedelta(hours=5), start + timedelta(hours=9)),
                       ("8D", end - timedelta(hours=1), None)}


def test_page_offset():
    assert replace(_osnp_query(), page=3, size=20).offset == 40


# --- Two passes (balanced) ---------------------------------------------------------------------------------


def _score(distance_km: float, hours: float, radius_km: float = 5.0) -> float:
    """The balanced score of a slot (rotation left out), with the builders' own decay."""
    parts = bodies.score_components(distance_km=distance_km, start=NOW + timedelta(hours=hours), window=WINDOW,
                                    radius_km=radius_km)
    return defaults.W_DISTANCE * parts["distance_score"] + defaults.W_TIME * parts["time_score"]


def test_first_pass_follows_the_earliest_slot_within_the_window():
    query = _osnp_query()
    assert bodies.first_pass_end(query, NOW) == NOW + defaults.FIRST_PASS_MIN
    assert bodies.first_pass_end(query, NOW + timedelta(minutes=10)) == max(
        NOW + defaults.FIRST_PASS_MIN, NOW + timedelta(minutes=10) + defaults.FIRST_PASS_AFTER_EARLIEST)
    # At night the first slots are in the morning: the first pass reaches past them.
    assert bodies.first_pass_end(query, NOW + timedelta(hours=9)) == NOW + timedelta(hours=9) + \
        defaults.FIRST_PASS_AFTER_EARLIEST
    assert bodies.first_pass_end(query, NOW + timedelta(hours=47)) == WINDOW.end
    # A platform time range that began before the window: the minimum applies.
    assert bodies.first_pass_end(query, NOW - timedelta(hours=5)) == NOW + defaults.FIRST_PASS_MIN


@pytest.mark.parametrize("kth_distance_km, kth_hours", [(0.5, 0.5), (2.0, 1.0), (3.0, 2.5), (4.5, 3.0)])
def test_second_pass_radius_bounds_every_place_that_could_beat_the_kth(kth_distance_km, kth_hours):
    """No place beyond the second pass's distance, whose first slot starts at or after the first pass's end,
    can score as well as the k-th place of the first pass; a place just inside it can."""
    query = _osnp_query()
    split = NOW + timedelta(hours=3)
    kth = _score(kth_distance_km, kth_hours)
    within = bodies.second_pass_radius_km(kth, radius_km=5.0, query=query, first_pass_end=split)
    if within is None:
        # Nowhere: even a place at the origin starting right at the split scores less.
        assert _score(0.0, 3.0) + defaults.W_ROTATION < kth
        return
    assert 0 < within <= 5.0
    # Beyond: less than the k-th, even with the best start possible and the largest rotation.
    assert _score(within + 0.01, 3.0) + defaults.W_ROTATION < kth
    if within < 5.0:
        # Just inside (without the margins): a place there could beat the k-th, so the bound is not loose.
        inside = within - defaults.SECOND_PASS_RADIUS_MARGIN_KM - 0.05
        assert _score(inside, 3.0) + defaults.W_ROTATION > kth - defaults.SECOND_PASS_SCORE_MARGIN - 1e-3


def test_second_pass_cases_without_a_bound():
    query = _osnp_query()
    split = NOW + timedelta(hours=3)
    # Fewer than k places in the first pass: the whole radius.
    assert bodies.second_pass_radius_km(None, radius_km=5.0, query=query, first_pass_end=split) == 5.0
    # The first pass covered the whole window: nothing left.
    assert bodies.second_pass_radius_km(0.2, radius_km=5.0, query=query, first_pass_end=WINDOW.end) is None
    # A k-th place scoring very low: anything later may beat it, anywhere.
    assert bodies.second_pass_radius_km(0.05, radius_km=5.0, query=query, first_pass_end=split) == 5.0


def test_merging_the_passes_keeps_each_place_once_at_its_best_in_the_one_pass_order():
    def hit(offer_id: str, score: float) -> dict:
        return {"_source": {"offer_id": offer_id}, "sort": [score, offer_id]}

    first = [hit("b", 0.9), hit("a", 0.9), hit("c", 0.7)]
    second = [hit("c", 0.95), hit("d", 0.8), hit("a", 0.6)]
    merged = bodies.merge_passes(first, second, offset=0, size=10)
    assert [(h["_source"]["offer_id"], h["sort"][0]) for h in merged] == [
        ("c", 0.95), ("a", 0.9), ("b", 0.9), ("d", 0.8)]
    assert [h["_source"]["offer_id"] for h in bodies.merge_passes(first, second, offset=1, size=2)] == ["a", "b"]
