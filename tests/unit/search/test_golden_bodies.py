"""The Elasticsearch bodies the builders generate, pinned in golden JSON files.

A change of the search behaviour shows here as a diff of ``tests/unit/search/golden/*.json``. After a
deliberate change, regenerate with ``SAS_UPDATE_GOLDEN=1 python -m pytest tests/unit/search`` and
review the diff.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from search_api.query import search as bodies
from search_api.query.model import BeyondQuery, Exclusions, Origin, PartialExclusion, SlotQuery, Window
from search_api.visibility import SlotVisibility

GOLDEN = Path(__file__).with_name("golden")
NOW = datetime(2025, 11, 5, 7, 0, tzinfo=timezone.utc)             # 08:00 in Paris
AGEN = Origin(lat=44.20281, lon=0.62558, precision="municipality", label="47000 Agen", insee="47001", departement="47")
WINDOW = Window(start=NOW, end=NOW + timedelta(hours=48))
EVERYTHING = SlotVisibility(types=frozenset({"PUBLIC", "PRO", "SNP", "CPTS"}))
GP = ("SM26", "SM53", "SM54")
EXCLUSIONS = Exclusions(
    national_ids=frozenset({"810002673899"}),
    offer_ids=frozenset({"cpts-470012345"}),
    partial=(PartialExclusion(national_id=None, offer_id="ps-810100050075-1810004421",
                              start=NOW + timedelta(hours=20), end=NOW + timedelta(hours=26)),),
)


def _osnp_query(**changes) -> SlotQuery:
    base = SlotQuery(origin=AGEN, window=WINDOW, now=NOW, visibility=EVERYTHING, specialties=GP)
    return replace(base, **changes)


CASES = {
    "search_balanced_osnp_gp": lambda: bodies.slot_search_body(_osnp_query(), radius_km=5.0,
                                                                exclusions=Exclusions()),
    "search_earliest_effecteur_filters": lambda: bodies.slot_search_body(
        _osnp_query(sort="earliest", visibility=SlotVisibility(types=frozenset({"PUBLIC", "PRO"}),
                                                               cpts_finess=frozenset({"470012345"})),
                    modes=("VR", "AMB"), kinds=("ps",), sectors=("1",), bookable_only=True, page=2, size=10,
                    slots_per_card=5),
        radius_km=20.0, exclusions=EXCLUSIONS),
    "search_nearest_integrator_excluded": lambda: bodies.slot_search_body(
        _osnp_query(sort="nearest", visibility=SlotVisibility(types=frozenset({"PUBLIC"}))),
        radius_km=40.0, exclusions=EXCLUSIONS),
    "two_passes_counts_5km": lambda: bodies.counts_body(_osnp_query(), radius_km=5.0, exclusions=EXCLUSIONS),
    "two_passes_earliest_5km": lambda: bodies.earliest_body(_osnp_query(), radius_km=5.0, exclusions=Exclusions()),
    # The second pass of page 2 (k = 40): the rest of the window within 2.4 km, scored as the 5 km search.
    "two_passes_second_pass": lambda: bodies.pass_body(
        _osnp_query(page=2), radius_km=5.0, exclusions=Exclusions(),
        part=Window(start=NOW + timedelta(hours=3), end=WINDOW.end), size=40, within_km=2.4),
    "probe_10km": lambda: bodies.probe_body(_osnp_query(), radius_km=10.0, exclusions=Exclusions()),
    "declarations": lambda: bodies.declarations_body(WINDOW, report_max_hours=72),
    "beyond_gp": lambda: bodies.beyond_body(BeyondQuery(origin=AGEN, radius_km=20.0, specialties=GP,
                                                        kinds=("ps", "cpts"), now=NOW), exclusions=EXCLUSIONS),
    "cpts_lookup": lambda: bodies.cpts_lookup_body("470012345"),
    "cpts_members": lambda: bodies.cpts_members_body("470012345", exclude_offer_id="cpts-470012345"),
    "cpts_slot_offers": lambda: bodies.cpts_slot_offers_body(_osnp_query(specialties=()), finess="470012345",
                                                             exclusions=Exclusions()),
    "card_slots": lambda: bodies.card_slots_body(_osnp_query(), offer_ids=["ps-b", "ps-a", "ps-b"],
                                                 exclusions=EXCLUSIONS),
    "offers_by_ids": lambda: bodies.offers_by_ids_body(["ps-b", "ps-a", "ps-b"], fields=["id", "name"]),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_body_matches_golden_file(name):
    body = CASES[name]()
    path = GOLDEN / f"{name}.json"
    rendered = json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    if os.environ.get("SAS_UPDATE_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert path.is_file(), f"missing golden file {path}; run with SAS_UPDATE_GOLDEN=1 and review it"
    assert json.loads(path.read_text(encoding="utf-8")) == json.loads(rendered)


def test_builders_are_deterministic_and_do_not_mutate_inputs():
    query = _osnp_query()
    first = bodies.slot_search_body(query, radius_km=5.0, exclusions=EXCLUSIONS)
    second = bodies.slot_search_body(query, radius_km=5.0, exclusions=EXCLUSIONS)
    assert first == second
    assert query == _osnp_query()


def test_golden_files_have_no_orphans():
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(CASES)
