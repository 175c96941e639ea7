"""The INT_L01 contextual call's search, shared by ``GET /recherche`` and the operator's page: the pre-filled
search, with the patient's own doctor first when he has slots."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from search_api.auth import Principal
from search_api.params import build_slot_query
from search_api.services import SearchContext
from search_api.workflow.contextual import ContextualCall, own_doctor_first
from search_api.workflow.queries import own_doctor_offers_body


def contextual_results(context: SearchContext, principal: Principal, call: ContextualCall, *,
                       now: datetime, start: str | None = None, end: str | None = None) -> dict[str, Any]:
    """Run the pre-filled search; the own doctor's cards first when he has slots (reusable by the UI).
    ``start`` / ``end``: the search window (default: the search's own, now → 48 h)."""
    query = build_slot_query(context, principal, now=now, lat=None, lon=None, q=call.q, insee=None, radius_km=None,
                             specialty=list(call.specialties) or None, start=start, end=end, within=None, modes=None,
                             kinds=None, sector=None, bookable_only=False, sort="balanced", page=1, size=20, slots=3,
                             explain=False)
    answer = context.service.search(query)
    own = None
    if call.own_doctor:
        offers = context.service.executor.search_checked(index="offers",
                                                         body=own_doctor_offers_body(national_id=call.own_doctor))
        ids = {h["_source"]["id"] for h in offers["hits"]["hits"]}
        own_cards: list[dict] = []
        if ids and not any((c.get("offer") or {}).get("id") in ids for c in answer["results"]):
            own_query = dataclasses.replace(query, offer_ids=tuple(sorted(ids)), radius_km=200.0,
                                            specialties=())
            own_cards = context.service.search(own_query, with_beyond=False)["results"]
        answer["results"] = own_doctor_first(answer["results"], ids, own_cards)
        first = answer["results"][0] if answer["results"] else None
        own = {"national_id": call.own_doctor, "known": bool(ids),
               "has_slots": bool(first and first.get("own_doctor") and first.get("slots"))}
    return {"own_doctor": own, **answer}
