"""Issue 17, point 9: where the "en sus des disponibilités" list goes in the results fragment. With few slots
it is what the operator needs next, so it comes above the pager; with many, after it. Pure template rendering
(the real Jinja environment of the web interface, the fragment htmx swaps in)."""

from __future__ import annotations

import re
from datetime import datetime, timezone
from types import SimpleNamespace as NS

import pytest

from search_api.web.pages.search import last_page
from search_api.web.render import templates


def _render(total_slots: int, *, total: int = 60, relation: str = "eq", page: int = 1, size: int = 25) -> str:
    moment = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    offer = NS(name="Dr Sus", specialty_labels=["Médecine générale"], address="1 rue A, 33000 Bordeaux", id="o-1")
    beyond = [NS(offer=offer, cpts=[], distance_km=None, distance_precision=None, phone="+33556112233")]
    model = NS(origin=NS(label="33000 Bordeaux"), total=total, size=size, total_slots=total_slots, radius_km=20,
               total_relation=relation, window=NS(start=moment, end=moment), results=[], beyond=beyond)
    return templates.get_template("search_results.html").render(
        results=NS(model=model, markers=[], own_ids=set(), last_page=last_page(model)),
        state={"q": "33000", "territoire": None},
        settings=NS(web_tile_url=None, web_tile_attribution=""), page=page, query_string="q=33000", beyond=None,
        can_book=False, notices=None, error=None, user=None, uuid=lambda: "x")


@pytest.mark.parametrize("total_slots, beyond_first", [(3, True), (9, True), (10, False), (200, False)])
def test_beyond_list_is_above_the_pager_when_few_slots(total_slots, beyond_first):
    html = _render(total_slots)
    beyond, pager = html.index('id="en-sus-liste"'), html.index('aria-label="Pages de résultats"')
    assert (beyond < pager) is beyond_first


def test_map_without_tiles_says_so():
    assert "aucun serveur de tuiles n'est configuré" in _render(3)


def test_counts_stopped_early_read_as_lower_bounds():
    """A dense search's counts stop after tens of thousands of slots: the page says "plus de", in French digits."""
    html = _render(25_000, total=1_234, relation="gte")
    assert "plus de 1\u202f234 lieux avec des créneaux" in html
    assert "plus de 25\u202f000 créneaux" in html
    exact = _render(41, total=12)
    assert "12 lieux avec des créneaux" in exact and "41 créneaux" in exact and "plus de" not in exact


@pytest.mark.parametrize("total, page, next_link", [(60, 2, True), (60, 3, False), (1_234, 49, True),
                                                    (1_234, 50, False), (5_000, 50, False)])
def test_the_pager_stops_at_the_last_page_the_search_can_reach(total, page, next_link):
    """As many pages as places, but never past the 1,000 places a search pages through (page × size ≤ 1,000):
    no link to a page the search would refuse."""
    html = _render(200, total=total, relation="gte" if total > 1_000 else "eq", page=page, size=20 if total > 60
                   else 25)
    assert ("Page suivante" in html) is next_link


def test_two_homonyms_slots_at_the_same_time_have_distinct_accessible_names():
    """Two places of the same name may show the same time: each booking button's accessible name starts with
    its visible text (WCAG 2.5.3) and ends with its card's place in the list, so that no two are the same."""
    moment = datetime(2026, 12, 1, 14, 40, tzinfo=timezone.utc)
    cards = []
    for i in (1, 2):
        offer = NS(id=f"o-{i}", kind="ps", name="Dr Hélène DUBERNET", specialty_labels=["Médecine générale"],
                   convention_sector=None, address=f"{i} rue A, 47000 Agen", phone=None)
        slot = NS(id=f"v:{i}", start=moment, modes=["AMB"], bookable=True)
        cards.append(NS(offer=offer, cpts=[], distance_km=None, distance_precision=None, sos=None, slots=[slot],
                        slot_count=1, beyond=False))
    model = NS(origin=NS(label="47000 Agen"), total=2, size=10, total_slots=2, radius_km=5, total_relation="eq",
               window=NS(start=moment, end=moment), results=cards, beyond=[])
    html = templates.get_template("search_results.html").render(
        results=NS(model=model, markers=[], own_ids=set(), last_page=1), state={"q": "47000", "territoire": None},
        settings=NS(web_tile_url=None, web_tile_attribution=""), page=1, query_string="q=47000", beyond=None,
        can_book=True, notices=None, error=None, user=NS(csrf="t"), uuid=lambda: "x")
    names = re.findall(r'class="fr-btn fr-btn--sm fr-btn--secondary slot" aria-label="([^"]+)"', html)
    assert len(names) == 2 and len(set(names)) == 2, names
    assert all(name.startswith("15h40, réserver") and "Dr Hélène DUBERNET" in name for name in names), names
    assert names[1].endswith("résultat 2")
