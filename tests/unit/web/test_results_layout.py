"""Issue 17, point 9: where the "en sus des disponibilités" list goes in the results fragment. With few slots
it is what the operator needs next, so it comes above the pager; with many, after it. Pure template rendering
(the real Jinja environment of the web interface, the fragment htmx swaps in)."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace as NS

import pytest

from search_api.web.render import templates


def _render(total_slots: int) -> str:
    moment = datetime(2026, 12, 1, 12, tzinfo=timezone.utc)
    offer = NS(name="Dr Sus", specialty_labels=["Médecine générale"], address="1 rue A, 33000 Bordeaux", id="o-1")
    beyond = [NS(offer=offer, cpts=[], distance_km=None, distance_precision=None, phone="+33556112233")]
    model = NS(origin=NS(label="33000 Bordeaux"), total=60, size=25, total_slots=total_slots, radius_km=20,
               window=NS(start=moment, end=moment), results=[], beyond=beyond)
    return templates.get_template("search_results.html").render(
        results=NS(model=model, markers=[], own_ids=set()), state={"q": "33000", "territoire": None},
        settings=NS(web_tile_url=None, web_tile_attribution=""), page=1, query_string="q=33000", beyond=None,
        can_book=False, notices=None, error=None, user=None, uuid=lambda: "x")


@pytest.mark.parametrize("total_slots, beyond_first", [(3, True), (9, True), (10, False), (200, False)])
def test_beyond_list_is_above_the_pager_when_few_slots(total_slots, beyond_first):
    html = _render(total_slots)
    beyond, pager = html.index('id="en-sus-liste"'), html.index('aria-label="Pages de résultats"')
    assert (beyond < pager) is beyond_first


def test_map_without_tiles_says_so():
    assert "aucun serveur de tuiles n'est configuré" in _render(3)
